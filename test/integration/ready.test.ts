import { afterEach, describe, expect, it } from 'vitest';
import {
  DynamoNode,
  MemoryNetwork,
  MemoryStorage,
  NotRunningError,
  QuorumError,
  TimeoutError,
  VirtualClock,
} from '../../src/index.js';
import type { StorageOperation } from '../../src/storage/types.js';
import { createCluster } from '../../src/testing/index.js';
import { drive } from '../helpers.js';

/** First byte of data keys in storage (src/replica/layout.ts). */
const DATA_REGION = 0x01;

/** A disk that refuses every data write: transfers to its node fail until `healed`. */
class FailingDataStorage extends MemoryStorage {
  healed = false;
  override batch(operations: StorageOperation[], options?: { sync?: boolean }): Promise<void> {
    if (!this.healed && operations.some((op) => op.key[0] === DATA_REGION)) {
      return Promise.reject(new Error('injected: disk refuses data writes'));
    }
    return super.batch(operations, options);
  }
}

const fast = { requestTimeoutMs: 100, gossipIntervalMs: 100, hintedHandoff: { intervalMs: 100 } };

const running: DynamoNode<unknown>[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((n) => n.stop()));
});

/** Starts `count` nodes at once, every one seeded with the first, each waiting until ready. */
async function startReady(count: number, n: number, rw = n) {
  const clock = new VirtualClock();
  // Latency, so that joining and settling take virtual time (without ready the test fails).
  const network = new MemoryNetwork({ clock, seed: count, latencyMs: { min: 1, max: 10 } });
  const ids = Array.from({ length: count }, (_, i) => `n${i + 1}`);
  const storages = new Map(ids.map((id) => [id, new MemoryStorage()]));
  const nodes = await drive(
    clock,
    Promise.all(
      ids.map((id) =>
        DynamoNode.start({
          ...fast,
          id,
          quorum: { n, r: rw, w: rw },
          transport: network.connect(id),
          storage: storages.get(id)!,
          seeds: id === 'n1' ? [] : ['n1'],
          clock,
          waitUntilReady: true,
        }),
      ),
    ),
  );
  running.push(...nodes);
  return { clock, network, nodes, storages };
}

/**
 * Writes keys, then adds n4 with a disk that refuses data: the rebalance cannot finish, so the
 * ring stays unsettled while every node is up.
 */
async function stuckRebalance(cluster: Awaited<ReturnType<typeof startReady>>) {
  const { clock, network, nodes } = cluster;
  await drive(clock, Promise.all(Array.from({ length: 300 }, (_, i) => nodes[0]!.put(`k${i}`, i))));
  const storage = new FailingDataStorage();
  const joiner = await drive(
    clock,
    DynamoNode.start({
      ...fast,
      id: 'n4',
      transport: network.connect('n4'),
      storage,
      seeds: ['n1'],
      clock,
    }),
  );
  running.push(joiner);
  await clock.advance(1000);
  return storage;
}

describe('ready(): a cluster that can serve w = n right away', () => {
  for (const count of [3, 5]) {
    it(`${count} nodes started together with waitUntilReady take a w = n put and an r = n get at once`, async () => {
      const { clock, nodes } = await startReady(count, count);
      for (const node of nodes) {
        const status = node.ringStatus();
        expect(status.settled).toBe(true);
        expect(status.pending).toEqual([]);
        expect(status.members.map((m) => m.status)).toEqual(Array(count).fill('up'));
      }
      // No settle(): the first request right after start must succeed on every node.
      for (const [i, node] of nodes.entries()) {
        const key = `first-${i}`;
        await drive(clock, node.put(key, i, { w: count }));
        const read = await drive(clock, nodes[(i + 1) % count]!.get(key, { r: count }));
        expect(read.values).toEqual([i]);
      }
    });
  }

  it('ready() on a settled node resolves after one round trip to the members', async () => {
    const { clock, nodes } = await startReady(3, 3);
    // Latency is at most 2 × 10 ms per round trip.
    await drive(clock, nodes[0]!.ready({ timeoutMs: 25 }), 1);
  });

  it('rejects with TimeoutError on the injected clock when the ring cannot settle', async () => {
    const cluster = await startReady(3, 3);
    const { clock, nodes } = cluster;
    await stuckRebalance(cluster);
    const ring = nodes[0]!.ringStatus();
    expect(ring.settled).toBe(false);
    expect(ring.pending.length).toBeGreaterThan(0);
    const waiting = nodes[0]!.ready({ timeoutMs: 500 });
    const outcome = waiting.then(
      () => 'resolved',
      (err: unknown) => err,
    );
    await clock.advance(499);
    expect(await Promise.race([outcome, Promise.resolve('pending')])).toBe('pending');
    await clock.advance(1);
    const err = await outcome;
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as Error).message).toMatch(/not ready after 500 ms: rebalance .* transfers left/);
  });

  it('rejects with the signal reason when aborted, and with NotRunningError when the node stops', async () => {
    const cluster = await startReady(3, 3);
    const { clock, nodes } = cluster;
    await stuckRebalance(cluster);

    const already = new AbortController();
    already.abort(new Error('gave up before'));
    await expect(nodes[1]!.ready({ signal: already.signal })).rejects.toThrow('gave up before');

    const controller = new AbortController();
    const waiting = nodes[1]!.ready({ signal: controller.signal });
    await clock.advance(200);
    controller.abort(new Error('operator gave up'));
    await expect(waiting).rejects.toThrow('operator gave up');

    const stopping = nodes[2]!.ready();
    stopping.catch(() => {});
    await nodes[2]!.stop();
    await expect(stopping).rejects.toBeInstanceOf(NotRunningError);
  });

  it('DynamoNode.start with waitUntilReady rejects with TimeoutError and stops the node', async () => {
    const cluster = await startReady(3, 3);
    const { clock, network, nodes, storages } = cluster;
    const disk = await stuckRebalance(cluster);
    // n3 restarts (same id and storage) while the rebalance cannot finish.
    await nodes[2]!.stop();
    const restart = (waitUntilReady: boolean | { timeoutMs: number }) =>
      DynamoNode.start({
        ...fast,
        id: 'n3',
        quorum: { n: 3, r: 3, w: 3 },
        transport: network.connect('n3'),
        storage: storages.get('n3')!,
        seeds: ['n1'],
        clock,
        waitUntilReady,
      });
    const failed = restart({ timeoutMs: 3000 }).then(
      () => 'started',
      (err: unknown) => err,
    );
    await clock.advance(2000);
    expect(await Promise.race([failed, Promise.resolve('pending')])).toBe('pending');
    await clock.advance(2000);
    expect(await failed).toBeInstanceOf(TimeoutError);
    // Stopped on failure (storage closed, address free): it starts again once the disk is fixed.
    disk.healed = true;
    const again = await drive(clock, restart(true));
    running.push(again);
    expect(again.ringStatus().settled).toBe(true);
    expect(again.ringStatus().members.map((m) => m.id)).toEqual(['n1', 'n2', 'n3', 'n4']);
  });
});

describe('ringStatus(): transfers of a join', () => {
  it('shows a 4th node’s pending transfers with growing keysSent until settled again', async () => {
    // Latency makes each batch take virtual time, so the stream spans several gossip rounds.
    const cluster = await createCluster({
      nodes: 3,
      // Few partitions, so each holds several transfer batches (128 keys) of the 6000 keys.
      nodeOptions: { ...fast, partitions: 16 },
      network: { latencyMs: { min: 2, max: 6 } },
    });
    try {
      const [a] = cluster.nodes;
      for (let i = 0; i < 6000; i += 500) {
        await drive(
          cluster.clock,
          Promise.all(Array.from({ length: 500 }, (_, j) => a!.put(`k${i + j}`, i + j))),
        );
      }
      expect(a!.ringStatus().settled).toBe(true);
      const before = a!.ringStatus().version;
      const joining = DynamoNode.start({
        ...fast,
        id: 'n4',
        partitions: 16,
        transport: cluster.network.connect('n4'),
        storage: new MemoryStorage(),
        seeds: ['n2'],
        clock: cluster.clock,
      });
      let joiner: DynamoNode<unknown> | undefined;
      joining.then((n) => {
        joiner = n;
        running.push(n);
      });
      // Sample the senders' views and the joiner's (it only receives: it learns progress by gossip).
      const sums: number[] = [];
      const seenOnJoiner: number[] = [];
      let sawPending = false;
      for (let step = 0; step < 5000; step++) {
        await cluster.clock.advance(10);
        const views = cluster.nodes.map((n) => n.ringStatus());
        const pending = views.find((v) => v.pending.length > 0);
        if (pending) {
          sawPending = true;
          expect(pending.settled).toBe(false);
          expect(pending.version).toBeGreaterThan(before);
          for (const t of pending.pending) {
            expect(t.to).toBe('n4');
            if (t.total !== null) expect(t.keysSent).toBeLessThanOrEqual(t.total);
          }
          sums.push(pending.pending.reduce((s, t) => s + t.keysSent, 0));
        }
        if (joiner) {
          const own = joiner.ringStatus();
          if (own.pending.length > 0) seenOnJoiner.push(own.pending.reduce((s, t) => s + t.keysSent, 0));
          if (sawPending && own.settled && views.every((v) => v.settled)) break;
        }
      }
      expect(sawPending).toBe(true);
      // keysSent grows batch by batch (128 keys) while tasks are open.
      expect(new Set(sums).size).toBeGreaterThan(2);
      expect(Math.max(...sums)).toBeGreaterThanOrEqual(256);
      expect(Math.max(...seenOnJoiner)).toBeGreaterThan(0);
      expect(joiner!.ringStatus().settled).toBe(true);
      expect(joiner!.ringStatus().members.find((m) => m.id === 'n4')!.partitions).toBe(4);
      expect(a!.ringStatus().version).toBeGreaterThan(before);
      await drive(cluster.clock, joiner!.ready({ timeoutMs: 1000 }));
    } finally {
      await cluster.stop();
    }
  });
});

describe('a cluster smaller than the request needs', () => {
  it('fails a w = 3 put and an r = 3 get on one node with a QuorumError that says why', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const node = await drive(
      clock,
      DynamoNode.start({
        ...fast,
        id: 'solo',
        transport: network.connect('solo'),
        storage: new MemoryStorage(),
        clock,
      }),
    );
    running.push(node);
    const sent = network.counters.sent;
    const put = await node.put('k', 1, { w: 3 }).catch((e: unknown) => e);
    expect(put).toBeInstanceOf(QuorumError);
    expect((put as QuorumError).message).toBe(
      'put needed 3 replicas, got 0: cluster has 1 node that owns partitions; n = 3',
    );
    expect((put as QuorumError).required).toBe(3);
    expect((put as QuorumError).acks).toBe(0);
    expect((put as QuorumError).failures).toEqual([]);
    const get = await node.get('k', { r: 3 }).catch((e: unknown) => e);
    expect((get as QuorumError).message).toMatch(/^get needed 3 replicas, got 0: cluster has 1 node/);
    const del = await node.delete('k', { w: 2 }).catch((e: unknown) => e);
    expect((del as QuorumError).message).toMatch(/^delete needed 2 replicas, got 0: cluster has 1 node/);
    expect(network.counters.sent).toBe(sent);
    // What one node can serve still works, and the failed put wrote nothing.
    expect((await drive(clock, node.get('k', { r: 1 }))).values).toEqual([]);
    await drive(clock, node.put('k', 2, { w: 1 }));
    expect((await drive(clock, node.get('k', { r: 1 }))).values).toEqual([2]);
  });

  it('names the rebalance in progress when the ring is growing to enough nodes', async () => {
    const cluster = await startReady(2, 3, 2);
    const { clock, network, nodes } = cluster;
    await drive(clock, Promise.all(Array.from({ length: 300 }, (_, i) => nodes[0]!.put(`k${i}`, i))));
    const storage = new FailingDataStorage();
    const joiner = await drive(
      clock,
      DynamoNode.start({
        ...fast,
        id: 'n3',
        quorum: { n: 3, r: 2, w: 2 },
        transport: network.connect('n3'),
        storage,
        seeds: ['n1'],
        clock,
      }),
    );
    running.push(joiner);
    await clock.advance(500);
    const err = await joiner.put('x', 1, { w: 3 }).catch((e: unknown) => e);
    expect((err as QuorumError).message).toBe(
      'put needed 3 replicas, got 0: cluster has 2 nodes that own partitions; n = 3 ' +
        '(a rebalance to 3 nodes is in progress: node.ready() waits for it)',
    );
  });
});
