/**
 * Pure merge rules for gossiped cluster state. Deterministic: any two nodes that have seen the
 * same states hold the same result, whatever order the states arrived in.
 */
import { MAX_ZONE_CHARS } from '../options.js';
import type { ClusterState, MemberRecord, RingState } from './types.js';

const STATE_RANK: Record<MemberRecord['state'], number> = { joining: 0, valid: 1, leaving: 2, removed: 3 };

/** The record that wins when two versions of one member meet. */
export function newerRecord(a: MemberRecord, b: MemberRecord): MemberRecord {
  if (a.version !== b.version) return a.version > b.version ? a : b;
  if (a.state !== b.state) return STATE_RANK[a.state] > STATE_RANK[b.state] ? a : b;
  if (a.address !== b.address) return a.address > b.address ? a : b;
  if (a.weight !== b.weight) return a.weight > b.weight ? a : b;
  return (a.zone ?? '') >= (b.zone ?? '') ? a : b;
}

/**
 * The ring that wins: higher version, then (a tie means two claimants raced) the smaller claimant
 * id, then owners. The same ring seen twice merges its transfer progress (union of done tasks).
 */
export function newerRing(a: RingState, b: RingState): RingState {
  if (a.version !== b.version) return a.version > b.version ? a : b;
  if (a.claimant !== b.claimant) return a.claimant < b.claimant ? a : b;
  const ka = ringKey(a);
  const kb = ringKey(b);
  if (ka !== kb) return ka < kb ? a : b;
  if (!a.pending || !b.pending) return a;
  const done = unionSorted(a.pending.done, b.pending.done);
  if (done.length === a.pending.done.length) return a;
  if (done.length === b.pending.done.length) return b;
  return { ...a, pending: { owners: a.pending.owners, done } };
}

function ringKey(r: RingState): string {
  return `${r.owners.join('\u0000')}\u0001${r.pending ? r.pending.owners.join('\u0000') : ''}`;
}

function unionSorted(a: readonly string[], b: readonly string[]): string[] {
  if (b.length === 0) return a as string[];
  const set = new Set(a);
  for (const x of b) set.add(x);
  return set.size === a.length ? (a as string[]) : [...set].sort();
}

export function mergeMembers(a: readonly MemberRecord[], b: readonly MemberRecord[]): MemberRecord[] {
  const byId = new Map<string, MemberRecord>();
  for (const m of a) byId.set(m.id, m);
  for (const m of b) {
    const cur = byId.get(m.id);
    byId.set(m.id, cur ? newerRecord(cur, m) : m);
  }
  return [...byId.values()].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
}

export function mergeState(a: ClusterState, b: ClusterState): ClusterState {
  return { members: mergeMembers(a.members, b.members), ring: newerRing(a.ring, b.ring) };
}

/** True when `b` adds nothing to `a` (so a merge would not change it). */
export function sameState(a: ClusterState, b: ClusterState): boolean {
  if (a.ring !== b.ring) {
    if (a.ring.version !== b.ring.version || a.ring.claimant !== b.ring.claimant) return false;
    if ((a.ring.pending?.done.length ?? -1) !== (b.ring.pending?.done.length ?? -1)) return false;
  }
  if (a.members.length !== b.members.length) return false;
  for (let i = 0; i < a.members.length; i++) {
    const x = a.members[i]!;
    const y = b.members[i]!;
    if (x.id !== y.id || x.version !== y.version || x.state !== y.state || x.address !== y.address)
      return false;
    if (x.zone !== y.zone) return false;
  }
  return (
    a.ring.owners.length === b.ring.owners.length && a.ring.owners.every((o, i) => o === b.ring.owners[i])
  );
}

/**
 * The claimant computes ring changes (Riak's approach): the smallest id among members that are
 * valid in the ring and that this node believes reachable. Every node can take the role.
 */
export function claimantOf(
  members: readonly MemberRecord[],
  isUp: (id: string) => boolean,
): string | undefined {
  for (const m of members) if (m.state === 'valid' && isUp(m.id)) return m.id;
  return undefined;
}

/** Validates a decoded state from the wire (untrusted input); throws TypeError when malformed. */
export function checkState(value: unknown, partitions: number): ClusterState {
  if (!Array.isArray(value) || value.length !== 2)
    throw new TypeError('cluster state: expected [members, ring]');
  const [rawMembers, rawRing] = value as [unknown, unknown];
  if (!Array.isArray(rawMembers) || rawMembers.length > 10_000)
    throw new TypeError('cluster state: bad members');
  const members: MemberRecord[] = rawMembers.map((m) => {
    // A sixth field is the member's zone (absent for members without one).
    if (!Array.isArray(m) || (m.length !== 5 && m.length !== 6))
      throw new TypeError('cluster state: bad member');
    const [id, address, weight, state, version, zone] = m as unknown[];
    if (typeof id !== 'string' || typeof address !== 'string')
      throw new TypeError('cluster state: bad member id');
    if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 1)
      throw new TypeError('bad weight');
    if (state !== 'joining' && state !== 'valid' && state !== 'leaving' && state !== 'removed') {
      throw new TypeError('cluster state: bad member state');
    }
    if (typeof version !== 'number' || !Number.isInteger(version) || version < 0)
      throw new TypeError('bad version');
    if (m.length === 6 && !isZone(zone)) throw new TypeError('cluster state: bad zone');
    return m.length === 6
      ? { id, address, weight, state, version, zone: zone as string }
      : { id, address, weight, state, version };
  });
  if (!Array.isArray(rawRing) || rawRing.length !== 5) throw new TypeError('cluster state: bad ring');
  const [version, owners, claimant, pendingOwners, done] = rawRing as unknown[];
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 0)
    throw new TypeError('bad ring version');
  if (typeof claimant !== 'string') throw new TypeError('cluster state: bad claimant');
  // A node that is not in a cluster yet (joining, or forming one) has a ring of version 0 and no
  // owners: its answer must reach a joining node as "not in a cluster", not as a malformed state.
  const ringless = Array.isArray(owners) && owners.length === 0 && version === 0 && pendingOwners === null;
  if (
    !ringless &&
    (!Array.isArray(owners) || owners.length !== partitions || owners.some((o) => typeof o !== 'string'))
  ) {
    throw new TypeError(
      `cluster state: ring must have ${partitions} owners, got ${Array.isArray(owners) ? owners.length : 'none'} (another partitions setting?)`,
    );
  }
  if (!Array.isArray(done) || done.length > partitions * 64 || done.some((d) => typeof d !== 'string')) {
    throw new TypeError('cluster state: bad transfer progress');
  }
  let pending: RingState['pending'] = null;
  if (pendingOwners !== null) {
    if (!Array.isArray(pendingOwners) || pendingOwners.length !== partitions)
      throw new TypeError('bad pending ring');
    if (pendingOwners.some((o) => typeof o !== 'string')) throw new TypeError('bad pending owner');
    pending = { owners: pendingOwners as string[], done: [...new Set(done as string[])].sort() };
  } else if (done.length > 0) {
    throw new TypeError('cluster state: transfer progress without a pending ring');
  }
  members.sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  return { members, ring: { version, owners: owners as string[], claimant, pending } };
}

/** A zone name: a non-empty string of at most MAX_ZONE_CHARS characters. */
export function isZone(zone: unknown): zone is string {
  return typeof zone === 'string' && zone.length > 0 && zone.length <= MAX_ZONE_CHARS;
}

/** A member on the wire: five fields, and the zone as a sixth when it has one. */
export function memberToWire(m: MemberRecord): unknown[] {
  const fields: unknown[] = [m.id, m.address, m.weight, m.state, m.version];
  if (m.zone !== undefined) fields.push(m.zone);
  return fields;
}

/** Wire/storage form of a state: arrays only, so decoding untrusted bytes builds no objects from keys. */
export function stateToWire(s: ClusterState): unknown {
  const r = s.ring;
  return [
    s.members.map(memberToWire),
    [r.version, r.owners, r.claimant, r.pending ? r.pending.owners : null, r.pending ? r.pending.done : []],
  ];
}
