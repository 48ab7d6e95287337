/**
 * The small, strict subset of MessagePack that versioning encodings use: arrays, strings, unsigned
 * integers, float64, bin and nil. Hand-written rather than msgpackr because
 * - the bytes feed Merkle hashes, so they must be canonical and stable across library versions
 *   (always the shortest integer form, no records, no extensions);
 * - decoding untrusted bytes reads exactly the expected shape: no extension types, no maps (so no
 *   `__proto__` keys), no bigints, and an array header can never claim more elements than bytes
 *   left, so a hostile header cannot make us allocate.
 * Output is standard MessagePack that any decoder reads.
 */

/** Raised by the reader for any deviation; callers turn it into their public error type. */
export class FormatError extends Error {
  override name = 'FormatError';
}

// One growable scratch buffer for all encoders: encoding is synchronous, so it is never shared
// between two encodings in flight, and each result is a right-sized copy. After a huge value it
// shrinks back rather than pinning that much memory for good.
const INITIAL_SCRATCH = 4096;
const MAX_KEPT_SCRATCH = 1024 * 1024;
let buf = new Uint8Array(INITIAL_SCRATCH);
let view = new DataView(buf.buffer);
let pos = 0;
const textEncoder = new TextEncoder();
// The native half of Node's `buf.toString('base64url')`, called on the plain scratch Uint8Array:
// no Buffer view to wrap around it first (as storage/latin1.ts does for latin1).
const { base64urlSlice } = Buffer.prototype as unknown as {
  base64urlSlice(this: Uint8Array, start: number, end: number): string;
};
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function ensure(n: number): void {
  if (pos + n <= buf.length) return;
  let size = buf.length * 2;
  while (size < pos + n) size *= 2;
  const next = new Uint8Array(size);
  next.set(buf.subarray(0, pos));
  buf = next;
  view = new DataView(buf.buffer);
}

export const writer = {
  reset(): void {
    pos = 0;
    if (buf.length > MAX_KEPT_SCRATCH) {
      buf = new Uint8Array(INITIAL_SCRATCH);
      view = new DataView(buf.buffer);
    }
  },
  /** What was written since reset(), as base64url without padding (no view or copy made). */
  base64url(): string {
    return base64urlSlice.call(buf, 0, pos);
  },
  /** A copy of what was written since reset(). */
  finish(): Uint8Array {
    return copyOut(buf, 0, pos);
  },
  arrayHeader(n: number): void {
    ensure(5);
    if (n < 16) buf[pos++] = 0x90 | n;
    else if (n < 0x10000) {
      buf[pos] = 0xdc;
      view.setUint16(pos + 1, n);
      pos += 3;
    } else {
      buf[pos] = 0xdd;
      view.setUint32(pos + 1, n);
      pos += 5;
    }
  },
  /** n must be a non-negative safe integer; written in its shortest form. */
  uint(n: number): void {
    ensure(9);
    if (n < 0x80) buf[pos++] = n;
    else if (n < 0x100) {
      buf[pos++] = 0xcc;
      buf[pos++] = n;
    } else if (n < 0x10000) {
      buf[pos] = 0xcd;
      view.setUint16(pos + 1, n);
      pos += 3;
    } else if (n < 0x100000000) {
      buf[pos] = 0xce;
      view.setUint32(pos + 1, n);
      pos += 5;
    } else {
      buf[pos] = 0xcf;
      view.setUint32(pos + 1, Math.floor(n / 0x100000000));
      view.setUint32(pos + 5, n >>> 0);
      pos += 9;
    }
  },
  /** Non-negative safe integers as uint, anything else (negative, fractional) as float64. */
  number(n: number): void {
    if (Number.isSafeInteger(n) && n >= 0) {
      writer.uint(n);
      return;
    }
    ensure(9);
    buf[pos] = 0xcb;
    view.setFloat64(pos + 1, n);
    pos += 9;
  },
  str(s: string): void {
    const len = s.length;
    // ASCII fast path (actor ids in practice): byte length = string length, one pass; on the
    // first non-ASCII character rewind and take the general path.
    const mark = pos;
    strHeader(len);
    ensure(len);
    let i = 0;
    for (; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[pos++] = c;
    }
    if (i === len) return;
    pos = mark;
    // TextEncoder would silently turn a lone surrogate into U+FFFD, i.e. a different actor.
    if (LONE_SURROGATE.test(s)) throw new TypeError('actor is not a well-formed UTF-16 string');
    const bytes = textEncoder.encode(s);
    strHeader(bytes.length);
    ensure(bytes.length);
    buf.set(bytes, pos);
    pos += bytes.length;
  },
  nil(): void {
    ensure(1);
    buf[pos++] = 0xc0;
  },
  bin(b: Uint8Array): void {
    const n = b.length;
    ensure(5 + n);
    if (n < 0x100) {
      buf[pos++] = 0xc4;
      buf[pos++] = n;
    } else if (n < 0x10000) {
      buf[pos] = 0xc5;
      view.setUint16(pos + 1, n);
      pos += 3;
    } else {
      buf[pos] = 0xc6;
      view.setUint32(pos + 1, n);
      pos += 5;
    }
    buf.set(b, pos);
    pos += n;
  },
};

function strHeader(n: number): void {
  ensure(5);
  if (n < 32) buf[pos++] = 0xa0 | n;
  else if (n < 0x100) {
    buf[pos++] = 0xd9;
    buf[pos++] = n;
  } else if (n < 0x10000) {
    buf[pos] = 0xda;
    view.setUint16(pos + 1, n);
    pos += 3;
  } else {
    buf[pos] = 0xdb;
    view.setUint32(pos + 1, n);
    pos += 5;
  }
}

// fatal: invalid UTF-8 is an error, not U+FFFD; ignoreBOM: a leading U+FEFF is kept, not stripped.
const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Cursor over untrusted bytes; every method throws FormatError on anything unexpected. */
export class Reader {
  pos = 0;
  // Multi-byte fields are read byte by byte rather than through a DataView: a DataView per
  // Reader cost about as much as decoding a small object's fields (one per replica write).
  private readonly bytes: Uint8Array;

  constructor(input: Uint8Array) {
    this.bytes = input;
  }

  get done(): boolean {
    return this.pos === this.bytes.length;
  }

  private need(n: number): void {
    if (this.pos + n > this.bytes.length) throw new FormatError('unexpected end of data');
  }

  private byte(): number {
    this.need(1);
    return this.bytes[this.pos++]!;
  }

  /** The next 2 bytes, big-endian unsigned. */
  private u16(): number {
    this.need(2);
    const b = this.bytes;
    const p = this.pos;
    this.pos = p + 2;
    return (b[p]! << 8) | b[p + 1]!;
  }

  /** The next 4 bytes, big-endian unsigned. */
  private u32(): number {
    this.need(4);
    const b = this.bytes;
    const p = this.pos;
    this.pos = p + 4;
    return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  }

  /** Element count of an array; at least one byte per element must remain, which bounds allocation. */
  arrayHeader(): number {
    const t = this.byte();
    let n: number;
    if ((t & 0xf0) === 0x90) n = t & 0x0f;
    else if (t === 0xdc) n = this.u16();
    else if (t === 0xdd) n = this.u32();
    else throw new FormatError(`expected an array, got type byte 0x${t.toString(16)}`);
    if (n > this.bytes.length - this.pos) throw new FormatError('array longer than the data');
    return n;
  }

  /** A non-negative integer in any msgpack integer form; must be a safe integer. */
  uint(): number {
    const t = this.byte();
    if (t < 0x80) return t;
    let n: number;
    switch (t) {
      case 0xcc:
        return this.byte();
      case 0xcd:
        return this.u16();
      case 0xce:
        return this.u32();
      case 0xcf: {
        const hi = this.u32();
        const lo = this.u32();
        if (hi >= 0x200000) throw new FormatError('integer above 2^53');
        return hi * 0x100000000 + lo;
      }
      case 0xd0:
      case 0xd1:
      case 0xd2:
      case 0xd3:
        this.pos--;
        n = this.int();
        if (n < 0) throw new FormatError(`negative integer ${n}`);
        return n;
      default:
        if (t >= 0xe0) throw new FormatError(`negative integer ${t - 0x100}`);
        throw new FormatError(`expected an integer, got type byte 0x${t.toString(16)}`);
    }
  }

  private int(): number {
    const t = this.byte();
    switch (t) {
      case 0xd0:
        return (this.byte() << 24) >> 24;
      case 0xd1:
        return (this.u16() << 16) >> 16;
      case 0xd2:
        return this.u32() | 0;
      default: {
        const hi = this.u32() | 0;
        const lo = this.u32();
        const n = hi * 0x100000000 + lo;
        if (!Number.isSafeInteger(n)) throw new FormatError('integer outside ±2^53');
        return n;
      }
    }
  }

  /** Any finite number: integer forms or float32/float64. */
  number(): number {
    const t = this.bytes[this.pos];
    if (t === undefined) throw new FormatError('unexpected end of data');
    let n: number;
    if (t === 0xcb) {
      this.need(9);
      n = readFloat(this.bytes, this.pos + 1, 8);
      this.pos += 9;
    } else if (t === 0xca) {
      this.need(5);
      n = readFloat(this.bytes, this.pos + 1, 4);
      this.pos += 5;
    } else if (t >= 0xe0) {
      this.pos++;
      return t - 0x100;
    } else if (t >= 0xd0 && t <= 0xd3) {
      return this.int();
    } else return this.uint();
    if (!Number.isFinite(n)) throw new FormatError(`non-finite number ${n}`);
    return n;
  }

  str(): string {
    const t = this.byte();
    let n: number;
    if ((t & 0xe0) === 0xa0) n = t & 0x1f;
    else if (t === 0xd9) n = this.byte();
    else if (t === 0xda) n = this.u16();
    else if (t === 0xdb) n = this.u32();
    else throw new FormatError(`expected a string, got type byte 0x${t.toString(16)}`);
    this.need(n);
    const start = this.pos;
    this.pos += n;
    if (n <= MAX_CACHED_STR) return shortStr(this.bytes, start, n);
    return decodeUtf8(this.bytes.subarray(start, start + n));
  }

  isNil(): boolean {
    return this.bytes[this.pos] === 0xc0;
  }

  nil(): void {
    if (this.byte() !== 0xc0) throw new FormatError('expected nil');
  }

  /** A bin payload, copied (the input may be a reused network or storage buffer). */
  bin(): Uint8Array {
    const t = this.byte();
    let n: number;
    if (t === 0xc4) n = this.byte();
    else if (t === 0xc5) n = this.u16();
    else if (t === 0xc6) n = this.u32();
    else throw new FormatError(`expected bin, got type byte 0x${t.toString(16)}`);
    this.need(n);
    const out = copyOut(this.bytes, this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

// Floats are rare (timestamps are integers): read through one shared 8-byte scratch.
const floatBytes = new Uint8Array(8);
const floatView = new DataView(floatBytes.buffer);

function readFloat(b: Uint8Array, at: number, size: 4 | 8): number {
  for (let i = 0; i < size; i++) floatBytes[i] = b[at + i]!;
  return size === 8 ? floatView.getFloat64(0) : floatView.getFloat32(0);
}

// Copies made per write (an encoded object, a decoded value: ~100-200 bytes) come from a shared
// slab, as Node's Buffer pool does: a fresh Uint8Array over more than 64 bytes gets its own
// off-heap backing store, which V8 allocates and the garbage collector frees one by one (measured
// ~0.35-1 µs per copy, against ~0.1 µs for a view on a slab). Each copy is a plain Uint8Array
// (so its own slice() copies); its `buffer` is the slab (read it with byteOffset, as for any
// view), and a copy kept alive keeps its slab (at most SLAB_BYTES) alive.
const SLAB_BYTES = 8192;
const MAX_SLAB_COPY = SLAB_BYTES >>> 2;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabPos = 0;

/** A fresh copy of `src[start, end)`: a plain Uint8Array that shares memory with nothing live. */
export function copyOut(src: Uint8Array, start: number, end: number): Uint8Array {
  const n = end - start;
  let out: Uint8Array;
  if (n > MAX_SLAB_COPY) {
    // Not src.slice(): on a Buffer that is a view, not a copy (and its species is Buffer).
    out = new Uint8Array(n);
    out.set(src.subarray(start, end));
    return out;
  }
  if (slabPos + n > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabPos = 0;
  }
  out = new Uint8Array(slab, slabPos, n);
  // 8-byte aligned, as Node's pool does, so a copy never straddles another's word.
  slabPos = (slabPos + n + 7) & ~7;
  out.set(src.subarray(start, end));
  return out;
}

// Actor ids are few per cluster and repeat in every object decoded, so short ASCII strings come
// from a small direct-mapped cache: no allocation on a hit, and the same string instance each
// time (its hash is computed once for Map lookups). A hit compares every byte, so a collision only
// costs a miss.
const MAX_CACHED_STR = 32;
const CACHE_SIZE = 256;
const cacheBytes: (Uint8Array | undefined)[] = new Array(CACHE_SIZE);
const cacheStrs: string[] = new Array(CACHE_SIZE);

function shortStr(b: Uint8Array, start: number, n: number): string {
  let h = n;
  for (let i = start; i < start + n; i++) {
    const c = b[i]!;
    if (c >= 0x80) return decodeUtf8(b.subarray(start, start + n));
    h = (h * 31 + c) | 0;
  }
  const slot = h & (CACHE_SIZE - 1);
  const cached = cacheBytes[slot];
  if (cached !== undefined && cached.length === n) {
    let same = true;
    for (let i = 0; i < n; i++) {
      if (cached[i] !== b[start + i]) {
        same = false;
        break;
      }
    }
    if (same) return cacheStrs[slot]!;
  }
  let s = '';
  for (let i = start; i < start + n; i++) s += String.fromCharCode(b[i]!);
  // A copy (Uint8Array's slice: on a Buffer input, Buffer#slice would be a view of it).
  cacheBytes[slot] = Uint8Array.prototype.slice.call(b, start, start + n);
  cacheStrs[slot] = s;
  return s;
}

function decodeUtf8(b: Uint8Array): string {
  try {
    return textDecoder.decode(b);
  } catch (cause) {
    throw new FormatError('string is not valid UTF-8', { cause });
  }
}
