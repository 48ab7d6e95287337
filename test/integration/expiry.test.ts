/**
 * Expiry (`ttlMs`) on a VirtualClock over a MemoryNetwork: an expired value reads as absent on
 * every node and never comes back — not after a partition heals, not through a hinted handoff, a
 * transfer to a joining node or an anti-entropy exchange with a replica that missed the expiry;
 * older versions it superseded stay superseded; the tombstone reaper purges it after the grace
 * period; a put with the read's context supersedes it; TTLs beyond the maximum are RangeErrors.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DynamoClient } from '../../src/client/index.js';
import {
  DynamoNode,
  type DynamoNodeOptions,
  MAX_TTL_MS,
  MemoryNetwork,
  MemoryStorage,
  VirtualClock,
} from '../../src/index.js';
import { type Cluster, createCluster, drive, SkewedClock } from '../../src/testing/index.js';
import { localObject } from '../helpers.js';

const PARTITIONS = 64;
const TTL = 1000;
let cluster: Cluster<string> | undefined;
const extra: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  for (const x of extra.splice(0)) await x.stop();
  await cluster?.stop();
  cluster = undefined;
});

async function start(options: Partial<DynamoNodeOptions<string>> = {}, nodes = 5): Promise<Cluster<string>> {
  cluster = await createCluster<string>({
    nodes,
    clock: new VirtualClock(1_000_000),
    nodeOptions: {
      partitions: PARTITIONS,
      requestTimeoutMs: 100,
      gossipIntervalMs: 100,
      hintedHandoff: { intervalMs: 100, maxHints: 10_000 },
      antiEntropy: { intervalMs: 60_000, enabled: false },
      ...options,
    },
  });
  await drive(cluster.clock, Promise.all(cluster.nodes.map((n) => n.ready())));
  return cluster;
}

/** The key's three primaries first, then the other nodes. */
function byRole(
  c: Cluster<string>,
  key: string,
): { primaries: DynamoNode<string>[]; others: DynamoNode<string>[] } {
  const ids = c.nodes[0]!.preferenceList(key).map((e) => e.id);
  return {
    primaries: ids.map((id) => c.node(id)),
    others: c.nodes.filter((n) => !ids.includes(n.id)),
  };
}

async function valuesEverywhere(c: Cluster<string>, key: string): Promise<string[][]> {
  const out: string[][] = [];
  for (const n of c.nodes) {
    // No drive: with every node reachable a get completes on microtasks, and time must not move.
    if (n.status === 'running') out.push((await n.get(key)).values);
  }
  return out;
}

/** Values stored live (not tombstones, not expired by `now`) in a node's own data for `key`. */
async function storedLive(c: Cluster<string>, id: string, key: string): Promise<number> {
  const o = await localObject(c.storage(id), key, PARTITIONS);
  const now = c.clock.now();
  return o ? o.siblings.filter((s) => s.value !== null && (s.expiresAt ?? Infinity) > now).length : 0;
}

/** `key` holds 'old' (no TTL) everywhere; returns the context of a read of it. */
async function withOldValue(c: Cluster<string>, key: string): Promise<string> {
  await c.nodes[0]!.put(key, 'old');
  await c.settle(1000);
  return (await c.nodes[1]!.get(key)).context;
}

describe('expiry', () => {
  it('an expired value reads as absent on every node; a put with the read context supersedes it', async () => {
    const c = await start();
    await c.nodes[0]!.put('session:1', 'token', { ttlMs: TTL });
    expect((await c.nodes[3]!.get('session:1')).values).toEqual(['token']);
    await c.clock.advance(TTL - 10);
    expect(await valuesEverywhere(c, 'session:1')).toEqual(c.nodes.map(() => ['token']));
    await c.clock.advance(20);
    expect(await valuesEverywhere(c, 'session:1')).toEqual(c.nodes.map(() => []));
    const listed = [];
    for await (const k of c.nodes[2]!.allKeys()) listed.push(k);
    expect(listed).toEqual([]);
    // Read repair turned it into a tombstone on every replica: the value's bytes are gone.
    await c.settle(500);
    for (const n of byRole(c, 'session:1').primaries) {
      const o = await localObject(c.storage(n.id), 'session:1', PARTITIONS);
      expect(o!.siblings.map((s) => s.value)).toEqual([null]);
      expect(o!.siblings[0]!.expiresAt).toBeGreaterThan(1_000_000);
    }
    // The read's context covers the expired version: the next put replaces it, no sibling.
    const read = await c.nodes[4]!.get('session:1');
    await c.nodes[1]!.put('session:1', 'renewed', { context: read.context, ttlMs: TTL });
    await c.settle(200);
    const primary = byRole(c, 'session:1').primaries[0]!;
    expect((await localObject(c.storage(primary.id), 'session:1', PARTITIONS))!.siblings).toHaveLength(1);
    expect((await c.nodes[2]!.get('session:1')).values).toEqual(['renewed']);
    // update() and a put without a TTL make it permanent again.
    await c.nodes[3]!.update('session:1', (v) => `${v}!`);
    await c.clock.advance(TTL * 5);
    expect((await c.nodes[0]!.get('session:1')).values).toEqual(['renewed!']);
  });

  it('checks ttlMs: 1 ms to 20 years, integers, puts only', async () => {
    const c = await start({}, 3);
    const node = c.nodes[0]!;
    await expect(node.put('k', 'v', { ttlMs: MAX_TTL_MS + 1 })).rejects.toBeInstanceOf(RangeError);
    await expect(node.put('k', 'v', { ttlMs: 0 })).rejects.toBeInstanceOf(RangeError);
    await expect(node.put('k', 'v', { ttlMs: -5 })).rejects.toBeInstanceOf(RangeError);
    await expect(node.put('k', 'v', { ttlMs: 1.5 })).rejects.toBeInstanceOf(RangeError);
    await expect(node.put('k', 'v', { ttlMs: Number.NaN })).rejects.toBeInstanceOf(RangeError);
    await expect(node.put('k', 'v', { ttlMs: '60000' as never })).rejects.toBeInstanceOf(TypeError);
    await expect(node.delete('k', { ttlMs: 1000 })).rejects.toBeInstanceOf(TypeError);
    await expect(node.update('k', () => 'v', { ttlMs: MAX_TTL_MS * 2 })).rejects.toBeInstanceOf(RangeError);
    await expect(node.counter('c').increment(1, { ttlMs: 0 })).rejects.toBeInstanceOf(RangeError);
    expect((await node.get('k')).values).toEqual([]);
    // The longest TTL does not overflow into an expiry in the past (CASSANDRA-14092).
    await node.put('k', 'v', { ttlMs: MAX_TTL_MS });
    await c.clock.advance(10_000);
    expect((await node.get('k')).values).toEqual(['v']);
  });

  it('never comes back across a partition: the expired version shadows the old value a replica kept', async () => {
    const c = await start({ sloppyQuorum: false }, 3);
    const context = await withOldValue(c, 'cart');
    const [p1, p2, p3] = byRole(c, 'cart').primaries as [
      DynamoNode<string>,
      DynamoNode<string>,
      DynamoNode<string>,
    ];
    c.network.partition([p3.id]);
    await drive(c.clock, p1.put('cart', 'new', { context, ttlMs: TTL }));
    expect(await storedLive(c, p3.id, 'cart')).toBe(1); // p3 still holds 'old'
    await c.clock.advance(TTL + 1);
    expect((await drive(c.clock, p2.get('cart'))).values).toEqual([]);
    c.network.heal();
    await c.settle(3000);
    expect(await valuesEverywhere(c, 'cart')).toEqual([[], [], []]);
    await c.settle(3000);
    expect(await storedLive(c, p3.id, 'cart')).toBe(0);
    expect(await valuesEverywhere(c, 'cart')).toEqual([[], [], []]);
  });

  it('never comes back through a hinted handoff to the replica that was down', async () => {
    const c = await start({ readRepair: false });
    const context = await withOldValue(c, 'cart');
    const { primaries } = byRole(c, 'cart');
    const down = primaries[2]!;
    await c.stopNode(down.id);
    await drive(c.clock, primaries[0]!.put('cart', 'new', { context, ttlMs: TTL }));
    await c.clock.advance(TTL + 1);
    const hinted = c.nodes
      .filter((n) => n.status === 'running')
      .reduce((sum, n) => sum + n.stats().hints.pending, 0);
    expect(hinted).toBe(1);
    const back = await c.restart(down.id);
    expect(await storedLive(c, down.id, 'cart')).toBe(1); // 'old', until the hint arrives
    await c.settle(3000);
    expect(c.nodes.reduce((sum, n) => sum + n.stats().hints.pending, 0)).toBe(0);
    expect(await storedLive(c, back.id, 'cart')).toBe(0);
    expect(await valuesEverywhere(c, 'cart')).toEqual(c.nodes.map(() => []));
  });

  it('never comes back on a node that joins and receives the partition by transfer', async () => {
    const c = await start({}, 3);
    const context = await withOldValue(c, 'cart');
    await c.nodes[0]!.put('cart', 'new', { context, ttlMs: TTL });
    for (let i = 0; i < 40; i++) await c.nodes[i % 3]!.put(`other:${i}`, 'x', { ttlMs: TTL });
    await c.clock.advance(TTL + 1);
    const joined: DynamoNode<string>[] = [];
    for (const id of ['n4', 'n5']) {
      const n = await drive(
        c.clock,
        DynamoNode.start<string>({
          id,
          transport: c.network.connect(id),
          storage: c.storage(id),
          seeds: ['n1'],
          clock: c.clock,
          partitions: PARTITIONS,
          requestTimeoutMs: 100,
          gossipIntervalMs: 100,
          antiEntropy: { intervalMs: 60_000, enabled: false },
        }),
      );
      extra.push(n);
      joined.push(n);
    }
    await drive(c.clock, Promise.all(joined.map((n) => n.ready())));
    await c.settle(2000);
    const holders = joined.filter((n) => n.preferenceList('cart').some((e) => e.id === n.id));
    expect(holders.length).toBeGreaterThan(0);
    for (const n of holders) {
      const o = await localObject(c.storage(n.id), 'cart', PARTITIONS);
      expect(o?.siblings.length).toBe(1); // the expired version, which superseded 'old'
      expect(await storedLive(c, n.id, 'cart')).toBe(0);
    }
    for (const n of joined) expect((await drive(c.clock, n.get('cart', { r: 3 }))).values).toEqual([]);
    const listed = [];
    for await (const k of joined[0]!.allKeys()) listed.push(k);
    expect(listed).toEqual([]);
  });

  it('never comes back through anti-entropy with a replica that missed the expiry, and is purged after the grace period', async () => {
    const c = await start(
      {
        readRepair: false,
        sloppyQuorum: false,
        antiEntropy: { intervalMs: 1000, enabled: true },
        tombstoneGraceMs: 5000,
      },
      3,
    );
    const context = await withOldValue(c, 'cart');
    const [p1, , p3] = byRole(c, 'cart').primaries as DynamoNode<string>[];
    c.network.partition([p3!.id]);
    await drive(c.clock, p1!.put('cart', 'new', { context, ttlMs: TTL }));
    await c.clock.advance(TTL + 1);
    c.network.heal();
    expect(await storedLive(c, p3!.id, 'cart')).toBe(1);
    // Anti-entropy (no read repair, no hints here) brings the expired version to p3.
    await c.settle(4000);
    expect(await storedLive(c, p3!.id, 'cart')).toBe(0);
    expect(await localObject(c.storage(p3!.id), 'cart', PARTITIONS)).toBeDefined();
    expect(await valuesEverywhere(c, 'cart')).toEqual([[], [], []]);
    // Past expiry + grace, with every replica holding it, the reaper purges it everywhere.
    await c.settle(10_000);
    for (const id of ['n1', 'n2', 'n3'])
      expect(await localObject(c.storage(id), 'cart', PARTITIONS)).toBeUndefined();
    expect(c.nodes.reduce((sum, n) => sum + n.stats().antiEntropy.purged, 0)).toBe(3);
    expect(await valuesEverywhere(c, 'cart')).toEqual([[], [], []]);
  });

  it('a node whose clock runs behind does not bring back a value others saw expire', async () => {
    const clock = new VirtualClock(1_000_000);
    const network = new MemoryNetwork({ clock });
    const offsets: Record<string, number> = { n1: 300, n2: 0, n3: -300 };
    const nodes: DynamoNode<string>[] = [];
    for (const id of ['n1', 'n2', 'n3']) {
      nodes.push(
        await drive(
          clock,
          DynamoNode.start<string>({
            id,
            transport: network.connect(id),
            storage: new MemoryStorage(),
            seeds: id === 'n1' ? [] : ['n1'],
            clock: new SkewedClock(clock, offsets[id]),
            partitions: PARTITIONS,
            requestTimeoutMs: 100,
            gossipIntervalMs: 100,
            antiEntropy: { intervalMs: 60_000, enabled: false },
          }),
        ),
      );
    }
    extra.push(...nodes);
    await drive(clock, Promise.all(nodes.map((n) => n.ready())));
    const [fast, , slow] = nodes as [DynamoNode<string>, DynamoNode<string>, DynamoNode<string>];
    // Coordinated on the middle clock (a primary forwards it there or coordinates itself).
    await drive(clock, nodes[1]!.put('k', 'v', { ttlMs: TTL }));
    // Between the fast node's expiry and the slow node's: the skew is the window.
    await clock.advance(TTL - 300 + 50);
    expect((await drive(clock, slow.get('k'))).values).toEqual(['v']);
    expect((await drive(clock, fast.get('k'))).values).toEqual([]);
    await clock.advance(20); // read repair lands the tombstone on every replica
    expect((await drive(clock, slow.get('k', { r: 3 }))).values).toEqual([]);
    expect((await drive(clock, slow.get('k', { r: 1 }))).values).toEqual([]);
  });

  it('data types expire as a whole key, from their last write with a TTL', async () => {
    const c = await start({}, 3);
    const counter = c.nodes[0]!.counter('rate:alice');
    await counter.increment(3, { ttlMs: TTL });
    await c.clock.advance(TTL / 2);
    await counter.increment(2, { ttlMs: TTL }); // extends the expiry
    await c.clock.advance(TTL / 2 + 10);
    expect(await c.nodes[1]!.counter('rate:alice').value()).toBe(5);
    expect(await counter.value()).toBe(5);
    await c.clock.advance(TTL / 2);
    // Expired on every node, the writer's own session included.
    expect(await counter.value()).toBe(0);
    expect(await c.nodes[2]!.counter('rate:alice').value()).toBe(0);
    expect((await counter.increment(1, { ttlMs: TTL })).value).toBe(1);
    const set = c.nodes[1]!.set('seen');
    await set.add('a', { ttlMs: TTL });
    await c.clock.advance(TTL + 1);
    expect(await c.nodes[0]!.set('seen').value()).toEqual([]);
  });

  it('a DynamoClient writes with a TTL too, and a resolver keeps the expiry when it writes a merge back', async () => {
    const c = await start({ resolver: (siblings: string[]) => siblings.sort().join('+') }, 3);
    const client = await drive(
      c.clock,
      DynamoClient.start<string>({
        id: 'client',
        transport: c.network.connect('client'),
        seeds: ['n1'],
        clock: c.clock,
        partitions: PARTITIONS,
        requestTimeoutMs: 100,
      }),
    );
    extra.push(client);
    await drive(c.clock, client.put('k', 'a', { ttlMs: TTL }));
    await drive(c.clock, client.put('k', 'b', { ttlMs: TTL * 2 })); // no context: a sibling
    expect((await drive(c.clock, c.nodes[0]!.get('k'))).values).toEqual(['a+b']);
    await c.clock.advance(TTL * 2 + 50);
    expect((await drive(c.clock, client.get('k'))).values).toEqual([]);
    expect((await drive(c.clock, c.nodes[1]!.get('k'))).values).toEqual([]);
  });
});
