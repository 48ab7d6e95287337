/**
 * Partition claim, strategy 3 of the Dynamo paper (§ 4.2, § 6.2): the ring is cut into Q equal,
 * fixed partitions and whole partitions are dealt over the members in proportion to their weights.
 *
 * `claim` is a pure function of its arguments, so every node that computes it from the same inputs
 * gets the same owners (members are sorted by id, compared by UTF-16 code units, never by locale).
 *
 * Properties (property-tested in test/unit/ring):
 * - balance: each member holds ⌊Q·w/Σw⌋ or ⌈Q·w/Σw⌉ partitions, and the counts sum to Q;
 * - spread: no window of L = min(N, Q) consecutive partitions, wrapping around the end of the ring,
 *   holds a member twice — so the first N distinct owners clockwise are the first N partitions.
 *   That is possible exactly when the largest count c satisfies c·L ≤ Q (see `dealLayout` for the
 *   construction). When it is not (S < N; S = N with N ∤ Q; a very heavy member), the fewest repeated
 *   windows we can find are produced: for S = N equal members, N − 1 windows when N ∤ Q (2 for N = 3);
 * - minimal movement: a join only takes the newcomer's share from members above their share (plus a
 *   rare repair swap); a leave hands the leaver's partitions to members below their share.
 *
 * Internally members are indices into the id-sorted member list and owners an Int32Array (−1 = free).
 */

import { claimZoned, ringDistance, zonedShares, zoneIndex, zonesMatter } from './zones.js';

/** A member of the ring as claim sees it. */
export interface ClaimMember {
  id: string;
  /** Relative capacity, a positive integer: the member's share is Q·w/Σw partitions. */
  weight: number;
  /**
   * Failure domain (availability zone, rack). Members without one share the default zone. With
   * two or more zones the ring is laid out by `claimZoned` (see zones.ts); with one, zones change
   * nothing.
   */
  zone?: string;
}

const MAX_PARTITIONS = 65_536;
const MAX_WEIGHT = 1_000_000;
/**
 * Caps the swap search (counted in exact window evaluations; deterministic) so that a pathological
 * weighted ring, where windows cannot all be fixed anyway, cannot make a claim slow.
 */
const REPAIR_BUDGET = 4_000_000;
/** Rotations tried when a ring has to be re-dealt; bounds that fallback at O(Q·this). */
const MAX_ROTATIONS = 4096;

export function isPowerOfTwo(q: number): boolean {
  return Number.isSafeInteger(q) && q >= 1 && 2 ** Math.round(Math.log2(q)) === q;
}

/**
 * owners[p] = id of the member owning partition p.
 *
 * - `previous` undefined: a fresh deal (members sorted by id, dealt round-robin; heavier members
 *   get more rounds), with repeated windows repaired.
 * - `previous` given: minimal reassignment from it. Ids in `previous` that are not in `members` have
 *   left and lose everything; new members take partitions from those above their share; then counts
 *   are balanced and repeated windows repaired.
 *
 * @param n replication factor N (window length for the spread property)
 * @param partitions Q, a power of two in 1..65536; `previous.length` must equal it
 */
export function claim(
  previous: readonly string[] | undefined,
  members: readonly ClaimMember[],
  n: number,
  partitions: number,
): string[] {
  if (!isPowerOfTwo(partitions) || partitions > MAX_PARTITIONS) {
    throw new RangeError(`partitions must be a power of two in 1..${MAX_PARTITIONS}, got ${partitions}`);
  }
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`n must be a positive integer, got ${n}`);
  if (members.length === 0) throw new RangeError('claim needs at least one member');
  if (previous !== undefined && previous.length !== partitions) {
    throw new RangeError(`previous has ${previous.length} owners, expected ${partitions}`);
  }
  const sorted = [...members].sort((a, b) => compareIds(a.id, b.id));
  for (let i = 0; i < sorted.length; i++) {
    const m = sorted[i]!;
    if (typeof m.id !== 'string' || m.id.length === 0)
      throw new TypeError('member id must be a non-empty string');
    if (!Number.isSafeInteger(m.weight) || m.weight < 1 || m.weight > MAX_WEIGHT) {
      throw new RangeError(`weight of ${m.id} must be an integer in 1..${MAX_WEIGHT}, got ${m.weight}`);
    }
    if (i > 0 && sorted[i - 1]!.id === m.id) throw new RangeError(`duplicate member id ${m.id}`);
    if (m.zone !== undefined && typeof m.zone !== 'string')
      throw new TypeError(`zone of ${m.id} must be a string`);
  }

  const ids = sorted.map((m) => m.id);
  const zones = zoneIndex(sorted.map((m) => m.zone));
  if (zonesMatter(sorted.length, zones.names.length, n, partitions)) {
    const index = new Map(ids.map((id, i) => [id, i]));
    const prev = new Int32Array(partitions).fill(-1);
    if (previous !== undefined) for (let p = 0; p < partitions; p++) prev[p] = index.get(previous[p]!) ?? -1;
    const zoned = sorted.map((m, i) => ({ weight: m.weight, zone: zones.of[i]! }));
    const own = claimZoned(zoned, zones.names.length, n, partitions, prev);
    return Array.from(own, (m) => ids[m]!);
  }
  const st = newState(
    partitions,
    n,
    sorted.map((m) => m.weight),
  );
  if (previous !== undefined) {
    const index = new Map(ids.map((id, i) => [id, i]));
    for (let p = 0; p < partitions; p++) st.prev[p] = index.get(previous[p]!) ?? -1;
  }
  const equalWeights = sorted.every((m) => m.weight === sorted[0]!.weight);

  if (equalWeights && st.s <= st.l) {
    // At most N members: lay the ring out as if for L members (a stable class per position), so
    // joins up to N members move only the newcomer's class.
    claimByClasses(st);
  } else if (previous === undefined || !st.prev.some((m) => m >= 0)) {
    claimFresh(st);
  } else {
    claimFrom(st);
  }
  return Array.from(st.own, (m) => ids[m]!);
}

/**
 * Each member's share of the partitions, real-valued: Q·w/Σw, or with zones what the guarantee
 * lets its zone hold split by weight (see zones.ts). `claim` gives every member ⌊share⌋ or
 * ⌈share⌉ partitions.
 */
export function claimShares(
  members: readonly ClaimMember[],
  n: number,
  partitions: number,
): Map<string, number> {
  const sorted = [...members].sort((a, b) => compareIds(a.id, b.id));
  const zones = zoneIndex(sorted.map((m) => m.zone));
  const out = new Map<string, number>();
  if (zonesMatter(sorted.length, zones.names.length, n, partitions)) {
    const shares = zonedShares(
      sorted.map((m, i) => ({ weight: m.weight, zone: zones.of[i]! })),
      zones.names.length,
      n,
      partitions,
    );
    sorted.forEach((m, i) => {
      out.set(m.id, shares.member[i]!);
    });
    return out;
  }
  const total = sorted.reduce((a, m) => a + m.weight, 0);
  for (const m of sorted) out.set(m.id, (partitions * m.weight) / total);
  return out;
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface State {
  q: number;
  mask: number;
  /** Window length: min(N, Q). */
  l: number;
  /** Member count. */
  s: number;
  w: readonly number[];
  totalW: number;
  own: Int32Array;
  /** Previous owner index, −1 for none or a leaver: used to count (and minimise) moves. */
  prev: Int32Array;
  count: Int32Array;
  target: Int32Array;
}

function newState(q: number, n: number, w: number[]): State {
  const s = w.length;
  const totalW = w.reduce((a, b) => a + b, 0);
  if (!Number.isSafeInteger(q * totalW)) throw new RangeError('total weight too large');
  return {
    q,
    mask: q - 1,
    l: Math.min(n, q),
    s,
    w,
    totalW,
    own: new Int32Array(q).fill(-1),
    prev: new Int32Array(q).fill(-1),
    count: new Int32Array(s),
    target: new Int32Array(s),
  };
}

// ---------------------------------------------------------------------------------------------
// Targets

/**
 * Per-member partition counts: ⌊share⌋ for everyone, and the remaining Q − Σ⌊share⌋ go one each to
 * members with a fractional share. Who gets the ceiling, in order: members for whom it keeps the
 * spread possible ((⌊share⌋+1)·L ≤ Q), members whose class has the larger size (`home`, class layout
 * only), members already holding more (fewer moves), the larger fraction, then the lower id.
 */
function computeTargets(st: State, current: Int32Array, home?: Int32Array): void {
  const { q, s, w, totalW, l } = st;
  let assigned = 0;
  const rem: number[] = [];
  const candidates: number[] = [];
  for (let m = 0; m < s; m++) {
    const f = Math.floor((q * w[m]!) / totalW);
    st.target[m] = f;
    assigned += f;
    rem[m] = q * w[m]! - f * totalW;
    if (rem[m]! > 0) candidates.push(m);
  }
  const fits = (m: number) => ((st.target[m]! + 1) * l <= q ? 0 : 1);
  candidates.sort(
    (a, b) =>
      fits(a) - fits(b) ||
      (home ? home[b]! - home[a]! : 0) ||
      current[b]! - current[a]! ||
      rem[b]! - rem[a]! ||
      a - b,
  );
  for (let i = 0; i < q - assigned; i++) st.target[candidates[i]!]! += 1;
}

// ---------------------------------------------------------------------------------------------
// Windows

/** Whether the window starting at `start` holds a member twice (free slots never count). */
function bad(st: State, start: number): boolean {
  const { own, l, mask } = st;
  for (let i = 0; i < l - 1; i++) {
    const a = own[(start + i) & mask]!;
    if (a < 0) continue;
    for (let j = i + 1; j < l; j++) if (own[(start + j) & mask] === a) return true;
  }
  return false;
}

function totalBad(st: State): number {
  let v = 0;
  for (let s = 0; s < st.q; s++) if (bad(st, s)) v++;
  return v;
}

/** Repeated windows among those containing p, or p or r (each window counted once). */
function badAround(st: State, p: number, r = -1): number {
  const { l, mask } = st;
  let v = 0;
  for (let k = 0; k < l; k++) if (bad(st, (p - k) & mask)) v++;
  if (r >= 0) {
    for (let k = 0; k < l; k++) {
      const s = (r - k) & mask;
      if (((p - s) & mask) < l) continue; // already counted with p's windows
      if (bad(st, s)) v++;
    }
  }
  return v;
}

/** Change in repeated windows if p were owned by m. */
function deltaAssign(st: State, p: number, m: number): number {
  const before = badAround(st, p);
  const old = st.own[p]!;
  st.own[p] = m;
  const after = badAround(st, p);
  st.own[p] = old;
  return after - before;
}

function deltaSwap(st: State, p: number, r: number): number {
  const { own } = st;
  const before = badAround(st, p, r);
  const a = own[p]!;
  own[p] = own[r]!;
  own[r] = a;
  const after = badAround(st, p, r);
  own[r] = own[p]!;
  own[p] = a;
  return after - before;
}

function assign(st: State, p: number, m: number): void {
  const old = st.own[p]!;
  if (old >= 0) st.count[old]! -= 1;
  st.own[p] = m;
  st.count[m]! += 1;
}

/** The spread property is achievable for these targets (see `dealLayout`). */
function spreadPossible(st: State): boolean {
  let max = 0;
  for (let m = 0; m < st.s; m++) max = Math.max(max, st.target[m]!);
  return max * st.l <= st.q;
}

// ---------------------------------------------------------------------------------------------
// Fresh deal

/**
 * Deals the members, largest target first (then by id), "column-wise" into c = max(target) chunks
 * of ⌊Q/c⌋ or ⌈Q/c⌉ consecutive partitions (larger chunks first): item j of the sequence goes to
 * chunk j mod c, offset ⌊j/c⌋. With equal weights and S | Q this is plain round-robin. A member's
 * consecutive items land in consecutive chunks at the same offset (or the next one after wrapping),
 * so two of its partitions are at least one chunk apart: when c·L ≤ Q every chunk has ≥ L
 * partitions and no window repeats a member.
 */
function dealLayout(st: State, rotation: number): Int32Array {
  const { q, s, target } = st;
  const order = Array.from({ length: s }, (_, m) => m).sort((a, b) => target[b]! - target[a]! || a - b);
  const c = Math.max(1, target[order[0]!]!);
  const base = Math.floor(q / c);
  const bigger = q % c;
  const out = new Int32Array(q);
  let j = 0;
  for (const m of order) {
    for (let k = 0; k < target[m]!; k++, j++) {
      const chunk = j % c;
      const start = chunk * base + Math.min(chunk, bigger);
      out[(start + Math.floor(j / c) + rotation) & st.mask] = m;
    }
  }
  return out;
}

function claimFresh(st: State): void {
  computeTargets(st, st.count);
  st.own.set(dealLayout(st, 0));
  st.count.set(st.target);
  if (st.s >= st.l) repair(st);
}

// ---------------------------------------------------------------------------------------------
// Reassignment from a previous ring

function claimFrom(st: State): void {
  const { q, mask, own, prev, count, target, w, totalW } = st;
  own.set(prev);
  for (let p = 0; p < q; p++) if (own[p]! >= 0) count[own[p]!]! += 1;
  computeTargets(st, count);

  // Free partitions (leavers'): each goes to the member furthest below its share among those that
  // fit there without repeating a window.
  for (let p = 0; p < q; p++) {
    if (own[p]! >= 0) continue;
    let best = -1;
    let bestDv = 0;
    let bestGap = 0;
    for (let m = 0; m < st.s; m++) {
      if (count[m]! >= target[m]!) continue;
      const dv = deltaAssign(st, p, m);
      const gap = q * w[m]! - count[m]! * totalW;
      if (best < 0 || dv < bestDv || (dv === bestDv && gap > bestGap)) {
        best = m;
        bestDv = dv;
        bestGap = gap;
      }
    }
    assign(st, p, best);
  }

  // Members below target (newcomers, mostly) take one partition at a time from the member most
  // above its share, preferring partitions that fix a repeated window, then ones that create none,
  // then the one furthest from the taker's other partitions (keeps room for its later picks).
  const dist = new Int32Array(q);
  // A taker's window deltas only change near a reassigned partition, so they are cached per taker
  // and invalidated locally: keeps large weighted transfers at O(moves·Q) cheap steps.
  const spreadable = st.s >= st.l;
  const reach = 2 * (st.l - 1);
  const changedAt = new Int32Array(q);
  const caches = new Map<number, { dv: Int32Array; at: Int32Array }>();
  for (let step = 1; ; step++) {
    let r = -1;
    let rGap = 0;
    for (let m = 0; m < st.s; m++) {
      if (count[m]! >= target[m]!) continue;
      const gap = q * w[m]! - count[m]! * totalW;
      if (r < 0 || gap > rGap) {
        r = m;
        rGap = gap;
      }
    }
    if (r < 0) break;
    distanceTo(st, r, dist);
    let cache = caches.get(r);
    if (cache === undefined) {
      cache = { dv: new Int32Array(q), at: new Int32Array(q) };
      caches.set(r, cache);
    }
    let best = -1;
    let bestDv = 0;
    let bestSurplus = 0;
    let bestDist = 0;
    for (let p = 0; p < q; p++) {
      const d = own[p]!;
      if (count[d]! <= target[d]!) continue;
      let dv = 0;
      if (spreadable) {
        if (cache.at[p]! > 0 && cache.at[p]! >= changedAt[p]!) dv = cache.dv[p]!;
        else {
          dv = deltaAssign(st, p, r);
          cache.dv[p] = dv;
          cache.at[p] = step;
        }
      }
      const surplus = count[d]! * totalW - q * w[d]!;
      const better =
        best < 0 ||
        dv < bestDv ||
        (dv === bestDv && (surplus > bestSurplus || (surplus === bestSurplus && dist[p]! > bestDist)));
      if (better) {
        best = p;
        bestDv = dv;
        bestSurplus = surplus;
        bestDist = dist[p]!;
      }
    }
    assign(st, best, r);
    for (let k = -reach; k <= reach; k++) changedAt[(best + k) & mask] = step + 1;
  }

  if (st.s >= st.l) repair(st);
  if (spreadPossible(st) && totalBad(st) > 0) redeal(st);
}

/** dist[p] = ring distance from p to the nearest partition of m (Q when m has none). */
function distanceTo(st: State, m: number, dist: Int32Array): void {
  ringDistance(st.own, m, dist);
}

/**
 * Local search over swaps (a swap keeps every count, so balance is untouched). For each window that
 * repeats a member whose target leaves room to be spread (target·L ≤ Q: an overloaded member's
 * repeats are unavoidable and already spread by the deal), try swapping the repeated partition with
 * every other partition and take the swap that removes the most repeated windows, then the one that
 * moves fewest partitions away from `prev`. Candidates are first screened cheaply (neither owner
 * lands next to a copy of itself); a window that no screened swap fixes gets an exhaustive search,
 * within a deterministic budget. Passes repeat while they improve anything.
 */
function repair(st: State): void {
  const { q, l, s, own, prev, mask, target } = st;
  const roomy = new Uint8Array(s);
  for (let m = 0; m < s; m++) roomy[m] = target[m]! * l <= q ? 1 : 0;
  let budget = REPAIR_BUDGET;
  const moved = (p: number, m: number) => (m === prev[p] ? 0 : 1);
  // Whether m occurs within distance < L of p, ignoring position `skip`.
  const near = (p: number, m: number, skip: number) => {
    for (let k = 1; k < l; k++) {
      const a = (p + k) & mask;
      const b = (p - k) & mask;
      if ((own[a] === m && a !== skip) || (own[b] === m && b !== skip)) return true;
    }
    return false;
  };
  // Whether window `start` holds a spreadable member twice.
  const repeated = (start: number) => {
    for (let i = 0; i < l - 1; i++) {
      const a = own[(start + i) & mask]!;
      if (!roomy[a]) continue;
      for (let j = i + 1; j < l; j++) if (own[(start + j) & mask] === a) return true;
    }
    return false;
  };
  const cost = 4 * l; // windows one exact evaluation looks at
  // The best improving swap of p with any partition, applied; false when there is none.
  const fix = (p: number, screened: boolean) => {
    const a = own[p]!;
    let bestR = -1;
    let bestDv = 0;
    let bestDm = 0;
    for (let r = 0; r < q; r++) {
      const b = own[r]!;
      if (b === a) continue;
      if (screened && (near(r, a, p) || near(p, b, r))) continue;
      budget -= cost;
      const dv = deltaSwap(st, p, r);
      if (dv >= 0 || dv > bestDv) continue;
      const dm = moved(p, b) + moved(r, a) - moved(p, a) - moved(r, b);
      if (bestR < 0 || dv < bestDv || dm < bestDm) {
        bestR = r;
        bestDv = dv;
        bestDm = dm;
      }
    }
    if (bestR < 0) return false;
    own[p] = own[bestR]!;
    own[bestR] = a;
    return true;
  };
  for (let improved = true; improved && budget > 0; ) {
    improved = false;
    for (let start = 0; start < q && budget > 0; start++) {
      if (!repeated(start)) continue;
      let done = false;
      for (let tier = 0; tier < 2 && !done && budget > 0; tier++) {
        for (let k = l - 1; k >= 0 && !done && budget > 0; k--) done = fix((start + k) & mask, tier === 0);
      }
      if (done) improved = true;
    }
  }
}

/**
 * Last resort when local repair leaves repeated windows that the targets allow to avoid: re-deal
 * (valid by construction) at the rotation that keeps the most partitions where they were. Rare:
 * only leaves and weight changes that force a new pattern get here.
 */
function redeal(st: State): void {
  const { q, prev, mask } = st;
  const stride = Math.max(1, Math.floor(q / MAX_ROTATIONS));
  const base = dealLayout(st, 0);
  let bestRot = 0;
  let bestKeep = -1;
  for (let rot = 0; rot < q; rot += stride) {
    let keep = 0;
    for (let p = 0; p < q; p++) if (base[(p - rot) & mask] === prev[p]) keep++;
    if (keep > bestKeep) {
      bestKeep = keep;
      bestRot = rot;
    }
  }
  st.own.set(dealLayout(st, bestRot));
  st.count.set(st.target);
}

// ---------------------------------------------------------------------------------------------
// Fewer members than N (equal weights)

/**
 * Position p belongs to class p mod L. Each member gets a home class (the one it holds most of, so
 * nothing moves needlessly); classes without a member are split among the members. When the next
 * member joins it takes a free class whole, so a join below N moves only the newcomer's share, and
 * at S = N the ring is plain round-robin: repeated windows only at the wrap when N ∤ Q (N − 1 of
 * them, the fewest possible for N = 3).
 */
function claimByClasses(st: State): void {
  const { q, l, s, prev, own, count, target } = st;
  const classOf = (p: number) => p % l;
  const classSize = new Int32Array(l);
  const overlap = new Int32Array(s * l);
  const prevCount = new Int32Array(s);
  for (let p = 0; p < q; p++) {
    classSize[classOf(p)]! += 1;
    const m = prev[p]!;
    if (m >= 0) {
      overlap[m * l + classOf(p)]! += 1;
      prevCount[m]! += 1;
    }
  }
  const pairs: [number, number, number][] = [];
  for (let m = 0; m < s; m++) for (let c = 0; c < l; c++) pairs.push([overlap[m * l + c]!, m, c]);
  pairs.sort((a, b) => b[0] - a[0] || a[2] - b[2] || a[1] - b[1]);
  const home = new Int32Array(s).fill(-1);
  const taken = new Uint8Array(l);
  for (const [, m, c] of pairs) {
    if (home[m]! >= 0 || taken[c]) continue;
    home[m] = c;
    taken[c] = 1;
  }
  const homeSize = new Int32Array(s);
  for (let m = 0; m < s; m++) homeSize[m] = home[m]! >= 0 ? classSize[home[m]!]! : 0;
  computeTargets(st, prevCount, homeSize);

  // Home classes: positions the member already holds first, then the rest in ring order.
  for (let m = 0; m < s; m++) {
    const c = home[m]!;
    if (c < 0) continue;
    for (let pass = 0; pass < 2; pass++) {
      for (let p = c; p < q && count[m]! < target[m]!; p += l) {
        if (own[p]! < 0 && (pass === 1 || prev[p] === m)) assign(st, p, m);
      }
    }
  }
  // Unhomed classes: a previous owner that still needs partitions keeps its own...
  for (let p = 0; p < q; p++) {
    const m = prev[p]!;
    if (own[p]! < 0 && m >= 0 && count[m]! < target[m]!) assign(st, p, m);
  }
  // ...and the rest go to whoever is furthest below target, spreading them out.
  for (let p = 0; p < q; p++) {
    if (own[p]! >= 0) continue;
    let best = -1;
    let bestDv = 0;
    for (let m = 0; m < s; m++) {
      if (count[m]! >= target[m]!) continue;
      const dv = deltaAssign(st, p, m);
      if (
        best < 0 ||
        dv < bestDv ||
        (dv === bestDv && target[m]! - count[m]! > target[best]! - count[best]!)
      ) {
        best = m;
        bestDv = dv;
      }
    }
    assign(st, p, best);
  }
}
