/**
 * Causal contexts: what a context handed to a caller covers, and what a write hands back.
 *
 * A context is a version vector plus a *dot cloud*: exact dots seen beyond the vector. A vector
 * entry `a -> n` says "every dot of `a` up to n", which is true of what a replica has seen (each
 * actor issues its dots in order, and every object carries all its live siblings), but cannot say
 * "this one write of `a` and not the earlier one I never saw". A put's own dot is usually such a
 * write: the coordinator's counter is above dots of concurrent writers the caller was not shown.
 * So the context a put returns is the caller's context plus the put's own dot, carried exactly in
 * the cloud (the (context, dot) pair of dotted version vectors), and a replica applying a context
 * records its cloud too, so that the superseded dot stays superseded when the replica merges with
 * a copy that still holds it.
 *
 * The cloud is compacted wherever the coordinator knows it may be (`writtenContext`) and bounded
 * (`MAX_CLOUD_DOTS`): dropping a dot from a cloud only ever makes a context cover less, which can
 * bring back a superseded write as a sibling, never lose one.
 */
import { covers, type Dot, mergeVectors, type VersionVector } from './vector.js';

/** actor -> ascending counters above the vector's entry for that actor (never an empty array). */
export type DotCloud = ReadonlyMap<string, readonly number[]>;

/** A causal context: every dot `vector` covers, plus the exact dots in `cloud`. */
export interface Context {
  readonly vector: VersionVector;
  readonly cloud: DotCloud;
}

/**
 * Most dots a cloud keeps (in a context handed to a caller, and in a stored object). Beyond it the
 * oldest (smallest counters) go: a chain of puts each made with the previous one's context, while
 * a concurrent write the caller was not shown stays live, adds one dot per put; a stale copy of a
 * write older than the last few of the chain is what dropping its dot can bring back, as a sibling.
 */
export const MAX_CLOUD_DOTS = 32;

export const EMPTY_CLOUD: DotCloud = new Map();

/** The context a caller with no context passes: it has seen nothing. */
export function emptyContext(): Context {
  return { vector: new Map(), cloud: EMPTY_CLOUD };
}

/** A context from either form callers hold: a bare vector (no cloud) or a full context. */
export function asContext(c: VersionVector | Context): Context {
  return c instanceof Map ? { vector: c, cloud: EMPTY_CLOUD } : c;
}

/** True when the context has seen `dot`: the vector covers it or the cloud holds it. */
export function coversDot(vector: VersionVector, cloud: DotCloud | undefined, dot: Dot): boolean {
  if (covers(vector, dot)) return true;
  const counters = cloud?.get(dot[0]);
  return counters?.includes(dot[1]) === true;
}

/** The highest counter of `actor` the vector or the cloud names (0: none). */
export function maxCounter(vector: VersionVector, cloud: DotCloud | undefined, actor: string): number {
  const counters = cloud?.get(actor);
  const top = counters === undefined ? 0 : counters[counters.length - 1]!;
  return Math.max(vector.get(actor) ?? 0, top);
}

/** Number of dots in a cloud. */
export function cloudSize(cloud: DotCloud | undefined): number {
  let n = 0;
  if (cloud) for (const counters of cloud.values()) n += counters.length;
  return n;
}

/**
 * The cloud's dots that `vector` does not cover, at most `MAX_CLOUD_DOTS` of them (the oldest,
 * smallest counters across actors, dropped first; ties drop the larger actor string first, so
 * every replica compacts alike). Returns `EMPTY_CLOUD` when nothing is left.
 */
export function compactCloud(vector: VersionVector, cloud: DotCloud | undefined): DotCloud {
  if (!cloud || cloud.size === 0) return EMPTY_CLOUD;
  let covered = false;
  let size = 0;
  for (const [actor, counters] of cloud) {
    if (counters[0]! <= (vector.get(actor) ?? 0)) covered = true;
    size += counters.length;
  }
  let result = cloud;
  if (covered) {
    const out = new Map<string, number[]>();
    size = 0;
    for (const [actor, counters] of cloud) {
      const base = vector.get(actor) ?? 0;
      const kept = counters.filter((c) => c > base);
      if (kept.length > 0) out.set(actor, kept);
      size += kept.length;
    }
    result = out;
  }
  if (size > MAX_CLOUD_DOTS) result = dropOldest(result, size - MAX_CLOUD_DOTS);
  return result.size === 0 ? EMPTY_CLOUD : result;
}

function dropOldest(cloud: DotCloud, count: number): DotCloud {
  const all: Dot[] = [];
  for (const [actor, counters] of cloud) for (const c of counters) all.push([actor, c]);
  all.sort((p, q) => p[1] - q[1] || (p[0] < q[0] ? 1 : p[0] > q[0] ? -1 : 0));
  const gone = new Set(all.slice(0, count).map((d) => `${d[1]}\u0000${d[0]}`));
  const out = new Map<string, number[]>();
  for (const [actor, counters] of cloud) {
    const kept = counters.filter((c) => !gone.has(`${c}\u0000${actor}`));
    if (kept.length > 0) out.set(actor, kept);
  }
  return out;
}

/** Union of two clouds (not compacted: see `compactCloud`). */
export function joinClouds(a: DotCloud | undefined, b: DotCloud | undefined): DotCloud {
  if (!b || b.size === 0) return a ?? EMPTY_CLOUD;
  if (!a || a.size === 0) return b;
  const out = new Map<string, number[]>();
  for (const [actor, counters] of a) out.set(actor, [...counters]);
  for (const [actor, counters] of b) {
    const mine = out.get(actor);
    if (!mine) out.set(actor, [...counters]);
    else {
      for (const c of counters) if (!mine.includes(c)) mine.push(c);
      mine.sort((p, q) => p - q);
    }
  }
  return out;
}

/** `cloud` with `dot` added (not compacted). */
export function addToCloud(cloud: DotCloud, dot: Dot): DotCloud {
  return joinClouds(cloud, new Map([[dot[0], [dot[1]]]]));
}

/** Least upper bound of two contexts, compacted. */
export function joinContexts(a: Context, b: Context): Context {
  const vector = mergeVectors(a.vector, b.vector);
  return { vector, cloud: compactCloud(vector, joinClouds(a.cloud, b.cloud)) };
}

/**
 * True when `a` has seen everything `b` has: every entry of b's vector is at most a's, and every
 * dot of b's cloud is covered by a.
 */
export function descendsContext(a: Context, b: Context): boolean {
  for (const [actor, n] of b.vector) if ((a.vector.get(actor) ?? 0) < n) return false;
  for (const [actor, counters] of b.cloud) {
    for (const c of counters) if (!coversDot(a.vector, a.cloud, [actor, c])) return false;
  }
  return true;
}
