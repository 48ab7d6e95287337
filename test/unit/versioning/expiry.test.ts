import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CorruptObjectError,
  deathTime,
  decodeObject,
  encodeObject,
  expire,
  isDeadAt,
  type Sibling,
  sync,
  update,
  type VersionedObject,
} from '../../../src/versioning/index.js';
import { bytes, hex, objectArb, vv } from './helpers.js';

/** Every dot's expiry is a function of the dot (one write, one expiry), or none. */
function expiryOf(dot: readonly [string, number]): number | undefined {
  return dot[1] % 2 === 0 ? undefined : 100 + dot[1] * 37 + dot[0].charCodeAt(0);
}

/** An object whose live values carry their dot's expiry, then expired at a random time. */
const expiringArb: fc.Arbitrary<VersionedObject> = fc
  .tuple(objectArb, fc.integer({ min: 0, max: 400 }))
  .map(([o, now]) =>
    expire(
      {
        ctx: o.ctx,
        siblings: o.siblings.map((s): Sibling => {
          const at = expiryOf(s.dot);
          return s.value === null || at === undefined ? s : { ...s, expiresAt: at };
        }),
      },
      now,
    ),
  );

const liveDots = (o: VersionedObject, now: number) =>
  o.siblings.filter((s) => s.value !== null && (s.expiresAt ?? Infinity) > now).map((s) => s.dot.join(':'));

describe('expiry in the replica merge', () => {
  it('keeps sync commutative, associative and idempotent whatever each replica expired', () => {
    const triple = fc.tuple(expiringArb, expiringArb, expiringArb);
    fc.assert(
      fc.property(triple, ([x, y, z]) => {
        expect(hex(sync(x, y))).toBe(hex(sync(y, x)));
        expect(hex(sync(sync(x, y), z))).toBe(hex(sync(x, sync(y, z))));
        expect(hex(sync(x, x))).toBe(hex(x));
      }),
    );
  });

  it('never makes a value live again once any replica turned it into a tombstone', () => {
    fc.assert(
      fc.property(expiringArb, expiringArb, fc.integer({ min: 0, max: 400 }), (x, y, now) => {
        const merged = sync(x, y);
        const dead = new Set(
          [...x.siblings, ...y.siblings].filter((s) => s.value === null).map((s) => s.dot.join(':')),
        );
        for (const s of merged.siblings) if (dead.has(s.dot.join(':'))) expect(s.value).toBeNull();
        // Expiring the merge and merging the expired inputs agree.
        expect(hex(expire(merged, now))).toBe(hex(sync(expire(x, now), expire(y, now))));
        expect(
          liveDots(merged, now).every((d) => liveDots(x, now).includes(d) || liveDots(y, now).includes(d)),
        ).toBe(true);
      }),
    );
  });

  it('expire keeps dots, context and expiry, drops the value, and returns the object itself when nothing expired', () => {
    const o = update(undefined, vv({}), 'a', bytes('v'), 1000, 0, undefined, 2000);
    expect(expire(o, 1999)).toBe(o);
    const e = expire(o, 2000);
    expect(e).not.toBe(o);
    expect(e.siblings).toEqual([{ dot: o.siblings[0]!.dot, value: null, timestamp: 1000, expiresAt: 2000 }]);
    expect(e.ctx).toEqual(o.ctx);
    expect(isDeadAt(o, 1999)).toBe(false);
    expect(isDeadAt(o, 2000)).toBe(true);
    expect(deathTime(o)).toBe(2000);
    // A tombstone's time is its timestamp; a value without expiry never dies.
    const both = update(o, vv({}), 'b', null, 3000);
    expect(deathTime(both)).toBe(3000);
    expect(deathTime(update(both, vv({}), 'c', bytes('w'), 4000))).toBeUndefined();
  });

  it('a put whose context saw the expired value removes it; one without keeps it as a dead sibling', () => {
    const o = expire(update(undefined, vv({}), 'a', bytes('v'), 1000, 0, undefined, 2000), 2500);
    const superseding = update(o, o.ctx, 'a', bytes('w'), 3000);
    expect(superseding.siblings.map((s) => s.value && Buffer.from(s.value).toString())).toEqual(['w']);
    const blind = update(o, vv({}), 'a', bytes('w'), 3000);
    expect(blind.siblings).toHaveLength(2);
    expect(liveDots(blind, 3000)).toHaveLength(1);
  });

  it('of two twins (one write, two coordinators) keeps the one that expires first, on every replica', () => {
    const twinA: VersionedObject = {
      ctx: new Map([
        ['b', 1],
        ['\u0000op1', 1],
      ]),
      siblings: [{ dot: ['b', 1], value: bytes('v'), timestamp: 1, op: 'op1', expiresAt: 500 }],
    };
    const twinB: VersionedObject = {
      ctx: new Map([
        ['a', 1],
        ['\u0000op1', 1],
      ]),
      siblings: [{ dot: ['a', 1], value: bytes('v'), timestamp: 1, op: 'op1', expiresAt: 900 }],
    };
    expect(sync(twinA, twinB).siblings.map((s) => s.expiresAt)).toEqual([500]);
    expect(hex(sync(twinA, twinB))).toBe(hex(sync(twinB, twinA)));
  });
});

describe('expiry in the object encoding', () => {
  it('round-trips expiries beside op ids and dot clouds, and writes no field without them', () => {
    fc.assert(
      fc.property(expiringArb, (o) => {
        const decoded = decodeObject(encodeObject(o));
        expect(hex(decoded)).toBe(hex(o));
        expect(decoded.siblings.map((s) => s.expiresAt)).toEqual(o.siblings.map((s) => s.expiresAt));
        const fields = encodeObject(o)[0]! & 0x0f;
        expect(fields === 5).toBe(o.siblings.some((s) => s.expiresAt !== undefined));
      }),
    );
    const withOp = update(undefined, vv({}), 'a', bytes('v'), 1000, 0, 'op-1', 5000);
    const cloudy: VersionedObject = { ...withOp, cloud: new Map([['z', [7]]]) };
    for (const o of [withOp, cloudy]) expect(hex(decodeObject(encodeObject(o)))).toBe(hex(o));
  });

  it('rejects malformed expiry lists', () => {
    const o = update(
      update(undefined, vv({}), 'a', bytes('v'), 1000, 0, undefined, 5000),
      vv({}),
      'b',
      bytes('w'),
      1000,
      0,
      undefined,
      6000,
    );
    const good = Buffer.from(encodeObject(o));
    // The list is the last field: [0, 5000, 1, 6000] as msgpack.
    const tail = good.subarray(good.length - 9);
    expect(tail[0]).toBe(0x94);
    const bad = (patch: (b: Buffer) => void) => {
      const b = Buffer.from(good);
      patch(b);
      return () => decodeObject(b);
    };
    expect(bad((b) => (b[b.length - 8] = 1))).toThrow(CorruptObjectError); // index 1 twice
    expect(bad((b) => (b[b.length - 4] = 7))).toThrow(CorruptObjectError); // index out of range
    expect(() =>
      decodeObject(Buffer.concat([good.subarray(0, good.length - 9), Buffer.from([0x90])])),
    ).toThrow(CorruptObjectError);
    expect(() =>
      decodeObject(Buffer.concat([good.subarray(0, good.length - 9), Buffer.from([0x92, 0x00, 0x00])])),
    ).toThrow(/expiry 0/);
    expect(() =>
      encodeObject({ ...o, siblings: [{ ...o.siblings[0]!, expiresAt: 1.5 }, o.siblings[1]!] }),
    ).toThrow(RangeError);
  });
});
