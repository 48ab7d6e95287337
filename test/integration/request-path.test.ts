import { afterEach, describe, expect, it } from 'vitest';
import {
  DynamoNode,
  InvalidContextError,
  LimitError,
  MemoryNetwork,
  MemoryStorage,
  NotRunningError,
  QuorumError,
  resolvers,
  type Storage,
  VirtualClock,
} from '../../src/index.js';
import { type Cluster, createCluster } from '../../src/testing/index.js';

let cluster: Cluster<unknown> | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

async function dump(storage: Storage): Promise<string[]> {
  const out: string[] = [];
  for await (const [k, v] of storage.iterate({}))
    out.push(`${Buffer.from(k).toString('hex')}=${Buffer.from(v).toString('hex')}`);
  return out;
}

/** Siblings (tombstones included) held for `key` by each node's own storage, via a strict r=1 read there. */
describe('request path', () => {
  it('reads its own writes with R + W > N', async () => {
    cluster = await createCluster({ nodes: 5, quorum: { n: 3, r: 2, w: 2 } });
    for (let i = 0; i < 50; i++) {
      const writer = cluster.nodes[i % 5]!;
      const reader = cluster.nodes[(i + 2) % 5]!;
      await writer.put(`k${i}`, { i });
      expect((await reader.get(`k${i}`)).values).toEqual([{ i }]);
    }
  });

  it('forwards a put from a node outside the preference list', async () => {
    cluster = await createCluster({ nodes: 5 });
    const key = 'forward-me';
    const replicas = new Set(cluster.nodes[0]!.preferenceList(key).map((e) => e.id));
    const outsider = cluster.nodes.find((n) => !replicas.has(n.id))!;
    await outsider.put(key, 'v');
    expect(outsider.stats().forwarded).toBe(1);
    expect((await outsider.get(key)).values).toEqual(['v']);
  });

  it('keeps concurrent puts as siblings and collapses them with the merged context', async () => {
    cluster = await createCluster({ nodes: 3 });
    const [a, b] = cluster.nodes;
    await a!.put('cart', ['x']);
    await b!.put('cart', ['y']);
    const read = await a!.get('cart');
    expect(read.values).toHaveLength(2);
    expect(read.values).toEqual(expect.arrayContaining([['x'], ['y']]));
    expect(a!.stats().siblings.conflictedReads).toBe(1);
    await b!.put('cart', ['x', 'y'], { context: read.context });
    expect((await a!.get('cart')).values).toEqual([['x', 'y']]);
  });

  it('never holds more than 2 siblings when two writers alternate with stale contexts', async () => {
    cluster = await createCluster({ nodes: 3 });
    const [a, b] = cluster.nodes;
    let ctxA: string | undefined;
    let ctxB: string | undefined;
    let maxSeen = 0;
    for (let round = 0; round < 100; round++) {
      ctxA = (await a!.put('reg', `a${round}`, { context: ctxA })).context;
      ctxB = (await b!.put('reg', `b${round}`, { context: ctxB })).context;
      maxSeen = Math.max(maxSeen, (await a!.get('reg')).values.length);
    }
    expect(maxSeen).toBeLessThanOrEqual(2);
  });

  it('returns the resolver merge and writes it back', async () => {
    const union = resolvers.merge<string[]>((x, y) => [...new Set([...x, ...y])].sort());
    cluster = (await createCluster<string[]>({
      nodes: 3,
      nodeOptions: { resolver: union },
    })) as Cluster<unknown>;
    const [a, b] = cluster.nodes as DynamoNode<string[]>[];
    await a!.put('cart', ['x']);
    await b!.put('cart', ['y']);
    const conflicts: number[] = [];
    a!.on('conflict', (e) => conflicts.push(e.siblings));
    const first = await a!.get('cart');
    expect(first.values).toEqual([['x', 'y']]);
    expect(conflicts).toEqual([2]);
    const second = await a!.get('cart');
    expect(second.values).toEqual([['x', 'y']]);
    expect(conflicts).toEqual([2]); // written back: no conflict any more
    // The context returned covers the write-back: a put with it leaves exactly one value.
    await a!.put('cart', ['z'], { context: second.context });
    expect((await b!.get('cart')).values).toEqual([['z']]);
  });

  it('lastWriteWins keeps the newest sibling', async () => {
    const clock = new VirtualClock();
    cluster = await createCluster({ nodes: 3, clock, nodeOptions: { resolver: resolvers.lastWriteWins() } });
    const [a, b] = cluster.nodes;
    await a!.put('k', 'old');
    await clock.advance(5);
    await b!.put('k', 'new');
    expect((await a!.get('k')).values).toEqual(['new']);
  });

  it('deletes with a tombstone, and a later put with the delete context is not shadowed', async () => {
    cluster = await createCluster({ nodes: 3 });
    const [a, b, c] = cluster.nodes;
    const { context } = await a!.put('k', 1);
    const deleted = await b!.delete('k', { context });
    const read = await c!.get('k');
    expect(read.values).toEqual([]);
    expect(typeof read.context).toBe('string');
    await a!.put('k', 2, { context: read.context });
    expect((await b!.get('k')).values).toEqual([2]);
    expect(deleted.context).toBeTypeOf('string');
  });

  it('update reads, applies the function and writes back with the context', async () => {
    cluster = await createCluster({ nodes: 3 });
    const a = cluster.nodes[0]!;
    const seen: unknown[] = [];
    await a.update('counter', (cur) => {
      seen.push(cur);
      return ((cur as number | undefined) ?? 0) + 1;
    });
    const r = await a.update('counter', (cur) => (cur as number) + 1);
    expect(seen).toEqual([undefined]);
    expect(r.value).toBe(2);
    expect((await cluster.nodes[1]!.get('counter')).values).toEqual([2]);
  });

  it('repairs a replica that missed a write on the next read', async () => {
    cluster = await createCluster({ nodes: 3, nodeOptions: { sloppyQuorum: false } });
    const [a, b, c] = cluster.nodes;
    cluster.network.partition([c!.id]);
    await a!.put('k', 'v', { w: 2 });
    cluster.network.heal();
    await cluster.settle(); // c is probed and marked up again
    const repairs: string[][] = [];
    a!.on('repair:read', (e) => repairs.push(e.replicas));
    expect((await a!.get('k', { r: 3 })).values).toEqual(['v']);
    await cluster.settle(10);
    expect(repairs).toEqual([[c!.id]]);
    // c alone now answers with the value.
    cluster.network.partition([a!.id, b!.id]);
    expect((await c!.get('k', { r: 1 })).values).toEqual(['v']);
  });

  it('fails with QuorumError within timeoutMs when W or R replicas are unreachable', async () => {
    const clock = new VirtualClock();
    cluster = await createCluster({ nodes: 3, clock, nodeOptions: { sloppyQuorum: false } });
    const [a, b, c] = cluster.nodes;
    cluster.network.partition([a!.id], [b!.id, c!.id]);
    const started = clock.now();
    const put = a!.put('k', 'v', { w: 2, timeoutMs: 300 }).catch((e) => e);
    await clock.advance(300);
    const err = await put;
    expect(err).toBeInstanceOf(QuorumError);
    expect(err.required).toBe(2);
    expect(err.acks).toBe(1);
    expect(err.failures.length).toBe(2);
    expect(clock.now() - started).toBeLessThanOrEqual(300);
    // The failure detector now routes around b and c: with strict quorum a get fails at once
    // (no timeout to wait for) since only one replica is left.
    const at = clock.now();
    const get = await a!.get('k', { r: 2, timeoutMs: 300 }).catch((e) => e);
    expect(clock.now()).toBe(at);
    expect(get).toBeInstanceOf(QuorumError);
    expect(get.acks).toBe(0);
    expect(get.failures).toEqual([
      { node: b!.id, reason: 'down' },
      { node: c!.id, reason: 'down' },
    ]);
    // A strict put still stores on the one replica it can reach and says so: 1 ack of 2.
    const put2 = await a!.put('k', 'v2', { w: 2, timeoutMs: 300 }).catch((e) => e);
    expect(put2).toBeInstanceOf(QuorumError);
    expect(put2.acks).toBe(1);
  });

  it('aborts through an AbortSignal', async () => {
    const clock = new VirtualClock();
    cluster = await createCluster({ nodes: 3, clock });
    const [a, b, c] = cluster.nodes;
    cluster.network.partition([a!.id], [b!.id, c!.id]);
    const controller = new AbortController();
    const pending = a!.get('k', { signal: controller.signal }).catch((e) => e);
    controller.abort(new Error('user gave up'));
    expect((await pending).message).toBe('user gave up');
    const pre = new AbortController();
    pre.abort(new Error('already'));
    await expect(a!.put('k', 1, { signal: pre.signal })).rejects.toThrow('already');
  });

  it('leaves storage unchanged on every limit violation', async () => {
    cluster = await createCluster({
      nodes: 3,
      nodeOptions: { limits: { maxKeyBytes: 16, maxValueBytes: 64, maxSiblings: 3 } },
    });
    const a = cluster.nodes[0]!;
    for (let i = 0; i < 3; i++) await cluster.nodes[i]!.put('s', i);
    const before = await Promise.all(cluster.nodes.map((n) => dump(cluster!.storage(n.id))));
    await expect(a.put('k'.repeat(17), 1)).rejects.toBeInstanceOf(LimitError);
    await expect(a.put('k', 'x'.repeat(100))).rejects.toBeInstanceOf(LimitError);
    await expect(a.put('s', 4)).rejects.toMatchObject({ code: 'DYNAMO_LIMIT', limit: 'maxSiblings' });
    await expect(a.get('k'.repeat(17))).rejects.toBeInstanceOf(LimitError);
    const after = await Promise.all(cluster.nodes.map((n) => dump(cluster!.storage(n.id))));
    expect(after).toEqual(before);
  });

  it('rejects malformed contexts with a typed error and writes nothing', async () => {
    cluster = await createCluster({ nodes: 3 });
    const a = cluster.nodes[0]!;
    const before = await dump(cluster.storage(a.id));
    for (const bad of ['!!!', 'AAAA', 'x'.repeat(70_000), '']) {
      await expect(a.put('k', 1, { context: bad })).rejects.toBeInstanceOf(InvalidContextError);
    }
    expect(await dump(cluster.storage(a.id))).toEqual(before);
  });

  it('validates options and arguments eagerly', async () => {
    const net = new MemoryNetwork();
    const base = { id: 'x', transport: net.connect('x'), storage: new MemoryStorage() };
    await expect(DynamoNode.start({ ...base, quorum: { n: 3, r: 4, w: 2 } })).rejects.toBeInstanceOf(
      RangeError,
    );
    await expect(DynamoNode.start({ ...base, partitions: 100 })).rejects.toBeInstanceOf(RangeError);
    await expect(DynamoNode.start({ ...base, quorum: { n: 0 } })).rejects.toBeInstanceOf(RangeError);
    await expect(DynamoNode.start({ ...base, id: '' })).rejects.toBeInstanceOf(TypeError);
    cluster = await createCluster({ nodes: 1, quorum: { n: 1, r: 1, w: 1 } });
    const n = cluster.nodes[0]!;
    await expect(n.get(42 as unknown as string)).rejects.toBeInstanceOf(TypeError);
    await expect(n.get('k', { r: 2 })).rejects.toBeInstanceOf(RangeError);
  });

  it('keeps all data across stop and restart with the same storage', async () => {
    cluster = await createCluster({ nodes: 3 });
    for (let i = 0; i < 30; i++) await cluster.nodes[i % 3]!.put(`k${i}`, i);
    for (const id of ['n1', 'n2', 'n3']) {
      await cluster.stopNode(id);
      await expect(cluster.node(id).get('k1')).rejects.toBeInstanceOf(NotRunningError);
      await cluster.restart(id);
      await cluster.settle();
    }
    for (let i = 0; i < 30; i++) expect((await cluster.nodes[(i + 1) % 3]!.get(`k${i}`)).values).toEqual([i]);
    expect(cluster.nodes.every((n) => n.members().length === 3)).toBe(true);
  });

  it('forms one ring on every node', async () => {
    cluster = await createCluster({ nodes: 5 });
    const rings = cluster.nodes.map((n) =>
      JSON.stringify(n.members().map((m) => [m.id, m.partitions, m.status])),
    );
    expect(new Set(rings).size).toBe(1);
    const shares = cluster.nodes[0]!.members().map((m) => m.partitions);
    expect(Math.min(...shares)).toBeGreaterThanOrEqual(Math.floor(256 / 5));
    expect(Math.max(...shares)).toBeLessThanOrEqual(Math.ceil(256 / 5));
  });
});
