/**
 * The replica's side of a listing: one bounded scan over a run of partitions of this node's own
 * data (hints are not data: the owner lists them once delivered), and the `List` message that
 * asks for it.
 *
 * A scan stops at whichever limit it meets first — keys returned, reply bytes, or keys looked at
 * (so a partition full of tombstones cannot make one request scan without end) — and says where
 * it stopped, so the caller's next request resumes there. Memory per request is bounded by those
 * limits; nothing is kept between requests.
 */
import { NotRunningError } from '../errors.js';
import { dataKey, dataRange } from '../replica/layout.js';
import type { Storage } from '../storage/types.js';
import { asBytesOrNull, asInt, WireError } from '../transport/wire.js';
import type { ListPosition } from './cursor.js';

/** `keys`: live keys only (tombstones and expired values left out); `objects`: every stored object, with its bytes. */
export type ListMode = 'keys' | 'objects';

export interface ListEntry {
  partition: number;
  key: Uint8Array;
  /** The stored object bytes (`objects` mode only). */
  object?: Uint8Array;
}

export interface ScanLimits {
  /** Entries returned at most. */
  maxKeys: number;
  /** Bytes of keys and objects returned at most (one entry is returned even if larger). */
  maxBytes: number;
  /** Stored keys looked at at most, returned or not. */
  maxScanned: number;
}

export interface ScanResult {
  entries: ListEntry[];
  /** Where the scan stopped at a limit (the last key it looked at); null: every partition asked for was scanned to its end. */
  stop: ListPosition | null;
}

/** Partitions in one List request at most. */
export const MAX_LIST_PARTITIONS = 1024;
/** Entries in one List reply at most. */
export const MAX_LIST_KEYS = 10_000;
/** Bytes in one List reply at most (keys and objects; one larger object travels alone). */
export const MAX_LIST_BYTES = 8 * 1024 * 1024;
/** Stored keys one List request looks at, per entry it may return. */
export const SCAN_PER_KEY = 8;

/**
 * Scans `partitions` (ascending) from `after` (a key of the first partition, exclusive). `live`
 * tells a live object from a dead one (every sibling a tombstone or expired) in `keys` mode.
 * `holds(p)` is asked before and after each partition's scan: a node that stops being a replica of
 * it meanwhile (a rebalance took it away, and its data is being dropped) refuses rather than
 * answer with part of it.
 */
export async function scanPartitions(
  storage: Storage,
  partitions: readonly number[],
  after: Uint8Array | null,
  limits: ScanLimits,
  mode: ListMode,
  live: (object: Uint8Array) => boolean,
  holds: (partition: number) => boolean,
): Promise<ScanResult> {
  const entries: ListEntry[] = [];
  let bytes = 0;
  let scanned = 0;
  for (let i = 0; i < partitions.length; i++) {
    const partition = partitions[i]!;
    refuseUnlessHeld(holds, partition);
    const range = dataRange(partition);
    const start = i === 0 && after !== null ? dataKey(partition, after) : undefined;
    // Just past `after`: its storage key followed by a zero byte.
    const gte = start ? Buffer.concat([start, ZERO]) : range.gte;
    let last: Uint8Array | null = i === 0 ? after : null;
    for await (const [storageKey, object] of storage.iterate({
      gte,
      lt: range.lt,
      limit: limits.maxScanned - scanned + 1,
    })) {
      const key = storageKey.slice(3);
      if (scanned >= limits.maxScanned) return stopAt(holds, entries, partition, last);
      const keep = mode === 'objects' || live(object);
      if (keep) {
        const size = key.byteLength + (mode === 'objects' ? object.byteLength : 0);
        if (entries.length >= limits.maxKeys || (entries.length > 0 && bytes + size > limits.maxBytes)) {
          return stopAt(holds, entries, partition, last);
        }
        entries.push(mode === 'objects' ? { partition, key, object: object.slice() } : { partition, key });
        bytes += size;
      }
      scanned++;
      last = key;
    }
    refuseUnlessHeld(holds, partition);
  }
  return { entries, stop: null };
}

const ZERO = Uint8Array.of(0);

/** An early stop, once the partition is known to be still held (its scan saw all it covers). */
function stopAt(
  holds: (partition: number) => boolean,
  entries: ListEntry[],
  partition: number,
  after: Uint8Array | null,
): ScanResult {
  refuseUnlessHeld(holds, partition);
  return { entries, stop: { partition, after } };
}

function refuseUnlessHeld(holds: (partition: number) => boolean, partition: number): void {
  if (!holds(partition)) throw new NotRunningError(`not a replica of partition ${partition} (any more)`);
}

/** A checked List request: [t, partitions[], after | null, maxKeys, maxBytes, mode (0 keys, 1 objects)]. */
export interface ListRequest {
  partitions: number[];
  after: Uint8Array | null;
  maxKeys: number;
  maxBytes: number;
  mode: ListMode;
}

export function listRequestFields(request: ListRequest): unknown[] {
  return [
    request.partitions,
    request.after,
    request.maxKeys,
    request.maxBytes,
    request.mode === 'keys' ? 0 : 1,
  ];
}

/** Checks a List message; throws WireError on anything malformed. */
export function parseListRequest(
  message: readonly unknown[],
  partitionCount: number,
  maxKeyBytes: number,
): ListRequest {
  const partitions = message[1];
  if (!Array.isArray(partitions) || partitions.length === 0 || partitions.length > MAX_LIST_PARTITIONS) {
    throw new WireError(`list: partitions must be 1..${MAX_LIST_PARTITIONS} partition numbers`);
  }
  let previous = -1;
  for (const p of partitions) {
    asInt(p, 'partition', previous + 1, partitionCount - 1);
    previous = p as number;
  }
  return {
    partitions: partitions as number[],
    after: asBytesOrNull(message[2], 'after', maxKeyBytes),
    maxKeys: asInt(message[3], 'maxKeys', 1, MAX_LIST_KEYS),
    maxBytes: asInt(message[4], 'maxBytes', 1, MAX_LIST_BYTES),
    mode: asInt(message[5], 'mode', 0, 1) === 0 ? 'keys' : 'objects',
  };
}

/** Reply fields of a scan: [[p, key, (object), ...], stop [p, key | null] | null]. */
export function listReplyFields(result: ScanResult, mode: ListMode): unknown[] {
  const flat: unknown[] = [];
  for (const e of result.entries) {
    flat.push(e.partition, e.key);
    if (mode === 'objects') flat.push(e.object);
  }
  return [flat, result.stop === null ? null : [result.stop.partition, result.stop.after]];
}

/**
 * Checks a List reply against its request: entries in ascending position within the partitions
 * asked for, after `after`, keys and objects within their limits. Throws WireError otherwise
 * (the caller then asks another replica).
 */
export function parseListReply(
  fields: readonly unknown[],
  request: ListRequest,
  maxKeyBytes: number,
  maxObjectBytes: number,
): ScanResult {
  const flat = fields[0];
  const width = request.mode === 'objects' ? 3 : 2;
  if (!Array.isArray(flat) || flat.length % width !== 0 || flat.length / width > request.maxKeys) {
    throw new WireError('list reply: bad entry list');
  }
  const asked = new Set(request.partitions);
  const entries: ListEntry[] = [];
  let position: ListPosition = { partition: request.partitions[0]!, after: request.after };
  for (let i = 0; i < flat.length; i += width) {
    const partition = asInt(flat[i], 'partition', 0, 65_535);
    const key = asBytesOrNull(flat[i + 1], 'key', maxKeyBytes);
    if (key === null || !asked.has(partition) || comparePosition({ partition, after: key }, position) <= 0) {
      throw new WireError('list reply: entries out of order');
    }
    position = { partition, after: key };
    if (width === 3) {
      const object = asBytesOrNull(flat[i + 2], 'object', maxObjectBytes);
      if (object === null) throw new WireError('list reply: missing object');
      entries.push({ partition, key, object });
    } else entries.push({ partition, key });
  }
  const stopField = fields[1];
  let stop: ListPosition | null = null;
  if (stopField !== null && stopField !== undefined) {
    if (!Array.isArray(stopField)) throw new WireError('list reply: bad stop');
    const partition = asInt(stopField[0], 'stop partition', 0, 65_535);
    const after = asBytesOrNull(stopField[1], 'stop key', maxKeyBytes);
    stop = { partition, after };
    if (!asked.has(partition) || comparePosition(stop, position) < 0) {
      throw new WireError('list reply: stop before its last entry');
    }
  }
  return { entries, stop };
}

/** Order of positions: partition, then key bytes (null = before every key). */
export function comparePosition(a: ListPosition, b: ListPosition): number {
  if (a.partition !== b.partition) return a.partition - b.partition;
  if (a.after === null) return b.after === null ? 0 : -1;
  if (b.after === null) return 1;
  return Buffer.compare(a.after, b.after);
}
