/**
 * The context a write returns covers what the caller observed and its own write, nothing else:
 * a put made with it supersedes the caller's own earlier writes and never a concurrent write the
 * caller was not shown.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { resolvers, VirtualClock } from '../../src/index.js';
import { type Cluster, createCluster, drive } from '../../src/testing/index.js';

let cluster: Cluster<unknown> | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

async function three(resolver?: (s: unknown[]) => unknown) {
  const clock = new VirtualClock();
  cluster = await createCluster({
    nodes: 3,
    clock,
    quorum: { n: 3, r: 2, w: 2 },
    nodeOptions: resolver ? { resolver } : {},
  });
  return { c: cluster, clock, a: cluster.nodes[0]!, b: cluster.nodes[1]! };
}

describe('a returned context covers only what its caller observed', () => {
  it("a second put with the first put's context keeps a concurrent write as a sibling", async () => {
    const { clock, a, b } = await three();
    await drive(clock, a.put('k', 'v1'));
    const seen = await drive(clock, a.get('k'));
    await drive(clock, b.put('k', 'v2-from-B'));
    const r1 = await drive(clock, a.put('k', 'v1+a', { context: seen.context }));
    await drive(clock, a.put('k', 'v1+a+b', { context: r1.context }));
    const read = await drive(clock, a.get('k', { r: 3 }));
    expect([...read.values].sort()).toEqual(['v1+a+b', 'v2-from-B']);
  });

  it("a put with its own previous put's context supersedes that write", async () => {
    const { clock, a } = await three();
    let { context } = await drive(clock, a.put('k', 0));
    for (let i = 1; i <= 5; i++) ({ context } = await drive(clock, a.put('k', i, { context })));
    expect((await drive(clock, a.get('k', { r: 3 }))).values).toEqual([5]);
  });
});

describe('update() with a merge resolver: the set workload loses no acknowledged add', () => {
  it('5 nodes, 8 clients, 3,000 adds to 3 keys through update()', async () => {
    const clock = new VirtualClock();
    const union = (a: number[], b: number[]) => [...new Set([...a, ...b])].sort((x, y) => x - y);
    cluster = await createCluster<unknown>({
      nodes: 5,
      clock,
      quorum: { n: 3, r: 2, w: 2 },
      network: { latencyMs: { min: 0.2, max: 3 } },
      nodeOptions: { resolver: resolvers.merge(union) as never },
    });
    const c = cluster;
    const keys = ['cart:0', 'cart:1', 'cart:2'];
    const acked: number[] = [];
    let next = 0;
    const client = async (i: number) => {
      while (next < 3000) {
        const x = next++;
        const node = c.nodes[(i + x) % c.nodes.length]!;
        await node.update(keys[x % keys.length]!, (set) => [...((set as number[] | undefined) ?? []), x]);
        acked.push(x);
      }
    };
    await drive(clock, Promise.all(Array.from({ length: 8 }, (_, i) => client(i))));
    await c.settle(5_000);
    const present = new Set<number>();
    for (const key of keys) {
      for (const v of (await drive(clock, c.nodes[0]!.get(key, { r: 3 }))).values) {
        for (const x of v as number[]) present.add(x);
      }
    }
    expect(acked).toHaveLength(3000);
    expect(acked.filter((x) => !present.has(x))).toEqual([]);
  });
});
