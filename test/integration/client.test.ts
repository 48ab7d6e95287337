import { afterEach, describe, expect, it } from 'vitest';
import { DynamoClient } from '../../src/client/index.js';
import { DynamoNode, MemoryStorage, QuorumError, seededRandom } from '../../src/index.js';
import { type Cluster, createCluster } from '../../src/testing/index.js';
import { drive } from '../helpers.js';

let cluster: Cluster<unknown> | undefined;
const clients: DynamoClient<unknown>[] = [];
const extra: DynamoNode<unknown>[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.stop()));
  await Promise.all(extra.splice(0).map((n) => n.stop()));
  await cluster?.stop();
  cluster = undefined;
});

const fast = { requestTimeoutMs: 100, gossipIntervalMs: 100, hintedHandoff: { intervalMs: 100 } };
/** The client takes no node-only option (hintedHandoff): unknown options are errors. */
const { hintedHandoff: _nodeOnly, ...clientFast } = fast;

async function startClient(
  c: Cluster<unknown>,
  options: Partial<Parameters<typeof DynamoClient.start>[0]> = {},
): Promise<DynamoClient<unknown>> {
  const client = await drive(
    c.clock,
    DynamoClient.start({
      ...clientFast,
      id: 'web-1',
      transport: c.network.connect('web-1'),
      seeds: ['n1'],
      clock: c.clock,
      random: seededRandom('client'),
      ...options,
    }),
  );
  clients.push(client);
  return client;
}

/** A run of key names. */
const keys = (n: number, prefix = 'k') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe('DynamoClient on a 5-node cluster', () => {
  it('reads and writes through the cluster, stores nothing, and is no member of it', async () => {
    cluster = await createCluster({ nodes: 5, nodeOptions: fast });
    const c = cluster;
    const client = await startClient(c);
    expect(client.status).toBe('running');
    expect(client.members().map((m) => m.id)).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);

    for (const key of keys(40)) await drive(c.clock, client.put(key, { v: key }));
    // Written by the client, read by nodes; written by a node, read by the client.
    for (const key of keys(40)) {
      const { values } = await drive(c.clock, c.node('n3').get(key));
      expect(values).toEqual([{ v: key }]);
    }
    await drive(c.clock, c.node('n2').put('from-node', 7));
    expect((await drive(c.clock, client.get('from-node'))).values).toEqual([7]);

    // Read-modify-write, a context-carrying put, and a delete, all from the client.
    const up = await drive(
      c.clock,
      client.update('counter', (cur) => ((cur as number | undefined) ?? 0) + 1),
    );
    expect(up.value).toBe(1);
    await drive(
      c.clock,
      client.update('counter', (cur) => (cur as number) + 1),
    );
    const read = await drive(c.clock, client.get('counter'));
    expect(read.values).toEqual([2]);
    await drive(c.clock, client.delete('counter', { context: read.context }));
    expect((await drive(c.clock, c.node('n1').get('counter'))).values).toEqual([]);

    // Versions were made by replicas: no dot names the client.
    const conflict = await drive(c.clock, client.put('blind', 1));
    await drive(c.clock, client.put('blind', 2));
    const siblings = await drive(c.clock, c.node('n4').get('blind'));
    expect(siblings.values.sort()).toEqual([1, 2]);
    expect(conflict.context).not.toContain('web-1');

    await c.settle();
    for (const n of c.nodes) {
      expect(n.members().map((m) => m.id)).not.toContain('web-1');
      expect(n.stats().hints.pending).toBe(0);
    }
    expect(client.stats().put.count).toBe(44);
    // Replies, state pulls and probes measured the members it talked to.
    expect(client.stats().latency?.trackedPeers).toBeGreaterThanOrEqual(3);
  });

  it('routes like the nodes: same preference lists, and reads go straight to replicas', async () => {
    cluster = await createCluster({ nodes: 5, nodeOptions: fast });
    const c = cluster;
    const client = await startClient(c, { latencyAware: false });
    for (const key of keys(50)) {
      expect(client.preferenceList(key)).toEqual(c.node('n1').preferenceList(key));
    }
    await drive(c.clock, client.put('x', 1));
    c.network.resetCounters();
    await client.get('x');
    // N reads and N replies, nothing forwarded: no coordinator hop.
    expect(c.network.counters.sent).toBe(6);
  });

  it("follows a join and a leave through the members' state", async () => {
    cluster = await createCluster({ nodes: 5, nodeOptions: fast });
    const c = cluster;
    const client = await startClient(c);
    const events: string[] = [];
    client.on('member:join', (e) => events.push(`join:${e.id}`));
    client.on('member:leave', (e) => events.push(`leave:${e.id}`));
    for (const key of keys(30)) await drive(c.clock, client.put(key, key));

    const n6 = await drive(
      c.clock,
      DynamoNode.start({
        ...fast,
        id: 'n6',
        transport: c.network.connect('n6'),
        storage: new MemoryStorage(),
        seeds: ['n2'],
        clock: c.clock,
      }),
    );
    extra.push(n6);
    const sameRing = () =>
      JSON.stringify(client.members()) === JSON.stringify(c.node('n1').members()) &&
      n6.members().every((m) => m.partitions > 0);
    for (let t = 0; !sameRing(); t += 10) {
      if (t > 30_000) throw new Error('client ring did not follow the join');
      await c.clock.advance(10);
    }
    expect(client.members().find((m) => m.id === 'n6')?.partitions).toBeGreaterThan(0);
    expect(events).toContain('join:n6');
    for (const key of keys(30)) expect(client.preferenceList(key)).toEqual(n6.preferenceList(key));
    for (const key of keys(30)) expect((await drive(c.clock, client.get(key))).values).toEqual([key]);

    await drive(c.clock, n6.leave());
    for (let t = 0; client.members().some((m) => m.id === 'n6'); t += 10) {
      if (t > 30_000) throw new Error('client ring did not follow the leave');
      await c.clock.advance(10);
    }
    expect(events).toContain('leave:n6');
    for (const key of keys(30)) {
      expect(client.preferenceList(key).map((e) => e.id)).not.toContain('n6');
      expect((await drive(c.clock, client.get(key))).values).toEqual([key]);
    }
    await drive(c.clock, client.put('after-leave', 1));
    expect((await drive(c.clock, c.node('n1').get('after-leave'))).values).toEqual([1]);
  });

  it('survives a crashed replica with sloppy quorum, like a node does', async () => {
    cluster = await createCluster({ nodes: 5, nodeOptions: fast });
    const c = cluster;
    // Ring order (no latency ranking): the first primary is the put's first choice of coordinator.
    const client = await startClient(c, { latencyAware: false });
    await drive(c.clock, client.put('cart', 'v1'));
    const [first, second] = client.preferenceList('cart').map((e) => e.id);
    // A crash: no reply, no reset — requests to it time out.
    c.network.partition([first!]);
    const read = await drive(c.clock, client.get('cart'));
    expect(read.values).toEqual(['v1']);
    // The put's preferred coordinator may be the crashed node: the client fails over.
    const written = await drive(c.clock, client.put('cart', 'v2', { context: read.context }));
    expect(written.context).toBeTruthy();
    // A second replica down too: fallbacks stand in (sloppy quorum), hints wait for the owners.
    c.network.partition([second!]);
    await drive(c.clock, client.put('cart', 'v3', { context: written.context }));
    expect((await drive(c.clock, client.get('cart'))).values).toEqual(['v3']);
    const hinted = c.nodes.reduce((s, n) => s + n.stats().hints.stored, 0);
    expect(hinted).toBeGreaterThan(0);
    c.network.heal();
    await c.settle();
    for (const id of [first!, second!]) {
      expect((await drive(c.clock, c.node(id).get('cart', { r: 1 }))).values).toEqual(['v3']);
    }
    expect(client.stats().coordinatorFailovers).toBeGreaterThanOrEqual(1);
  });

  it('a put applied by a coordinator whose answer was lost, then by the next, is one write', async () => {
    cluster = await createCluster({ nodes: 5, nodeOptions: fast });
    const c = cluster;
    const client = await startClient(c, { latencyAware: false });
    await drive(c.clock, client.put('order', 'v0'));
    const read = await drive(c.clock, client.get('order'));
    const first = client.preferenceList('order')[0]!.id;
    // The first coordinator gets the put and applies it, but its answer never reaches the client.
    c.network.partitionOneWay(first, 'web-1');
    await drive(c.clock, client.put('order', 'v1', { context: read.context }));
    expect(client.stats().coordinatorFailovers).toBe(1);
    c.network.heal();
    await c.settle();
    for (const n of c.nodes) expect((await drive(c.clock, n.get('order'))).values).toEqual(['v1']);
  });

  it('fails a get with QuorumError when too few replicas answer under strict quorum', async () => {
    cluster = await createCluster({ nodes: 5, nodeOptions: { ...fast, sloppyQuorum: false } });
    const c = cluster;
    const client = await startClient(c, { sloppyQuorum: false });
    await drive(c.clock, client.put('k', 1));
    const [a, b] = client.preferenceList('k').map((e) => e.id);
    c.network.partition([a!]);
    c.network.partition([b!]);
    await expect(drive(c.clock, client.get('k'))).rejects.toBeInstanceOf(QuorumError);
    await expect(drive(c.clock, client.put('k', 2))).rejects.toBeInstanceOf(QuorumError);
  });

  it('retries a put at the new owner when its ring is stale (a member answers "not a replica")', async () => {
    const quorum = { n: 1, r: 1, w: 1 };
    cluster = await createCluster({ nodes: 3, quorum, nodeOptions: fast });
    const c = cluster;
    // No periodic pulls: the client's ring stays as it was until a reply shows it stale.
    const client = await startClient(c, { quorum, gossipIntervalMs: 3_600_000 });
    const n4 = await drive(
      c.clock,
      DynamoNode.start({
        ...fast,
        quorum,
        id: 'n4',
        transport: c.network.connect('n4'),
        storage: new MemoryStorage(),
        seeds: ['n1'],
        clock: c.clock,
      }),
    );
    extra.push(n4);
    await c.settle();
    const moved = keys(200).find((k) => client.preferenceList(k)[0]!.id !== n4.preferenceList(k)[0]!.id);
    expect(moved).toBeDefined();
    expect(n4.preferenceList(moved!)[0]!.id).toBe('n4');
    await drive(c.clock, client.put(moved!, 'fresh'));
    expect(client.stats().staleRingRetries).toBe(1);
    expect(client.preferenceList(moved!)[0]!.id).toBe('n4');
    expect((await drive(c.clock, n4.get(moved!))).values).toEqual(['fresh']);
  });

  it('rejects bad input with typed errors before sending anything', async () => {
    cluster = await createCluster({ nodes: 3, nodeOptions: fast });
    const c = cluster;
    const client = await startClient(c, { limits: { maxKeyBytes: 8 } });
    c.network.resetCounters();
    await expect(client.put('a-much-too-long-key', 1)).rejects.toMatchObject({ code: 'DYNAMO_LIMIT' });
    await expect(client.put('k', 1, { context: 'not a context' })).rejects.toMatchObject({
      code: 'DYNAMO_INVALID_CONTEXT',
    });
    await expect(client.get('k', { r: 9 })).rejects.toBeInstanceOf(RangeError);
    expect(c.network.counters.sent).toBe(0);
    await expect(
      DynamoClient.start({ id: 'x', transport: c.network.connect('x'), seeds: [] }),
    ).rejects.toThrow(TypeError);
    await client.stop();
    await expect(client.get('k')).rejects.toMatchObject({ code: 'DYNAMO_NOT_RUNNING' });
  });
});
