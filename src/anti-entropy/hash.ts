/**
 * The hashes behind the anti-entropy trees, all xxhash64 (seed 0) through the ring's hasher
 * (`loadHasher()` must have resolved; a DynamoNode does that on start).
 *
 * - key hash: picks the key's bucket at every tree level. Its *low* bits are used: the partition
 *   comes from the top bits of the same hash, so within one partition the top bits are constant
 *   and only the low ones spread keys over segments.
 * - object hash: of the canonical object bytes (`encodeObject` is canonical, so equal objects
 *   give equal hashes on every replica). Sent on the wire as 8 big-endian bytes.
 * - item hash: hash(key ‖ object hash), the value XORed into a leaf. Hashing the key in keeps two
 *   keys holding the same object from cancelling each other out.
 */
import { hash64 } from '../ring/index.js';

const MASK32 = 0xffffffffn;

/** Low 32 bits of the key hash: bucket bits for every level of the tree. */
export function keyHash32(key: Uint8Array): number {
  return Number(hash64(key) & MASK32);
}

/** xxhash64 of the object bytes, as 8 big-endian bytes (msgpack integers stop at 2^53 here). */
export function objectHash(objectBytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, hash64(objectBytes));
  return out;
}

// One scratch buffer for `key ‖ object hash` (the hashes run synchronously, so it is never shared).
let scratch = new Uint8Array(1024 + 8);
let scratchView = new DataView(scratch.buffer);

function keyWithHash(key: Uint8Array, objHash: bigint | Uint8Array): Uint8Array {
  const need = key.byteLength + 8;
  if (scratch.byteLength < need) {
    scratch = new Uint8Array(need * 2);
    scratchView = new DataView(scratch.buffer);
  }
  scratch.set(key, 0);
  if (typeof objHash === 'bigint') scratchView.setBigUint64(key.byteLength, objHash);
  else scratch.set(objHash, key.byteLength);
  return scratch.subarray(0, need);
}

/** hash(key ‖ objectHash) as a 64-bit bigint: what the item contributes to its leaf. */
export function itemHash(key: Uint8Array, objHash: Uint8Array): bigint {
  return hash64(keyWithHash(key, objHash));
}

/** Item hash straight from the object bytes (one allocation-free pass on the write path). */
export function itemHashOf(key: Uint8Array, objectBytes: Uint8Array): bigint {
  return hash64(keyWithHash(key, hash64(objectBytes)));
}
