/**
 * DynamoClient (client-driven coordination, latency-aware routing) under failures: each test
 * injects one failure and checks what the docs claim of the client against it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DynamoClient, type DynamoClientOptions } from '../../src/client/index.js';
import { MemoryStorage, QuorumError, StorageError, seededRandom, VirtualClock } from '../../src/index.js';
import type { StorageOperation } from '../../src/storage/types.js';
import { type Cluster, createCluster } from '../../src/testing/index.js';
import { drive } from '../helpers.js';

let cluster: Cluster<unknown> | undefined;
const clients: DynamoClient<unknown>[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.stop()));
  await cluster?.stop();
  cluster = undefined;
});

const fast = { requestTimeoutMs: 100, gossipIntervalMs: 100, hintedHandoff: { intervalMs: 100 } };
/** The client takes no node-only option (hintedHandoff): unknown options are errors. */
const { hintedHandoff: _nodeOnly, ...clientFast } = fast;

async function startClient(
  c: Cluster<unknown>,
  options: Partial<DynamoClientOptions<unknown>> = {},
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

/** A MemoryStorage whose writes fail while `broken` is set (a full or failing disk). */
class FailingWrites extends MemoryStorage {
  broken = false;
  override batch(operations: StorageOperation[], options?: { sync?: boolean }): Promise<void> {
    if (this.broken) return Promise.reject(new StorageError('disk full'));
    return super.batch(operations, options);
  }
}

describe('DynamoClient under failures: hung coordinators, failing disks, fallbacks, stop', () => {
  // Each coordinator tried gets the put's whole timeoutMs (a forwarding DynamoNode does the same):
  // failing over only after a full wait is what keeps the put available when a coordinator hangs,
  // and the op id keeps a late apply at the first one the same write. So with two hanging
  // coordinators a 300 ms put answers after ~610 ms; docs/concepts/quorums.md (Timeouts) says so.
  it('a put whose first coordinators hang succeeds at the next, within timeoutMs per coordinator tried', async () => {
    cluster = await createCluster({
      nodes: 5,
      nodeOptions: fast,
      network: { latencyMs: { min: 1, max: 1 } },
    });
    const c = cluster;
    const client = await startClient(c, { latencyAware: false });
    await drive(c.clock, client.put('k', 'v0'));
    const [first, second] = client.preferenceList('k').map((e) => e.id);
    // Both hang (no reply, no reset); the client's failure detector has not noticed yet.
    c.network.partition([first!, second!]);
    const timeoutMs = 300;
    const t0 = c.clock.now();
    const outcome = await drive(
      c.clock,
      client.put('k', 'v1', { timeoutMs }).then(
        () => 'ok',
        (err: unknown) => err,
      ),
    );
    const elapsed = c.clock.now() - t0;
    expect(outcome).toBe('ok');
    expect(elapsed).toBeGreaterThan(2 * timeoutMs);
    expect(elapsed).toBeLessThanOrEqual(3 * timeoutMs + 2);
  });

  it('a replica whose disk fails (answering fast) does not fail every put that a healthy replica could take', async () => {
    const storages = new Map<string, FailingWrites>();
    cluster = await createCluster({
      nodes: 5,
      nodeOptions: fast,
      storage: (id) => {
        const s = new FailingWrites();
        storages.set(id, s);
        return s;
      },
    });
    const c = cluster;
    const client = await startClient(c);
    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
    for (const key of keys) await drive(c.clock, client.put(key, 'v0'));
    // n1's disk fails: it still answers every message at once (reads, probes, state pulls).
    storages.get('n1')!.broken = true;
    const mine = keys.filter((k) => client.preferenceList(k).some((e) => e.id === 'n1'));
    expect(mine.length).toBeGreaterThan(5);
    let failed = 0;
    for (const key of mine) {
      // Read-modify-write, as an application does: the read's first replier is remembered.
      const read = await drive(c.clock, client.get(key));
      await drive(
        c.clock,
        client.put(key, 'v1', { context: read.context }).catch((err: unknown) => {
          expect(err).toBeInstanceOf(QuorumError);
          failed++;
        }),
      );
    }
    // Two of three replicas are healthy: with W = 2 every put can be stored.
    expect(failed).toBe(0);
  });

  it('a put after a read answered first by a fallback goes to a primary while primaries are up', async () => {
    cluster = await createCluster({
      nodes: 5,
      nodeOptions: fast,
      network: { latencyMs: { min: 1, max: 1 } },
    });
    const c = cluster;
    const client = await startClient(c);
    await drive(c.clock, client.put('cart', 'v0'), 1);
    const [down, p2, p3] = client.preferenceList('cart').map((e) => e.id);
    c.network.partition([down!]);
    // The client learns `down` is down (a read times out on it), then routes a fallback in.
    await drive(c.clock, client.get('cart'), 1);
    await c.clock.advance(2 * fast.requestTimeoutMs);
    const list = client.preferenceList('cart');
    const fallback = list.find((e) => e.kind === 'fallback')?.id;
    expect(fallback).toBeDefined();
    // The two live primaries are a little slower than the fallback, so it answers first.
    c.network.setNodeLatency(p2!, { min: 3, max: 3 });
    c.network.setNodeLatency(p3!, { min: 3, max: 3 });
    const coordinated = () => c.node(fallback!).stats().served['3'] ?? 0;
    const before = coordinated();
    for (let i = 0; i < 5; i++) {
      const read = await drive(c.clock, client.get('cart'), 1);
      await drive(c.clock, client.put('cart', `v${i + 1}`, { context: read.context }), 1);
    }
    // docs/api/client.md: "else to the fastest primary"; node.ts: "Only when no primary can be reached does a
    // fallback coordinate (its hint object then writes as an actor of its own)".
    expect(coordinated() - before).toBe(0);
  });

  it('stop() leaves no timer of its own behind (gossip pulls, probes, hedges, timeouts)', async () => {
    cluster = await createCluster({
      nodes: 5,
      nodeOptions: fast,
      network: { latencyMs: { min: 1, max: 1 } },
    });
    const c = cluster;
    // The client on a clock of its own: every timer it sets is counted there.
    const own = new VirtualClock();
    const client = await startClient(c, { clock: own, maxHedgeRatio: 1 });
    const work = (async () => {
      for (let i = 0; i < 20; i++) {
        await client.put(`k${i}`, i);
        await client.get(`k${i}`);
      }
    })();
    // Both clocks move; a replica hangs mid-run, so probes and timeouts are armed.
    let done = false;
    work.finally(() => {
      done = true;
    });
    for (let t = 0; !done && t < 20_000; t++) {
      if (t === 5) c.network.partition(['n2']);
      await own.advance(1);
      await c.clock.advance(1);
    }
    await work;
    expect(own.pending).toBeGreaterThan(0);
    const stopping = client.stop();
    for (let t = 0; t < 1000 && client.status !== 'stopped'; t++) {
      await own.advance(1);
      await c.clock.advance(1);
    }
    await stopping;
    expect(own.pending).toBe(0);
  });
});
