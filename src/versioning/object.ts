/**
 * Dotted version vectors: what a replica stores per key, the coordinator's put and the one replica
 * merge used by replication, read repair, hints, anti-entropy and transfer (DESIGN § 8).
 *
 * Objects are immutable values: no function here mutates its arguments; results may share
 * `Sibling` objects (and value bytes) with the inputs.
 */
import { InvalidContextError } from '../errors.js';
import {
  asContext,
  type Context,
  compactCloud,
  coversDot,
  type DotCloud,
  EMPTY_CLOUD,
  joinClouds,
  maxCounter,
} from './context.js';
import { compareActors, type Dot, mergeVectors, type VersionVector } from './vector.js';

/**
 * One client write can be applied by two coordinators: a node forwards a put, the forward times
 * out, the node asks the next replica, and the first had applied it after all. Each coordinator
 * makes its own dot, so the write exists twice. To keep it one write, such puts carry an operation
 * id (`Sibling.op`), and a ctx that has seen the write records it as an entry `opKey(op)` -> the
 * write's time (whole seconds, at least 1) beside the actors. Then:
 * - a sibling is covered by a ctx that covers its dot *or* its op (`coversSibling`), so a put whose
 *   context saw one twin supersedes every twin, wherever it is;
 * - `sync` keeps one twin (the smaller dot) when both sides hold one;
 * - a coordinator whose object has seen the op applies nothing new (`applied`).
 * Op entries join by max like actors and are pruned like them (`prune`, `MAX_OP_ENTRIES`): that is
 * the dedupe window. Actors never start with U+0000 (node ids are validated), so they cannot clash.
 */
export const OP_PREFIX = '\u0000';

/**
 * Longest `ttlMs` a put accepts: 20 years, as Cassandra's cap. Expiries are whole ms in a safe
 * integer, so nothing overflows (CASSANDRA-14092: a TTL that overflowed a 32-bit expiry field
 * made data expire at once); the cap keeps a unit mistake (seconds given as ms, or the reverse)
 * from going unnoticed as a key that never expires.
 */
export const MAX_TTL_MS = 20 * 365 * 86_400_000;

/** Most op entries an object keeps beyond those of its live siblings (the dedupe window per key). */
export const MAX_OP_ENTRIES = 64;

/** The ctx entry that records operation `op`. */
export function opKey(op: string): string {
  return OP_PREFIX + op;
}

export function isOpKey(entry: string): boolean {
  return entry.charCodeAt(0) === 0;
}

/**
 * True when the context (`v` and its `cloud`) has seen the write `s`: its dot, or (for a write
 * with an op id) any twin of it.
 */
export function coversSibling(v: VersionVector, cloud: DotCloud | undefined, s: Sibling): boolean {
  return coversDot(v, cloud, s.dot) || (s.op !== undefined && v.has(opKey(s.op)));
}

/** True when `local` already holds (or has superseded) the write with operation id `op`. */
export function applied(local: VersionedObject | undefined, op: string | undefined): boolean {
  return op !== undefined && local?.ctx.has(opKey(op)) === true;
}

export interface Sibling {
  dot: Dot;
  /** Encoded application value; null for a tombstone (delete). */
  value: Uint8Array | null;
  /** Coordinator's clock at write time, ms (used only by last-write-wins resolvers and tombstone grace). */
  timestamp: number;
  /**
   * When the value expires, ms on the coordinator's clock (a put's `ttlMs` added to its clock at
   * write time); absent: never. From then on the sibling is dead, as a tombstone is (see `isDead`):
   * reads leave it out, it still shadows what its write superseded, and it is purged like a
   * tombstone. `expire` turns it into one for good (value dropped, `expiresAt` kept).
   */
  expiresAt?: number;
  /**
   * Identity of the client write, when it may reach more than one coordinator (a forwarded put,
   * or a put with a `requestId`): copies made by different coordinators ("twins", under different
   * dots) are one write. See `opKey`.
   */
  op?: string;
}

/**
 * What a replica stores per key: `ctx` and `cloud` cover every dot this replica has seen for the
 * key. The vector covers every live sibling; the cloud holds superseded dots learned exactly from
 * a client context (see context.ts), above the vector's entries, until the vector catches up.
 */
export interface VersionedObject {
  ctx: VersionVector;
  siblings: Sibling[];
  /** Absent or empty: none. */
  cloud?: DotCloud;
}

/**
 * Coordinator put at `actor` with client context `context` (empty when the client had none; a
 * bare vector is a context without a cloud): keeps the local siblings the context does not cover,
 * adds `{ dot: [actor, max(local[actor], context[actor]) + 1], value, timestamp }`, and sets the
 * object's context to `local ⊔ context ⊔ dot` (the context's cloud included, so that a dot the
 * caller superseded exactly stays superseded). `local` undefined means the key is absent here.
 *
 * A put with an empty context after a delete keeps the tombstone as a sibling (the client saw
 * nothing, so the write is concurrent with the delete); reads that drop tombstones then show just
 * the new value, and the next put with that read's context removes both.
 *
 * `minCounter` (optional, default 0) is a floor for the new dot's counter. Passing a value that
 * only grows per actor (e.g. the coordinator's clock in ms, or a persisted per-incarnation
 * sequence; an integer, so floor a clock reading) guarantees an actor never reissues a dot that `prune` dropped from a ctx elsewhere.
 *
 * `op` (optional) is the write's operation id (see `opKey`): the sibling carries it and the ctx
 * records it. Callers check `applied` first: a write whose op the object has seen is not redone.
 *
 * A write whose value is byte-equal to a live sibling it keeps (a retry of a put that failed
 * after reaching this replica, or two writers of the same value) replaces that sibling, so the
 * value shows once. It still gets its own dot: a context that saw the old sibling but not this
 * write (a delete, or a put on another replica) must not supersede it. A write with an `op` replaces
 * nothing (reads show equal values once anyway), and tombstones are always added (their
 * timestamps start the purge grace period).
 *
 * Throws `InvalidContextError` when the new counter would not be a safe integer: only a forged
 * context (a counter near 2^53) can cause that.
 */
export function update(
  local: VersionedObject | undefined,
  context: VersionVector | Context,
  actor: string,
  value: Uint8Array | null,
  timestamp: number,
  minCounter = 0,
  op?: string,
  /** The new value's expiry (see `Sibling.expiresAt`); ignored for a tombstone. */
  expiresAt?: number,
): VersionedObject {
  if (!Number.isFinite(timestamp)) throw new RangeError(`timestamp must be finite, got ${timestamp}`);
  if (!Number.isSafeInteger(minCounter) || minCounter < 0) {
    throw new RangeError(`minCounter must be a non-negative integer, got ${minCounter}`);
  }
  const { vector, cloud } = asContext(context);
  const localCtx = local?.ctx;
  const counter =
    Math.max(
      localCtx ? maxCounter(localCtx, local.cloud, actor) : 0,
      maxCounter(vector, cloud, actor),
      minCounter - 1,
    ) + 1;
  if (!Number.isSafeInteger(counter)) {
    throw new InvalidContextError(`counter for actor ${JSON.stringify(actor)} would exceed 2^53`);
  }
  const dot: Dot = [actor, counter];
  const siblings: Sibling[] = [];
  if (local !== undefined) {
    for (const s of local.siblings) {
      if (coversSibling(vector, cloud, s)) continue;
      // A live sibling with the new value is replaced by the new write: one value, and the new
      // ctx covers the old dot. Keeping the old sibling instead would tie this write's survival
      // to a dot that others may have seen (and superseded, or deleted) before this write. Not
      // for a write with an op: a context that saw its twin elsewhere covers it without having
      // seen the old sibling, so dropping that one would lose it.
      if (op === undefined && value !== null && equalValues(s.value, value)) continue;
      siblings.push(s);
    }
  }
  const ctx = localCtx === undefined ? new Map(vector) : mergeVectors(localCtx, vector);
  if (op !== undefined) ctx.set(opKey(op), Math.max(ctx.get(opKey(op)) ?? 0, opStamp(timestamp)));
  const written: Sibling = op === undefined ? { dot, value, timestamp } : { dot, value, timestamp, op };
  if (expiresAt !== undefined && value !== null) written.expiresAt = expiresAt;
  siblings.push(written);
  sortSiblings(siblings);
  // counter > both inputs' entries for actor, so a plain set is the join with the new dot.
  ctx.set(actor, counter);
  return withCloud({ ctx, siblings }, joinClouds(local?.cloud, cloud));
}

/** What a reader of `o` has observed: its ctx and its cloud. */
export function contextOf(o: VersionedObject): Context {
  return { vector: o.ctx, cloud: o.cloud ?? EMPTY_CLOUD };
}

/** `o` with `cloud` compacted against its ctx (no cloud field when nothing is left). */
function withCloud(o: VersionedObject, cloud: DotCloud | undefined): VersionedObject {
  const compacted = compactCloud(o.ctx, cloud);
  if (compacted.size > 0) o.cloud = compacted;
  return o;
}

/**
 * The context a write hands back to its caller: what the caller's `context` covered, plus the
 * write itself (its `dot`, and its `op` id when it has one) — and nothing the caller was not
 * shown. Handing back `after`'s whole context instead would cover siblings of concurrent writers
 * that this coordinator happened to hold, and the caller's next put would silently drop them.
 *
 * Exact, the write's dot is rarely contiguous with the caller's vector, so it travels in the
 * cloud. Where the coordinator knows it is safe, the result is compacted with what `after` (the
 * object the write produced) has seen, since a dot `after` covers but does not hold live was
 * superseded by a write that had observed it, and the new version removes it wherever it goes
 * anyway:
 * - no sibling of `after` is unseen by the caller: the result is `after`'s context as a whole;
 * - unseen siblings, none with an op id: per actor, up to just below that actor's first unseen
 *   dot (an actor with none: all of `after`'s entry);
 * - an unseen sibling with an op id: no compaction, as a twin of it under another actor's dot
 *   may be among what `after` covers without holding it.
 * `dot` is undefined when the write added no sibling (its op had been applied already and since
 * superseded: the op entry covers it).
 */
export function writtenContext(
  context: VersionVector | Context,
  after: VersionedObject,
  dot: Dot | undefined,
  op: string | undefined,
  timestamp: number,
): Context {
  const given = asContext(context);
  let vector = given.vector;
  let cloud = given.cloud;
  if (op !== undefined) {
    vector = new Map(vector);
    vector.set(
      opKey(op),
      Math.max(vector.get(opKey(op)) ?? 0, after.ctx.get(opKey(op)) ?? opStamp(timestamp)),
    );
  }
  if (dot !== undefined && !coversDot(vector, cloud, dot))
    cloud = joinClouds(cloud, new Map([[dot[0], [dot[1]]]]));
  const unseen = after.siblings.filter((s) => !coversSibling(vector, cloud, s));
  if (unseen.length === 0) {
    const joined = mergeVectors(vector, after.ctx);
    return { vector: joined, cloud: compactCloud(joined, joinClouds(cloud, after.cloud)) };
  }
  if (unseen.every((s) => s.op === undefined)) {
    const raised = new Map(vector);
    for (const [entry, n] of after.ctx) {
      let limit = n;
      for (const s of unseen) if (s.dot[0] === entry && s.dot[1] - 1 < limit) limit = s.dot[1] - 1;
      if (limit > (raised.get(entry) ?? 0)) raised.set(entry, limit);
    }
    vector = raised;
    cloud = joinClouds(cloud, after.cloud);
  }
  return { vector, cloud: compactCloud(vector, cloud) };
}

/**
 * Replica merge: keeps a sibling of x if y also has it (same dot, or a twin: same op) or y.ctx does
 * not cover it, and symmetrically; of twins, the one with the smaller dot; ctx = x.ctx ⊔ y.ctx.
 * Commutative, associative and idempotent, so redelivery and any merge order are harmless.
 * Siblings come out sorted by actor then counter.
 */
export function sync(x: VersionedObject, y: VersionedObject): VersionedObject {
  const siblings: Sibling[] = [];
  const xs = x.siblings;
  const ys = y.siblings;
  for (const sx of xs) {
    const sy = findSame(ys, sx);
    if (sy !== undefined) siblings.push(sx === sy ? sx : pickSame(sx, sy));
    else if (!coversSibling(y.ctx, y.cloud, sx)) siblings.push(sx);
  }
  for (const sy of ys) {
    if (!coversSibling(x.ctx, x.cloud, sy) && findSame(xs, sy) === undefined) siblings.push(sy);
  }
  sortSiblings(siblings);
  return withCloud({ ctx: mergeVectors(x.ctx, y.ctx), siblings }, joinClouds(x.cloud, y.cloud));
}

/** True when every sibling is a tombstone (or there are none). */
export function isDeleted(o: VersionedObject): boolean {
  for (const s of o.siblings) if (s.value !== null) return false;
  return true;
}

/** True when the sibling is a tombstone, or its value expired by `now` (ms). */
export function isDead(s: Sibling, now: number): boolean {
  return s.value === null || (s.expiresAt !== undefined && s.expiresAt <= now);
}

/** True when no sibling is live at `now`: every one a tombstone or expired. */
export function isDeadAt(o: VersionedObject, now: number): boolean {
  for (const s of o.siblings) if (!isDead(s, now)) return false;
  return true;
}

/**
 * When the object became (or will become) dead as a whole: the latest of its tombstones'
 * timestamps and its values' expiries; undefined when a value never expires. A tombstone purge
 * waits `tombstoneGraceMs` past this.
 */
export function deathTime(o: VersionedObject): number | undefined {
  let latest = Number.NEGATIVE_INFINITY;
  for (const s of o.siblings) {
    const t = s.expiresAt ?? (s.value === null ? s.timestamp : undefined);
    if (t === undefined) return undefined;
    if (t > latest) latest = t;
  }
  return latest;
}

/**
 * The object with every value that expired by `now` turned into a tombstone (its value dropped,
 * its dot, timestamp and `expiresAt` kept), or `o` itself when none did. Causally nothing changes
 * (the same dots, the same context), so every path may apply it with its own clock: once any node
 * has seen a value expired, the tombstone wins the merge of that dot (`pickSame`) and travels as
 * one, so a clock running behind elsewhere cannot bring the value back, and its bytes are freed
 * long before the purge.
 */
export function expire(o: VersionedObject, now: number): VersionedObject {
  let siblings: Sibling[] | undefined;
  for (let i = 0; i < o.siblings.length; i++) {
    const s = o.siblings[i]!;
    if (s.value === null || s.expiresAt === undefined || s.expiresAt > now) continue;
    siblings ??= o.siblings.slice();
    siblings[i] = { ...s, value: null };
  }
  if (!siblings) return o;
  return o.cloud ? { ctx: o.ctx, siblings, cloud: o.cloud } : { ctx: o.ctx, siblings };
}

/**
 * Deterministic pruning of ctx to at most `maxEntries` actors (op entries are pruned to
 * `MAX_OP_ENTRIES` on their own, the ops of current siblings never): an actor with a dot in a current
 * sibling (live or tombstone) is never removed, so the result can stay above `maxEntries` when more
 * actors than that hold siblings; among the rest the smallest counters go first, ties dropping the
 * larger actor string first, so every replica prunes the same ctx the same way. Returns `o` itself
 * when there is nothing to prune.
 *
 * Risk (why the limit should sit well above the number of actors that write a key): once actor P
 * is pruned, this ctx no longer covers P's old dots. (1) A stale replica that still holds a sibling
 * P wrote and this replica had superseded hands it back on the next merge, as a spurious sibling
 * (possibly a value that had been deleted): surprising, but no write is lost. (2) If P's own copy
 * was pruned too and P coordinates this key again with a client context lacking P, it reissues a
 * dot it already used; a replica whose ctx still covers that dot then drops the new write. Pass a
 * per-actor monotone `minCounter` to `update` to rule (2) out.
 */
export function prune(o: VersionedObject, maxEntries: number): VersionedObject {
  if (!Number.isInteger(maxEntries) || maxEntries < 0) {
    throw new RangeError(`maxEntries must be a non-negative integer, got ${maxEntries}`);
  }
  let ops = 0;
  for (const entry of o.ctx.keys()) if (isOpKey(entry)) ops++;
  if (o.ctx.size - ops <= maxEntries && ops <= MAX_OP_ENTRIES) return o;
  // Op entries have a budget of their own (MAX_OP_ENTRIES beyond those of current siblings):
  // sharing maxEntries with actors, whose counters (µs clocks) always exceed op stamps (seconds),
  // would shrink the dedupe window to maxEntries minus the actors, down to nothing.
  const actors: [string, number][] = [];
  const opEntries: [string, number][] = [];
  for (const [entry, counter] of o.ctx) {
    if (isOpKey(entry)) {
      if (!o.siblings.some((s) => s.op !== undefined && opKey(s.op) === entry))
        opEntries.push([entry, counter]);
    } else if (!o.siblings.some((s) => s.dot[0] === entry)) actors.push([entry, counter]);
  }
  const oldestFirst = (p: [string, number], q: [string, number]) => p[1] - q[1] || compareActors(q[0], p[0]);
  const ctx = new Map(o.ctx);
  const dropOldest = (candidates: [string, number][], count: number) => {
    candidates.sort(oldestFirst);
    for (let i = 0; i < Math.min(count, candidates.length); i++) ctx.delete(candidates[i]![0]);
  };
  dropOldest(opEntries, opEntries.length - MAX_OP_ENTRIES);
  dropOldest(actors, o.ctx.size - ops - maxEntries);
  // The cloud stays: its dots are exact, and it is bounded on its own (MAX_CLOUD_DOTS).
  return o.cloud ? { ctx, siblings: o.siblings, cloud: o.cloud } : { ctx, siblings: o.siblings };
}

/** Canonical sibling order: actor, then counter. */
export function compareDots(a: Dot, b: Dot): number {
  return compareActors(a[0], b[0]) || a[1] - b[1];
}

/** The sibling in `siblings` that is the same write as `x`: same dot, or a twin (same op). */
function findSame(siblings: readonly Sibling[], x: Sibling): Sibling | undefined {
  const dot = x.dot;
  const op = x.op;
  for (const s of siblings) {
    if ((s.dot[1] === dot[1] && s.dot[0] === dot[0]) || (op !== undefined && s.op === op)) return s;
  }
  return undefined;
}

function equalValues(a: Uint8Array | null, b: Uint8Array): boolean {
  return a !== null && (a === b || (a.byteLength === b.byteLength && Buffer.compare(a, b) === 0));
}

/** An op entry's counter: the write's time in whole seconds (pruning drops the oldest first), at least 1. */
function opStamp(timestamp: number): number {
  return Math.max(1, Math.floor(timestamp / 1000));
}

// Insertion sort: sibling lists are short and usually already sorted, and it allocates nothing.
function sortSiblings(siblings: Sibling[]): void {
  for (let i = 1; i < siblings.length; i++) {
    const s = siblings[i]!;
    let j = i - 1;
    while (j >= 0 && compareDots(siblings[j]!.dot, s.dot) > 0) {
      siblings[j + 1] = siblings[j]!;
      j--;
    }
    siblings[j + 1] = s;
  }
}

/**
 * Two siblings with one dot are the same write (actors are incarnations, so dots are never
 * reused) and normally identical, but for one legitimate difference: a value one replica already
 * turned into a tombstone on expiry (`expire`), which wins, so an expired value never comes back.
 * Twins (one op, two dots) are the same write too: keep the one that expires first (two
 * coordinators computed the expiry from their own clocks), then the smaller dot, so every replica
 * keeps the same one. Should same-dot siblings differ otherwise (corruption, a reused dot), pick by
 * a total order so that sync stays commutative and associative: later timestamp, then expired
 * over live, then live over tombstone, then longer value, then bytes, then earlier expiry.
 */
function pickSame(a: Sibling, b: Sibling): Sibling {
  const byDot = compareDots(a.dot, b.dot);
  if (byDot !== 0) {
    const ea = a.expiresAt ?? Number.POSITIVE_INFINITY;
    const eb = b.expiresAt ?? Number.POSITIVE_INFINITY;
    if (ea !== eb) return ea < eb ? a : b;
    return byDot < 0 ? a : b;
  }
  if (a.timestamp !== b.timestamp) return a.timestamp > b.timestamp ? a : b;
  const xa = a.value === null && a.expiresAt !== undefined;
  const xb = b.value === null && b.expiresAt !== undefined;
  if (xa !== xb) return xa ? a : b;
  const va = a.value;
  const vb = b.value;
  if (va !== vb) {
    if (va === null) return b;
    if (vb === null) return a;
    if (va.length !== vb.length) return va.length > vb.length ? a : b;
    const order = Buffer.compare(va, vb);
    if (order !== 0) return order > 0 ? a : b;
  }
  const ea = a.expiresAt ?? Number.POSITIVE_INFINITY;
  const eb = b.expiresAt ?? Number.POSITIVE_INFINITY;
  return eb < ea ? b : a;
}
