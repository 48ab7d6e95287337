import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DynamoNode, MemoryNetwork, MemoryStorage, type Storage, VirtualClock } from '../../src/index.js';
import { LevelStorage } from '../../src/level/index.js';
import { type Cluster, createCluster } from '../../src/testing/index.js';
import { drive } from '../helpers.js';

let cluster: Cluster<unknown> | undefined;
const extraNodes: DynamoNode<unknown>[] = [];
afterEach(async () => {
  await Promise.all(extraNodes.splice(0).map((n) => n.stop()));
  await cluster?.stop();
  cluster = undefined;
});

const fast = { requestTimeoutMs: 100, gossipIntervalMs: 100, hintedHandoff: { intervalMs: 100 } };

function ringOf(node: DynamoNode<unknown>): string {
  return JSON.stringify(node.members().map((m) => [m.id, m.partitions]));
}

function shares(node: DynamoNode<unknown>): Map<string, number> {
  return new Map(node.members().map((m) => [m.id, m.partitions]));
}

/** Waits (in virtual time) until every node reports the same finished ring. */
async function converge(clock: VirtualClock, nodes: DynamoNode<unknown>[], maxMs = 60_000): Promise<number> {
  const start = clock.now();
  const settled = () =>
    new Set(nodes.map(ringOf)).size === 1 && nodes.every((n) => n.members().every((m) => m.status === 'up'));
  while (!settled()) {
    if (clock.now() - start > maxMs) throw new Error(`no convergence within ${maxMs} ms`);
    await clock.advance(10);
  }
  return clock.now() - start;
}

describe('membership: gossip, join, leave, transfer', () => {
  it('converges 64 nodes started from one seed within 2·log2(64) gossip rounds', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const start = (id: string, seeds: string[]) =>
      DynamoNode.start({
        ...fast,
        id,
        transport: network.connect(id),
        storage: new MemoryStorage(),
        seeds,
        clock,
      });
    const first = await drive(clock, start('n01', []));
    extraNodes.push(first);
    const t0 = clock.now();
    const ids = Array.from({ length: 63 }, (_, i) => `n${String(i + 2).padStart(2, '0')}`);
    const rest = await drive(clock, Promise.all(ids.map((id) => start(id, ['n01']))));
    extraNodes.push(...rest);
    const all = [first, ...rest];
    await converge(clock, all);
    const elapsed = clock.now() - t0;
    expect(elapsed).toBeLessThanOrEqual(2 * Math.log2(64) * fast.gossipIntervalMs);
    const counts = [...shares(first).values()];
    expect(Math.min(...counts)).toBe(Math.floor(256 / 64));
    expect(Math.max(...counts)).toBe(Math.ceil(256 / 64));
  });

  it('converges to one balanced ring when 3 nodes join at once through different seeds', async () => {
    cluster = await createCluster({ nodes: 3, nodeOptions: fast });
    const c = cluster;
    const joiners = await drive(
      c.clock,
      Promise.all(
        ['n4', 'n5', 'n6'].map((id, i) =>
          DynamoNode.start({
            ...fast,
            id,
            transport: c.network.connect(id),
            storage: new MemoryStorage(),
            seeds: [`n${i + 1}`],
            clock: c.clock,
          }),
        ),
      ),
    );
    extraNodes.push(...joiners);
    await converge(c.clock, [...c.nodes, ...joiners]);
    const counts = [...shares(c.nodes[0]!).values()];
    expect(counts).toHaveLength(6);
    expect(Math.min(...counts)).toBe(Math.floor(256 / 6));
    expect(Math.max(...counts)).toBe(Math.ceil(256 / 6));
  });

  it('adds a 4th node under write load: nothing unreadable, ~1/4 of the data moves, even shares', async () => {
    cluster = await createCluster({ nodes: 3, nodeOptions: fast });
    const c = cluster;
    const [a, b, d] = c.nodes;
    const total = 10_000;
    for (let i = 0; i < total; i += 500) {
      await drive(c.clock, Promise.all(Array.from({ length: 500 }, (_, j) => a!.put(`k${i + j}`, i + j))));
    }
    const progress: number[] = [];
    const joinerStorage: Storage = new MemoryStorage();
    for (const n of c.nodes) n.on('handoff:progress', (e) => progress.push(e.keysSent));
    const joinerPromise = DynamoNode.start({
      ...fast,
      id: 'n4',
      transport: c.network.connect('n4'),
      storage: joinerStorage,
      seeds: ['n2'],
      clock: c.clock,
    });
    // Continuous load while the node joins and partitions stream: writes and reads of old keys.
    const acked = new Map<string, number>();
    let round = 0;
    let joined: DynamoNode<unknown> | undefined;
    joinerPromise.then((n) => {
      joined = n;
    });
    while (!joined || joined.members().some((m) => m.status !== 'up') || round < 5) {
      const writes = Array.from({ length: 20 }, (_, j) => {
        const key = `live${round * 20 + j}`;
        return b!.put(key, round).then(() => acked.set(key, round));
      });
      const reads = Array.from({ length: 20 }, (_, j) => d!.get(`k${(round * 20 + j) % total}`));
      const results = await drive(c.clock, Promise.all([...writes, ...reads]));
      for (let j = 0; j < 20; j++) {
        const r = results[20 + j] as { values: unknown[] };
        expect(r.values).toEqual([(round * 20 + j) % total]);
      }
      round++;
      if (round > 500) throw new Error('join did not finish');
    }
    extraNodes.push(joined);
    await converge(c.clock, [...c.nodes, joined]);
    const counts = [...shares(a!).values()];
    expect(Math.min(...counts)).toBe(64);
    expect(Math.max(...counts)).toBe(64);
    let keysOnJoiner = 0;
    for await (const [key] of joinerStorage.iterate({})) if (key[0] === 1) keysOnJoiner++;
    // The store holds 3 copies of each key; a quarter of them move to the 4th node.
    const replicaCopies = (total + acked.size) * 3;
    expect(keysOnJoiner).toBeLessThanOrEqual(1.15 * (replicaCopies / 4));
    expect(progress.length).toBeGreaterThan(0);
    // Everything acknowledged is readable afterwards, through every node including the new one.
    for (const [key, value] of acked) expect((await drive(c.clock, joined.get(key))).values).toEqual([value]);
    for (let i = 0; i < total; i += 97)
      expect((await drive(c.clock, joined.get(`k${i}`))).values).toEqual([i]);
  });

  it('finishes a leave that needs no transfer (3 nodes, n = 3: the others hold every replica)', async () => {
    cluster = await createCluster({ nodes: 3, nodeOptions: fast });
    const c = cluster;
    const [a, b, leaver] = c.nodes;
    await drive(c.clock, Promise.all(Array.from({ length: 50 }, (_, i) => a!.put(`k${i}`, i))));
    await drive(c.clock, leaver!.leave(), 10, 30_000);
    expect(leaver!.status).toBe('stopped');
    await converge(c.clock, [a!, b!]);
    expect(shares(a!)).toEqual(
      new Map([
        ['n1', 128],
        ['n2', 128],
      ]),
    );
    for (let i = 0; i < 50; i++) expect((await drive(c.clock, b!.get(`k${i}`))).values).toEqual([i]);
  });

  it('lets a node leave under load: nothing lost, it owns nothing, the others rebalance evenly', async () => {
    cluster = await createCluster({ nodes: 4, nodeOptions: fast });
    const c = cluster;
    const [a, b, , leaver] = c.nodes;
    for (let i = 0; i < 2000; i += 200) {
      await drive(c.clock, Promise.all(Array.from({ length: 200 }, (_, j) => a!.put(`k${i + j}`, i + j))));
    }
    const leaving = leaver!.leave();
    let left = false;
    leaving.then(() => {
      left = true;
    });
    const acked = new Map<string, number>();
    for (let round = 0; !left; round++) {
      if (round > 500) throw new Error('leave did not finish');
      await drive(
        c.clock,
        Promise.all(
          Array.from({ length: 10 }, (_, j) =>
            b!.put(`during${round}-${j}`, j).then(() => acked.set(`during${round}-${j}`, j)),
          ),
        ),
      );
    }
    await leaving;
    expect(leaver!.status).toBe('stopped');
    const rest = c.nodes.filter((n) => n !== leaver);
    await converge(c.clock, rest);
    const s = shares(a!);
    expect(s.has(leaver!.id)).toBe(false);
    expect(Math.min(...s.values())).toBe(Math.floor(256 / 3));
    expect(Math.max(...s.values())).toBe(Math.ceil(256 / 3));
    for (let i = 0; i < 2000; i += 7) expect((await drive(c.clock, b!.get(`k${i}`))).values).toEqual([i]);
    for (const [key, value] of acked) expect((await drive(c.clock, a!.get(key))).values).toEqual([value]);
  });

  it('resumes a transfer after the receiving node crashes mid-stream', async () => {
    // 1-2 ms per message, so the stream takes virtual time and can be interrupted.
    cluster = await createCluster({
      nodes: 3,
      nodeOptions: fast,
      network: { latencyMs: { min: 1, max: 2 } },
    });
    const c = cluster;
    const [a] = c.nodes;
    for (let i = 0; i < 3000; i += 300) {
      await drive(c.clock, Promise.all(Array.from({ length: 300 }, (_, j) => a!.put(`k${i + j}`, i + j))));
    }
    const storage = new MemoryStorage();
    const options = { ...fast, id: 'n4', storage, seeds: ['n1'], clock: c.clock };
    const joiner = await drive(c.clock, DynamoNode.start({ ...options, transport: c.network.connect('n4') }));
    // Let some batches arrive, then crash the receiver before the rebalance ends.
    while ((joiner.stats().served['2'] ?? 0) < 3) await c.clock.advance(1);
    expect(joiner.members().find((m) => m.id === 'n4')!.status).toBe('joining');
    await drive(c.clock, joiner.stop());
    await c.clock.advance(1000);
    const restarted = await drive(
      c.clock,
      DynamoNode.start({ ...options, transport: c.network.connect('n4') }),
    );
    extraNodes.push(restarted);
    await converge(c.clock, [...c.nodes, restarted]);
    expect([...shares(a!).values()].every((n) => n === 64)).toBe(true);
    for (let i = 0; i < 3000; i += 11)
      expect((await drive(c.clock, restarted.get(`k${i}`, { r: 1 }))).values).toEqual([i]);
  });

  it('gives weighted nodes partitions in proportion to their weight', async () => {
    cluster = await createCluster({
      nodes: ['a', 'b', 'c', 'd'],
      nodeOptions: (id) => ({ ...fast, weight: id === 'a' || id === 'b' ? 2 : 1 }),
    });
    await converge(cluster.clock, cluster.nodes);
    const s = shares(cluster.nodes[0]!);
    // Σw = 6: weight 2 → 256·2/6 ≈ 85.3, weight 1 → 42.7.
    for (const id of ['a', 'b']) expect(Math.abs(s.get(id)! - (256 * 2) / 6)).toBeLessThanOrEqual(1);
    for (const id of ['c', 'd']) expect(Math.abs(s.get(id)! - 256 / 6)).toBeLessThanOrEqual(1);
  });

  it('reassigns and refills a removed dead node’s partitions from the survivors', async () => {
    cluster = await createCluster({ nodes: 4, nodeOptions: fast });
    const c = cluster;
    const [a, b, , dead] = c.nodes;
    for (let i = 0; i < 1000; i += 100) {
      await drive(c.clock, Promise.all(Array.from({ length: 100 }, (_, j) => a!.put(`k${i + j}`, i + j))));
    }
    await c.stopNode(dead!.id);
    b!.removeMember(dead!.id);
    const rest = c.nodes.filter((n) => n !== dead);
    await converge(c.clock, rest);
    expect(shares(a!).has(dead!.id)).toBe(false);
    // Every key is on all 3 surviving replicas (read each one alone: r=1 from a strict list).
    for (let i = 0; i < 1000; i += 13) {
      const got = await drive(c.clock, Promise.all(rest.map((n) => n.get(`k${i}`, { r: 3 }))));
      for (const g of got) expect(g.values).toEqual([i]);
    }
  });

  it('restarts a LevelStorage cluster with the same ring and data and no rebalancing', async () => {
    // Real disk, so the real clock: nothing here waits on a timeout, every step awaits its result.
    const root = await mkdtemp(join(tmpdir(), 'dynamo-membership-'));
    const network = new MemoryNetwork();
    const ids = ['n1', 'n2', 'n3', 'n4', 'n5'];
    const start = (id: string, seeds: string[]) =>
      DynamoNode.start<number>({
        id,
        transport: network.connect(id),
        storage: new LevelStorage({ path: join(root, id) }),
        seeds,
      });
    const nodes: DynamoNode<number>[] = [];
    try {
      for (const id of ids) nodes.push(await start(id, id === 'n1' ? [] : ['n1']));
      while (
        new Set(nodes.map((n) => ringOf(n as DynamoNode<unknown>))).size > 1 ||
        nodes.some((n) => n.members().some((m) => m.status !== 'up'))
      ) {
        await new Promise((resolve) => setImmediate(resolve));
      }
      for (let i = 0; i < 500; i++) await nodes[i % 5]!.put(`k${i}`, i);
      const ringBefore = ringOf(nodes[0] as DynamoNode<unknown>);
      await Promise.all(nodes.map((n) => n.stop()));
      const changes: number[] = [];
      for (const [i, id] of ids.entries()) {
        nodes[i] = await start(id, []);
        nodes[i]!.on('ring:change', (e) => changes.push(e.version));
      }
      for (const n of nodes) expect(ringOf(n as DynamoNode<unknown>)).toBe(ringBefore);
      for (let i = 0; i < 500; i++) expect((await nodes[(i + 2) % 5]!.get(`k${i}`)).values).toEqual([i]);
      // Stop and restart every node in turn while the others serve: all data stays readable.
      for (const [i, id] of ids.entries()) {
        await nodes[i]!.stop();
        nodes[i] = await start(id, ['n1']);
        for (let k = i; k < 500; k += 25)
          expect((await nodes[(i + 1) % 5]!.get(`k${k}`)).values).toEqual([k]);
      }
      for (let i = 0; i < 500; i += 3) expect((await nodes[i % 5]!.get(`k${i}`)).values).toEqual([i]);
      expect(changes).toEqual([]); // no rebalancing: the ring version never moved
      expect(
        nodes.every(
          (n) => n.stats().served['2'] === undefined || ringOf(n as DynamoNode<unknown>) === ringBefore,
        ),
      ).toBe(true);
    } finally {
      await Promise.all(nodes.map((n) => n.stop()));
      await rm(root, { recursive: true, force: true });
    }
  });
});
