/**
 * Failure domains (zones) on the ring, pure. A key's replicas are the first N distinct owners
 * clockwise from its partition (`preference.ts`, unchanged by zones); with a zone per member the
 * claim lays the ring out so that every key's replicas span K = min(N, Z) distinct zones, Z being
 * the number of zones that own partitions (Garage's guarantee, riak_core claim v4's minimal
 * movement).
 *
 * What a zone can hold follows from the guarantee, not from its weight alone: with Z ≥ N every key
 * has at most one replica per zone, so a zone owns at most Q/N partitions; with Z < N every key
 * has a replica in every zone (at least Q/N partitions each) and at most N − Z + 1 in one zone
 * (and never more than it has members). Zones get their weighted share of the partitions clamped
 * to that band (water-filling: what a too-heavy zone cannot take goes to the others in proportion
 * to their weights), and members split their zone's partitions by weight, ⌊⌋/⌈⌉ of their share of
 * it. When every zone's weighted share lies inside the band nothing is clamped and every member
 * holds ⌊⌋/⌈⌉ of Q·w/Σw, as without zones. The skew a clamp makes is visible in the ring's zone
 * report (`zoneSummary`), never silent.
 *
 * Layout (`claimZoned`): from a previous ring, every partition keeps its owner where the owner
 * still has room, members below their count take partitions one at a time where they create no
 * window without enough zones (a member joining a zone takes from its zone-mates when the zone's
 * count is unchanged; a new zone takes partitions spread so that no window repeats it); then a
 * local search over swaps (counts unchanged) removes what is left. Where Q is not a multiple of
 * the window's zone pattern (three zones, N = 3, Q a power of two) the search makes one member own
 * two neighbouring partitions: the preference list skips the repeat and stays zone-diverse.
 */

/** A member as the zoned claim sees it: `zone` indexes the zone list, `weight` as in `claim`. */
export interface ZonedMember {
  weight: number;
  zone: number;
}

/** Caps the local search (counted in window steps; deterministic) so a pathological layout stays fast. */
const SEARCH_BUDGET = 100_000_000;
/** Rotations tried when a fresh layout is turned to match the previous ring (O(Q·this)). */
const MAX_ROTATIONS = 1024;
/** Weight of a window missing a zone against one repeating a member (the guarantee comes first). */
const ZONE_COST = 1024;

/**
 * Which zone each member is in, as indices: members without a zone share the default zone `''`.
 * Zones are numbered in order of first appearance in `zones` (callers pass members sorted by id).
 */
export function zoneIndex(zones: readonly (string | undefined)[]): { of: Int32Array; names: string[] } {
  const names: string[] = [];
  const byName = new Map<string, number>();
  const of = new Int32Array(zones.length);
  for (let i = 0; i < zones.length; i++) {
    const name = zones[i] ?? '';
    let z = byName.get(name);
    if (z === undefined) {
      z = names.length;
      names.push(name);
      byName.set(name, z);
    }
    of[i] = z;
  }
  return { of, names };
}

/** Required zones per key: K = min(N, Q, Z). */
export function requiredZones(n: number, partitions: number, zones: number): number {
  return Math.min(n, partitions, zones);
}

/**
 * Whether the zone constraint shapes the ring at all: it does when at least two zones are
 * required and there are more members than a preference list holds (with S ≤ N every key's
 * replicas are all the members, so every zone anyway).
 */
export function zonesMatter(members: number, zones: number, n: number, partitions: number): boolean {
  return requiredZones(n, partitions, zones) >= 2 && members > Math.min(n, partitions);
}

// ---------------------------------------------------------------------------------------------
// Targets

/**
 * Real-valued shares (in partitions) of each zone and member, as the file comment describes: the
 * zones' weighted shares clamped to what the guarantee lets a zone hold, split by weight inside
 * each zone (a member capped at Q/L when a zone may hold several replicas of a key).
 */
export function zonedShares(
  members: readonly ZonedMember[],
  zoneCount: number,
  n: number,
  q: number,
): { zone: Float64Array; member: Float64Array } {
  const l = Math.min(n, q);
  const k = requiredZones(n, q, zoneCount);
  const zw = new Float64Array(zoneCount);
  const zm = new Int32Array(zoneCount);
  let totalW = 0;
  for (const m of members) {
    zw[m.zone]! += m.weight;
    zm[m.zone]! += 1;
    totalW += m.weight;
  }
  // Per-window bounds of a zone (replicas of one key it may hold), as shares of the partitions.
  const lo = new Float64Array(zoneCount);
  const hi = new Float64Array(zoneCount);
  let inBand = true;
  for (let z = 0; z < zoneCount; z++) {
    lo[z] = k === zoneCount ? 1 / l : 0;
    hi[z] = Math.min(zm[z]!, l - k + 1) / l;
    const share = zw[z]! / totalW;
    if (share < lo[z]! - 1e-12 || share > hi[z]! + 1e-12) inBand = false;
  }
  const zone = new Float64Array(zoneCount);
  const member = new Float64Array(members.length);
  if (inBand) {
    // Nothing to clamp: exactly Q·w/Σw.
    for (let z = 0; z < zoneCount; z++) zone[z] = (q * zw[z]!) / totalW;
    for (let i = 0; i < members.length; i++) member[i] = (q * members[i]!.weight) / totalW;
    return { zone, member };
  }
  const share = waterFill(zw, lo, hi, 1);
  for (let z = 0; z < zoneCount; z++) zone[z] = q * share[z]!;
  // With fewer zones than N a zone may hold several replicas of a key, each on its own member:
  // a member then holds at most Q/L (one per window).
  const memberCap = k < l ? q / l : Number.POSITIVE_INFINITY;
  for (let z = 0; z < zoneCount; z++) {
    const idx: number[] = [];
    for (let i = 0; i < members.length; i++) if (members[i]!.zone === z) idx.push(i);
    const w = Float64Array.from(idx, (i) => members[i]!.weight);
    const cap = new Float64Array(idx.length).fill(memberCap / Math.max(zone[z]!, 1e-300));
    const shares = Number.isFinite(memberCap)
      ? waterFill(w, new Float64Array(idx.length), cap, 1)
      : proportional(w);
    idx.forEach((i, j) => {
      member[i] = shares[j]! * zone[z]!;
    });
  }
  return { zone, member };
}

/**
 * Partitions each member should own: each zone ⌊⌋/⌈⌉ of its share (largest remainders), then
 * inside each zone every member ⌊share⌋ and the zone's remainder to the largest fractions, so each
 * member lands on ⌊share⌋ or ⌈share⌉. `current` (counts in the previous ring, or zeros) only
 * breaks ties, so a ring that already has these counts keeps them.
 */
export function zonedTargets(
  members: readonly ZonedMember[],
  zoneCount: number,
  n: number,
  q: number,
  current: ArrayLike<number>,
): Int32Array {
  const shares = zonedShares(members, zoneCount, n, q);
  const zoneCur = new Float64Array(zoneCount);
  for (let i = 0; i < members.length; i++) zoneCur[members[i]!.zone]! += current[i] ?? 0;
  const zoneTarget = roundShares(shares.zone, zoneCur, q);
  const target = new Int32Array(members.length);
  for (let z = 0; z < zoneCount; z++) {
    const idx: number[] = [];
    for (let i = 0; i < members.length; i++) if (members[i]!.zone === z) idx.push(i);
    const ints = roundShares(
      Float64Array.from(idx, (i) => shares.member[i]!),
      Float64Array.from(idx, (i) => current[i] ?? 0),
      zoneTarget[z]!,
    );
    idx.forEach((i, j) => {
      target[i] = ints[j]!;
    });
  }
  return target;
}

function proportional(w: Float64Array): Float64Array {
  let sum = 0;
  for (const x of w) sum += x;
  return Float64Array.from(w, (x) => x / sum);
}

/**
 * x_i = clamp(λ·a_i, lo_i, hi_i) with Σ x_i = total (bisection on λ; Σ is monotone in λ).
 * Assumes Σ lo ≤ total ≤ Σ hi; outside that, returns the nearest bound.
 */
function waterFill(a: Float64Array, lo: Float64Array, hi: Float64Array, total: number): Float64Array {
  const sumAt = (lambda: number) => {
    let sum = 0;
    for (let i = 0; i < a.length; i++) sum += Math.min(hi[i]!, Math.max(lo[i]!, lambda * a[i]!));
    return sum;
  };
  let low = 0;
  let high = 1;
  while (sumAt(high) < total && high < 1e300) high *= 2;
  for (let it = 0; it < 200; it++) {
    const mid = (low + high) / 2;
    if (mid === low || mid === high) break;
    if (sumAt(mid) < total) low = mid;
    else high = mid;
  }
  return Float64Array.from(a, (x, i) => Math.min(hi[i]!, Math.max(lo[i]!, high * x)));
}

/**
 * Integers within ⌊t⌋/⌈t⌉ summing to `total` (largest remainder). Ties: the larger current count
 * (keeps a ring that has them), then the lower index. Float noise below 1e-9 is treated as none.
 */
function roundShares(t: Float64Array, current: ArrayLike<number>, total: number): Int32Array {
  const out = new Int32Array(t.length);
  let sum = 0;
  const frac: number[] = [];
  for (let i = 0; i < t.length; i++) {
    const f = Math.floor(t[i]! + 1e-9);
    out[i] = f;
    sum += f;
    frac[i] = t[i]! - f;
  }
  const order = Array.from(t, (_, i) => i).sort(
    (a, b) => frac[b]! - frac[a]! || (current[b] ?? 0) - (current[a] ?? 0) || a - b,
  );
  for (let j = 0; sum < total && j < order.length; j++, sum++) out[order[j]!]! += 1;
  // Rounding noise can leave the floors above `total`: take back from the smallest fractions.
  for (let j = order.length - 1; sum > total && j >= 0; j--) {
    if (out[order[j]!]! > 0) {
      out[order[j]!]! -= 1;
      sum--;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Layout

/**
 * Layout state. Every partition p has a cached cost: its preference walk (from p to `need`
 * distinct members, free partitions counting as members of a zone still to come) costs
 * ZONE_COST per zone it lacks plus 1 per repeat it had to skip (a longer walk puts more load on
 * the members after the repeat). A change at x only changes the walks that cross x, which start
 * within `reach` (an upper bound of every walk's length) before it.
 */
interface ZState {
  q: number;
  mask: number;
  /** Window length L = min(N, Q). */
  l: number;
  /** Zones each key's replicas must span. */
  k: number;
  s: number;
  zoneOf: Int32Array;
  own: Int32Array;
  /** Owners to count moves against (−1: none). */
  prev: Int32Array;
  count: Int32Array;
  target: Int32Array;
  /** Distinct members a preference walk collects: min(N, members with a target). */
  need: number;
  /** Longest walk looked at: min(Q, 2·L + 2). */
  maxWalk: number;
  /** Scratch marks (stamped, so never cleared). */
  nodeMark: Int32Array;
  zoneMark: Int32Array;
  stamp: number;
  cost: Int32Array;
  len: Int32Array;
  /** 1 when the walk is complete (no free partition) and lacks a zone. */
  viol: Uint8Array;
  reach: number;
  /** Starts scratch for `affected`. */
  starts: number[];
  budget: number;
}

/**
 * The zoned layout: owners per partition as member indices. `prev` holds previous owners as
 * member indices (−1: none, or a member that left). Deterministic.
 */
export function claimZoned(
  members: readonly ZonedMember[],
  zoneCount: number,
  n: number,
  q: number,
  prev: Int32Array,
): Int32Array {
  const s = members.length;
  const current = new Int32Array(s);
  for (let p = 0; p < q; p++) if (prev[p]! >= 0) current[prev[p]!]! += 1;
  const target = zonedTargets(members, zoneCount, n, q, current);
  const hasPrev = prev.some((m) => m >= 0);
  const fromPrev = layout(members, zoneCount, n, q, target, prev, hasPrev);
  if (!hasPrev || violations(fromPrev) === 0) return fromPrev.own;
  // Keeping what it could left keys without enough zones (a zone's partitions must be re-spaced
  // when its count changes and its windows have no slack): a fresh layout, turned and relabelled
  // to keep as many partitions as it can, may do better. Taken only with fewer violations.
  const fresh = layout(members, zoneCount, n, q, target, prev, false);
  align(fresh, prev, members);
  const vFresh = violations(fresh);
  const vPrev = violations(fromPrev);
  return vFresh < vPrev ? fresh.own : fromPrev.own;
}

/**
 * Turns a fresh layout around the ring (every rotation keeps its costs) to the rotation whose
 * zones match `prev`'s most often, then relabels members of one zone with equal counts (which
 * swaps nothing a walk can tell apart) to match `prev`'s members most often.
 */
function align(st: ZState, prev: Int32Array, members: readonly ZonedMember[]): void {
  const { q, mask, own, zoneOf } = st;
  const prevZone = Int32Array.from(prev, (m) => (m >= 0 ? zoneOf[m]! : -1));
  const stride = Math.max(1, Math.floor(q / MAX_ROTATIONS));
  let bestRot = 0;
  let bestKeep = -1;
  for (let rot = 0; rot < q; rot += stride) {
    let keep = 0;
    for (let p = 0; p < q; p++) if (zoneOf[own[(p - rot) & mask]!] === prevZone[p]) keep++;
    if (keep > bestKeep) {
      bestKeep = keep;
      bestRot = rot;
    }
  }
  const turned = new Int32Array(q);
  for (let p = 0; p < q; p++) turned[p] = own[(p - bestRot) & mask]!;
  // Groups of interchangeable members: same zone, same count.
  const groups = new Map<string, number[]>();
  for (let m = 0; m < members.length; m++) {
    const key = `${members[m]!.zone}:${st.target[m]}`;
    const g = groups.get(key);
    if (g) g.push(m);
    else groups.set(key, [m]);
  }
  const relabel = Int32Array.from(members, (_, m) => m);
  for (const group of groups.values()) {
    if (group.length < 2) continue;
    // overlap[i][j]: partitions fresh member group[i] holds where prev had group[j].
    const at = new Map(group.map((m, i) => [m, i]));
    const overlap = group.map(() => new Int32Array(group.length));
    for (let p = 0; p < q; p++) {
      const i = at.get(turned[p]!);
      const j = at.get(prev[p]!);
      if (i !== undefined && j !== undefined) overlap[i]![j]! += 1;
    }
    const pairs: [number, number, number][] = [];
    for (let i = 0; i < group.length; i++)
      for (let j = 0; j < group.length; j++) pairs.push([overlap[i]![j]!, i, j]);
    pairs.sort((a, b) => b[0] - a[0] || a[1] - b[1] || a[2] - b[2]);
    const usedI = new Uint8Array(group.length);
    const usedJ = new Uint8Array(group.length);
    for (const [, i, j] of pairs) {
      if (usedI[i] || usedJ[j]) continue;
      usedI[i] = 1;
      usedJ[j] = 1;
      relabel[group[i]!] = group[j]!;
    }
  }
  for (let p = 0; p < q; p++) own[p] = relabel[turned[p]!]!;
  refreshCaches(st);
}

function layout(
  members: readonly ZonedMember[],
  zoneCount: number,
  n: number,
  q: number,
  target: Int32Array,
  prev: Int32Array,
  keepPrevious: boolean,
): ZState {
  const s = members.length;
  let owning = 0;
  for (let m = 0; m < s; m++) if (target[m]! > 0) owning++;
  const st: ZState = {
    q,
    mask: q - 1,
    l: Math.min(n, q),
    k: requiredZones(n, q, zoneCount),
    s,
    zoneOf: Int32Array.from(members, (m) => m.zone),
    own: new Int32Array(q).fill(-1),
    prev,
    count: new Int32Array(s),
    target,
    need: Math.min(n, owning),
    maxWalk: Math.min(q, 2 * Math.min(n, q) + 2),
    nodeMark: new Int32Array(s),
    zoneMark: new Int32Array(zoneCount),
    stamp: 0,
    cost: new Int32Array(q),
    len: new Int32Array(q),
    viol: new Uint8Array(q),
    reach: 1,
    starts: [],
    budget: SEARCH_BUDGET,
  };
  if (keepPrevious) {
    // Every partition keeps its owner for now (one above its count gives partitions to the
    // takers below theirs).
    for (let p = 0; p < q; p++) {
      const m = prev[p]!;
      if (m >= 0 && target[m]! > 0) {
        st.own[p] = m;
        st.count[m]! += 1;
      }
    }
  }
  refreshCaches(st);
  fillFree(st);
  takeFromSurplus(st);
  search(st);
  return st;
}

/**
 * Walks from p (see ZState): sets len[p] and viol[p], returns the walk's cost. A walk stops after
 * `maxWalk` partitions: one that has not found its members by then (a member about to join the
 * ring has none yet) costs as if the missing ones were missing zones, which steers the search to
 * the same places, and keeps every step of it bounded.
 */
function walk(st: ZState, p: number): number {
  const { own, mask, zoneOf, nodeMark, zoneMark, need, k, maxWalk } = st;
  const stamp = ++st.stamp;
  let members = 0;
  let zones = 0;
  let free = 0;
  let i = 0;
  while (members < need && i < maxWalk) {
    const m = own[(p + i) & mask]!;
    i++;
    if (m < 0) {
      members++;
      free++;
      continue;
    }
    if (nodeMark[m] === stamp) continue;
    nodeMark[m] = stamp;
    members++;
    const z = zoneOf[m]!;
    if (zoneMark[z] !== stamp) {
      zoneMark[z] = stamp;
      zones++;
    }
  }
  st.len[p] = i;
  st.viol[p] = free === 0 && zones < k ? 1 : 0;
  st.budget -= i;
  const lacking = Math.max(k - zones - free, 0) + (need - members);
  return lacking * ZONE_COST + (i - members);
}

function refreshCaches(st: ZState): void {
  st.reach = 1;
  for (let p = 0; p < st.q; p++) {
    st.cost[p] = walk(st, p);
    if (st.len[p]! > st.reach) st.reach = st.len[p]!;
  }
}

function violations(st: ZState): number {
  let v = 0;
  for (let p = 0; p < st.q; p++) v += st.viol[p]!;
  return v;
}

/**
 * Starts of the walks a change at x (and y) can affect, each once, into st.starts: those whose
 * cached walk crosses it (a walk that ends before x cannot see the change).
 */
function affected(st: ZState, x: number, y: number): number {
  const { mask, starts, len } = st;
  const span = Math.min(st.reach, st.q);
  let count = 0;
  for (let i = 0; i < span; i++) {
    const start = (x - i) & mask;
    if (len[start]! > i) starts[count++] = start;
  }
  if (y >= 0) {
    for (let i = 0; i < span; i++) {
      const start = (y - i) & mask;
      if (len[start]! <= i) continue;
      const d = (x - start) & mask;
      if (d < span && len[start]! > d) continue;
      starts[count++] = start;
    }
  }
  return count;
}

/** Σ cost of the affected starts after the owners changed (caches untouched unless `commit`). */
function costOf(st: ZState, count: number, commit: boolean): number {
  const { starts, len, viol } = st;
  let c = 0;
  for (let i = 0; i < count; i++) {
    const p = starts[i]!;
    const keepLen = len[p]!;
    const keepViol = viol[p]!;
    const w = walk(st, p);
    c += w;
    if (commit) {
      st.cost[p] = w;
      if (len[p]! > st.reach) st.reach = len[p]!;
    } else {
      len[p] = keepLen;
      viol[p] = keepViol;
    }
  }
  return c;
}

function cachedCost(st: ZState, count: number): number {
  let c = 0;
  for (let i = 0; i < count; i++) c += st.cost[st.starts[i]!]!;
  return c;
}

/** Owner of p becomes m (counts and caches updated). */
function assign(st: ZState, p: number, m: number): void {
  const old = st.own[p]!;
  if (old >= 0) st.count[old]! -= 1;
  st.own[p] = m;
  st.count[m]! += 1;
  costOf(st, affected(st, p, -1), true);
}

/** Change in cost if p were owned by m. */
function deltaAssign(st: ZState, p: number, m: number): number {
  const count = affected(st, p, -1);
  const before = cachedCost(st, count);
  const old = st.own[p]!;
  st.own[p] = m;
  const after = costOf(st, count, false);
  st.own[p] = old;
  return after - before;
}

/** Change in cost of swapping the owners of x and y. */
function deltaSwap(st: ZState, x: number, y: number): number {
  const count = affected(st, x, y);
  const before = cachedCost(st, count);
  const { own } = st;
  const a = own[x]!;
  own[x] = own[y]!;
  own[y] = a;
  const after = costOf(st, count, false);
  own[y] = own[x]!;
  own[x] = a;
  return after - before;
}

function applySwap(st: ZState, x: number, y: number): void {
  const a = st.own[x]!;
  st.own[x] = st.own[y]!;
  st.own[y] = a;
  costOf(st, affected(st, x, y), true);
}

/**
 * Free partitions (a fresh ring, or a leaver's) in ring order, each to the member below its count
 * that costs least there; ties to the zone, then the member, most behind its even spread (so each
 * zone's and each member's partitions come out evenly spaced), then the lower index.
 */
function fillFree(st: ZState): void {
  const { q, s, own, count, target, zoneOf } = st;
  const zones = st.zoneMark.length;
  let free = 0;
  for (let p = 0; p < q; p++) if (own[p]! < 0) free++;
  if (free === 0) return;
  // Shares still to place, per zone and member, spread evenly over the free partitions.
  const zoneLeft = new Float64Array(zones);
  const left = new Float64Array(s);
  for (let m = 0; m < s; m++) {
    left[m] = Math.max(0, target[m]! - count[m]!);
    zoneLeft[zoneOf[m]!]! += left[m]!;
  }
  const zonePlaced = new Float64Array(zones);
  const placed = new Float64Array(s);
  let step = 0;
  for (let p = 0; p < q; p++) {
    if (own[p]! >= 0) continue;
    step++;
    const progress = step / free;
    let best = -1;
    let bestCost = 0;
    let bestZoneDue = 0;
    let bestDue = 0;
    for (let m = 0; m < s; m++) {
      if (count[m]! >= target[m]!) continue;
      const z = zoneOf[m]!;
      // How far behind an even spread the zone and the member are at this point of the fill.
      const zoneDue = zoneLeft[z]! * progress - zonePlaced[z]!;
      const due = left[m]! * progress - placed[m]!;
      const c = deltaAssign(st, p, m);
      if (
        best < 0 ||
        c < bestCost ||
        (c === bestCost && (zoneDue > bestZoneDue || (zoneDue === bestZoneDue && due > bestDue)))
      ) {
        best = m;
        bestCost = c;
        bestZoneDue = zoneDue;
        bestDue = due;
      }
    }
    if (best < 0) return; // cannot happen: Σ target = Q
    assign(st, p, best);
    placed[best]! += 1;
    zonePlaced[zoneOf[best]!]! += 1;
  }
}

/**
 * Members below their count take partitions one at a time from members above theirs: the taker
 * furthest below its count first; the partition that costs least, then the one of the member most
 * above its count, then the one furthest from the taker's other partitions (room for its next).
 * Costs are cached per taker and invalidated around each reassignment.
 */
function takeFromSurplus(st: ZState): void {
  const { q, s, own, count, target, mask } = st;
  const changedAt = new Int32Array(q);
  const caches = new Map<number, { dv: Int32Array; at: Int32Array }>();
  const dist = new Int32Array(q);
  for (let step = 1; ; step++) {
    let r = -1;
    let rGap = 0;
    for (let m = 0; m < s; m++) {
      const gap = target[m]! - count[m]!;
      if (gap > rGap) {
        r = m;
        rGap = gap;
      }
    }
    if (r < 0) return;
    ringDistance(st.own, r, dist);
    let cache = caches.get(r);
    if (cache === undefined) {
      cache = { dv: new Int32Array(q), at: new Int32Array(q) };
      caches.set(r, cache);
    }
    let best = -1;
    let bestCost = 0;
    let bestSurplus = 0;
    let bestDist = 0;
    for (let p = 0; p < q; p++) {
      const d = own[p]!;
      if (count[d]! <= target[d]!) continue;
      let c: number;
      if (cache.at[p]! > 0 && cache.at[p]! >= changedAt[p]!) c = cache.dv[p]!;
      else {
        c = deltaAssign(st, p, r);
        cache.dv[p] = c;
        cache.at[p] = step;
      }
      const surplus = count[d]! - target[d]!;
      if (
        best < 0 ||
        c < bestCost ||
        (c === bestCost && (surplus > bestSurplus || (surplus === bestSurplus && dist[p]! > bestDist)))
      ) {
        best = p;
        bestCost = c;
        bestSurplus = surplus;
        bestDist = dist[p]!;
      }
    }
    assign(st, best, r);
    // A walk crossing `best` starts within reach before it; a delta at p looks at walks up to
    // reach after p: invalidate that neighbourhood.
    const around = 2 * st.reach;
    for (let i = -around; i <= around; i++) changedAt[(best + i) & mask] = step + 1;
  }
}

/** dist[p] = ring distance from p to the nearest partition `own` gives m (Q when m has none). */
export function ringDistance(own: Int32Array, m: number, dist: Int32Array): void {
  const q = own.length;
  const mask = q - 1;
  const first = own.indexOf(m);
  if (first < 0) {
    dist.fill(q);
    return;
  }
  // Two sweeps starting at an occurrence, so wrap-around is handled without special cases.
  let d = 0;
  for (let i = 0; i < q; i++) {
    const p = (first + i) & mask;
    d = own[p] === m ? 0 : d + 1;
    dist[p] = d;
  }
  d = 0;
  for (let i = 0; i < q; i++) {
    const p = (first - i) & mask;
    d = own[p] === m ? 0 : d + 1;
    if (d < dist[p]!) dist[p] = d;
  }
}

/**
 * Local search over swaps (counts unchanged, so balance is kept): for each partition whose walk
 * costs anything, try swapping a partition it walks over with other partitions, and take the swap
 * that lowers the total cost most, then moves the fewest partitions away from `prev`.
 * - A walk lacking a zone: every partition it walks over, against partitions of the zones it lacks
 *   or of the same zone (which can make a repeat the walk skips); first screened cheaply (no owner
 *   or zone lands next to a copy of itself, no zone leaves a window that needs it), then, if no
 *   screened swap helps, unscreened.
 * - A walk that only skips repeats: the repeated partitions of members whose count leaves room to
 *   spread them, against partitions of the same zone, screened.
 * A start that found nothing is tried again only after some swap changed the ring; passes repeat
 * while they improve anything, within the budget.
 */
function search(st: ZState): void {
  const { q, own, prev, mask, l, zoneOf, target } = st;
  const zoneCount = st.zoneMark.length;
  const lacks = new Uint8Array(zoneCount);
  // A member whose count leaves room to spread it (one per window); others repeat anyway.
  const roomy = Uint8Array.from(target, (t) => (t * l <= q ? 1 : 0));
  const moved = (p: number, m: number) => (m === prev[p] ? 0 : 1);
  const near = (p: number, m: number, skip: number) => {
    for (let i = 1; i < l; i++) {
      const a = (p + i) & mask;
      const b = (p - i) & mask;
      if ((own[a] === m && a !== skip) || (own[b] === m && b !== skip)) return true;
    }
    return false;
  };
  // Whether zone z may replace the zone at p (`skip`: the other end of the swap) without any window
  // around p losing a zone it needs or holding z too often: with K = L, no z within a window of p;
  // with K < L, the zone leaving p is still in every window around p.
  const zoneAt = (i: number, skip: number, zSkip: number) => (i === skip ? zSkip : zoneOf[own[i]!]!);
  const zoneFits = (p: number, z: number, skip: number): boolean => {
    const zSkip = zoneOf[own[p]!]!;
    if (st.k === l) {
      for (let i = 1; i < l; i++) {
        if (zoneAt((p + i) & mask, skip, zSkip) === z || zoneAt((p - i) & mask, skip, zSkip) === z)
          return false;
      }
      return true;
    }
    const leaving = zSkip;
    let before = l;
    let after = l;
    for (let i = 1; i < l; i++) {
      if (before === l && zoneAt((p - i) & mask, skip, z) === leaving) before = i;
      if (after === l && zoneAt((p + i) & mask, skip, z) === leaving) after = i;
    }
    return before + after <= l;
  };
  const fix = (x: number, lacking: boolean, screened: boolean, need: number): boolean => {
    const a = own[x]!;
    const za = zoneOf[a]!;
    let bestR = -1;
    let bestDc = 0;
    let bestDm = 0;
    for (let r = 0; r < q && st.budget > 0; r++) {
      const b = own[r]!;
      if (b === a) continue;
      const zb = zoneOf[b]!;
      // A lacking zone brings it in; the same zone leaves every zone where it was, and can make
      // a repeat that the walk skips to reach the lacking zone further on.
      if (zb !== za && (!lacking || lacks[zb] === 0)) continue;
      if (screened && (near(r, a, x) || near(x, b, r))) continue;
      if (screened && zb !== za && !(zoneFits(r, za, x) && zoneFits(x, zb, r))) continue;
      const dc = deltaSwap(st, x, r);
      if (dc >= 0) continue;
      const dm = moved(x, b) + moved(r, a) - moved(x, a) - moved(r, b);
      if (bestR < 0 || dc < bestDc || (dc === bestDc && dm < bestDm)) {
        bestR = r;
        bestDc = dc;
        bestDm = dm;
        // Fixes the whole problem without moving anything more: good enough, stop looking.
        if (dm <= 0 && -dc >= need) break;
      }
    }
    if (bestR < 0) return false;
    applySwap(st, x, bestR);
    return true;
  };
  // A start that found no improving swap is tried again only after some swap changed the ring.
  const failedAt = new Int32Array(q).fill(-1);
  let swaps = 0;
  const positions: number[] = [];
  for (let improved = true; improved && st.budget > 0; ) {
    improved = false;
    for (let p = 0; p < q && st.budget > 0; p++) {
      if (st.cost[p]! === 0 || failedAt[p] === swaps) continue;
      const span = st.len[p]!;
      const lacking = st.cost[p]! >= ZONE_COST;
      positions.length = 0;
      if (lacking) {
        lacks.fill(1);
        for (let i = 0; i < span; i++) lacks[zoneOf[own[(p + i) & mask]!]!] = 0;
        for (let i = span - 1; i >= 0; i--) positions.push((p + i) & mask);
      } else {
        // Only repeats: the later copies of members that could be spread.
        const stamp = ++st.stamp;
        for (let i = 0; i < span; i++) {
          const x = (p + i) & mask;
          const m = own[x]!;
          if (st.nodeMark[m] === stamp && roomy[m]) positions.push(x);
          st.nodeMark[m] = stamp;
        }
      }
      let done = false;
      for (let tier = 0; tier < (lacking ? 2 : 1) && !done && st.budget > 0; tier++) {
        for (let i = 0; i < positions.length && !done && st.budget > 0; i++) {
          done = fix(positions[i]!, lacking, tier === 0, st.cost[p]!);
        }
      }
      if (done) {
        swaps++;
        improved = true;
      } else failedAt[p] = swaps;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Reports

/** How a ring meets the zone guarantee (`zoneReport`). */
export interface ZoneReport {
  /** Zones among the ring's owners. */
  zones: number;
  /** Zones each key's replicas must span: min(N, Q, zones). */
  required: number;
  /** Partitions whose N replicas span fewer than `required` zones (0: the guarantee holds). */
  violations: number;
}

/**
 * Counts the partitions whose preference list (the first N distinct owners clockwise, as requests
 * use it) spans fewer than min(N, zones) zones. `zoneOf` gives an owner's zone (undefined: the
 * default zone). Exact, O(Q·N) for rings whose windows rarely repeat a member.
 */
export function zoneReport(
  owners: readonly string[],
  zoneOf: (id: string) => string | undefined,
  n: number,
): ZoneReport {
  const q = owners.length;
  if (q === 0) return { zones: 0, required: 0, violations: 0 };
  const zoneByOwner = new Map<string, string>();
  for (const o of owners) if (!zoneByOwner.has(o)) zoneByOwner.set(o, zoneOf(o) ?? '');
  const zones = new Set(zoneByOwner.values()).size;
  const required = requiredZones(n, q, zones);
  const need = Math.min(n, zoneByOwner.size);
  let violations = 0;
  for (let p = 0; p < q; p++) {
    const seen = new Set<string>();
    const seenZones = new Set<string>();
    for (let i = 0; i < q && seen.size < need; i++) {
      const o = owners[(p + i) % q]!;
      if (seen.has(o)) continue;
      seen.add(o);
      seenZones.add(zoneByOwner.get(o)!);
    }
    if (seenZones.size < required) violations++;
  }
  return { zones, required, violations };
}
