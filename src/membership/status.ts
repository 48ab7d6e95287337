/**
 * What an operator asks a node about its cluster (pure): the members as this node sees them, the
 * ring, whether it is settled, and the transfers of a rebalance with their progress. Riak's
 * `ring-status` / `transfers` and Cassandra's `nodetool status` / `netstats` in one answer.
 */
import type { TransferTask } from './plan.js';
import type { ClusterState, MemberView } from './types.js';

/** One partition moving to a new owner (`node.ringStatus().pending`). */
export interface TransferView {
  /** The partition (0 … Q−1). */
  partition: number;
  /** The member streaming the partition. */
  from: string;
  /** The member gaining it. */
  to: string;
  /** Keys acknowledged by `to` so far, as last heard (exact on the sending node; gossip elsewhere). */
  keysSent: number;
  /** Keys the sender counted in the partition when it started; null until it started. */
  total: number | null;
}

/** `node.ringStatus()`: this node's view of the ring. */
export interface RingStatus {
  /** Ring version; grows with every change the claimant makes. */
  version: number;
  /** True when no ring change is pending and every valid member owns its share (see `isSettled`). */
  settled: boolean;
  /** The member that computed this ring. */
  claimant: string;
  /** Transfers of the rebalance in progress that are not done yet (every node's, not only ours). */
  pending: TransferView[];
  /** The members of this ring, as `node.members()` reports them. */
  members: MemberView[];
}

/** Members except removed ones, as `node.members()` reports them. */
export function memberViews(state: ClusterState, self: string, isUp: (id: string) => boolean): MemberView[] {
  const owned = ownedCounts(state.ring.owners);
  return state.members
    .filter((m) => m.state !== 'removed')
    .map((m) => ({
      id: m.id,
      address: m.address,
      status:
        m.state === 'joining' || (m.state === 'valid' && !owned.has(m.id))
          ? 'joining'
          : m.state === 'leaving'
            ? 'leaving'
            : m.id === self || isUp(m.id)
              ? 'up'
              : 'down',
      weight: m.weight,
      partitions: owned.get(m.id) ?? 0,
    }));
}

/**
 * Settled: the ring has owners, no rebalance is pending, no member is joining or leaving, every
 * owner is a valid member, and every valid member owns at least ⌊Q·w/Σw⌋ partitions (the lower
 * bound claim guarantees). Down members count: down is a local opinion and changes no ownership.
 */
export function isSettled(state: ClusterState): boolean {
  const { ring, members } = state;
  if (ring.pending !== null || ring.owners.length === 0) return false;
  const valid = new Map<string, number>();
  let totalWeight = 0;
  for (const m of members) {
    if (m.state === 'joining' || m.state === 'leaving') return false;
    if (m.state === 'valid') {
      valid.set(m.id, m.weight);
      totalWeight += m.weight;
    }
  }
  const owned = ownedCounts(ring.owners);
  for (const id of owned.keys()) if (!valid.has(id)) return false;
  const q = ring.owners.length;
  for (const [id, weight] of valid) {
    if ((owned.get(id) ?? 0) < Math.floor((q * weight) / totalWeight)) return false;
  }
  return true;
}

/** Settled, and this node is a valid member of it (ready to serve with the cluster's full ring). */
export function isReady(state: ClusterState, self: string): boolean {
  return isSettled(state) && state.members.some((m) => m.id === self && m.state === 'valid');
}

export function ringStatus(
  state: ClusterState,
  self: string,
  isUp: (id: string) => boolean,
  openTasks: readonly TransferTask[],
  progressOf: (task: TransferTask) => { keysSent: number; total: number | null } | undefined,
): RingStatus {
  return {
    version: state.ring.version,
    settled: isSettled(state),
    claimant: state.ring.claimant,
    pending: openTasks.map((t) => ({
      partition: t.partition,
      from: t.source,
      to: t.target,
      ...(progressOf(t) ?? { keysSent: 0, total: null }),
    })),
    members: memberViews(state, self, isUp),
  };
}

const distinctCache = new WeakMap<readonly string[], number>();

/**
 * Why a request needing `required` replicas cannot succeed on this ring, or undefined when it
 * can: a key's preference list holds at most as many distinct nodes as own partitions.
 */
export function tooFewOwners(state: ClusterState, n: number, required: number): string | undefined {
  const owners = state.ring.owners;
  let distinct = distinctCache.get(owners);
  if (distinct === undefined) {
    distinct = new Set(owners).size;
    distinctCache.set(owners, distinct);
  }
  if (required <= distinct) return undefined;
  const pending = state.ring.pending ? new Set(state.ring.pending.owners).size : undefined;
  return (
    `cluster has ${distinct} node${distinct === 1 ? '' : 's'} that own${distinct === 1 ? 's' : ''} partitions; n = ${n}` +
    (pending !== undefined
      ? ` (a rebalance to ${pending} nodes is in progress: node.ready() waits for it)`
      : '')
  );
}

function ownedCounts(owners: readonly string[]): Map<string, number> {
  const owned = new Map<string, number>();
  for (const o of owners) owned.set(o, (owned.get(o) ?? 0) + 1);
  return owned;
}
