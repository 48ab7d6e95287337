/**
 * Zones: what the zone guarantee costs when the cluster changes, and how long a claim takes.
 *
 * - Movement: copies moved (replica transfers of the rebalance: a partition gained by a node that
 *   did not hold it) and partitions that changed owner, against the minimum any ring with the new
 *   counts needs (each node must receive at least the partitions it gains), for a node joining a
 *   zone and for a fourth zone added to three. The same change on the same nodes without zones is
 *   the baseline.
 * - Claim time for Q = 256 … 4,096 and 3–60 nodes in 3 zones: a fresh ring, and a join.
 */
import { transferPlan } from '../../src/membership/plan.js';
import { type ClaimMember, claim } from '../../src/ring/claim.js';
import { PreferenceTable } from '../../src/ring/preference.js';
import { zoneReport } from '../../src/ring/zones.js';
import type { BenchRow } from './lib.js';

const N = 3;

/** `per[z]` nodes in zone z (`z<z>n<i>`), weight 1. */
function layout(per: readonly number[]): ClaimMember[] {
  return per.flatMap((k, z) =>
    Array.from({ length: k }, (_, i) => ({ id: `z${z}n${i}`, weight: 1, zone: `zone-${z}` })),
  );
}

function counts(owners: readonly string[]): Map<string, number> {
  const c = new Map<string, number>();
  for (const o of owners) c.set(o, (c.get(o) ?? 0) + 1);
  return c;
}

/** Partitions each node holds a replica of (it is among their N primaries). */
function held(owners: readonly string[]): Map<string, number> {
  const table = new PreferenceTable(owners, N);
  const h = new Map<string, number>();
  for (let p = 0; p < owners.length; p++)
    for (const id of table.primaries(p)) h.set(id, (h.get(id) ?? 0) + 1);
  return h;
}

function gained(before: Map<string, number>, after: Map<string, number>): number {
  let sum = 0;
  for (const [id, k] of after) sum += Math.max(0, k - (before.get(id) ?? 0));
  return sum;
}

interface Movement {
  ms: number;
  owners: number;
  minOwners: number;
  copies: number;
  minCopies: number;
  violations: number;
}

function move(before: ClaimMember[], after: ClaimMember[], q: number): Movement {
  const from = claim(undefined, before, N, q);
  const t = performance.now();
  const to = claim(from, after, N, q);
  const ms = performance.now() - t;
  let owners = 0;
  for (let p = 0; p < q; p++) if (from[p] !== to[p]) owners++;
  const zone = new Map(after.map((m) => [m.id, m.zone]));
  return {
    ms,
    owners,
    minOwners: gained(counts(from), counts(to)),
    copies: transferPlan(from, to, N, () => true).length,
    minCopies: gained(held(from), held(to)),
    violations: zoneReport(to, (id) => zone.get(id), N).violations,
  };
}

function zoneless(members: ClaimMember[]): ClaimMember[] {
  return members.map(({ id, weight }) => ({ id, weight }));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function benchZones(options: { quick?: boolean } = {}): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const qs = options.quick ? [256, 1024] : [256, 1024, 4096];
  const changes: { name: string; before: ClaimMember[]; after: ClaimMember[] }[] = [
    {
      name: 'node joins zone 0 (3 zones x 2 -> 3/2/2)',
      before: layout([2, 2, 2]),
      after: [...layout([2, 2, 2]), { id: 'z0n2', weight: 1, zone: 'zone-0' }],
    },
    {
      name: 'node joins zone 0 (3 zones x 4 -> 5/4/4)',
      before: layout([4, 4, 4]),
      after: [...layout([4, 4, 4]), { id: 'z0n4', weight: 1, zone: 'zone-0' }],
    },
    {
      name: 'zone added (3 zones x 2 -> 4 zones x 2)',
      before: layout([2, 2, 2]),
      after: layout([2, 2, 2, 2]),
    },
    {
      name: 'node joins zone 0 (4 zones x 2 -> 3/2/2/2)',
      before: layout([2, 2, 2, 2]),
      after: [...layout([2, 2, 2, 2]), { id: 'z0n2', weight: 1, zone: 'zone-0' }],
    },
    {
      name: 'node leaves zone 0 (3 zones x 3 -> 2/3/3)',
      before: layout([3, 3, 3]),
      after: layout([3, 3, 3]).filter((m) => m.id !== 'z0n1'),
    },
  ];
  for (const q of qs) {
    for (const c of changes) {
      const m = move(c.before, c.after, q);
      const base = move(zoneless(c.before), zoneless(c.after), q);
      rows.push({
        scenario: `zones: ${c.name}, Q=${q}, N=${N}: copies moved`,
        opsPerSec: 1000 / Math.max(m.ms, 1e-3),
        baseline: 'same change without zones',
        baselineOpsPerSec: 1000 / Math.max(base.ms, 1e-3),
        extra: {
          copies: m.copies,
          minCopies: m.minCopies,
          owners: m.owners,
          minOwners: m.minOwners,
          violations: m.violations,
          copiesNoZones: base.copies,
          claimMs: m.ms.toFixed(1),
        },
      });
    }
  }
  const sizes = options.quick ? [3, 12, 60] : [3, 6, 12, 30, 60];
  for (const q of [256, 1024, 4096]) {
    for (const s of sizes) {
      const per = [0, 1, 2].map((z) => Math.floor(s / 3) + (z < s % 3 ? 1 : 0));
      const members = layout(per);
      const joined = [...members, { id: 'joiner', weight: 1, zone: 'zone-0' }];
      const runs = q >= 4096 ? 1 : 3;
      const fresh: number[] = [];
      const join: number[] = [];
      let owners: string[] = [];
      for (let i = 0; i < runs; i++) {
        let t = performance.now();
        owners = claim(undefined, members, N, q);
        fresh.push(performance.now() - t);
        t = performance.now();
        claim(owners, joined, N, q);
        join.push(performance.now() - t);
      }
      const plain = performance.now();
      claim(undefined, zoneless(members), N, q);
      const plainMs = performance.now() - plain;
      rows.push({
        scenario: `zones: claim Q=${q}, ${s} nodes in 3 zones (fresh; one join)`,
        opsPerSec: 1000 / Math.max(median(fresh), 1e-3),
        baseline: 'fresh claim without zones',
        baselineOpsPerSec: 1000 / Math.max(plainMs, 1e-3),
        extra: { freshMs: median(fresh).toFixed(1), joinMs: median(join).toFixed(1) },
      });
    }
  }
  return rows;
}
