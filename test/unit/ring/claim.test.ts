import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ClaimMember, claim, isPowerOfTwo } from '../../../src/ring/claim.js';
import {
  balanceErrors,
  counts,
  equalMembers,
  expectedRepeatedWindows,
  memberId,
  moved,
  N,
  repeatedWindows,
  spreadFeasible,
} from './helpers.js';

const QS = [64, 256, 1024] as const;
const SIZES = Array.from({ length: 64 }, (_, i) => i + 1);

/** Balance, and the repeated-window count required for S equal members. */
function expectGoodRing(owners: string[], members: ClaimMember[], q: number): void {
  expect(owners).toHaveLength(q);
  expect(balanceErrors(owners, members)).toEqual([]);
  const expected = expectedRepeatedWindows(q, members.length, N);
  if (expected !== undefined) expect(repeatedWindows(owners, N)).toHaveLength(expected);
}

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let x = seed | 1;
  for (let i = out.length - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('isPowerOfTwo', () => {
  it('accepts powers of two only', () => {
    for (let k = 0; k <= 20; k++) expect(isPowerOfTwo(2 ** k)).toBe(true);
    for (const q of [0, -2, 3, 6, 100, 1023, 1.5, Number.NaN, Number.POSITIVE_INFINITY])
      expect(isPowerOfTwo(q)).toBe(false);
  });
});

describe('claim: equal weights, S = 1..64, N = 3', () => {
  for (const q of QS) {
    it(`Q=${q}: fresh claims are balanced and spread; a join moves only the newcomer's share`, () => {
      for (const s of SIZES) {
        const members = equalMembers(s);
        const owners = claim(undefined, members, N, q);
        expectGoodRing(owners, members, q);

        if (s < 64) {
          const joined = [...members, { id: `join-${s}`, weight: 1 }];
          const after = claim(owners, joined, N, q);
          expectGoodRing(after, joined, q);
          const moves = moved(owners, after);
          expect(moves.length).toBeLessThanOrEqual(Math.ceil(q / (s + 1)) + N);
          // Stronger than the bound: nothing moves except what the newcomer takes.
          expect(moves.every((p) => after[p] === `join-${s}`)).toBe(true);
        }
      }
    });

    it(`Q=${q}: growing one node at a time from 1 to 64 (each claim from the previous ring)`, () => {
      let owners: string[] | undefined;
      for (const s of SIZES) {
        const members = equalMembers(s);
        const next = claim(owners, members, N, q);
        expectGoodRing(next, members, q);
        if (owners !== undefined) {
          const moves = moved(owners, next);
          expect(moves.length).toBeLessThanOrEqual(Math.ceil(q / s) + N);
          expect(moves.every((p) => next[p] === memberId(s - 1))).toBe(true);
        }
        owners = next;
      }
    });

    it(`Q=${q}: a leave hands the leaver's partitions over and keeps balance and spread`, () => {
      let grown: string[] | undefined;
      for (const s of SIZES) {
        const members = equalMembers(s);
        grown = claim(grown, members, N, q);
        if (s < 2) continue;
        for (const base of [grown, claim(undefined, members, N, q)]) {
          for (const gone of [0, s >> 1, s - 1]) {
            const leaver = members[gone]!.id;
            const rest = members.filter((_, i) => i !== gone);
            const after = claim(base, rest, N, q);
            expectGoodRing(after, rest, q);
            expect(after).not.toContain(leaver);
            const had = counts(base).get(leaver) ?? 0;
            const moves = moved(base, after);
            expect(moves.length).toBeGreaterThanOrEqual(had);
            // On a ring grown by joins, well above N members, the leaver's partitions are nearly
            // all that moves. (Small rings, and perfectly round-robin ones, need extra moves: a
            // member adjacent to every one of the leaver's slots must take partitions elsewhere.)
            if (base === grown && s > 6) expect(moves.length).toBeLessThanOrEqual(had + N);
          }
        }
      }
    });
  }

  it('S = N = 3 with 3 ∤ Q: exactly 2 repeated windows, both across the wrap-around', () => {
    for (const q of QS) {
      const owners = claim(undefined, equalMembers(3), N, q);
      expect(repeatedWindows(owners, N)).toEqual([q - 2, q - 1]);
    }
  });

  it('is deterministic: member order does not matter', () => {
    for (const q of QS) {
      for (const s of [3, 7, 16, 64]) {
        const members = equalMembers(s);
        const owners = claim(undefined, members, N, q);
        const rest = members.slice(1);
        const joined = [...members, { id: 'newcomer', weight: 1 }];
        for (let seed = 1; seed <= 3; seed++) {
          expect(claim(undefined, shuffled(members, seed), N, q)).toEqual(owners);
          expect(claim(owners, shuffled(joined, seed), N, q)).toEqual(claim(owners, joined, N, q));
          expect(claim(owners, shuffled(rest, seed), N, q)).toEqual(claim(owners, rest, N, q));
        }
      }
    }
  });

  it('is a fixed point: claiming again with the same members moves nothing', () => {
    for (const q of QS) {
      for (const s of [1, 2, 3, 4, 5, 13, 64]) {
        const members = equalMembers(s);
        const owners = claim(undefined, members, N, q);
        expect(claim(owners, members, N, q)).toEqual(owners);
      }
    }
  });

  it('Q=1024, S=64: a claim takes well under 100 ms', () => {
    const members = equalMembers(64);
    let t = performance.now();
    const owners = claim(undefined, members, N, 1024);
    const fresh = performance.now() - t;
    t = performance.now();
    claim(owners, [...members, { id: 'late', weight: 1 }], N, 1024);
    const join = performance.now() - t;
    // Generous: a sanity check against accidental blow-ups, not a benchmark.
    expect(fresh).toBeLessThan(100);
    expect(join).toBeLessThan(100);
  });
});

describe('claim: small rings (fewer members than N)', () => {
  it('joins up to N members move only the newcomer partitions', () => {
    // Below N members the ring keeps a class per position (p mod N), so the newcomer takes a
    // class whole and nothing else moves; the join to N + 1 is an ordinary one.
    for (const q of [8, 64, 1024]) {
      let owners = claim(undefined, equalMembers(1), N, q);
      expect(new Set(owners)).toEqual(new Set([memberId(0)]));
      for (let s = 2; s <= N + 1; s++) {
        const members = equalMembers(s);
        const next = claim(owners, members, N, q);
        expect(balanceErrors(next, members)).toEqual([]);
        const moves = moved(owners, next);
        if (s <= N) expect(moves.every((p) => next[p] === memberId(s - 1))).toBe(true);
        expect(moves.length).toBeLessThanOrEqual(Math.ceil(q / s) + N);
        owners = next;
      }
    }
  });

  it('handles Q smaller than N and more members than partitions', () => {
    for (const q of [1, 2, 4]) {
      for (const s of [1, 2, 3, 5, 9]) {
        const members = equalMembers(s);
        const owners = claim(undefined, members, N, q);
        expect(balanceErrors(owners, members)).toEqual([]);
        const joined = claim(owners, equalMembers(s + 1), N, q);
        expect(balanceErrors(joined, equalMembers(s + 1))).toEqual([]);
      }
    }
  });
});

describe('claim: weights', () => {
  it('weight 2 holds twice the partitions of weight 1 (±1 of the exact share)', () => {
    for (const q of QS) {
      for (const s of [2, 3, 5, 8, 13, 32]) {
        const members = equalMembers(s).map((m, i) => ({ ...m, weight: i % 2 === 0 ? 2 : 1 }));
        const owners = claim(undefined, members, N, q);
        expect(balanceErrors(owners, members)).toEqual([]);
        const c = counts(owners);
        const unit = q / members.reduce((a, m) => a + m.weight, 0);
        for (const m of members) expect(Math.abs((c.get(m.id) ?? 0) - m.weight * unit)).toBeLessThan(1);
        const heavy = c.get(members[0]!.id)!;
        const light = c.get(members[1]!.id)!;
        expect(Math.abs(heavy - 2 * light)).toBeLessThanOrEqual(2);
        if (spreadFeasible(members, q, N)) expect(repeatedWindows(owners, N)).toEqual([]);
      }
    }
  });

  it('random weights: balanced, spread whenever the counts allow it, order-independent', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...QS),
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 40 }),
        fc.integer(),
        (q, weights, seed) => {
          const members = weights.map((weight, i) => ({ id: memberId(i), weight }));
          const owners = claim(undefined, members, N, q);
          expect(balanceErrors(owners, members)).toEqual([]);
          if (spreadFeasible(members, q, N)) expect(repeatedWindows(owners, N)).toEqual([]);
          expect(claim(undefined, shuffled(members, seed), N, q)).toEqual(owners);
        },
      ),
      { numRuns: 150, seed: 20240611 },
    );
  });

  it('random histories of joins, leaves and weight changes keep every property', () => {
    type Op = { kind: 'join' | 'leave' | 'reweight'; weight: number; pick: number };
    const op = fc.record({
      kind: fc.constantFrom<Op['kind']>('join', 'join', 'leave', 'reweight'),
      weight: fc.integer({ min: 1, max: 4 }),
      pick: fc.nat(),
    });
    fc.assert(
      fc.property(
        fc.constantFrom(64, 256, 1024),
        fc.constantFrom(2, 3, 4),
        fc.array(op, { minLength: 1, maxLength: 20 }),
        (q, n, ops) => {
          let members: ClaimMember[] = [{ id: memberId(0), weight: 1 }];
          let owners = claim(undefined, members, n, q);
          let next = 1;
          for (const o of ops) {
            const before = members;
            if (o.kind === 'join') members = [...members, { id: memberId(next++), weight: o.weight }];
            else if (o.kind === 'leave') {
              if (members.length < 2) continue;
              members = members.filter((_, i) => i !== o.pick % before.length);
            } else
              members = members.map((m, i) =>
                i === o.pick % before.length ? { ...m, weight: o.weight } : m,
              );
            const after = claim(owners, members, n, q);
            expect(balanceErrors(after, members)).toEqual([]);
            if (spreadFeasible(members, q, n)) expect(repeatedWindows(after, n)).toEqual([]);
            expect(claim(owners, shuffled(members, o.pick), n, q)).toEqual(after);
            if (o.kind === 'join' && before.every((m) => m.weight === 1) && o.weight === 1) {
              expect(moved(owners, after).length).toBeLessThanOrEqual(Math.ceil(q / members.length) + n);
            }
            const ids = new Set(members.map((m) => m.id));
            for (const p of moved(owners, after)) {
              // Whatever moved either left a leaver or went somewhere for a reason: never to a non-member.
              expect(ids.has(after[p]!)).toBe(true);
            }
            owners = after;
          }
        },
      ),
      { numRuns: 60, seed: 7 },
    );
  });

  it('an overweight member that cannot be spread still gets exactly its share', () => {
    // 4/7 of 64 is 36.6 partitions: 36 copies cannot be 3 apart on a ring of 64.
    const members = ['a', 'b', 'c', 'd'].map((id, i) => ({ id, weight: i === 0 ? 4 : 1 }));
    const owners = claim(undefined, members, N, 64);
    expect(balanceErrors(owners, members)).toEqual([]);
    expect(spreadFeasible(members, 64, N)).toBe(false);
    // Only the overweight member repeats within a window.
    for (const s of repeatedWindows(owners, N)) {
      const w = [owners[s], owners[(s + 1) % 64], owners[(s + 2) % 64]];
      const repeated = w.filter((id, i) => w.indexOf(id) !== i);
      expect(repeated.every((id) => id === 'a')).toBe(true);
    }
  });
});

describe('claim: checker and validation', () => {
  it('the window checker sees repeats across the wrap-around', () => {
    const ring = Array.from({ length: 64 }, (_, p) => 'abc'[p % 3]!); // ends "...c a" then "a b c"
    expect(repeatedWindows(ring, 3)).toEqual([62, 63]);
    const rotated = [...ring.slice(10), ...ring.slice(0, 10)];
    expect(repeatedWindows(rotated, 3)).toEqual([52, 53]);
  });

  it('rejects bad arguments', () => {
    const members = equalMembers(3);
    expect(() => claim(undefined, members, N, 100)).toThrow(RangeError);
    expect(() => claim(undefined, members, N, 131_072)).toThrow(RangeError);
    expect(() => claim(undefined, members, 0, 64)).toThrow(RangeError);
    expect(() => claim(undefined, [], N, 64)).toThrow(RangeError);
    expect(() => claim(['x'], members, N, 64)).toThrow(RangeError);
    expect(() => claim(undefined, [...members, members[0]!], N, 64)).toThrow(RangeError);
    expect(() => claim(undefined, [{ id: 'a', weight: 0 }], N, 64)).toThrow(RangeError);
    expect(() => claim(undefined, [{ id: 'a', weight: 1.5 }], N, 64)).toThrow(RangeError);
    expect(() => claim(undefined, [{ id: '', weight: 1 }], N, 64)).toThrow(TypeError);
  });
});
