/**
 * The engine's messages between nodes. Encoded with msgpack as flat arrays (no maps): compact,
 * and decoding untrusted bytes never builds objects from attacker-chosen keys. Every decoded
 * message is checked for shape before use; a malformed one is answered with an error, never
 * applied.
 */
import { Packr } from 'msgpackr';
import { DynamoError, type DynamoErrorCode, LimitError, QuorumError } from '../errors.js';

export const MessageType = {
  /** Read one key's object: [t, key, partition, hintFor | null] → [objBytes | null] */
  Read: 1,
  /** Merge objects into the replica: [t, partition, hintFor | null, [[key, objBytes], ...]] → [] */
  Store: 2,
  /** Coordinate a put on the receiver: [t, key, value | null, contextString, w, timeoutMs, op, ttlMs | null] → [contextString] */
  CoordinatePut: 3,
  /**
   * A node asks to join: [t, memberWire, [partitions, n, incarnation]] →
   * [stateWire | null, [seedId, partitions, n], [refusalKind, message] | null] (see membership/bootstrap.ts)
   */
  Join: 4,
  /** Push-pull gossip: [t, stateWire] → [stateWire] */
  Gossip: 5,
  /** Liveness probe: [t] → [id, incarnation] (who answers at this address) */
  Ping: 6,
  /** Anti-entropy tree hashes of the children of `parents` at `level`: [t, partition, level, parents[]] → [hashes (8 B each), counts[]] */
  AeHashes: 7,
  /** Anti-entropy key list of buckets: [t, partition, level, buckets[], afterKey | null, maxKeys, maxBytes] → [[[key, objHash8], ...], truncated] */
  AeKeys: 8,
  /** Anti-entropy fetch of objects: [t, partition, keys[], maxBytes] → [(objBytes | null)[]] (a prefix of keys) */
  AeFetch: 9,
  /** Tombstone purge, phase 0 check / 1 purge: [t, partition, phase, [[key, objHash8], ...]] → [boolean[]] */
  AePurge: 10,
  /**
   * Several Read/Store messages to one peer in one: [t, [message, ...]] → [[status, ...fields], ...],
   * one reply per message, in order (each a success or a failure of its own; see `replyFields`).
   * Only messages the receiver answers from its own storage may go in a batch, so no reply waits
   * on another node.
   */
  Batch: 11,
  /** Operator commands (status, ring, transfers, stats, leave, remove): [t, version, command, ...args] → [reportJson]; see src/admin/protocol.ts */
  Admin: 12,
  /**
   * One bounded scan of the receiver's own data, for a listing or an export (src/listing/scan.ts):
   * [t, partitions[], afterKey | null, maxKeys, maxBytes, mode (0 live keys, 1 objects)]
   *   → [[partition, key, (objBytes), ...], [partition, lastKey | null] | null]
   */
  List: 13,
  /**
   * Read-only pull of the receiver's cluster state, for a DynamoClient (not a member: it must not
   * be merged into anyone's member table, as a Gossip would be): [t] → [stateWire, [id, partitions, n]]
   */
  State: 20,
} as const;
export type MessageTypeValue = (typeof MessageType)[keyof typeof MessageType];

const packr = new Packr({ useRecords: false, mapsAsObjects: false, moreTypes: false, int64AsType: 'number' });

export function encodeMessage(message: readonly unknown[]): Uint8Array {
  return packr.pack(message);
}

/** Decodes a request; throws WireError on anything that is not an array starting with a known type. */
export function decodeMessage(bytes: Uint8Array): unknown[] {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (err) {
    throw new WireError('undecodable message', { cause: err });
  }
  if (!Array.isArray(value) || value.length === 0 || typeof value[0] !== 'number') {
    throw new WireError('message is not a typed array');
  }
  return value;
}

/** Message types that may travel inside a Batch. */
export function isBatchable(type: unknown): boolean {
  return type === MessageType.Read || type === MessageType.Store;
}

/** Successful reply: [0, ...fields]. Failed: [1, code, message, details]. */
export function okReply(fields: readonly unknown[] = []): unknown[] {
  // Most replies carry one field or none: literals, not a spread, for those.
  if (fields.length === 0) return [0];
  if (fields.length === 1) return [0, fields[0]];
  return [0, ...fields];
}

/** `details` carries what a typed error needs to be rebuilt at the caller (QuorumError counts, LimitError figures). */
export function failureReply(code: string, message: string, details: readonly unknown[] = []): unknown[] {
  return [1, code, message, details];
}

/** The failure reply for an error a request ended with; `rebuildRemoteError` is its inverse. */
export function failureOf(err: unknown): unknown[] {
  const e = err instanceof Error ? err : new Error(String(err));
  return failureReply(e instanceof DynamoError ? e.code : 'DYNAMO_TRANSPORT', e.message, errorDetails(e));
}

function errorDetails(e: Error): unknown[] {
  if (e instanceof QuorumError) {
    const fields: unknown[] = [e.required, e.acks, e.failures.map((f) => [f.node, f.reason])];
    // A minZones failure: how many zones were needed and which answered.
    if (e.requiredZones !== undefined) fields.push(e.requiredZones, e.zones ?? []);
    return fields;
  }
  if (e instanceof LimitError) return [e.limit, e.actual, e.max];
  return [];
}

export function encodeReply(reply: readonly unknown[]): Uint8Array {
  return packr.pack(reply);
}

export function encodeOk(fields: readonly unknown[] = []): Uint8Array {
  return encodeReply(okReply(fields));
}

/** A reply from a peer that reported failure; `code` is the peer's DynamoError code when it had one. */
export class RemoteError extends DynamoError {
  readonly remoteCode: string;
  readonly details: unknown[];
  constructor(remoteCode: string, message: string, details: unknown[] = []) {
    super(isDynamoCode(remoteCode) ? remoteCode : 'DYNAMO_TRANSPORT', message);
    this.remoteCode = remoteCode;
    this.details = details;
  }
}

/** A message that does not parse or has the wrong shape. */
export class WireError extends DynamoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DYNAMO_TRANSPORT', `malformed message: ${message}`, options);
  }
}

const CODES = new Set<string>([
  'DYNAMO_QUORUM',
  'DYNAMO_TIMEOUT',
  'DYNAMO_NOT_RUNNING',
  'DYNAMO_LIMIT',
  'DYNAMO_TRANSPORT',
  'DYNAMO_STORAGE',
  'DYNAMO_AUTH',
  'DYNAMO_INVALID_CONTEXT',
]);
function isDynamoCode(code: string): code is DynamoErrorCode {
  return CODES.has(code);
}

/** Decodes a reply; returns its fields or throws RemoteError / WireError. */
export function decodeReply(bytes: Uint8Array): unknown[] {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (err) {
    throw new WireError('undecodable reply', { cause: err });
  }
  return replyFields(value);
}

/** The fields of a decoded reply (top level or one of a Batch's); throws RemoteError / WireError. */
export function replyFields(value: unknown): unknown[] {
  if (!Array.isArray(value) || (value[0] !== 0 && value[0] !== 1))
    throw new WireError('reply is not [status, ...]');
  if (value[0] === 1) {
    throw new RemoteError(String(value[1]), String(value[2]), Array.isArray(value[3]) ? value[3] : []);
  }
  return value.slice(1);
}

// Field checks for decoded messages: each throws WireError with the field's name.
export function asBytes(v: unknown, name: string, maxBytes: number): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new WireError(`${name} must be bytes`);
  if (v.byteLength > maxBytes) throw new WireError(`${name} exceeds ${maxBytes} bytes`);
  return v;
}
export function asBytesOrNull(v: unknown, name: string, maxBytes: number): Uint8Array | null {
  return v === null || v === undefined ? null : asBytes(v, name, maxBytes);
}
export function asString(v: unknown, name: string, maxLength = 65_536): string {
  if (typeof v !== 'string' || v.length > maxLength) throw new WireError(`${name} must be a string`);
  return v;
}
export function asStringOrNull(v: unknown, name: string): string | null {
  return v === null || v === undefined ? null : asString(v, name);
}
export function asInt(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new WireError(`${name} out of range`);
  return v;
}

/** Turns a forwarded request's error reply back into the typed error the coordinator raised. */
export function rebuildRemoteError(err: RemoteError, operation: 'put' | 'delete'): Error {
  const d = err.details;
  if (
    err.code === 'DYNAMO_QUORUM' &&
    typeof d[0] === 'number' &&
    typeof d[1] === 'number' &&
    Array.isArray(d[2])
  ) {
    const failures = (d[2] as unknown[])
      .filter(Array.isArray)
      .map((f) => ({ node: String(f[0]), reason: String(f[1]) }));
    const zoned = typeof d[3] === 'number' && Array.isArray(d[4]);
    return new QuorumError(operation, d[0], d[1], failures, {
      cause: err,
      ...(zoned ? { requiredZones: d[3] as number, zones: (d[4] as unknown[]).map(String) } : {}),
    });
  }
  if (
    err.code === 'DYNAMO_LIMIT' &&
    typeof d[0] === 'string' &&
    typeof d[1] === 'number' &&
    typeof d[2] === 'number'
  ) {
    return new LimitError(d[0], d[1], d[2], err.message);
  }
  return err;
}
