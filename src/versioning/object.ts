/**
 * Dotted version vectors: what a replica stores per key, the coordinator's put and the one replica
 * merge used by replication, read repair, hints, anti-entropy and transfer (DESIGN § 8).
 *
 * Objects are immutable values: no function here mutates its arguments; results may share
 * `Sibling` objects (and value bytes) with the inputs.
 */
import { InvalidContextError } from '../errors.js';
import { compareActors, covers, type Dot, mergeVectors, type VersionVector } from './vector.js';

export interface Sibling {
  dot: Dot;
  /** Encoded application value; null for a tombstone (delete). */
  value: Uint8Array | null;
  /** Coordinator's clock at write time, ms (used only by last-write-wins resolvers and tombstone grace). */
  timestamp: number;
}

/** What a replica stores per key: ctx covers every dot this replica has seen for the key. */
export interface VersionedObject {
  ctx: VersionVector;
  siblings: Sibling[];
}

/**
 * Coordinator put at `actor` with client context `context` (an empty Map when the client had
 * none): keeps the local siblings the context does not cover, adds
 * `{ dot: [actor, max(local.ctx[actor], context[actor]) + 1], value, timestamp }`, and sets
 * `ctx = local.ctx ⊔ context ⊔ dot`. `local` undefined means the key is absent on this replica.
 *
 * A put with an empty context after a delete keeps the tombstone as a sibling (the client saw
 * nothing, so the write is concurrent with the delete); reads that drop tombstones then show just
 * the new value, and the next put with that read's context removes both.
 *
 * `minCounter` (optional, default 0) is a floor for the new dot's counter. Passing a value that
 * only grows per actor (e.g. the coordinator's clock in ms, or a persisted per-incarnation
 * sequence; an integer, so floor a clock reading) guarantees an actor never reissues a dot that `prune` dropped from a ctx elsewhere.
 *
 * Throws `InvalidContextError` when the new counter would not be a safe integer: only a forged
 * context (a counter near 2^53) can cause that.
 */
export function update(
  local: VersionedObject | undefined,
  context: VersionVector,
  actor: string,
  value: Uint8Array | null,
  timestamp: number,
  minCounter = 0,
): VersionedObject {
  if (!Number.isFinite(timestamp)) throw new RangeError(`timestamp must be finite, got ${timestamp}`);
  if (!Number.isSafeInteger(minCounter) || minCounter < 0) {
    throw new RangeError(`minCounter must be a non-negative integer, got ${minCounter}`);
  }
  const localCtx = local?.ctx;
  const counter = Math.max(localCtx?.get(actor) ?? 0, context.get(actor) ?? 0, minCounter - 1) + 1;
  if (!Number.isSafeInteger(counter)) {
    throw new InvalidContextError(`counter for actor ${JSON.stringify(actor)} would exceed 2^53`);
  }
  const dot: Dot = [actor, counter];
  const siblings: Sibling[] = [];
  if (local !== undefined) {
    for (const s of local.siblings) if (!covers(context, s.dot)) siblings.push(s);
  }
  siblings.push({ dot, value, timestamp });
  sortSiblings(siblings);
  const ctx = localCtx === undefined ? new Map(context) : mergeVectors(localCtx, context);
  // counter > both inputs' entries for actor, so a plain set is the join with the new dot.
  ctx.set(actor, counter);
  return { ctx, siblings };
}

/**
 * Replica merge: keeps a sibling of x if y also has it (same dot) or y.ctx does not cover its dot,
 * and symmetrically; ctx = x.ctx ⊔ y.ctx. Commutative, associative and idempotent, so redelivery
 * and any merge order are harmless. Siblings come out sorted by actor then counter.
 */
export function sync(x: VersionedObject, y: VersionedObject): VersionedObject {
  const siblings: Sibling[] = [];
  const xs = x.siblings;
  const ys = y.siblings;
  for (const sx of xs) {
    const sy = findDot(ys, sx.dot);
    if (sy !== undefined) siblings.push(sx === sy ? sx : pickSame(sx, sy));
    else if (!covers(y.ctx, sx.dot)) siblings.push(sx);
  }
  for (const sy of ys) {
    if (!covers(x.ctx, sy.dot) && findDot(xs, sy.dot) === undefined) siblings.push(sy);
  }
  sortSiblings(siblings);
  return { ctx: mergeVectors(x.ctx, y.ctx), siblings };
}

/** True when every sibling is a tombstone (or there are none). */
export function isDeleted(o: VersionedObject): boolean {
  for (const s of o.siblings) if (s.value !== null) return false;
  return true;
}

/**
 * Deterministic pruning of ctx to at most `maxEntries` entries: an actor with a dot in a current
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
  const excess = o.ctx.size - maxEntries;
  if (excess <= 0) return o;
  const candidates: [string, number][] = [];
  for (const [actor, counter] of o.ctx) {
    if (!o.siblings.some((s) => s.dot[0] === actor)) candidates.push([actor, counter]);
  }
  candidates.sort((p, q) => p[1] - q[1] || compareActors(q[0], p[0]));
  const ctx = new Map(o.ctx);
  const drop = Math.min(excess, candidates.length);
  for (let i = 0; i < drop; i++) ctx.delete(candidates[i]![0]);
  return { ctx, siblings: o.siblings };
}

/** Canonical sibling order: actor, then counter. */
export function compareDots(a: Dot, b: Dot): number {
  return compareActors(a[0], b[0]) || a[1] - b[1];
}

function findDot(siblings: readonly Sibling[], dot: Dot): Sibling | undefined {
  for (const s of siblings) if (s.dot[1] === dot[1] && s.dot[0] === dot[0]) return s;
  return undefined;
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
 * reused) and normally identical. Should they differ anyway (corruption, a reused dot), pick by a
 * total order so that sync stays commutative and associative: later timestamp, then live over
 * tombstone, then longer value, then bytes.
 */
function pickSame(a: Sibling, b: Sibling): Sibling {
  if (a.timestamp !== b.timestamp) return a.timestamp > b.timestamp ? a : b;
  const va = a.value;
  const vb = b.value;
  if (va === vb) return a;
  if (va === null) return b;
  if (vb === null) return a;
  if (va.length !== vb.length) return va.length > vb.length ? a : b;
  return Buffer.compare(va, vb) >= 0 ? a : b;
}
