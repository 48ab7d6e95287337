/**
 * Byte and string forms of versioning data.
 *
 * Client context (opaque string): base64url, no padding, of the MessagePack array
 *   [actor0, counter0, actor1, counter1, ...]            vector entries sorted by actor
 * or, when the context has a dot cloud (see context.ts),
 *   [1, [actor, counter, ...], [actor, counter, ...]]    format 1: the vector, then the cloud's
 *                                                         dots sorted by actor then counter
 * Stored / wire object:
 *   [[actor, counter, ...],                               ctx, sorted by actor
 *    [actor, counter, timestamp, value | nil, ...],       siblings, sorted by actor then counter
 *    [index, op, ...] | nil,                              only when a sibling has an op id (or a
 *                                                         cloud follows): which (ascending sibling
 *                                                         index) and its id
 *    [actor, counter, ...] | nil,                         only when the ctx has a dot cloud (or
 *                                                         expiries follow): its dots, sorted, each
 *                                                         above the ctx's entry
 *    [index, expiresAt, ...]]                             only when a sibling has an expiry: which
 *                                                         (ascending sibling index) and when (ms)
 * Op ids live in the ctx as entries "\u0000" + op (see object.ts `opKey`).
 * Integers use their shortest form and timestamps are uint (float64 only when negative or
 * fractional), so equal objects always give equal bytes: `fingerprintInput` is that encoding.
 * Future formats can be told apart without a version byte: they will start with an integer where
 * these start with a string (context) or an array (object).
 */
import { InvalidContextError } from '../errors.js';
import { asContext, type Context, type DotCloud, EMPTY_CLOUD, MAX_CLOUD_DOTS } from './context.js';
import { FormatError, Reader, writer } from './msgpack.js';
import { compareDots, opKey, type Sibling, type VersionedObject } from './object.js';
import { compareActors, type VersionVector } from './vector.js';

/** Longest context string decodeContext accepts (characters). */
export const MAX_CONTEXT_CHARS = 64 * 1024;
/** Longest operation id an object may carry (characters). */
export const MAX_OP_CHARS = 64;
/** Default cap on the number of actors in a decoded context. */
export const DEFAULT_MAX_CONTEXT_ENTRIES = 1000;

/**
 * Thrown by `decodeObject` for bytes that are not an object this module encoded (truncated,
 * corrupt, wrong shape, a sibling its ctx does not cover, duplicate dots). A plain `Error` rather
 * than a `DynamoError`: where the bytes came from decides the public error (a storage read ->
 * `StorageError`, a peer's frame -> `TransportError`), so the caller wraps it with `cause`.
 */
export class CorruptObjectError extends Error {
  override name = 'CorruptObjectError';
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Opaque client context: base64url (no padding) of a compact msgpack encoding (file comment). */
export function encodeContext(context: VersionVector | Context): string {
  const { vector, cloud } = asContext(context);
  writer.reset();
  if (cloud.size === 0) writeVector(vector);
  else {
    writer.arrayHeader(3);
    writer.uint(CONTEXT_WITH_CLOUD);
    writeVector(vector);
    writeCloud(vector, cloud);
  }
  return writer.base64url();
}

/** The first element of a context with a cloud (a vector starts with a string, or is empty). */
const CONTEXT_WITH_CLOUD = 1;

/**
 * Inverse of `encodeContext` for untrusted input. Throws `InvalidContextError` for anything it
 * did not produce: non-string, longer than 64 KiB, bad or non-canonical base64url, bad msgpack,
 * wrong shape, trailing bytes, a non-string actor, a counter that is not an integer in
 * [1, 2^53 - 1], duplicate actors, more than `maxEntries` actors, a cloud of more than
 * `MAX_CLOUD_DOTS` dots, unsorted or duplicate cloud dots, or one the vector covers already. The
 * empty string is invalid (the empty vector encodes to "kA").
 */
export function decodeContext(s: string, maxEntries = DEFAULT_MAX_CONTEXT_ENTRIES): Context {
  if (typeof s !== 'string') throw new InvalidContextError('context must be a string');
  if (s.length > MAX_CONTEXT_CHARS) {
    throw new InvalidContextError(`context is ${s.length} characters, more than ${MAX_CONTEXT_CHARS}`);
  }
  if (s.length % 4 === 1 || !BASE64URL.test(s)) throw new InvalidContextError('context is not base64url');
  const bytes = Buffer.from(s, 'base64url');
  // Node's decoder ignores stray trailing bits; a round trip insists on the one canonical spelling.
  if (bytes.toString('base64url') !== s) throw new InvalidContextError('context is not canonical base64url');
  try {
    const r = new Reader(bytes);
    let context: Context;
    if (bytes[0] === 0x93) {
      r.arrayHeader();
      if (r.uint() !== CONTEXT_WITH_CLOUD) throw new FormatError('unknown context format');
      const vector = readVector(r, maxEntries);
      const cloud = readCloud(r, vector);
      if (cloud.size === 0) throw new FormatError('empty cloud');
      context = { vector, cloud };
    } else context = { vector: readVector(r, maxEntries), cloud: EMPTY_CLOUD };
    if (!r.done) throw new FormatError('trailing bytes');
    return context;
  } catch (e) {
    if (e instanceof FormatError)
      throw new InvalidContextError(`invalid context: ${e.message}`, { cause: e });
    throw e;
  }
}

/** Storage and wire encoding of an object (canonical: see the file comment). */
export function encodeObject(o: VersionedObject): Uint8Array {
  writer.reset();
  writeObject(o);
  return writer.finish();
}

/** The canonical bytes of an object, for hashing (Merkle leaves); identical to `encodeObject`. */
export function fingerprintInput(o: VersionedObject): Uint8Array {
  return encodeObject(o);
}

/**
 * Inverse of `encodeObject`; throws `CorruptObjectError` for anything else. Values are copied out
 * of `b`, so the caller may reuse its buffer.
 */
export function decodeObject(b: Uint8Array): VersionedObject {
  if (!(b instanceof Uint8Array)) throw new CorruptObjectError('object bytes must be a Uint8Array');
  try {
    const r = new Reader(b);
    const fields = r.arrayHeader();
    if (fields < 2 || fields > 5) throw new FormatError('expected [ctx, siblings, ops?, cloud?, expiries?]');
    const ctx = readVector(r, Number.POSITIVE_INFINITY);
    const n = r.arrayHeader();
    if (n % 4 !== 0) throw new FormatError('sibling array length is not a multiple of 4');
    const siblings: Sibling[] = new Array(n / 4);
    let sorted = true;
    for (let i = 0; i < n / 4; i++) {
      const actor = r.str();
      const counter = r.uint();
      if (counter === 0) throw new FormatError('sibling counter 0');
      const timestamp = r.number();
      let value: Uint8Array | null = null;
      if (r.isNil()) r.nil();
      else value = r.bin();
      if ((ctx.get(actor) ?? 0) < counter) throw new FormatError('sibling dot not covered by ctx');
      const s: Sibling = { dot: [actor, counter], value, timestamp };
      if (i > 0 && compareDots(siblings[i - 1]!.dot, s.dot) >= 0) sorted = false;
      siblings[i] = s;
    }
    if (fields === 3) readOps(r, siblings, ctx);
    let cloud: DotCloud | undefined;
    if (fields >= 4) {
      if (r.isNil()) r.nil();
      else readOps(r, siblings, ctx);
      if (fields === 5 && r.isNil()) r.nil();
      else {
        cloud = readCloud(r, ctx);
        if (cloud.size === 0) throw new FormatError('empty cloud');
      }
      if (fields === 5) readExpiries(r, siblings);
    }
    if (!r.done) throw new FormatError('trailing bytes');
    if (!sorted) {
      // Not what encodeObject writes, but harmless once sorted, unless two siblings share a dot.
      siblings.sort((a, b) => compareDots(a.dot, b.dot));
      for (let i = 1; i < siblings.length; i++) {
        if (compareDots(siblings[i - 1]!.dot, siblings[i]!.dot) === 0) throw new FormatError('duplicate dot');
      }
    }
    return cloud ? { ctx, siblings, cloud } : { ctx, siblings };
  } catch (e) {
    if (e instanceof FormatError) throw new CorruptObjectError(`corrupt object: ${e.message}`, { cause: e });
    throw e;
  }
}

/**
 * Object bytes that passed `checkObject`: accepted exactly as `decodeObject` would accept them,
 * decoded only when asked (`object`), and then once. A replica storing a replicated version
 * under a key it does not hold yet (most replication) writes the bytes as they came and never
 * needs the decoded object: its Map, siblings and value copy were made and dropped per write.
 */
export class CheckedObject {
  constructor(
    readonly bytes: Uint8Array,
    /** Entries (actors and op ids) of the object's ctx: what `prune` would look at. */
    readonly ctxEntries: number,
    private decoded?: VersionedObject,
  ) {}

  get object(): VersionedObject {
    this.decoded ??= decodeObject(this.bytes);
    return this.decoded;
  }
}

/**
 * Checks object bytes as `decodeObject` does (throwing the same `CorruptObjectError` for the same
 * input), without decoding them when they have the common shape; see `CheckedObject`.
 */
export function checkObject(b: Uint8Array): CheckedObject {
  const entries = b instanceof Uint8Array ? quickCheckObject(b) : -1;
  if (entries >= 0) return new CheckedObject(b, entries);
  const object = decodeObject(b);
  return new CheckedObject(b, object.ctx.size, object);
}

// Where quickCheckObject found the ctx's actors: byte offset, length and counter of each.
const QUICK_MAX_ACTORS = 7;
const quickActorAt = new Int32Array(QUICK_MAX_ACTORS);
const quickActorLength = new Int32Array(QUICK_MAX_ACTORS);
const quickCounter = new Float64Array(QUICK_MAX_ACTORS);
let quickPos = 0;
let quickUint = 0;

/**
 * The ctx entry count of `b` when it is an object in the shape `encodeObject` gives a key with a
 * few writers (2 fields, at most 7 ctx entries and 3 siblings, ASCII actors of at most 31
 * bytes, integer timestamps) and `decodeObject` would accept it; -1 when it is not sure (any
 * other shape, or anything `decodeObject` rejects), for the caller to decode it and see.
 * It never answers for bytes `decodeObject` rejects; the checks are `decodeObject`'s, on bytes,
 * with no allocation. Exported for its tests.
 */
export function quickCheckObject(b: Uint8Array): number {
  const end = b.length;
  if (end < 3 || b[0] !== 0x92) return -1;
  const ctxHeader = b[1]!;
  if ((ctxHeader & 0xf0) !== 0x90 || (ctxHeader & 1) !== 0) return -1;
  const actors = (ctxHeader & 0x0f) >>> 1;
  quickPos = 2;
  for (let i = 0; i < actors; i++) {
    const at = quickAsciiStr(b, end);
    if (at < 0) return -1;
    const length = quickPos - at;
    // Duplicate actors: decodeObject rejects them.
    for (let j = 0; j < i; j++) {
      if (sameBytes(b, quickActorAt[j]!, quickActorLength[j]!, at, length)) return -1;
    }
    if (!quickReadUint(b, end) || quickUint === 0) return -1;
    quickActorAt[i] = at;
    quickActorLength[i] = length;
    quickCounter[i] = quickUint;
  }
  if (quickPos >= end) return -1;
  const siblingsHeader = b[quickPos++]!;
  if ((siblingsHeader & 0xf0) !== 0x90 || (siblingsHeader & 3) !== 0) return -1;
  const siblings = (siblingsHeader & 0x0f) >>> 2;
  let lastAt = -1;
  let lastLength = 0;
  let lastCounter = 0;
  for (let i = 0; i < siblings; i++) {
    const at = quickAsciiStr(b, end);
    if (at < 0) return -1;
    const length = quickPos - at;
    if (!quickReadUint(b, end) || quickUint === 0) return -1;
    const counter = quickUint;
    // Covered by the ctx (decodeObject: "sibling dot not covered by ctx").
    let covered = false;
    for (let j = 0; j < actors; j++) {
      if (sameBytes(b, quickActorAt[j]!, quickActorLength[j]!, at, length)) {
        covered = quickCounter[j]! >= counter;
        break;
      }
    }
    if (!covered) return -1;
    // Sorted by actor then counter, no dot twice (otherwise decodeObject sorts or rejects).
    if (lastAt >= 0) {
      const order = compareBytes(b, lastAt, lastLength, at, length);
      if (order > 0 || (order === 0 && lastCounter >= counter)) return -1;
    }
    lastAt = at;
    lastLength = length;
    lastCounter = counter;
    // Timestamp: a non-negative integer (floats and negatives take the full decode).
    if (!quickReadUint(b, end)) return -1;
    if (quickPos >= end) return -1;
    const t = b[quickPos++]!;
    if (t === 0xc0) continue;
    let n: number;
    if (t === 0xc4) {
      if (quickPos >= end) return -1;
      n = b[quickPos++]!;
    } else if (t === 0xc5) {
      if (quickPos + 2 > end) return -1;
      n = (b[quickPos]! << 8) | b[quickPos + 1]!;
      quickPos += 2;
    } else if (t === 0xc6) {
      if (quickPos + 4 > end) return -1;
      n =
        ((b[quickPos]! << 24) | (b[quickPos + 1]! << 16) | (b[quickPos + 2]! << 8) | b[quickPos + 3]!) >>> 0;
      quickPos += 4;
    } else return -1;
    if (quickPos + n > end) return -1;
    quickPos += n;
  }
  return quickPos === end ? actors : -1;
}

/** A fixstr of ASCII bytes at quickPos: its first byte's offset (quickPos moves past it), or -1. */
function quickAsciiStr(b: Uint8Array, end: number): number {
  if (quickPos >= end) return -1;
  const t = b[quickPos]!;
  if ((t & 0xe0) !== 0xa0) return -1;
  const at = quickPos + 1;
  const stop = at + (t & 0x1f);
  if (stop > end) return -1;
  for (let i = at; i < stop; i++) if (b[i]! >= 0x80) return -1;
  quickPos = stop;
  return at;
}

/** An unsigned integer (a safe one) at quickPos into quickUint; false for anything else. */
function quickReadUint(b: Uint8Array, end: number): boolean {
  if (quickPos >= end) return false;
  const t = b[quickPos++]!;
  if (t < 0x80) {
    quickUint = t;
    return true;
  }
  const p = quickPos;
  switch (t) {
    case 0xcc:
      if (p + 1 > end) return false;
      quickUint = b[p]!;
      quickPos = p + 1;
      return true;
    case 0xcd:
      if (p + 2 > end) return false;
      quickUint = (b[p]! << 8) | b[p + 1]!;
      quickPos = p + 2;
      return true;
    case 0xce:
      if (p + 4 > end) return false;
      quickUint = ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
      quickPos = p + 4;
      return true;
    case 0xcf: {
      if (p + 8 > end) return false;
      const hi = ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
      if (hi >= 0x200000) return false;
      const lo = ((b[p + 4]! << 24) | (b[p + 5]! << 16) | (b[p + 6]! << 8) | b[p + 7]!) >>> 0;
      quickUint = hi * 0x100000000 + lo;
      quickPos = p + 8;
      return true;
    }
    default:
      return false;
  }
}

function sameBytes(b: Uint8Array, at1: number, length1: number, at2: number, length2: number): boolean {
  if (length1 !== length2) return false;
  for (let i = 0; i < length1; i++) if (b[at1 + i] !== b[at2 + i]) return false;
  return true;
}

/** Byte order of two ASCII strings in `b`: the order compareActors gives their strings. */
function compareBytes(b: Uint8Array, at1: number, length1: number, at2: number, length2: number): number {
  const n = Math.min(length1, length2);
  for (let i = 0; i < n; i++) {
    const d = b[at1 + i]! - b[at2 + i]!;
    if (d !== 0) return d;
  }
  return length1 - length2;
}

/** The op list of an object: ascending sibling indexes, each op covered by the ctx, none twice. */
function readOps(r: Reader, siblings: Sibling[], ctx: VersionVector): void {
  const n = r.arrayHeader();
  if (n === 0 || n % 2 !== 0 || n / 2 > siblings.length) throw new FormatError('bad op list length');
  const seen = new Set<string>();
  let last = -1;
  for (let i = 0; i < n; i += 2) {
    const index = r.uint();
    const op = r.str();
    if (index <= last || index >= siblings.length) throw new FormatError('op list index out of order');
    if (op.length === 0 || op.length > MAX_OP_CHARS) throw new FormatError('bad op id length');
    if (!ctx.has(opKey(op))) throw new FormatError('sibling op not covered by ctx');
    if (seen.has(op)) throw new FormatError('two siblings share an op');
    seen.add(op);
    last = index;
    siblings[index]!.op = op;
  }
}

function checkCounter(actor: string, c: number): void {
  if (!Number.isSafeInteger(c) || c < 1) {
    throw new RangeError(`counter for ${JSON.stringify(actor)} must be an integer in [1, 2^53), got ${c}`);
  }
}

function writeVector(v: VersionVector): void {
  writer.arrayHeader(v.size * 2);
  if (v.size === 1) {
    for (const [actor, c] of v) {
      checkCounter(actor, c);
      writer.str(actor);
      writer.uint(c);
    }
    return;
  }
  const actors = Array.from(v.keys()).sort(compareActors);
  for (const actor of actors) {
    const c = v.get(actor)!;
    checkCounter(actor, c);
    writer.str(actor);
    writer.uint(c);
  }
}

function writeObject(o: VersionedObject): void {
  let siblings = o.siblings;
  let ops = 0;
  for (let i = 0; i < siblings.length; i++) {
    if (siblings[i]!.op !== undefined) ops++;
    if (i > 0 && compareDots(siblings[i - 1]!.dot, siblings[i]!.dot) > 0) {
      // Hand-built objects may be unsorted; update and sync always sort. Sorting keeps the count.
      siblings = [...siblings].sort((a, b) => compareDots(a.dot, b.dot));
      for (let j = i + 1; j < o.siblings.length; j++) if (o.siblings[j]!.op !== undefined) ops++;
      break;
    }
  }
  const cloud = o.cloud !== undefined && hasCloudDots(o.ctx, o.cloud);
  let expiries = 0;
  for (const s of siblings) if (s.expiresAt !== undefined) expiries++;
  writer.arrayHeader(expiries > 0 ? 5 : cloud ? 4 : ops === 0 ? 2 : 3);
  writeVector(o.ctx);
  writer.arrayHeader(siblings.length * 4);
  for (const s of siblings) {
    const [actor, counter] = s.dot;
    checkCounter(actor, counter);
    if (!Number.isFinite(s.timestamp)) throw new RangeError(`timestamp must be finite, got ${s.timestamp}`);
    writer.str(actor);
    writer.uint(counter);
    writer.number(s.timestamp);
    if (s.value === null) writer.nil();
    else writer.bin(s.value);
  }
  if (ops === 0 && !cloud && expiries === 0) return;
  if (ops === 0) writer.nil();
  else {
    writer.arrayHeader(ops * 2);
    for (let i = 0; i < siblings.length; i++) {
      const op = siblings[i]!.op;
      if (op === undefined) continue;
      writer.uint(i);
      writer.str(op);
    }
  }
  if (cloud) writeCloud(o.ctx, o.cloud!);
  else if (expiries > 0) writer.nil();
  if (expiries === 0) return;
  writer.arrayHeader(expiries * 2);
  for (let i = 0; i < siblings.length; i++) {
    const at = siblings[i]!.expiresAt;
    if (at === undefined) continue;
    if (!Number.isSafeInteger(at) || at < 1)
      throw new RangeError(`expiresAt must be a positive integer, got ${at}`);
    writer.uint(i);
    writer.uint(at);
  }
}

/** The expiry list of an object: ascending sibling indexes, each with a positive integer time. */
function readExpiries(r: Reader, siblings: Sibling[]): void {
  const n = r.arrayHeader();
  if (n === 0 || n % 2 !== 0 || n / 2 > siblings.length) throw new FormatError('bad expiry list length');
  let last = -1;
  for (let i = 0; i < n; i += 2) {
    const index = r.uint();
    const at = r.uint();
    if (index <= last || index >= siblings.length) throw new FormatError('expiry list index out of order');
    if (at === 0) throw new FormatError('expiry 0');
    last = index;
    siblings[index]!.expiresAt = at;
  }
}

/** True when the cloud has a dot the vector does not cover (only those are written). */
function hasCloudDots(vector: VersionVector, cloud: DotCloud): boolean {
  for (const [actor, counters] of cloud)
    if (counters[counters.length - 1]! > (vector.get(actor) ?? 0)) return true;
  return false;
}

/**
 * A cloud's dots the vector does not cover, as [actor, counter, ...] sorted by actor then
 * counter (canonical whatever the map's order, and whatever dots the vector has caught up with).
 */
function writeCloud(vector: VersionVector, cloud: DotCloud): void {
  const dots: [string, number][] = [];
  for (const [actor, counters] of cloud) {
    const base = vector.get(actor) ?? 0;
    for (const c of counters) if (c > base) dots.push([actor, c]);
  }
  dots.sort((p, q) => compareActors(p[0], q[0]) || p[1] - q[1]);
  writer.arrayHeader(dots.length * 2);
  for (const [actor, c] of dots) {
    checkCounter(actor, c);
    writer.str(actor);
    writer.uint(c);
  }
}

/** A cloud as `writeCloud` writes it: sorted, no dot twice, none covered by `vector`, bounded. */
function readCloud(r: Reader, vector: VersionVector): DotCloud {
  const n = r.arrayHeader();
  if (n % 2 !== 0) throw new FormatError('cloud array length is odd');
  if (n / 2 > MAX_CLOUD_DOTS) throw new FormatError(`${n / 2} cloud dots, more than ${MAX_CLOUD_DOTS}`);
  const cloud = new Map<string, number[]>();
  let lastActor: string | undefined;
  let lastCounter = 0;
  for (let i = 0; i < n; i += 2) {
    const actor = r.str();
    const c = r.uint();
    if (c <= (vector.get(actor) ?? 0))
      throw new FormatError(`cloud dot ${quote(actor)} covered by the vector`);
    if (lastActor !== undefined) {
      const order = compareActors(lastActor, actor);
      if (order > 0 || (order === 0 && lastCounter >= c)) throw new FormatError('cloud dots out of order');
    }
    lastActor = actor;
    lastCounter = c;
    const counters = cloud.get(actor);
    if (counters) counters.push(c);
    else cloud.set(actor, [c]);
  }
  return cloud;
}

function readVector(r: Reader, maxEntries: number): VersionVector {
  const n = r.arrayHeader();
  if (n % 2 !== 0) throw new FormatError('vector array length is odd');
  if (n / 2 > maxEntries) throw new FormatError(`${n / 2} entries, more than ${maxEntries}`);
  const v: VersionVector = new Map();
  for (let i = 0; i < n; i += 2) {
    const actor = r.str();
    const c = r.uint();
    if (c === 0) throw new FormatError(`counter 0 for ${quote(actor)}`);
    // A Map keyed by string is safe for any actor, "__proto__" included.
    if (v.has(actor)) throw new FormatError(`duplicate actor ${quote(actor)}`);
    v.set(actor, c);
  }
  return v;
}

// Error messages quote untrusted actors, but never more than a short prefix of them.
function quote(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}...` : s);
}
