/**
 * The context a write returns covers what the caller observed and its own write, nothing else:
 * a put made with it supersedes the caller's own earlier writes and never a concurrent write the
 * caller was not shown.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/index.js';
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
