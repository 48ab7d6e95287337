/**
 * Listing keys across a cluster: 100,000 keys on 5 nodes (MemoryNetwork, VirtualClock). Pages
 * return each key exactly once while membership is stable, at least once while a node joins, and
 * the same keys when a node goes down in the middle; tombstones are left out; cursors are checked.
 *
 * The 100,000 keys are written straight into each primary's storage (what a restarted node finds
 * on disk) rather than by 100,000 puts: the listing is under test here, and puts would take most
 * of a minute. Smaller tests below write through `put` and `delete`.
 */
import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { DynamoClient } from '../../src/client/index.js';
import { DynamoNode, MemoryStorage, VirtualClock } from '../../src/index.js';
import { dataKey } from '../../src/replica/layout.js';
import { partitionOf } from '../../src/ring/index.js';
import { type Cluster, createCluster, drive } from '../../src/testing/index.js';
import { encodeObject } from '../../src/versioning/index.js';

const PARTITIONS = 256;
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

let cluster: Cluster<string> | undefined;
const extra: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  for (const x of extra.splice(0)) await x.stop();
  await cluster?.stop();
  cluster = undefined;
});

async function start(nodes = 5): Promise<Cluster<string>> {
  cluster = await createCluster<string>({
    nodes,
    clock: new VirtualClock(1_000_000),
    nodeOptions: { partitions: PARTITIONS, requestTimeoutMs: 200, gossipIntervalMs: 200 },
  });
  await drive(cluster.clock, Promise.all(cluster.nodes.map((n) => n.ready())));
  return cluster;
}

/** Writes `count` keys (`key:0`...) with one value each into every primary's storage. */
async function seed(c: Cluster<string>, count: number): Promise<string[]> {
  const keys: string[] = [];
  const batches = new Map<string, { type: 'put'; key: Uint8Array; value: Uint8Array }[]>();
  const value = packr.pack('v') as Uint8Array;
  for (let i = 0; i < count; i++) {
    const key = `key:${i}`;
    keys.push(key);
    const bytes = new TextEncoder().encode(key);
    const object = encodeObject({
      ctx: new Map([['seed@0', 1]]),
      siblings: [{ dot: ['seed@0', 1], value, timestamp: 1 }],
    });
    for (const e of c.nodes[0]!.preferenceList(key)) {
      const ops = batches.get(e.id) ?? [];
      ops.push({ type: 'put', key: dataKey(partitionOf(bytes, PARTITIONS), bytes), value: object });
      batches.set(e.id, ops);
    }
  }
  for (const [id, ops] of batches) await c.storage(id).batch(ops);
  return keys;
}

/** Every page from `node`, in order, with `between` run after each page. */
async function listAll(
  c: Cluster<string>,
  node: { keys(o: { limit: number; cursor?: string }): Promise<{ keys: string[]; cursor?: string }> },
  limit: number,
  between?: (page: number) => Promise<void>,
): Promise<{ keys: string[]; pages: number }> {
  const keys: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await drive(c.clock, node.keys({ limit, cursor }));
    expect(page.keys.length).toBeLessThanOrEqual(limit);
    keys.push(...page.keys);
    cursor = page.cursor;
    pages++;
    await between?.(pages);
  } while (cursor !== undefined);
  return { keys, pages };
}

function listRequests(c: Cluster<string>): Record<string, number> {
  // A stopped node's stats stay readable.
  return Object.fromEntries(c.nodes.map((n) => [n.id, n.stats().served['13'] ?? 0]));
}

describe('listing 100,000 keys on 5 nodes', () => {
  it('returns each key exactly once while membership is stable, from as few nodes as possible', async () => {
    const c = await start();
    const written = await seed(c, 100_000);
    const { keys, pages } = await listAll(c, c.nodes[0]!, 1000);
    expect(keys.length).toBe(100_000);
    expect(new Set(keys).size).toBe(100_000);
    expect([...keys].sort()).toEqual([...written].sort());
    expect(pages).toBeGreaterThanOrEqual(100);
    // One replica per partition: n1 serves what it holds itself, and two other nodes serve the
    // rest (a round-robin ring of 5 with N = 3 cannot be covered by fewer than 3 nodes).
    const asked = Object.entries(listRequests(c)).filter(([, n]) => n > 0);
    expect(asked.length).toBeLessThanOrEqual(2);
    expect(asked.map(([id]) => id)).not.toContain('n1');

    // The iterator gives the same keys, ends, and so does a DynamoClient's.
    let counted = 0;
    for await (const _ of c.nodes[3]!.allKeys({ pageSize: 5000 })) counted++;
    expect(counted).toBe(100_000);
    const client = await DynamoClient.start<string>({
      id: 'client',
      transport: c.network.connect('client'),
      seeds: ['n1'],
      clock: c.clock,
      partitions: PARTITIONS,
      requestTimeoutMs: 200,
    });
    extra.push(client);
    const viaClient = await listAll(c, client, 2000);
    expect(viaClient.keys.length).toBe(100_000);
    expect(new Set(viaClient.keys).size).toBe(100_000);
  });

  it('returns every key at least once while a sixth node joins, and ends', async () => {
    const c = await start();
    const written = await seed(c, 100_000);
    const before = c.nodes[0]!.ringStatus().version;
    let switched = before;
    let joining: Promise<DynamoNode<string>> | undefined;
    const { keys } = await listAll(c, c.nodes[1]!, 500, async (page) => {
      if (page === 5) {
        joining = DynamoNode.start<string>({
          id: 'n6',
          transport: c.network.connect('n6'),
          storage: new MemoryStorage(),
          seeds: ['n1'],
          clock: c.clock,
          partitions: PARTITIONS,
          requestTimeoutMs: 200,
          gossipIntervalMs: 200,
        });
        joining.then((n) => extra.push(n));
      }
      // Time moves between pages: gossip, the transfers to n6, the ownership switch.
      await c.clock.advance(100);
      if (page === 20) switched = c.nodes[1]!.ringStatus().version;
    });
    const n6 = await drive(c.clock, joining!);
    // The ring had moved partitions to n6 (transfers, switch, old owners dropping) by page 20 of 200.
    expect(switched).toBeGreaterThan(before);
    expect(c.nodes[1]!.members().find((m) => m.id === 'n6')?.partitions).toBeGreaterThan(0);
    const seen = new Set(keys);
    for (const k of written) expect(seen.has(k)).toBe(true);
    expect(seen.size).toBe(100_000);
    // Listed from n6 itself, which serves the partitions it received.
    const fromNew = await listAll(c, n6, 5000);
    expect(new Set(fromNew.keys).size).toBe(100_000);
    expect(fromNew.keys.length).toBe(100_000);
  }, 120_000);

  it('gives the same keys when a node goes down in the middle', async () => {
    const c = await start();
    const written = await seed(c, 100_000);
    const { keys } = await listAll(c, c.nodes[0]!, 1000, async (page) => {
      if (page === 20) await c.stopNode('n3');
      if (page === 50) c.network.partition(['n2']);
    });
    // n1 listed with n2 and n3 at first; the replicas standing in for them were asked instead.
    const served = listRequests(c);
    expect(served.n2! + served.n3!).toBeGreaterThan(0);
    expect(served.n4! + served.n5!).toBeGreaterThan(0);
    expect(keys.length).toBe(100_000);
    expect(new Set(keys).size).toBe(100_000);
    expect([...keys].sort()).toEqual([...written].sort());
  }, 120_000);
});

describe('listing', () => {
  it('leaves tombstones out and lists keys written through put', async () => {
    const c = await start();
    for (let i = 0; i < 300; i++) await c.nodes[i % 5]!.put(`k${i}`, `v${i}`);
    for (const i of [3, 30, 299]) {
      const { context } = await c.nodes[0]!.get(`k${i}`);
      await c.nodes[0]!.delete(`k${i}`, { context });
    }
    const { keys } = await listAll(c, c.nodes[2]!, 7);
    expect(keys.length).toBe(297);
    expect(keys).not.toContain('k30');
    const entries = [];
    for await (const e of c.nodes[4]!.allEntries({ pageSize: 50, concurrency: 4 })) entries.push(e);
    expect(entries.length).toBe(297);
    for (const e of entries) expect(e.values).toEqual([`v${e.key.slice(1)}`]);
    const bytes = await c.nodes[1]!.keys({ keyEncoding: 'bytes', limit: 10 });
    expect(bytes.keys[0]).toBeInstanceOf(Uint8Array);
  });

  it('fails a page with QuorumError when no replica of a partition answers', async () => {
    const c = await start();
    await c.nodes[0]!.put('a', 'x');
    for (const id of ['n2', 'n3', 'n4']) await c.stopNode(id);
    await expect(drive(c.clock, c.nodes[0]!.keys())).rejects.toMatchObject({ code: 'DYNAMO_QUORUM' });
  });

  it('checks its options and cursors', async () => {
    const c = await start(3);
    const node = c.nodes[0]!;
    await expect(node.keys({ limit: 0 })).rejects.toBeInstanceOf(RangeError);
    await expect(node.keys({ limit: 10_001 })).rejects.toBeInstanceOf(RangeError);
    await expect(node.keys({ cursor: 'not a cursor!' })).rejects.toBeInstanceOf(TypeError);
    await expect(node.keys({ cursor: '' })).rejects.toBeInstanceOf(TypeError);
    // A cursor for a cluster with another partition count.
    await expect(node.keys({ cursor: 'AQYAAAA' })).rejects.toThrow(/partitions/);
    await expect(node.keys({ bogus: 1 } as never)).rejects.toBeInstanceOf(TypeError);
    // A typo names the option it meant, as every other options object does.
    await expect(node.keys({ limt: 5 } as never)).rejects.toThrow(
      'keys: unknown option "limt" (did you mean "limit"?)',
    );
    const all = node.allKeys({ pagesize: 5 } as never);
    await expect(all.next()).rejects.toThrow('(did you mean "pageSize"?)');
    await expect(node.keys({ keyEncoding: 'hex' } as never)).rejects.toBeInstanceOf(RangeError);
    const page = await node.keys({ limit: 1 });
    expect(page.cursor).toBeUndefined();
  });
});
