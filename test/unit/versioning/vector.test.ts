import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compare,
  covers,
  decodeContext,
  decodeObject,
  descends,
  encodeContext,
  encodeObject,
  mergeVectors,
} from '../../../src/versioning/index.js';
import { vectorArb, vv } from './helpers.js';

describe('classic vector clock cases', () => {
  it('{} equals {}', () => {
    expect(compare(vv({}), vv({}))).toBe('equal');
  });

  it('{1:2,2:1} equals itself', () => {
    expect(compare(vv({ 1: 2, 2: 1 }), vv({ 1: 2, 2: 1 }))).toBe('equal');
  });

  it('{1:2,2:1} is before {1:2,2:1,3:1}', () => {
    expect(compare(vv({ 1: 2, 2: 1 }), vv({ 1: 2, 2: 1, 3: 1 }))).toBe('before');
    expect(compare(vv({ 1: 2, 2: 1, 3: 1 }), vv({ 1: 2, 2: 1 }))).toBe('after');
  });

  it.each([
    [{ 1: 1 }, { 2: 1 }],
    [
      { 1: 2, 2: 1 },
      { 1: 2, 3: 1 },
    ],
    [
      { 1: 1, 2: 1, 3: 2 },
      { 1: 2, 2: 1, 3: 1 },
    ],
  ])('%j and %j are concurrent', (a, b) => {
    expect(compare(vv(a), vv(b))).toBe('concurrent');
    expect(compare(vv(b), vv(a))).toBe('concurrent');
  });

  it('{2:2} is before {1:1,2:2,3:1}, and the reverse is after', () => {
    expect(compare(vv({ 2: 2 }), vv({ 1: 1, 2: 2, 3: 1 }))).toBe('before');
    expect(compare(vv({ 1: 1, 2: 2, 3: 1 }), vv({ 2: 2 }))).toBe('after');
  });

  it('merging {1:3,2:1,3:1,5:1} with {1:1,2:2,4:1} gives {1:3,2:2,3:1,4:1,5:1}', () => {
    const m = mergeVectors(vv({ 1: 3, 2: 1, 3: 1, 5: 1 }), vv({ 1: 1, 2: 2, 4: 1 }));
    expect(m).toEqual(vv({ 1: 3, 2: 2, 3: 1, 4: 1, 5: 1 }));
    expect(compare(m, vv({ 1: 3, 2: 2, 3: 1, 4: 1, 5: 1 }))).toBe('equal');
  });

  it('counters above 2^31 survive the context and object encodings', () => {
    const v = vv({ 1: 2 ** 31 + 5, 2: 2 ** 40, 3: Number.MAX_SAFE_INTEGER });
    expect(decodeContext(encodeContext(v)).vector).toEqual(v);
    const o = {
      ctx: v,
      siblings: [{ dot: ['1', 2 ** 31 + 5] as const, value: new Uint8Array([7]), timestamp: 2 ** 41 }],
    };
    const back = decodeObject(encodeObject(o));
    expect(back.ctx).toEqual(v);
    expect(back.siblings[0]!.dot).toEqual(['1', 2 ** 31 + 5]);
    expect(back.siblings[0]!.timestamp).toBe(2 ** 41);
  });

  it('covers and descends', () => {
    expect(covers(vv({ 1: 3 }), ['1', 3])).toBe(true);
    expect(covers(vv({ 1: 3 }), ['1', 4])).toBe(false);
    expect(covers(vv({}), ['1', 1])).toBe(false);
    expect(descends(vv({ 1: 2, 2: 1 }), vv({ 1: 2 }))).toBe(true);
    expect(descends(vv({ 1: 2 }), vv({ 1: 2, 2: 1 }))).toBe(false);
    expect(descends(vv({}), vv({}))).toBe(true);
  });
});

describe('compare is a partial order consistent with merge', () => {
  it('is reflexive', () => {
    fc.assert(fc.property(vectorArb(), (a) => compare(a, new Map(a)) === 'equal'));
  });

  it('is antisymmetric, and agrees with descends', () => {
    fc.assert(
      fc.property(vectorArb(3), vectorArb(3), (a, b) => {
        const ab = compare(a, b);
        const ba = compare(b, a);
        const flip = { before: 'after', after: 'before', equal: 'equal', concurrent: 'concurrent' } as const;
        expect(ba).toBe(flip[ab]);
        expect(ab === 'equal' || ab === 'after').toBe(descends(a, b));
        expect(ab === 'equal' || ab === 'before').toBe(descends(b, a));
        if (ab === 'equal') expect(a).toEqual(b);
      }),
    );
  });

  it('is transitive', () => {
    // Random triples rarely form chains, so build a <= b <= c by merging.
    fc.assert(
      fc.property(vectorArb(), vectorArb(), vectorArb(), (a, x, y) => {
        const b = mergeVectors(a, x);
        const c = mergeVectors(b, y);
        const ab = compare(a, b);
        const bc = compare(b, c);
        expect(['before', 'equal']).toContain(ab);
        expect(['before', 'equal']).toContain(bc);
        expect(compare(a, c)).toBe(ab === 'equal' && bc === 'equal' ? 'equal' : 'before');
      }),
    );
    fc.assert(
      fc.property(vectorArb(3), vectorArb(3), vectorArb(3), (a, b, c) => {
        if (descends(b, a) && descends(c, b)) expect(descends(c, a)).toBe(true);
      }),
    );
  });

  it('mergeVectors is the least upper bound', () => {
    fc.assert(
      fc.property(vectorArb(), vectorArb(), vectorArb(), (a, b, c) => {
        const m = mergeVectors(a, b);
        expect(['before', 'equal']).toContain(compare(a, m));
        expect(['before', 'equal']).toContain(compare(b, m));
        expect(compare(m, mergeVectors(b, a))).toBe('equal');
        expect(compare(mergeVectors(m, c), mergeVectors(a, mergeVectors(b, c)))).toBe('equal');
        // Anything above both is above the merge.
        const upper = mergeVectors(m, c);
        expect(descends(upper, m)).toBe(true);
        if (descends(c, a) && descends(c, b)) expect(descends(c, m)).toBe(true);
      }),
    );
  });

  it('does not mutate its arguments', () => {
    const a = vv({ 1: 1 });
    const b = vv({ 2: 1 });
    mergeVectors(a, b);
    expect(a).toEqual(vv({ 1: 1 }));
    expect(b).toEqual(vv({ 2: 1 }));
  });
});
