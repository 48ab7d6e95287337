/**
 * Listing cursors: where the next page starts, as an opaque string. The position is a partition
 * and the last key of it already visited, so a cursor holds no server state, stays valid across
 * ring changes (the partition count is fixed for a cluster's life) and restarts, and never
 * expires (as Riak's 2i continuations).
 *
 * Bytes (then base64url, no padding):
 *   version (1) | log2(partitions) (1) | flags (1: bit 0 = an after-key follows) | partition (u16 BE) | after-key
 */

/** Where a listing stands: every key of partitions below `partition`, and of `partition` up to `after`, was visited. */
export interface ListPosition {
  partition: number;
  /** Last key of `partition` visited; null: none yet. */
  after: Uint8Array | null;
}

const VERSION = 1;
const HEADER_BYTES = 5;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

export function encodeCursor(position: ListPosition, partitions: number): string {
  const key = position.after;
  const out = Buffer.alloc(HEADER_BYTES + (key?.byteLength ?? 0));
  out[0] = VERSION;
  out[1] = Math.log2(partitions);
  out[2] = key === null ? 0 : 1;
  out.writeUInt16BE(position.partition, 3);
  if (key !== null) out.set(key, HEADER_BYTES);
  return out.toString('base64url');
}

/**
 * Inverse of `encodeCursor` for untrusted input: throws TypeError for anything it did not produce
 * for a cluster of `partitions` partitions and keys of at most `maxKeyBytes`.
 */
export function decodeCursor(cursor: unknown, partitions: number, maxKeyBytes: number): ListPosition {
  if (typeof cursor !== 'string') throw new TypeError('cursor must be a string from a previous page');
  const maxChars = Math.ceil(((HEADER_BYTES + maxKeyBytes) * 4) / 3);
  if (cursor.length > maxChars || cursor.length % 4 === 1 || !BASE64URL.test(cursor)) {
    throw new TypeError('invalid cursor: not one a listing of this cluster returned');
  }
  const bytes = Buffer.from(cursor, 'base64url');
  if (bytes.toString('base64url') !== cursor || bytes.length < HEADER_BYTES) {
    throw new TypeError('invalid cursor: not one a listing of this cluster returned');
  }
  if (bytes[0] !== VERSION) throw new TypeError(`invalid cursor: unknown version ${bytes[0]}`);
  if (2 ** bytes[1]! !== partitions) {
    throw new TypeError(
      `invalid cursor: made for ${2 ** bytes[1]!} partitions, this cluster has ${partitions}`,
    );
  }
  const flags = bytes[2]!;
  const partition = bytes.readUInt16BE(3);
  const keyLength = bytes.length - HEADER_BYTES;
  if (flags > 1 || partition >= partitions || (flags === 0 && keyLength > 0) || keyLength > maxKeyBytes) {
    throw new TypeError('invalid cursor: not one a listing of this cluster returned');
  }
  return { partition, after: flags === 1 ? new Uint8Array(bytes.subarray(HEADER_BYTES)) : null };
}
