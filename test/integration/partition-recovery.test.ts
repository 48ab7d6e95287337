/**
 * Partitions on the simulated network: how soon a healed partition is noticed, and that nothing
 * waits on a peer the failure detector already believes down (sloppy quorum routes around it).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type DynamoNode, resolvers, VirtualClock } from '../../src/index.js';
import { type Cluster, createCluster, drive } from '../../src/testing/index.js';
import { primariesOf } from '../helpers.js';

let cluster: Cluster<unknown> | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

const MINORITY = ['n1', 'n2'];
const MAJORITY = ['n3', 'n4', 'n5'];

/** True when every running node sees every member up. */
function allUp(c: Cluster<unknown>): boolean {
  return c.nodes.every((n) => n.members().every((m) => m.status === 'up'));
}

/** True when each node of `side` sees each node of `other` down. */
function seesDown(c: Cluster<unknown>, side: string[], other: string[]): boolean {
  return side.every((id) => {
    const view = new Map(
      c
        .node(id)
        .members()
        .map((m) => [m.id, m.status]),
    );
    return other.every((o) => view.get(o) === 'down');
  });
}

/** Puts from every node, `rounds` times, time moving between rounds: traffic across the split. */
async function traffic(c: Cluster<unknown>, rounds: number, stepMs: number): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    const puts = c.nodes.map((n, i) => n.put(`traffic:${round}:${i}`, round).catch(() => {}));
    await drive(c.clock, Promise.all(puts));
    await c.clock.advance(stepMs);
  }
}

/** Virtual ms from now until every node sees every member up (fails past `maxMs`). */
async function timeUntilAllUp(c: Cluster<unknown>, maxMs = 30_000): Promise<number> {
  const start = c.clock.now();
  while (!allUp(c)) {
    if (c.clock.now() - start > maxMs) throw new Error(`members still down ${maxMs} ms after the heal`);
    await c.clock.advance(10);
  }
  return c.clock.now() - start;
}

describe('after a partition heals', () => {
  for (const [name, nodeOptions] of [
    ['default options', {}],
    ['gossip every 100 ms', { gossipIntervalMs: 100 }],
  ] as const) {
    it(`every node sees every member up within 1 s of the heal of a 7 s 2|3 split (${name})`, async () => {
      cluster = await createCluster({ nodes: 5, clock: new VirtualClock(), nodeOptions });
      const c = cluster;
      c.network.partition(MINORITY, MAJORITY);
      await traffic(c, 7, 1000);
      expect(seesDown(c, MINORITY, MAJORITY)).toBe(true);
      expect(seesDown(c, MAJORITY, MINORITY)).toBe(true);
      c.network.heal();
      const ms = await timeUntilAllUp(c);
      expect(ms).toBeLessThanOrEqual(1000);
    });
  }

  it('an isolated node is seen up by everyone, and sees everyone up, within 1 s of the heal', async () => {
    cluster = await createCluster({ nodes: 5, clock: new VirtualClock() });
    const c = cluster;
    c.network.partition(['n3']);
    await traffic(c, 7, 1000);
    expect(seesDown(c, ['n3'], ['n1', 'n2', 'n4', 'n5'])).toBe(true);
    c.network.heal();
    expect(await timeUntilAllUp(c)).toBeLessThanOrEqual(1000);
  });

  it('the probe spacing of a down peer stays within probeIntervalMs however long it was down', async () => {
    cluster = await createCluster({
      nodes: 3,
      clock: new VirtualClock(),
      nodeOptions: { probeIntervalMs: 250 },
    });
    const c = cluster;
    c.network.partition(['n3']);
    await traffic(c, 60, 1000);
    c.network.heal();
    // Within one probe interval plus the network's round trip.
    expect(await timeUntilAllUp(c)).toBeLessThanOrEqual(260);
  });

  it('a peer that can send to us but not hear from us (one-way partition) stays down', async () => {
    cluster = await createCluster({ nodes: 3, clock: new VirtualClock() });
    const c = cluster;
    c.network.partition(['n3']);
    await traffic(c, 3, 1000);
    expect(seesDown(c, ['n1'], ['n3'])).toBe(true);
    c.network.heal();
    // n3 reaches n1 (its requests prompt n1's probes), but nothing from n1 reaches n3.
    c.network.partitionOneWay('n1', 'n3');
    const flips: string[] = [];
    c.node('n1').on('member:up', (e) => flips.push(e.id));
    await traffic(c, 5, 1000);
    expect(flips).not.toContain('n3');
    expect(seesDown(c, ['n1'], ['n3'])).toBe(true);
  });
});

describe('nothing waits on a peer already believed down', () => {
  /** Keys whose three primaries are all on the majority side, as `node` sees the ring. */
  function majorityKeys(node: DynamoNode<unknown>, count: number): string[] {
    const keys: string[] = [];
    for (let i = 0; keys.length < count; i++) {
      const key = `m:${i}`;
      if (primariesOf(node, key).every((id) => MAJORITY.includes(id))) keys.push(key);
      if (i > 100_000) throw new Error('no such keys');
    }
    return keys;
  }

  it('on the minority side of a 2|3 split, forwarded puts and update() take no request timeout', async () => {
    const union = resolvers.merge<number[]>((a, b) => [...new Set([...a, ...b])].sort((x, y) => x - y));
    cluster = (await createCluster<number[]>({
      nodes: 5,
      clock: new VirtualClock(),
      nodeOptions: { resolver: union },
      network: { latencyMs: { min: 1, max: 3 } },
    })) as Cluster<unknown>;
    const c = cluster;
    const n1 = c.node('n1') as DynamoNode<number[]>;
    const keys = majorityKeys(c.node('n1'), 40);
    c.network.partition(MINORITY, MAJORITY);
    await traffic(c, 3, 1000);
    expect(seesDown(c, MINORITY, MAJORITY)).toBe(true);
    const requestTimeoutMs = 1000;
    const durations: number[] = [];
    const timed = async (work: Promise<unknown>) => {
      const start = c.clock.now();
      await drive(c.clock, work, 1);
      durations.push(c.clock.now() - start);
    };
    for (const [i, key] of keys.entries()) {
      // A put with no primary reachable is coordinated by a fallback (this node), as sloppy quorum allows.
      await timed(n1.put(key, [i]));
      await timed(n1.update(key, (cur) => [...(cur ?? []), i + 1000]));
    }
    durations.sort((a, b) => a - b);
    const p99 = durations[Math.ceil(durations.length * 0.99) - 1]!;
    expect(p99).toBeLessThanOrEqual(requestTimeoutMs + 100);
    // No timeout at all, in fact: a few network round trips.
    expect(durations.at(-1)).toBeLessThan(100);
    expect(n1.stats().forwarded).toBeGreaterThan(0);
  });

  it('a put that meets a primary not yet known down pays its timeout once, then is coordinated by a fallback', async () => {
    cluster = await createCluster({ nodes: 5, clock: new VirtualClock() });
    const c = cluster;
    const n1 = c.node('n1');
    const [key, next] = majorityKeys(n1, 2);
    c.network.partition(MINORITY, MAJORITY);
    // Nothing crossed the split yet: the first primary asked times out (the op's timeoutMs, 2 s),
    // the others are then routed around as soon as the detector knows them.
    const first = c.clock.now();
    await drive(c.clock, n1.put(key!, 'first'), 1);
    const firstMs = c.clock.now() - first;
    expect(firstMs).toBeGreaterThanOrEqual(2000);
    const second = c.clock.now();
    await drive(c.clock, n1.put(next!, 'second'), 1);
    expect(c.clock.now() - second).toBeLessThan(100);
  });

  it('reads on the minority side answer from the healthy replicas without a timeout (latency-aware too)', async () => {
    for (const latencyAware of [false, true]) {
      cluster = await createCluster({ nodes: 5, clock: new VirtualClock(), nodeOptions: { latencyAware } });
      const c = cluster;
      const n1 = c.node('n1');
      const keys = majorityKeys(n1, 20);
      c.network.partition(MINORITY, MAJORITY);
      await traffic(c, 3, 1000);
      for (const key of keys) await drive(c.clock, n1.put(key, key));
      for (const key of keys) {
        const start = c.clock.now();
        const read = await drive(c.clock, n1.get(key), 1);
        expect(c.clock.now() - start).toBeLessThan(100);
        expect(read.values).toEqual([key]);
      }
      await cluster.stop();
      cluster = undefined;
    }
  });
});
