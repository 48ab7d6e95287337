import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { InvalidContextError } from '../../../src/errors.js';
import { quickCheckObject } from '../../../src/versioning/codec.js';
import {
  CorruptObjectError,
  checkObject,
  decodeContext,
  decodeObject,
  encodeContext,
  encodeObject,
  fingerprintInput,
  sync,
  type VersionedObject,
  type VersionVector,
} from '../../../src/versioning/index.js';
import { bytes, commandsArb, hex, objectArb, play, values, vv } from './helpers.js';

const packr = new Packr({ useRecords: false });
const pack = (x: unknown) => packr.pack(x);
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const fromHex = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s/g, ''), 'hex'));
// A reference decoder: our bytes must be plain MessagePack that others read.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false, int64AsType: 'number' });

const anyVectorArb: fc.Arbitrary<VersionVector> = fc
  .array(
    fc.tuple(
      fc.oneof(
        fc.string({ unit: 'binary', maxLength: 40 }),
        fc.constantFrom('__proto__', 'constructor', 'a@k3x9'),
      ),
      fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
    ),
    { maxLength: 12 },
  )
  .map((e) => new Map(e));

describe('context encoding', () => {
  it('round-trips any vector, canonically', () => {
    fc.assert(
      fc.property(anyVectorArb, (v) => {
        const s = encodeContext(v);
        expect(s).toMatch(/^[A-Za-z0-9_-]*$/);
        const back = decodeContext(s);
        expect(back.vector).toEqual(v);
        expect(back.cloud.size).toBe(0);
        // Insertion order does not matter.
        expect(encodeContext(new Map([...v].reverse()))).toBe(s);
        // Plain MessagePack: a flat [actor, counter, ...] array sorted by actor.
        const flat = unpackr.unpack(Buffer.from(s, 'base64url')) as unknown[];
        const sorted = [...v].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).flat();
        expect(flat).toEqual(sorted);
      }),
    );
  });

  it('encodes the empty vector as a short valid string', () => {
    expect(encodeContext(new Map())).toBe('kA');
    expect(decodeContext('kA').vector).toEqual(new Map());
  });

  it('is compact', () => {
    expect(encodeContext(vv({ 'a@k3x9': 3, 'b@p0q1': 12, 'c@zz01': 700 })).length).toBeLessThan(40);
  });

  it('keeps a "__proto__" actor as plain data', () => {
    const v = decodeContext(encodeContext(new Map([['__proto__', 2]]))).vector;
    expect([...v]).toEqual([['__proto__', 2]]);
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  });

  it('refuses counters it could not decode', () => {
    expect(() => encodeContext(vv({ a: 0 }))).toThrow(RangeError);
    expect(() => encodeContext(vv({ a: 1.5 }))).toThrow(RangeError);
    expect(() => encodeContext(vv({ a: 2 ** 53 }))).toThrow(RangeError);
    expect(() => encodeContext(new Map([['\uD800', 1]]))).toThrow(TypeError);
  });

  const valid = encodeContext(vv({ 'a@k3x9': 3, 'b@p0q1': 2 ** 40 }));
  const protoMap = new Map<string, number>([['__proto__', 1]]);
  const manyEntries = b64(pack(Array.from({ length: 1001 }, (_, i) => [`a${i}`, 1]).flat()));
  const bad: [string, unknown][] = [
    ['empty string', ''],
    ['garbage', 'hello world!'],
    ['not base64url (+/)', 'kA+/'],
    ['padding', 'kA=='],
    ['impossible length', 'kAAAA'],
    ['non-canonical trailing bits', 'kB'],
    ['truncated valid context', valid.slice(0, -3)],
    ['valid context plus a byte', b64(Buffer.concat([Buffer.from(valid, 'base64url'), Buffer.from([0x01])]))],
    ['base64 of non-msgpack', b64(Buffer.from([0xc1]))],
    ['base64 of text', b64(Buffer.from('{"a":1}'))],
    ['msgpack string', b64(pack('a'))],
    ['msgpack nil', b64(pack(null))],
    ['msgpack map', b64(pack(new Map([['a', 1]])))],
    ['msgpack object', b64(pack({ a: 1 }))],
    ['msgpack map with __proto__ key', b64(pack(protoMap))],
    ['raw map {"__proto__": {"x": 1}}', b64(fromHex('81 a9 5f5f70726f746f5f5f 81 a1 78 01'))],
    ['odd array', b64(pack(['a', 1, 'b']))],
    ['nested pairs', b64(pack([['a', 1]]))],
    ['number actor', b64(pack([1, 1]))],
    ['nil actor', b64(pack([null, 1]))],
    ['negative counter', b64(pack(['a', -1]))],
    ['negative int8 counter', b64(fromHex('92 a1 61 d0 80'))],
    ['zero counter', b64(pack(['a', 0]))],
    ['float counter', b64(pack(['a', 1.5]))],
    ['float64 integral counter', b64(fromHex('92 a1 61 cb 3ff0000000000000'))],
    ['string counter', b64(pack(['a', '1']))],
    ['boolean counter', b64(pack(['a', true]))],
    ['counter 2^53', b64(fromHex('92 a1 61 cf 0020000000000000'))],
    ['counter 2^64-1', b64(fromHex('92 a1 61 cf ffffffffffffffff'))],
    ['duplicate actors', b64(pack(['a', 1, 'a', 2]))],
    ['invalid UTF-8 actor', b64(fromHex('92 a2 c328 01'))],
    ['array header claiming 2^32-1 entries', b64(fromHex('dd ffffffff a1 61 01'))],
    ['array16 header longer than the data', b64(fromHex('dc 0100 a1 61 01'))],
    ['extension type (timestamp)', b64(fromHex('d6 ff 00000001'))],
    ['extension as counter', b64(fromHex('92 a1 61 d4 01 00'))],
    ['too many entries (default 1000)', manyEntries],
    ['huge', 'A'.repeat(70_000)],
    ['huge but otherwise valid', b64(pack(['x'.repeat(60_000), 1]))],
    ['not a string (number)', 42],
    ['not a string (null)', null],
  ];

  it.each(bad)('rejects %s with InvalidContextError', (_name, s) => {
    expect(() => decodeContext(s as string)).toThrow(InvalidContextError);
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('enforces a custom maxEntries', () => {
    const s = encodeContext(vv({ a: 1, b: 1, c: 1 }));
    expect(decodeContext(s, 3).vector.size).toBe(3);
    expect(() => decodeContext(s, 2)).toThrow(InvalidContextError);
    expect(() => decodeContext(manyEntries, 2000)).not.toThrow();
  });

  it('accepts other valid encodings of a vector (non-minimal integers, unsorted entries)', () => {
    expect(decodeContext(b64(fromHex('94 a1 62 cf 0000000000000002 a1 61 cd 0001'))).vector).toEqual(
      vv({ a: 1, b: 2 }),
    );
  });

  it('rejects random strings without throwing anything else', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (s) => {
        try {
          decodeContext(s);
        } catch (e) {
          expect(e).toBeInstanceOf(InvalidContextError);
        }
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 60 }), (b) => {
        try {
          decodeContext(b64(b));
        } catch (e) {
          expect(e).toBeInstanceOf(InvalidContextError);
        }
      }),
    );
  });
});

describe('object encoding', () => {
  const siblingA = { dot: ['a', 1] as const, value: bytes('a'), timestamp: 0 };
  const anyObjectArb = fc.oneof(
    objectArb,
    commandsArb.map((c) => play(c).snapshots.at(-1) ?? { ctx: new Map(), siblings: [] }),
  );

  it('round-trips, and equal objects give equal bytes', () => {
    fc.assert(
      fc.property(anyObjectArb, anyObjectArb, (x, y) => {
        const b = encodeObject(x);
        const back = decodeObject(b);
        expect(back).toEqual(x);
        expect(hex(back)).toBe(Buffer.from(b).toString('hex'));
        expect(fingerprintInput(x)).toEqual(b);
        // Objects merged in either order (so built with different Map insertion orders) encode alike.
        expect(hex(sync(x, y))).toBe(hex(sync(y, x)));
      }),
    );
  });

  it('is plain MessagePack: [[actor, counter, ...], [actor, counter, timestamp, value|nil, ...]]', () => {
    const o: VersionedObject = {
      ctx: vv({ b: 2, a: 2 ** 31 + 5 }),
      siblings: [
        { dot: ['b', 2], value: null, timestamp: 1.5 },
        { dot: ['a', 2 ** 31 + 5], value: bytes('hi'), timestamp: 2 ** 40 },
      ],
    };
    const b = encodeObject(o);
    expect(unpackr.unpack(b)).toEqual([
      ['a', 2 ** 31 + 5, 'b', 2],
      ['a', 2 ** 31 + 5, 2 ** 40, bytes('hi'), 'b', 2, 1.5, null],
    ]);
    const back = decodeObject(b);
    expect(back.siblings.map((s) => s.dot)).toEqual([
      ['a', 2 ** 31 + 5],
      ['b', 2],
    ]);
    expect(values(back)).toEqual(['hi', null]);
    expect(back.siblings[1]!.timestamp).toBe(1.5);
  });

  it('is compact for a typical object', () => {
    const o: VersionedObject = {
      ctx: vv({ 'a@k3x9': 12, 'b@p0q1': 7, 'c@zz01': 3 }),
      siblings: [{ dot: ['a@k3x9', 12], value: new Uint8Array(10), timestamp: 1_700_000_000_000 }],
    };
    // 3 x (7-byte actor + counter) + actor, counter, 9-byte timestamp, 12-byte value, headers.
    expect(encodeObject(o).length).toBeLessThanOrEqual(60);
  });

  it('round-trips every header size (strings, bins, arrays, integers) and huge values', () => {
    const sizes = [0, 1, 31, 32, 255, 256, 65_535, 65_536, 2_000_000];
    for (const n of sizes) {
      const actor = 'é'.repeat(Math.min(n, 70_000) >> 1) + 'a'.repeat(Math.min(n, 70_000) & 1);
      const value = new Uint8Array(n).fill(n & 0xff);
      const o: VersionedObject = {
        ctx: new Map([
          [actor, n + 1],
          ...Array.from({ length: n % 40 }, (_, i) => [`x${i}`, 2 ** 32 + i] as [string, number]),
        ]),
        siblings: [{ dot: [actor, n + 1], value, timestamp: -n - 0.5 }],
      };
      const back = decodeObject(encodeObject(o));
      expect(back).toEqual(o);
      expect(unpackr.unpack(encodeObject(o))).toBeTruthy();
      const s = encodeContext(o.ctx);
      if (s.length <= 65_536) expect(decodeContext(s).vector).toEqual(o.ctx);
      else expect(() => decodeContext(s)).toThrow(InvalidContextError);
    }
    // The scratch buffer shrank back and still works.
    expect(values(decodeObject(encodeObject({ ctx: vv({ a: 1 }), siblings: [siblingA] })))).toEqual(['a']);
    const many = new Map(Array.from({ length: 70_000 }, (_, i) => [`k${i}`, i + 1] as [string, number]));
    expect(decodeObject(encodeObject({ ctx: many, siblings: [] })).ctx).toEqual(many);
  });

  it('copies values out of the input buffer', () => {
    const o: VersionedObject = {
      ctx: vv({ a: 1 }),
      siblings: [{ dot: ['a', 1], value: bytes('abc'), timestamp: 0 }],
    };
    const buf = Buffer.from(encodeObject(o));
    const back = decodeObject(buf);
    buf.fill(0);
    expect(values(back)).toEqual(['abc']);
  });

  it('copies values of every size into plain Uint8Arrays that alias nothing', () => {
    // Small copies share a slab (see msgpack.ts copyOut), large ones get their own memory.
    const sizes = [0, 1, 64, 65, 200, 2047, 2048, 2049, 5000, 9000];
    const objects = sizes.map(
      (n, i): VersionedObject => ({
        ctx: vv({ a: i + 1 }),
        siblings: [{ dot: ['a', i + 1], value: new Uint8Array(n).fill((i % 250) + 1), timestamp: i }],
      }),
    );
    const encoded = objects.map((o) => Buffer.from(encodeObject(o)));
    const decoded = encoded.map((b) => decodeObject(b));
    for (const b of encoded) b.fill(0);
    for (let i = 0; i < sizes.length; i++) {
      const value = decoded[i]!.siblings[0]!.value!;
      expect(value.constructor).toBe(Uint8Array);
      expect(value).toEqual(objects[i]!.siblings[0]!.value);
      // Writing into one copy (or its slice) changes no other.
      value.slice().fill(0);
      value.fill(0xff);
      for (let j = 0; j < sizes.length; j++) {
        if (j !== i) expect(decoded[j]!.siblings[0]!.value).toEqual(objects[j]!.siblings[0]!.value);
      }
      value.set(objects[i]!.siblings[0]!.value!);
    }
    // Encoded objects are such copies too.
    const a = encodeObject(objects[3]!);
    const b = encodeObject(objects[4]!);
    a.fill(0);
    expect(decodeObject(b)).toEqual(objects[4]);
  });

  it('reads every MessagePack number form the way a reference encoder writes it', () => {
    const timestampArb = fc.oneof(
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
      fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.constantFrom(-1, -32, -33, -128, -129, -32768, -32769, 255, 256, 65535, 65536, 2 ** 32, 1.5),
    );
    // msgpackr writes integers above 2^32 as float64, which a counter may not be (the 0xcf form
    // of larger counters is covered by the round trips above).
    const counterArb = fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 2 ** 32 - 1 }));
    for (const float32 of [false, true]) {
      // float32 packing (where exact) exercises the 0xca form.
      const p = new Packr({ useRecords: false, useFloat32: float32 ? 1 : 0 });
      fc.assert(
        fc.property(counterArb, timestampArb, (counter, timestamp) => {
          const b = p.pack([
            ['a', counter],
            ['a', counter, timestamp, null],
          ]);
          const o = decodeObject(b);
          expect(o.ctx.get('a')).toBe(counter);
          expect(o.siblings[0]!.dot).toEqual(['a', counter]);
          expect(o.siblings[0]!.timestamp).toBe(unpackr.unpack(b)[1][2]);
        }),
      );
    }
    // The signed forms msgpackr does not pick for these values, and the 64-bit ones.
    const withTimestamp = (hexNumber: string) => fromHex(`92 92 a1 61 01 94 a1 61 01 ${hexNumber} c0`);
    const forms: [string, number][] = [
      ['d0 ff', -1],
      ['d0 7f', 127],
      ['d1 8000', -32768],
      ['d2 80000000', -(2 ** 31)],
      ['d2 7fffffff', 2 ** 31 - 1],
      ['d3 ffffffffffffffff', -1],
      ['d3 ffe0000000000001', Number.MIN_SAFE_INTEGER],
      ['d3 001fffffffffffff', Number.MAX_SAFE_INTEGER],
      ['cf 001fffffffffffff', Number.MAX_SAFE_INTEGER],
      ['cf 0000000100000000', 2 ** 32],
      ['ce ffffffff', 2 ** 32 - 1],
      ['cd ffff', 65535],
      ['cb c00c000000000000', -3.5],
      ['ca c0600000', -3.5],
    ];
    for (const [h, n] of forms) expect(decodeObject(withTimestamp(h)).siblings[0]!.timestamp).toBe(n);
    expect(() => decodeObject(withTimestamp('d3 ffdfffffffffffff'))).toThrow(CorruptObjectError);
    expect(() => decodeObject(withTimestamp('cf 0020000000000000'))).toThrow(CorruptObjectError);
    expect(() => decodeObject(withTimestamp('cb 7ff0000000000000'))).toThrow(CorruptObjectError);
  });

  it('sorts unsorted siblings and accepts them back', () => {
    const o: VersionedObject = {
      ctx: vv({ a: 1, b: 1 }),
      siblings: [
        { dot: ['b', 1], value: bytes('b'), timestamp: 0 },
        { dot: ['a', 1], value: bytes('a'), timestamp: 0 },
      ],
    };
    expect(values(decodeObject(encodeObject(o)))).toEqual(['a', 'b']);
    const unsorted = pack([
      ['a', 1, 'b', 1],
      ['b', 1, 0, Buffer.from('b'), 'a', 1, 0, Buffer.from('a')],
    ]);
    expect(values(decodeObject(unsorted))).toEqual(['a', 'b']);
  });

  it('refuses to encode what it could not decode', () => {
    const ok = { dot: ['a', 1] as const, value: null, timestamp: 0 };
    expect(() => encodeObject({ ctx: vv({ a: 0 }), siblings: [] })).toThrow(RangeError);
    expect(() => encodeObject({ ctx: vv({ a: 1 }), siblings: [{ ...ok, timestamp: Number.NaN }] })).toThrow(
      RangeError,
    );
    expect(() => encodeObject({ ctx: vv({ a: 1 }), siblings: [{ ...ok, dot: ['a', 0] }] })).toThrow(
      RangeError,
    );
  });

  const good = encodeObject({
    ctx: vv({ a: 2 }),
    siblings: [{ dot: ['a', 2], value: bytes('v'), timestamp: 5 }],
  });
  const corrupt: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['truncated', good.subarray(0, good.length - 1)],
    ['trailing byte', Buffer.concat([good, Buffer.from([0])])],
    ['not an array', pack('x')],
    ['map', pack({ ctx: [], siblings: [] })],
    ['three elements', pack([[], [], []])],
    [
      'sibling array not a multiple of 4',
      pack([
        ['a', 1],
        ['a', 1, 0],
      ]),
    ],
    [
      'sibling not covered by ctx',
      pack([
        ['a', 1],
        ['a', 2, 0, null],
      ]),
    ],
    [
      'sibling of unknown actor',
      pack([
        ['a', 1],
        ['b', 1, 0, null],
      ]),
    ],
    [
      'duplicate dot',
      pack([
        ['a', 1],
        ['a', 1, 0, null, 'a', 1, 0, null],
      ]),
    ],
    [
      'sibling counter 0',
      pack([
        ['a', 1],
        ['a', 0, 0, null],
      ]),
    ],
    ['ctx counter 0', pack([['a', 0], []])],
    ['duplicate ctx actor', pack([['a', 1, 'a', 2], []])],
    [
      'value as string',
      pack([
        ['a', 1],
        ['a', 1, 0, 'v'],
      ]),
    ],
    [
      'timestamp as string',
      pack([
        ['a', 1],
        ['a', 1, '0', null],
      ]),
    ],
    ['NaN timestamp', fromHex('92 92 a1 61 01 94 a1 61 01 cb 7ff8000000000000 c0')],
    ['bin longer than the data', fromHex('92 92 a1 61 01 94 a1 61 01 00 c6 ffffffff')],
    ['array header claiming 2^32-1 siblings', fromHex('92 92 a1 61 01 dd ffffffff')],
  ];

  it.each(corrupt)('rejects %s with CorruptObjectError', (_name, b) => {
    expect(() => decodeObject(b)).toThrow(CorruptObjectError);
    expect(() => checkObject(b)).toThrow(CorruptObjectError);
    expect(quickCheckObject(b)).toBe(-1);
  });

  it('rejects random bytes without throwing anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (b) => {
        try {
          decodeObject(b);
        } catch (e) {
          expect(e).toBeInstanceOf(CorruptObjectError);
        }
      }),
    );
    // Every truncation of a real encoding is caught.
    fc.assert(
      fc.property(objectArb, fc.nat(), (o, cut) => {
        const b = encodeObject(o);
        const n = cut % b.length;
        expect(() => decodeObject(b.subarray(0, n))).toThrow(CorruptObjectError);
      }),
    );
    expect(() => decodeObject('x' as unknown as Uint8Array)).toThrow(CorruptObjectError);
  });
});

/** What decodeObject makes of `b`: its ctx size, or the error it throws. */
function decodeOutcome(b: Uint8Array): { entries: number } | { error: string } {
  try {
    return { entries: decodeObject(b).ctx.size };
  } catch (e) {
    expect(e).toBeInstanceOf(CorruptObjectError);
    return { error: (e as Error).message };
  }
}

function checkOutcome(b: Uint8Array): { entries: number } | { error: string } {
  try {
    const checked = checkObject(b);
    expect(checked.object).toEqual(decodeObject(b));
    return { entries: checked.ctxEntries };
  } catch (e) {
    expect(e).toBeInstanceOf(CorruptObjectError);
    return { error: (e as Error).message };
  }
}

describe('checkObject (decodes only when asked)', () => {
  const realActorsArb = fc
    .array(fc.constantFrom('a@mx6h5srvmsziwy', 'b@mx6h5ss011x6e82', 'c@mx6h5st01bi9wr5', '1', '2'), {
      maxLength: 8,
    })
    .chain((actors) =>
      fc.tuple(
        fc.constant([...new Set(actors)]),
        fc.array(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), { minLength: 8, maxLength: 8 }),
        fc.array(fc.oneof(fc.nat(), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })), {
          minLength: 8,
          maxLength: 8,
        }),
        fc.array(fc.option(fc.uint8Array({ maxLength: 300 })), { minLength: 8, maxLength: 8 }),
        fc.nat(),
      ),
    )
    .map(([actors, counters, timestamps, values, pick]): VersionedObject => {
      const ctx = new Map(actors.map((a, i) => [a, counters[i]!]));
      const siblings = actors
        .filter((_, i) => (pick >> i) & 1)
        .slice(0, 4)
        .map((a, i) => ({ dot: [a, ctx.get(a)!] as const, value: values[i]!, timestamp: timestamps[i]! }));
      return { ctx, siblings };
    });
  const anyArb = fc.oneof(
    objectArb,
    realActorsArb,
    commandsArb.map((c) => play(c).snapshots.at(-1) ?? { ctx: new Map(), siblings: [] }),
  );

  it('accepts what encodeObject writes, decoding it to the same object, and skips the decode for the common shape', () => {
    fc.assert(
      fc.property(anyArb, (o) => {
        const b = encodeObject(o);
        expect(checkOutcome(b)).toEqual({ entries: o.ctx.size });
        const common =
          o.ctx.size <= 7 &&
          o.siblings.length <= 3 &&
          o.siblings.every(
            (s) => s.op === undefined && Number.isSafeInteger(s.timestamp) && s.timestamp >= 0,
          );
        if (common) expect(quickCheckObject(b)).toBe(o.ctx.size);
      }),
    );
  });

  it('accepts and rejects exactly what decodeObject does, with the same error', () => {
    const mutated = fc
      .tuple(
        anyArb,
        fc.array(
          fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'delete')),
          {
            minLength: 1,
            maxLength: 3,
          },
        ),
      )
      .map(([o, edits]) => {
        const b = [...encodeObject(o)];
        for (const [at, byte, kind] of edits) {
          const i = at % (b.length + 1);
          if (kind === 'set' && i < b.length) b[i] = byte;
          else if (kind === 'insert') b.splice(i, 0, byte);
          else b.splice(i, 1);
        }
        return new Uint8Array(b);
      });
    fc.assert(
      fc.property(fc.oneof(mutated, fc.uint8Array({ maxLength: 80 })), (b) => {
        const expected = decodeOutcome(b);
        expect(checkOutcome(b)).toEqual(expected);
        const quick = quickCheckObject(b);
        if (quick >= 0) expect(expected).toEqual({ entries: quick });
      }),
      { numRuns: 3000 },
    );
  });

  it('leaves the fallback to decodeObject for unsorted siblings, floats and non-ASCII actors', () => {
    const cases = [
      pack([
        ['a', 1, 'b', 1],
        ['b', 1, 0, null, 'a', 1, 0, null],
      ]),
      fromHex('92 92 a1 61 01 94 a1 61 01 cb 3ff8000000000000 c0'),
      fromHex('92 92 a1 61 01 94 a1 61 01 ff c0'),
      pack([
        ['é', 1],
        ['é', 1, 0, null],
      ]),
    ];
    for (const b of cases) {
      expect(quickCheckObject(b)).toBe(-1);
      expect(checkOutcome(b)).toEqual(decodeOutcome(b));
      expect('entries' in decodeOutcome(b)).toBe(true);
    }
  });
});
