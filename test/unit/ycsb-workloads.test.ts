/**
 * The YCSB driver of `npm run bench -- --only ycsb` (test/bench/ycsb-core.ts): its figures are
 * only comparable with other stores' YCSB runs if it draws keys and operations as YCSB does.
 */
import { describe, expect, it } from 'vitest';
import { createCluster, drive } from '../../src/testing/index.js';
import {
  combineYcsb,
  dynamoTarget,
  keyName,
  measurePhase,
  prepareLoad,
  prepareRun,
  ScrambledZipfian,
  Sequence,
  WORKLOADS,
  workloadsNamed,
  type YcsbTarget,
  Zipfian,
} from '../bench/ycsb-core.js';

/** A uniform stream that is the same on every run. */
function uniforms(seed = 1) {
  let s = seed;
  return () => {
    s = (s * 16807) % 2147483647;
    return (s - 1) / 2147483646;
  };
}

describe('YCSB key choosers', () => {
  it('names records as YCSB does with insertorder=hashed', () => {
    // The first key of every YCSB load.
    expect(keyName(0)).toBe('user6284781860667377211');
    expect(new Set(Array.from({ length: 10_000 }, (_, i) => keyName(i))).size).toBe(10_000);
  });

  it('draws zipfian(0.99) popularity: the most popular items at 1/(i+1)^0.99 of zeta', () => {
    const items = 1000;
    const z = new Zipfian(items);
    const next = uniforms();
    const counts = new Array<number>(items).fill(0);
    const draws = 500_000;
    for (let i = 0; i < draws; i++) counts[z.next(next())]!++;
    let zeta = 0;
    for (let i = 1; i <= items; i++) zeta += 1 / i ** 0.99;
    const expected = (rank: number) => 1 / (rank + 1) ** 0.99 / zeta;
    // Gray et al.'s method is exact for the first two items and close further down.
    expect(counts[0]! / draws).toBeCloseTo(expected(0), 2);
    expect(counts[1]! / draws).toBeCloseTo(expected(1), 2);
    expect(Math.abs(counts[99]! / draws - expected(99)) / expected(99)).toBeLessThan(0.15);
    expect(counts.every((c, i) => i === 0 || c <= counts[0]!)).toBe(true);
  });

  it('extends zipfian popularity as the item count grows (skewed latest over new inserts)', () => {
    const grown = new Zipfian(100);
    const fresh = new Zipfian(150);
    const next = uniforms(7);
    grown.next(next(), 120);
    for (let i = 0; i < 1000; i++) {
      const u = next();
      expect(grown.next(u, 150)).toBe(fresh.next(u));
    }
    expect(() => grown.next(0.5, 149)).toThrow(RangeError);
  });

  it('scatters zipfian popularity over the records (scrambled), every draw a record', () => {
    const records = 5000;
    const chooser = new ScrambledZipfian(records);
    const next = uniforms(3);
    const counts = new Map<number, number>();
    for (let i = 0; i < 30_000; i++) {
      const n = chooser.next(next());
      expect(n >= 0 && n < records).toBe(true);
      counts.set(n, (counts.get(n) ?? 0) + 1);
    }
    const hottest = [...counts.entries()].sort((a, b) => b[1] - a[1]);
    // The most popular item of 10^10 under zipfian(0.99) is drawn 1/26.47 of the time, and is
    // not record 0: the hash puts it anywhere.
    expect(hottest[0]![1] / 30_000).toBeGreaterThan(0.03);
    expect(hottest[0]![0]).not.toBe(0);
  });
});

describe('YCSB workloads', () => {
  it('mixes operations in the core workloads proportions, the same for one seed', () => {
    for (const w of WORKLOADS) {
      const s = new Sequence(w, 1000, 10_000, 'seed');
      const share = (kind: number) => s.kinds.filter((k) => k === kind).length / 10_000;
      expect(share(0)).toBeCloseTo(w.mix.READ, 1);
      expect(share(1)).toBeCloseTo(w.mix.UPDATE, 1);
      expect(share(2)).toBeCloseTo(w.mix.INSERT, 1);
      expect(share(3)).toBeCloseTo(w.mix['READ-MODIFY-WRITE'], 1);
      expect(new Sequence(w, 1000, 10_000, 'seed').records).toEqual(s.records);
    }
    expect(() => workloadsNamed('a,e')).toThrow(/range scan/);
    expect(workloadsNamed('f,a').map((w) => w.name)).toEqual(['a', 'f']);
  });

  it('D reads only records that exist: loaded, or inserts already acknowledged', async () => {
    const stored = new Set<string>();
    const missing: string[] = [];
    const later = () => new Promise<void>((resolve) => setImmediate(resolve));
    const target: YcsbTarget = {
      insert: async (key) => {
        await later();
        stored.add(key);
      },
      read: async (key) => {
        if (!stored.has(key)) missing.push(key);
        await later();
        return 1;
      },
      update: async () => {},
      readModifyWrite: async () => 1,
    };
    await prepareLoad(target, 500, 16)();
    const d = workloadsNamed('d')[0]!;
    const sequence = new Sequence(d, 500, 5000, 'd');
    const m = await prepareRun(target, sequence, 16, 1, 3)();
    expect(missing).toEqual([]);
    expect(m.failures).toBe(0);
    // Inserts are this client's own record numbers: 500 + 1, 500 + 4, ...
    expect(stored.has(keyName(501))).toBe(true);
    expect(stored.has(keyName(500))).toBe(false);
    expect(stored.size).toBe(500 + sequence.inserts);
    expect(m.latency.get('READ')!.totalCount).toBe(sequence.kinds.filter((k) => k === 0).length);
  });

  it('runs every workload against a 3-node cluster: no failure, every read finds its record, siblings counted', async () => {
    const cluster = await createCluster<Uint8Array>({
      nodes: 3,
      nodeOptions: { codec: { encode: (v: Uint8Array) => v, decode: (b: Uint8Array) => b } },
    });
    try {
      await cluster.settle();
      const target = dynamoTarget(cluster.nodes);
      const run = <T>(phase: () => Promise<T>) => drive(cluster.clock, phase());
      const load = combineYcsb([await run(() => measurePhase(prepareLoad(target, 200, 16)))]);
      expect(load.ops).toBe(200);
      expect(load.failures).toBe(0);
      for (const w of WORKLOADS) {
        const sequence = new Sequence(w, 200, 400, 'smoke');
        const phase = combineYcsb([await run(() => measurePhase(prepareRun(target, sequence, 16)))]);
        expect({ workload: w.name, failures: phase.failures, notFound: phase.notFound }).toEqual({
          workload: w.name,
          failures: 0,
          notFound: 0,
        });
        const reads = sequence.kinds.filter((k) => k === 0 || k === 3).length;
        // One versions count per READ and per READ-MODIFY-WRITE, each at least 1.
        expect(phase.siblings.reduce((s, c) => s + (c ?? 0), 0)).toBe(reads);
        expect(phase.siblings[0] ?? 0).toBe(0);
        for (const [op, f] of Object.entries(phase.perOp))
          expect(f!.count, `${w.name} ${op}`).toBe(
            sequence.kinds.filter((k) => k === ['READ', 'UPDATE', 'INSERT', 'READ-MODIFY-WRITE'].indexOf(op))
              .length,
          );
      }
    } finally {
      await cluster.stop();
    }
  });
});
