import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { claim } from '../../../src/ring/claim.js';
import { zoneReport } from '../../../src/ring/zones.js';
import {
  balanceErrors,
  counts,
  moved,
  type ZonedClaimMember,
  zoneBand,
  zoneCounts,
  zoneSpanViolations,
} from './helpers.js';

/** `per[z]` members in zone z (ids `z<z>-<i>`), all of weight 1 unless `weights` says otherwise. */
function layout(per: readonly number[], weights?: readonly number[][]): ZonedClaimMember[] {
  return per.flatMap((k, z) =>
    Array.from({ length: k }, (_, i) => ({
      id: `z${z}-${i}`,
      weight: weights?.[z]?.[i] ?? 1,
      zone: `az-${z}`,
    })),
  );
}

const zoneOf = (members: readonly ZonedClaimMember[]) => {
  const m = new Map(members.map((x) => [x.id, x.zone]));
  return (id: string) => m.get(id);
};

/** Σ over members of what they gained: the fewest partitions any ring with these counts moves. */
function lowerBound(before: readonly string[], after: readonly string[]): number {
  const a = counts(before);
  let lb = 0;
  for (const [id, k] of counts(after)) lb += Math.max(0, k - (a.get(id) ?? 0));
  return lb;
}

/** `total` split by weight, no share above `cap` (what a capped member cannot take goes to the others). */
function cappedShares(total: number, weights: number[], cap: number): number[] {
  const out = weights.map(() => 0);
  const fixed = weights.map(() => false);
  let left = total;
  for (;;) {
    const free = weights.reduce((a, w, i) => (fixed[i] ? a : a + w), 0);
    let changed = false;
    weights.forEach((w, i) => {
      if (fixed[i]) return;
      out[i] = (left * w) / free;
    });
    weights.forEach((_, i) => {
      if (!fixed[i] && out[i]! > cap) {
        fixed[i] = true;
        out[i] = cap;
        left -= cap;
        changed = true;
      }
    });
    if (!changed) return out;
  }
}

/**
 * Counts as the guarantee allows: every member ⌊⌋/⌈⌉ of Q·w/Σw when every zone's weighted share
 * lies in its band; otherwise every zone inside its band (±1), the unclamped zones in proportion
 * to their weights, and members of a zone ⌊⌋/⌈⌉ of their weighted share of the zone's count.
 */
function expectZoneBalance(owners: string[], members: ZonedClaimMember[], n: number): void {
  const q = owners.length;
  const band = zoneBand(members, n, q);
  const total = members.reduce((a, m) => a + m.weight, 0);
  const zoneWeight = new Map<string, number>();
  for (const m of members) zoneWeight.set(m.zone, (zoneWeight.get(m.zone) ?? 0) + m.weight);
  const inBand = [...zoneWeight].every(([z, w]) => {
    const b = band.get(z)!;
    return w / total >= b.lo - 1e-12 && w / total <= b.hi + 1e-12;
  });
  if (inBand) {
    expect(balanceErrors(owners, members)).toEqual([]);
    return;
  }
  const zc = zoneCounts(owners, members);
  const unclamped: string[] = [];
  for (const [z, w] of zoneWeight) {
    const c = zc.get(z) ?? 0;
    const b = band.get(z)!;
    expect(c).toBeGreaterThanOrEqual(Math.floor(q * b.lo) - 1);
    expect(c).toBeLessThanOrEqual(Math.ceil(q * b.hi) + 1);
    if (c > q * b.lo + 1 && c < q * b.hi - 1) unclamped.push(z);
    const own = counts(owners);
    // With fewer zones than N a member holds at most Q/L (one per window); the rest of its zone's
    // count goes to its zone-mates by weight.
    const l = Math.min(n, q);
    const cap = l > Math.min(l, zoneWeight.size) ? q / l : Number.POSITIVE_INFINITY;
    const inZone = members.filter((x) => x.zone === z);
    const shares = cappedShares(
      c,
      inZone.map((x) => x.weight),
      cap,
    );
    inZone.forEach((m, i) => {
      const k = own.get(m.id) ?? 0;
      expect(k).toBeGreaterThanOrEqual(Math.floor(shares[i]!) - 1);
      expect(k).toBeLessThanOrEqual(Math.ceil(shares[i]!) + 1);
    });
    void w;
  }
  // Zones at no bound share what the clamped ones left in proportion to their weights.
  for (const a of unclamped) {
    for (const b of unclamped) {
      const ra = (zc.get(a) ?? 0) / zoneWeight.get(a)!;
      const rb = (zc.get(b) ?? 0) / zoneWeight.get(b)!;
      expect(Math.abs(ra - rb)).toBeLessThanOrEqual(1 / zoneWeight.get(a)! + 1 / zoneWeight.get(b)! + 1e-9);
    }
  }
}

describe('claim with zones: the guarantee', () => {
  it('6 nodes in 3 zones, N = 3: every key has one replica in each zone', () => {
    for (const q of [64, 256, 1024, 4096]) {
      const members = layout([2, 2, 2]);
      const owners = claim(undefined, members, 3, q);
      expect(zoneSpanViolations(owners, members, 3)).toEqual([]);
      expect(balanceErrors(owners, members)).toEqual([]);
      expect(zoneReport(owners, zoneOf(members), 3)).toEqual({ zones: 3, required: 3, violations: 0 });
    }
  });

  it('3 ∤ Q: one member owns two neighbouring partitions, so every preference list still spans 3 zones', () => {
    const members = layout(
      [1, 1, 1, 1, 1, 1]
        .map(() => 1)
        .slice(0, 3)
        .map(() => 2),
    );
    const owners = claim(undefined, members, 3, 256);
    // 256 = 3·85 + 1: a window of 3 consecutive partitions cannot always hold 3 zones...
    const zone = zoneOf(members);
    const windowsLacking = owners.filter(
      (_, p) => new Set([0, 1, 2].map((k) => zone(owners[(p + k) % 256]!))).size < 3,
    ).length;
    expect(windowsLacking).toBeGreaterThan(0);
    // ...but the preference list skips a member it already has and always reaches the third zone.
    expect(zoneSpanViolations(owners, members, 3)).toEqual([]);
  });

  it('two zones for N = 3: every key in both zones', () => {
    for (const q of [64, 256, 1024]) {
      for (const per of [
        [3, 3],
        [2, 4],
        [5, 1],
        [2, 2],
      ]) {
        const members = layout(per);
        const owners = claim(undefined, members, 3, q);
        expect(zoneSpanViolations(owners, members, 3)).toEqual([]);
        expectZoneBalance(owners, members, 3);
      }
    }
  });

  it('a zone heavier than 1/N holds at most Q/N; the others take the rest by weight (reported skew, no violation)', () => {
    const members = layout([1, 1, 1, 1], [[10], [1], [1], [1]]);
    const owners = claim(undefined, members, 3, 1024);
    expect(zoneSpanViolations(owners, members, 3)).toEqual([]);
    const zc = zoneCounts(owners, members);
    expect(zc.get('az-0')).toBeLessThanOrEqual(Math.ceil(1024 / 3));
    expect(zc.get('az-1')! + zc.get('az-2')! + zc.get('az-3')!).toBe(1024 - zc.get('az-0')!);
    expectZoneBalance(owners, members, 3);
  });

  it('a lone member in a fourth zone holds its weighted share, not a replica of everything', () => {
    const members = [...layout([3, 3, 3]), { id: 'lone', weight: 1, zone: 'az-new' }];
    const owners = claim(undefined, members, 3, 1024);
    expect(zoneSpanViolations(owners, members, 3)).toEqual([]);
    expect(balanceErrors(owners, members)).toEqual([]);
    expect(counts(owners).get('lone')).toBeLessThanOrEqual(Math.ceil(1024 / 10));
  });

  it('one zone, or no zones: exactly the claim without zones', () => {
    for (const q of [64, 256]) {
      const plain = Array.from({ length: 7 }, (_, i) => ({ id: `m${i}`, weight: 1 + (i % 3) }));
      const base = claim(undefined, plain, 3, q);
      expect(
        claim(
          undefined,
          plain.map((m) => ({ ...m, zone: 'only' })),
          3,
          q,
        ),
      ).toEqual(base);
      expect(
        claim(
          undefined,
          plain.map((m) => ({ ...m, zone: undefined })),
          3,
          q,
        ),
      ).toEqual(base);
      const joined = [...plain, { id: 'm7', weight: 2 }];
      expect(
        claim(
          base,
          joined.map((m) => ({ ...m, zone: 'only' })),
          3,
          q,
        ),
      ).toEqual(claim(base, joined, 3, q));
    }
  });

  it('N = 1, or no more members than N: zones change nothing (every key is on all of them, or needs one)', () => {
    const members = layout([2, 1]);
    const plain = members.map(({ id, weight }) => ({ id, weight }));
    expect(claim(undefined, members, 3, 256)).toEqual(claim(undefined, plain, 3, 256));
    const six = layout([2, 2, 2]);
    expect(claim(undefined, six, 1, 256)).toEqual(
      claim(
        undefined,
        six.map(({ id, weight }) => ({ id, weight })),
        1,
        256,
      ),
    );
  });
});

describe('claim with zones: movement', () => {
  it('a node joining a zone of 3 zones × 2 (N = 3) takes only from its zone, exactly its share of the zone', () => {
    for (const q of [256, 1024, 4096]) {
      const before = layout([2, 2, 2]);
      const owners = claim(undefined, before, 3, q);
      const after = [...before, { id: 'z0-2', weight: 1, zone: 'az-0' }];
      const next = claim(owners, after, 3, q);
      expect(zoneSpanViolations(next, after, 3)).toEqual([]);
      const moves = moved(owners, next);
      expect(moves.every((p) => next[p] === 'z0-2')).toBe(true);
      expect(moves.length).toBe(lowerBound(owners, next));
      // The zone keeps a third of the partitions (each zone holds one replica of every key).
      expect(Math.abs(counts(next).get('z0-2')! - q / 9)).toBeLessThan(1);
    }
  });

  it('adding a fourth zone moves exactly what the new zone must hold (Q/4)', () => {
    for (const q of [256, 1024, 4096]) {
      const owners = claim(undefined, layout([2, 2, 2]), 3, q);
      const next = claim(owners, layout([2, 2, 2, 2]), 3, q);
      expect(zoneSpanViolations(next, layout([2, 2, 2, 2]), 3)).toEqual([]);
      expect(moved(owners, next).length).toBe(q / 4);
      expect(moved(owners, next).every((p) => next[p]!.startsWith('z3-'))).toBe(true);
    }
  });

  it('a node leaving hands its partitions to its zone-mates when the zone count stays (and at most two repair swaps)', () => {
    for (const q of [256, 1024]) {
      const before = layout([3, 2, 2]);
      const owners = claim(undefined, before, 3, q);
      const after = before.filter((m) => m.id !== 'z0-1');
      const next = claim(owners, after, 3, q);
      expect(zoneSpanViolations(next, after, 3)).toEqual([]);
      const moves = moved(owners, next);
      // The leaver's partitions, and at most two repair swaps more.
      expect(moves.length).toBeGreaterThanOrEqual(counts(owners).get('z0-1')!);
      expect(moves.length).toBeLessThanOrEqual(counts(owners).get('z0-1')! + 4);
      expect(moves.filter((p) => !next[p]!.startsWith('z0-')).length).toBeLessThanOrEqual(4);
    }
  });
});

describe('claim with zones: properties on random layouts', () => {
  // 2–6 zones of 1–4 members, weights 1–4, N 1–5, Q 64–4096.
  const arbLayout = fc
    .array(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }), {
      minLength: 2,
      maxLength: 6,
    })
    .map((zones) =>
      zones.flatMap((weights, z) =>
        weights.map((weight, i) => ({ id: `m${z}.${i}`, weight, zone: `zone-${z}` }) as ZonedClaimMember),
      ),
    );
  const arbQ = fc.constantFrom(64, 128, 256, 512, 1024, 4096);
  const arbN = fc.integer({ min: 1, max: 5 });

  it('fresh claims: the guarantee holds, the report is exact, counts follow the weights as the band allows, order does not matter', () => {
    fc.assert(
      fc.property(arbLayout, arbQ, arbN, fc.integer(), (members, q, n, seed) => {
        const owners = claim(undefined, members, n, q);
        const violations = zoneSpanViolations(owners, members, n);
        expect(violations).toEqual([]);
        expect(zoneReport(owners, zoneOf(members), n).violations).toBe(violations.length);
        if (members.length > n && n > 1) expectZoneBalance(owners, members, n);
        else expect(balanceErrors(owners, members)).toEqual([]);
        const shuffled = [...members].sort(
          (a, b) => ((a.id.length * 31 + seed) % 7) - ((b.id.length * 17 + seed) % 7),
        );
        expect(claim(undefined, shuffled, n, q)).toEqual(owners);
      }),
      { numRuns: 60, seed: 26 },
    );
  });

  it('joins and leaves: the guarantee holds, moves stay within twice what the new counts need, a claimed ring is a fixed point', () => {
    fc.assert(
      fc.property(
        arbLayout,
        arbQ,
        fc.integer({ min: 2, max: 5 }),
        fc.boolean(),
        fc.nat(),
        fc.integer({ min: 1, max: 4 }),
        (members, q, n, leave, pick, weight) => {
          if (members.length <= n + 1) return;
          const owners = claim(undefined, members, n, q);
          const zones = [...new Set(members.map((m) => m.zone))];
          const next = leave
            ? members.filter((_, i) => i !== pick % members.length)
            : [...members, { id: 'newcomer', weight, zone: zones[pick % zones.length]! }];
          const after = claim(owners, next, n, q);
          expect(zoneSpanViolations(after, next, n)).toEqual([]);
          const moves = moved(owners, after).length;
          const lb = lowerBound(owners, after);
          expect(moves).toBeLessThanOrEqual(2 * lb + 4 * n);
          // Zone counts unchanged: nothing crosses a zone, and little beyond the lower bound moves.
          const zBefore = zoneCounts(owners, members);
          const zAfter = zoneCounts(after, next);
          if (zones.every((z) => zBefore.get(z) === zAfter.get(z))) {
            const zone = zoneOf([...members, ...next]);
            for (const p of moved(owners, after)) expect(zone(after[p]!)).toBe(zone(owners[p]!));
            expect(moves).toBeLessThanOrEqual(lb + 2 * n);
          }
          expect(claim(after, next, n, q)).toEqual(after);
        },
      ),
      { numRuns: 60, seed: 2026 },
    );
  });
});

describe('zoneReport', () => {
  it('counts exactly the partitions whose replicas lack a zone, on a hand-made ring', () => {
    // a1 b1 a2 b2 | c1: zones A B A B C; N = 3 needs 3 zones.
    const members = [
      { id: 'a1', weight: 1, zone: 'A' },
      { id: 'a2', weight: 1, zone: 'A' },
      { id: 'b1', weight: 1, zone: 'B' },
      { id: 'b2', weight: 1, zone: 'B' },
      { id: 'c1', weight: 1, zone: 'C' },
    ];
    const owners = ['a1', 'b1', 'a2', 'b2', 'c1', 'a1', 'b1', 'c1'];
    const expected = zoneSpanViolations(owners, members, 3);
    expect(expected).toEqual([0, 1]);
    expect(zoneReport(owners, zoneOf(members), 3)).toEqual({ zones: 3, required: 3, violations: 2 });
    // Infeasible on purpose: two members, three zones wanted, only two exist → required is 2.
    expect(zoneReport(['a1', 'b1'], zoneOf(members), 3)).toEqual({ zones: 2, required: 2, violations: 0 });
    expect(zoneReport([], zoneOf(members), 3).violations).toBe(0);
  });

  it('infeasible layouts (Q too small for the zones) are reported exactly, never hidden', () => {
    let infeasible = 0;
    for (const q of [4, 8, 16]) {
      for (const per of [
        [2, 2, 2, 2, 2],
        [3, 1, 1, 1, 1],
        [2, 2, 2],
      ]) {
        const members = layout(per);
        const owners = claim(undefined, members, 5, q);
        const expected = zoneSpanViolations(owners, members, 5).length;
        expect(zoneReport(owners, zoneOf(members), 5).violations).toBe(expected);
        if (expected > 0) infeasible++;
      }
    }
    expect(infeasible).toBeGreaterThan(0);
  });
});
