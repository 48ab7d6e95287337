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
  /** What was written since reset(), without copying: valid only until the next reset(). */
  view(): Uint8Array {
    return buf.subarray(0, pos);
  },
  /** A copy of what was written since reset(). */
  finish(): Uint8Array {
    return buf.slice(0, pos);
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
  private readonly view: DataView;

  private readonly bytes: Uint8Array;

  constructor(input: Uint8Array) {
    // A plain Uint8Array view, so slice() copies even when the input is a Buffer.
    this.bytes =
      input.constructor === Uint8Array
        ? input
        : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    this.view = new DataView(input.buffer, input.byteOffset, input.byteLength);
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

  /** Element count of an array; at least one byte per element must remain, which bounds allocation. */
  arrayHeader(): number {
    const t = this.byte();
    let n: number;
    if ((t & 0xf0) === 0x90) n = t & 0x0f;
    else if (t === 0xdc) {
      this.need(2);
      n = this.view.getUint16(this.pos);
      this.pos += 2;
    } else if (t === 0xdd) {
      this.need(4);
      n = this.view.getUint32(this.pos);
      this.pos += 4;
    } else throw new FormatError(`expected an array, got type byte 0x${t.toString(16)}`);
    if (n > this.bytes.length - this.pos) throw new FormatError('array longer than the data');
    return n;
  }

  /** A non-negative integer in any msgpack integer form; must be a safe integer. */
  uint(): number {
    const t = this.byte();
    if (t < 0x80) return t;
    const v = this.view;
    let n: number;
    switch (t) {
      case 0xcc:
        return this.byte();
      case 0xcd:
        this.need(2);
        n = v.getUint16(this.pos);
        this.pos += 2;
        return n;
      case 0xce:
        this.need(4);
        n = v.getUint32(this.pos);
        this.pos += 4;
        return n;
      case 0xcf: {
        this.need(8);
        const hi = v.getUint32(this.pos);
        const lo = v.getUint32(this.pos + 4);
        this.pos += 8;
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
    const v = this.view;
    let n: number;
    switch (t) {
      case 0xd0:
        this.need(1);
        n = v.getInt8(this.pos);
        this.pos += 1;
        return n;
      case 0xd1:
        this.need(2);
        n = v.getInt16(this.pos);
        this.pos += 2;
        return n;
      case 0xd2:
        this.need(4);
        n = v.getInt32(this.pos);
        this.pos += 4;
        return n;
      default: {
        this.need(8);
        const hi = v.getInt32(this.pos);
        const lo = v.getUint32(this.pos + 4);
        this.pos += 8;
        n = hi * 0x100000000 + lo;
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
      n = this.view.getFloat64(this.pos + 1);
      this.pos += 9;
    } else if (t === 0xca) {
      this.need(5);
      n = this.view.getFloat32(this.pos + 1);
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
    else if (t === 0xda) {
      this.need(2);
      n = this.view.getUint16(this.pos);
      this.pos += 2;
    } else if (t === 0xdb) {
      this.need(4);
      n = this.view.getUint32(this.pos);
      this.pos += 4;
    } else throw new FormatError(`expected a string, got type byte 0x${t.toString(16)}`);
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
    else if (t === 0xc5) {
      this.need(2);
      n = this.view.getUint16(this.pos);
      this.pos += 2;
    } else if (t === 0xc6) {
      this.need(4);
      n = this.view.getUint32(this.pos);
      this.pos += 4;
    } else throw new FormatError(`expected bin, got type byte 0x${t.toString(16)}`);
    this.need(n);
    const out = this.bytes.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
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
  cacheBytes[slot] = b.slice(start, start + n);
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
