/**
 * Bytes as latin1 strings (one char per byte, char code = byte value) and back: MemoryStorage's
 * representation of keys and values. Comparing two such strings natively gives unsigned byte order,
 * and a string is one leaf object on the heap, where a Uint8Array is two objects plus memory off
 * the heap that the garbage collector tracks separately.
 */
import { constants } from 'node:buffer';

// The native halves of Node's `buf.toString('latin1')` and `buf.write(s, 'latin1')`, called on
// plain Uint8Arrays: no Buffer to wrap around the bytes first. Measured against
// `String.fromCharCode.apply`: 1.2x faster for 11 bytes, 4x for 100, 30x for 1 KiB.
const { latin1Slice, latin1Write } = Buffer.prototype as unknown as {
  latin1Slice(this: Uint8Array, start: number, end: number): string;
  latin1Write(this: Uint8Array, s: string, offset: number, length: number): number;
};

/** The longest input `toLatin1` accepts: V8's limit on string length (about 512 MiB). */
export const MAX_LATIN1_BYTES: number = constants.MAX_STRING_LENGTH;

// V8 keeps typed arrays up to this size on its heap; native code writing into one first moves it
// off the heap, which costs more than a loop.
const ON_HEAP_MAX_BYTES = 64;

export function toLatin1(bytes: Uint8Array): string {
  return latin1Slice.call(bytes, 0, bytes.length);
}

/** Inverse of `toLatin1`; always a fresh plain Uint8Array. */
export function fromLatin1(s: string): Uint8Array {
  const n = s.length;
  const out = new Uint8Array(n);
  if (n <= ON_HEAP_MAX_BYTES) for (let i = 0; i < n; i++) out[i] = s.charCodeAt(i);
  else latin1Write.call(out, s, 0, n);
  return out;
}
