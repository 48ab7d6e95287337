import { afterEach, describe, expect, it } from 'vitest';
import { DynamoClient, type DynamoClientOptions } from '../../src/client/index.js';
import { seededRandom } from '../../src/index.js';
import { type Cluster, createCluster } from '../../src/testing/index.js';
import { drive } from '../helpers.js';

let cluster: Cluster<unknown> | undefined;
const clients: DynamoClient<unknown>[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.stop()));
  await cluster?.stop();
  cluster = undefined;
});

const fast = { requestTimeoutMs: 200, gossipIntervalMs: 100, hintedHandoff: { intervalMs: 100 } };
/** The client takes no node-only option (hintedHandoff): unknown options are errors. */
const { hintedHandoff: _nodeOnly, ...clientFast } = fast;
const READ = '1';
const COORDINATE_PUT = '3';

/** 5 nodes, 1 ms one way everywhere, n5 at 20 ms (a slow machine). */
async function slowReplicaCluster(): Promise<Cluster<unknown>> {
  cluster = await createCluster({ nodes: 5, nodeOptions: fast, network: { latencyMs: { min: 1, max: 1 } } });
  cluster.network.setNodeLatency('n5', { min: 20, max: 20 });
  return cluster;
}

async function startClient(
  c: Cluster<unknown>,
  id: string,
  options: Partial<DynamoClientOptions<unknown>> = {},
): Promise<DynamoClient<unknown>> {
  const client = await drive(
    c.clock,
    DynamoClient.start({
      ...clientFast,
      id,
      transport: c.network.connect(id),
      seeds: ['n1'],
      clock: c.clock,
      random: seededRandom(id),
      ...options,
    }),
  );
  clients.push(client);
  return client;
}

/** Virtual ms an operation takes. */
async function timed<T>(c: Cluster<unknown>, work: Promise<T>): Promise<number> {
  const t0 = c.clock.now();
  await drive(c.clock, work, 1);
  return c.clock.now() - t0;
}

const served = (c: Cluster<unknown>, id: string, type: string) => c.node(id).stats().served[type] ?? 0;

/** Keys whose replicas include n5 among the first two (ring order would ask it first). */
function keysNearSlow(client: DynamoClient<unknown>, count: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    const ids = client.preferenceList(`key${i}`).map((e) => e.id);
    if (ids.slice(0, 2).includes('n5')) out.push(`key${i}`);
  }
  return out;
}

describe('latency-aware routing (MemoryNetwork with a slow replica)', () => {
  it('reads the fastest r replicas first: quick answers, and the slow one left alone', async () => {
    const c = await slowReplicaCluster();
    const aware = await startClient(c, 'aware');
    const keys = keysNearSlow(aware, 20);
    for (const k of keys) await drive(c.clock, aware.put(k, k), 1);
    await c.settle(2000); // state pulls measure every member
    const before = served(c, 'n5', READ);
    for (const k of keys) {
      const ms = await timed(c, aware.get(k));
      expect(ms).toBeLessThanOrEqual(4);
    }
    await c.clock.advance(100);
    // At most the hedges the budget allows (10 % of reads plus the burst) reached n5.
    const stats = aware.stats().latency!;
    expect(served(c, 'n5', READ) - before).toBeLessThanOrEqual(stats.hedged);
    expect(stats.hedged).toBeLessThanOrEqual(0.1 * keys.length + 10);
  });

  it('without latency awareness every read also loads the slow replica', async () => {
    const c = await slowReplicaCluster();
    const plain = await startClient(c, 'plain', { latencyAware: false });
    const keys = keysNearSlow(plain, 20);
    for (const k of keys) await drive(c.clock, plain.put(k, k), 1);
    await c.settle(2000);
    const before = served(c, 'n5', READ);
    for (const k of keys) await drive(c.clock, plain.get(k), 1);
    await c.clock.advance(100); // the reads to n5 still on the wire
    expect(served(c, 'n5', READ) - before).toBe(keys.length);
  });

  it('hedges after the delay when a replica that was fast turns slow, within the budget', async () => {
    const c = await slowReplicaCluster();
    const hedging = await startClient(c, 'hedging', { maxHedgeRatio: 1 });
    const waiting = await startClient(c, 'waiting', { maxHedgeRatio: 0 });
    const key = keysNearSlow(hedging, 1)[0]!;
    await drive(c.clock, hedging.put(key, 1), 1);
    await c.settle(2000);
    const fastest = hedging.preferenceList(key).find((e) => e.id !== 'n5')!.id;
    c.network.setNodeLatency(fastest, { min: 60, max: 60 });
    // The hedged read asks n5 (the held-back replica) after ~the hedge delay instead of waiting
    // 120 ms for the replica its estimate still calls fast.
    expect(await timed(c, hedging.get(key))).toBeLessThan(60);
    expect(hedging.stats().latency!.hedged).toBe(1);
    expect(await timed(c, waiting.get(key))).toBeGreaterThanOrEqual(120);
    expect(waiting.stats().latency!.hedgesRefused).toBe(1);
  });

  it('asks a held-back replica at once when one of the first fails', async () => {
    const c = await slowReplicaCluster();
    const client = await startClient(c, 'client');
    const key = keysNearSlow(client, 1)[0]!;
    await drive(c.clock, client.put(key, 'v'), 1);
    await c.settle(2000);
    const fastOnes = client.preferenceList(key).filter((e) => e.id !== 'n5');
    await c.stopNode(fastOnes[0]!.id); // refused after one hop: a fast failure
    const t0 = c.clock.now();
    const { values } = await drive(c.clock, client.get(key), 1);
    expect(values).toEqual(['v']);
    // Fast replica + the held-back slow one (20 ms each way), no hedge delay, no timeout.
    expect(c.clock.now() - t0).toBeLessThan(fast.requestTimeoutMs);
  });

  it('sends a put after a get to a fast replica as coordinator, never the slow one', async () => {
    const c = await slowReplicaCluster();
    const client = await startClient(c, 'client');
    const keys = keysNearSlow(client, 10);
    for (const k of keys) await drive(c.clock, client.put(k, 0), 1);
    await c.settle(2000);
    const before = served(c, 'n5', COORDINATE_PUT);
    for (const k of keys) {
      const { context } = await drive(c.clock, client.get(k), 1);
      expect(await timed(c, client.put(k, 1, { context }))).toBeLessThanOrEqual(8);
    }
    expect(served(c, 'n5', COORDINATE_PUT)).toBe(before);
  });

  it('a latency-aware node forwards puts to its fastest primary and hedges its reads too', async () => {
    cluster = await createCluster({
      nodes: 5,
      nodeOptions: { ...fast, latencyAware: true },
      network: { latencyMs: { min: 1, max: 1 } },
    });
    const c = cluster;
    c.network.setNodeLatency('n5', { min: 20, max: 20 });
    await c.settle(2000);
    const node = c.node('n1');
    const keys: string[] = [];
    for (let i = 0; keys.length < 10; i++) {
      const ids = node.preferenceList(`k${i}`).map((e) => e.id);
      if (ids.includes('n5') && !ids.includes('n1')) keys.push(`k${i}`);
    }
    for (const k of keys) await drive(c.clock, node.put(k, k), 1);
    const readsBefore = served(c, 'n5', READ);
    const putsBefore = served(c, 'n5', COORDINATE_PUT);
    for (const k of keys) {
      expect(await timed(c, node.get(k))).toBeLessThanOrEqual(4);
      expect(await timed(c, node.put(k, 'again'))).toBeLessThanOrEqual(8);
    }
    expect(served(c, 'n5', COORDINATE_PUT)).toBe(putsBefore);
    expect(served(c, 'n5', READ) - readsBefore).toBeLessThanOrEqual(3);
  });
});
