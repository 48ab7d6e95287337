/**
 * Anti-entropy on the wire: `RemotePeer` turns `SyncPeer` calls into messages (and counts their
 * bytes), `serveSync` answers them from a `LocalPeer`. Pushes use the ordinary `Store` message, so
 * the receiver merges them through the one replica merge path. Everything received is checked for
 * shape and size before use: a malformed message gets an error reply and changes nothing.
 */
import {
  asBytes,
  asBytesOrNull,
  asInt,
  encodeMessage,
  encodeOk,
  MessageType,
  WireError,
} from '../transport/wire.js';
import type { KeyHash, KeyList, LocalPeer, SyncPeer } from './exchange.js';
import type { BucketHashes } from './tree.js';
import { bucketsAt, FANOUT, HASH_BYTES, MAX_LEVEL } from './tree.js';

/** Most parents in one hashes request (the reply holds 32 hashes per parent: 256 KiB). */
export const MAX_PARENTS = 1024;
/** Most buckets in one key-list request. */
export const MAX_LIST_BUCKETS = 32 * 1024;
/** Bounds a requester may ask for in one reply. */
export const MAX_REPLY_KEYS = 65_536;
export const MAX_REPLY_BYTES = 16 * 1024 * 1024;
/** Most keys in one fetch or purge request. */
export const MAX_REQUEST_KEYS = 10_000;

export interface WireLimits {
  partitions: number;
  maxKeyBytes: number;
  maxObjectBytes: number;
}

/** Sends one message to the peer and returns the reply's fields. */
export type Call = (message: unknown[]) => Promise<unknown[]>;

/** The other replica, over RPC. `bytes` counts what went both ways (requests and replies). */
export class RemotePeer implements SyncPeer {
  bytes = 0;

  constructor(
    private readonly call: Call,
    private readonly limits: WireLimits,
  ) {}

  async hashes(partition: number, level: number, parents: number[]): Promise<BucketHashes> {
    const reply = await this.send([MessageType.AeHashes, partition, level, parents]);
    const buckets = level === 0 ? 1 : parents.length * FANOUT;
    const hashes = asBytes(reply[0], 'hashes', buckets * HASH_BYTES);
    const counts = reply[1];
    if (
      hashes.byteLength !== buckets * HASH_BYTES ||
      !Array.isArray(counts) ||
      counts.length !== buckets ||
      !counts.every((c) => Number.isSafeInteger(c) && c >= 0)
    ) {
      throw new WireError('hashes reply has the wrong shape');
    }
    return { hashes, counts: counts as number[] };
  }

  async keys(
    partition: number,
    level: number,
    buckets: number[],
    after: Uint8Array | null,
    maxKeys: number,
    maxBytes: number,
  ): Promise<KeyList> {
    const reply = await this.send([MessageType.AeKeys, partition, level, buckets, after, maxKeys, maxBytes]);
    const raw = reply[0];
    const truncated = reply[1];
    if (
      !Array.isArray(raw) ||
      raw.length > maxKeys ||
      typeof truncated !== 'boolean' ||
      (truncated && raw.length === 0)
    ) {
      throw new WireError('keys reply has the wrong shape');
    }
    const entries = raw.map((e) => keyHashOf(e, this.limits.maxKeyBytes));
    return { entries, truncated };
  }

  async fetch(partition: number, keys: Uint8Array[], maxBytes: number): Promise<(Uint8Array | null)[]> {
    const reply = await this.send([MessageType.AeFetch, partition, keys, maxBytes]);
    const raw = reply[0];
    if (!Array.isArray(raw) || raw.length > keys.length)
      throw new WireError('fetch reply has the wrong shape');
    return raw.map((o) => (o === null ? null : asBytes(o, 'object', this.limits.maxObjectBytes)));
  }

  async store(partition: number, entries: [Uint8Array, Uint8Array][]): Promise<void> {
    await this.send([MessageType.Store, partition, null, entries]);
  }

  /** Any other message (purge), counted the same way. */
  async send(message: unknown[]): Promise<unknown[]> {
    const request = encodeMessage(message);
    const reply = await this.call(message);
    // The reply's size as encoded on the wire (the encoding is deterministic).
    this.bytes += request.byteLength + encodeOk(reply).byteLength;
    return reply;
  }
}

/** Answers AeHashes / AeKeys / AeFetch from this replica's data. */
export async function serveSync(
  local: LocalPeer,
  message: unknown[],
  limits: WireLimits,
): Promise<unknown[]> {
  const partition = asInt(message[1], 'partition', 0, limits.partitions - 1);
  switch (message[0]) {
    case MessageType.AeHashes: {
      const level = asInt(message[2], 'level', 0, MAX_LEVEL);
      const parents = level === 0 ? [] : intList(message[3], 'parents', MAX_PARENTS, bucketsAt(level - 1));
      const h = await local.hashes(partition, level, parents);
      return [h.hashes, h.counts];
    }
    case MessageType.AeKeys: {
      const level = asInt(message[2], 'level', 0, MAX_LEVEL);
      const buckets = intList(message[3], 'buckets', MAX_LIST_BUCKETS, bucketsAt(level));
      const after = asBytesOrNull(message[4], 'after', limits.maxKeyBytes);
      const maxKeys = asInt(message[5], 'maxKeys', 1, MAX_REPLY_KEYS);
      const maxBytes = asInt(message[6], 'maxBytes', 1, MAX_REPLY_BYTES);
      const list = await local.keys(partition, level, buckets, after, maxKeys, maxBytes);
      return [list.entries, list.truncated];
    }
    case MessageType.AeFetch: {
      const keys = keyList(message[2], limits.maxKeyBytes);
      const maxBytes = asInt(message[3], 'maxBytes', 1, MAX_REPLY_BYTES);
      return [await local.fetch(partition, keys, maxBytes)];
    }
    default:
      throw new WireError(`not an anti-entropy message: ${String(message[0])}`);
  }
}

export function keyList(v: unknown, maxKeyBytes: number): Uint8Array[] {
  if (!Array.isArray(v) || v.length > MAX_REQUEST_KEYS) throw new WireError('keys must be an array');
  return v.map((k) => asBytes(k, 'key', maxKeyBytes));
}

export function keyHashList(v: unknown, maxKeyBytes: number): KeyHash[] {
  if (!Array.isArray(v) || v.length > MAX_REQUEST_KEYS) throw new WireError('entries must be an array');
  return v.map((e) => keyHashOf(e, maxKeyBytes));
}

function keyHashOf(e: unknown, maxKeyBytes: number): KeyHash {
  if (!Array.isArray(e) || e.length !== 2) throw new WireError('entry must be [key, hash]');
  const key = asBytes(e[0], 'key', maxKeyBytes);
  const hash = asBytes(e[1], 'hash', HASH_BYTES);
  if (hash.byteLength !== HASH_BYTES) throw new WireError('hash must be 8 bytes');
  return [key, hash];
}

function intList(v: unknown, name: string, maxLength: number, bound: number): number[] {
  if (!Array.isArray(v) || v.length > maxLength) throw new WireError(`${name} must be an array`);
  for (const x of v) asInt(x, name, 0, bound - 1);
  return v as number[];
}
