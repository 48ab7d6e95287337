/**
 * Version vectors and dots: the causality half of dotted version vectors (DESIGN § 8).
 *
 * A vector maps an actor (a node incarnation such as "a@k3x9", opaque here) to the highest counter
 * of that actor it covers; an absent actor means 0. Counters are positive safe integers. Every
 * function treats its arguments as immutable values and returns fresh maps.
 */

/** actor (a node incarnation string such as "a@k3x9", opaque here) -> counter (positive integer, may exceed 2^31, stays below 2^53). */
export type VersionVector = Map<string, number>;

/** One write's identity: the coordinator's actor and its per-key counter at that write. */
export type Dot = readonly [actor: string, counter: number];

/** How `a` relates to `b`: 'before' means a < b (b has seen everything a has, and more). */
export type Ordering = 'before' | 'after' | 'equal' | 'concurrent';

/** a relative to b: 'before' means a < b, 'after' means a > b. */
export function compare(a: VersionVector, b: VersionVector): Ordering {
  let aAhead = false;
  let bAhead = false;
  let shared = 0;
  for (const [actor, ca] of a) {
    const cb = b.get(actor);
    if (cb === undefined) {
      if (ca > 0) aAhead = true;
      continue;
    }
    shared++;
    if (ca > cb) aAhead = true;
    else if (cb > ca) bAhead = true;
    if (aAhead && bAhead) return 'concurrent';
  }
  // Only walk b again when it has actors a lacks (rare on the hot path: vectors mostly share actors).
  if (!bAhead && shared < b.size) {
    for (const [actor, cb] of b) {
      if (cb > 0 && !a.has(actor)) {
        bAhead = true;
        break;
      }
    }
  }
  if (aAhead) return bAhead ? 'concurrent' : 'after';
  return bAhead ? 'before' : 'equal';
}

/** a >= b pointwise: a has seen everything b has. */
export function descends(a: VersionVector, b: VersionVector): boolean {
  for (const [actor, cb] of b) {
    if ((a.get(actor) ?? 0) < cb) return false;
  }
  return true;
}

/** Pointwise max (least upper bound). */
export function mergeVectors(a: VersionVector, b: VersionVector): VersionVector {
  // Start from the larger map so fewer entries go through set().
  const big = a.size >= b.size ? a : b;
  const small = big === a ? b : a;
  const out = new Map(big);
  for (const [actor, c] of small) {
    const cur = out.get(actor);
    if (cur === undefined || c > cur) out.set(actor, c);
  }
  return out;
}

/** True when `v` has seen the write identified by `dot`. */
export function covers(v: VersionVector, dot: Dot): boolean {
  return (v.get(dot[0]) ?? 0) >= dot[1];
}

/** Total order on actors shared by every node (UTF-16 code units, locale-free), so encodings are canonical. */
export function compareActors(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
