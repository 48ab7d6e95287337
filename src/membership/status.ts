/**
 * What an operator asks a node about its cluster (pure): the members as this node sees them, the
 * ring, whether it is settled, and the transfers of a rebalance with their progress. Riak's
 * `ring-status` / `transfers` and Cassandra's `nodetool status` / `netstats` in one answer.
 */
import { claimShares, zoneReport } from '../ring/index.js';
import type { TransferTask } from './plan.js';
import type { ClusterState, MemberRecord, MemberView } from './types.js';

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
  /** The members' zones and how this ring meets the zone guarantee; null when no member has a zone. */
  zones: ZoneStatus | null;
}

/** `node.ringStatus().zones`. */
export interface ZoneStatus {
  /** Zones each key's N replicas must span: min(N, zones that own partitions). */
  required: number;
  /** Partitions whose replicas span fewer zones than `required`: 0 when the guarantee holds. */
  violations: number;
  /** One entry per zone, by name (`''`: members without a zone). */
  list: ZoneView[];
}

/** One zone in `ringStatus().zones.list`. */
export interface ZoneView {
  /** The zone's name (`''`: members without a zone). */
  zone: string;
  /** Members in the zone (removed ones excluded). */
  members: number;
  /** Their total weight. */
  weight: number;
  /** `weight` as a fraction of all valid and joining members' weight. */
  weightShare: number;
  /** Partitions the zone's members own in the current ring. */
  partitions: number;
  /** `partitions` as a fraction of Q. */
  share: number;
  /**
   * The fraction of Q the zone should own: its weighted share, clamped to what the guarantee lets
   * one zone hold (with Z ≥ N at most 1/N; with Z < N at least 1/N). Differs from `weightShare`
   * when the zones' capacities are too uneven for the guarantee: the difference is load moved
   * between zones, shown rather than hidden.
   */
  targetShare: number;
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
      ...(m.zone === undefined ? {} : { zone: m.zone }),
    }));
}

/**
 * Settled: the ring has owners, no rebalance is pending, no member is joining or leaving, every
 * owner is a valid member, and every valid member owns at least ⌊Q·w/Σw⌋ partitions (the lower
 * bound claim guarantees; with zones, ⌊share⌋ of the share the guarantee gives it, which needs
 * `n`). Down members count: down is a local opinion and changes no ownership.
 */
export function isSettled(state: ClusterState, n?: number): boolean {
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
  const zoned = n !== undefined && members.some((m) => m.state === 'valid' && m.zone !== undefined);
  if (zoned) {
    const shares = sharesOf(members, n, q);
    for (const id of valid.keys()) {
      if ((owned.get(id) ?? 0) < Math.floor(shares.get(id)! + 1e-9)) return false;
    }
    return true;
  }
  for (const [id, weight] of valid) {
    if ((owned.get(id) ?? 0) < Math.floor((q * weight) / totalWeight)) return false;
  }
  return true;
}

/** Settled, and this node is a valid member of it (ready to serve with the cluster's full ring). */
export function isReady(state: ClusterState, self: string, n?: number): boolean {
  return isSettled(state, n) && state.members.some((m) => m.id === self && m.state === 'valid');
}

const sharesCache = new WeakMap<readonly MemberRecord[], { key: string; shares: Map<string, number> }>();

/** The valid members' shares of the ring (claimShares), memoised per member table. */
function sharesOf(members: readonly MemberRecord[], n: number, q: number): Map<string, number> {
  const key = `${n}:${q}`;
  const hit = sharesCache.get(members);
  if (hit && hit.key === key) return hit.shares;
  const valid = members.filter((m) => m.state === 'valid');
  const shares = claimShares(
    valid.map((m) =>
      m.zone === undefined ? { id: m.id, weight: m.weight } : { id: m.id, weight: m.weight, zone: m.zone },
    ),
    n,
    q,
  );
  sharesCache.set(members, { key, shares });
  return shares;
}

const zoneCache = new WeakMap<
  readonly string[],
  { members: readonly MemberRecord[]; n: number; status: ZoneStatus }
>();

/**
 * The zones of the members and the guarantee's state on this ring (null when no member has a
 * zone). Memoised per ring and member table: metrics scrapes ask for it.
 */
export function zoneStatus(state: ClusterState, n: number): ZoneStatus | null {
  const { members, ring } = state;
  const listed = members.filter((m) => m.state !== 'removed');
  if (!listed.some((m) => m.zone !== undefined)) return null;
  const hit = zoneCache.get(ring.owners);
  if (hit && hit.members === members && hit.n === n) return hit.status;
  const zoneById = new Map(listed.map((m) => [m.id, m.zone ?? '']));
  const report = zoneReport(ring.owners, (id) => zoneById.get(id), n);
  const q = ring.owners.length;
  const owned = ownedCounts(ring.owners);
  const placed = listed.filter((m) => m.state === 'valid' || m.state === 'joining');
  const totalWeight = placed.reduce((a, m) => a + m.weight, 0);
  const shares =
    q > 0 && placed.length > 0
      ? claimShares(
          placed.map((m) => ({ id: m.id, weight: m.weight, zone: m.zone ?? '' })),
          n,
          q,
        )
      : new Map<string, number>();
  const byZone = new Map<string, ZoneView>();
  for (const m of listed) {
    const zone = m.zone ?? '';
    let v = byZone.get(zone);
    if (!v) {
      v = { zone, members: 0, weight: 0, weightShare: 0, partitions: 0, share: 0, targetShare: 0 };
      byZone.set(zone, v);
    }
    v.members++;
    v.partitions += owned.get(m.id) ?? 0;
    if (m.state === 'valid' || m.state === 'joining') {
      v.weight += m.weight;
      v.targetShare += q > 0 ? (shares.get(m.id) ?? 0) / q : 0;
    }
  }
  const list = [...byZone.values()].sort((a, b) => (a.zone < b.zone ? -1 : a.zone > b.zone ? 1 : 0));
  for (const v of list) {
    v.weightShare = totalWeight > 0 ? v.weight / totalWeight : 0;
    v.share = q > 0 ? v.partitions / q : 0;
  }
  const status: ZoneStatus = { required: report.required, violations: report.violations, list };
  zoneCache.set(ring.owners, { members, n, status });
  return status;
}

export function ringStatus(
  state: ClusterState,
  self: string,
  isUp: (id: string) => boolean,
  openTasks: readonly TransferTask[],
  progressOf: (task: TransferTask) => { keysSent: number; total: number | null } | undefined,
  /** N: needed for the zones (without it `zones` is null). */
  n?: number,
): RingStatus {
  return {
    version: state.ring.version,
    settled: isSettled(state, n),
    claimant: state.ring.claimant,
    pending: openTasks.map((t) => ({
      partition: t.partition,
      from: t.source,
      to: t.target,
      ...(progressOf(t) ?? { keysSent: 0, total: null }),
    })),
    members: memberViews(state, self, isUp),
    zones: n === undefined ? null : zoneStatus(state, n),
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

const lookupCache = new WeakMap<readonly MemberRecord[], ((id: string) => string | undefined) | undefined>();

/**
 * id → zone for a member table (members without a zone: the default zone `''`), or undefined
 * when no member has a zone (so zoneless clusters take none of the zone-aware paths). Memoised.
 */
export function zoneLookup(
  members: readonly MemberRecord[],
): ((id: string) => string | undefined) | undefined {
  if (lookupCache.has(members)) return lookupCache.get(members);
  let lookup: ((id: string) => string | undefined) | undefined;
  if (members.some((m) => m.zone !== undefined)) {
    const byId = new Map(members.map((m) => [m.id, m.zone ?? '']));
    lookup = (id) => byId.get(id);
  }
  lookupCache.set(members, lookup);
  return lookup;
}
