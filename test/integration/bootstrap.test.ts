/**
 * Forming a cluster from nothing: nodes that list each other as seeds (a static list, a seed
 * function, or `dnsSeeds` over an injected SRV resolver), started in any order and with any
 * timing, form exactly one cluster — the smallest id forms it once every seed answered — and take
 * a `w: n` put as soon as they are ready. Also: what a start says while it waits and when it gives
 * up. All on a MemoryNetwork and a VirtualClock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { dnsSeeds } from '../../src/discovery/index.js';
import {
  DynamoNode,
  type DynamoNodeOptions,
  type JoinAttempt,
  MemoryNetwork,
  MemoryStorage,
  NotRunningError,
  seededRandom,
  TimeoutError,
  VirtualClock,
} from '../../src/index.js';

import { drive } from '../helpers.js';

const fast = { requestTimeoutMs: 100, gossipIntervalMs: 100, hintedHandoff: { intervalMs: 100 } };
const started: DynamoNode<unknown>[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => n.stop()));
});

interface Launch {
  id: string;
  address: string;
  seeds: DynamoNodeOptions<unknown>['seeds'];
  /** Virtual ms after the test's start. */
  delayMs: number;
}

/** Starts every node after its delay; resolves with them all (or rejects with the first failure). */
function launch(
  clock: VirtualClock,
  network: MemoryNetwork,
  launches: Launch[],
  options: Partial<DynamoNodeOptions<unknown>> = {},
  attempts?: JoinAttempt[],
): Promise<DynamoNode<unknown>[]> {
  return Promise.all(
    launches.map(
      (l) =>
        new Promise<DynamoNode<unknown>>((resolve, reject) => {
          clock.setTimeout(() => {
            DynamoNode.start({
              ...fast,
              ...options,
              id: l.id,
              transport: network.connect(l.address),
              storage: new MemoryStorage(),
              seeds: l.seeds,
              clock,
              random: seededRandom(`node:${l.id}`),
              ...(attempts ? { on: { 'join:attempt': (e: JoinAttempt) => attempts.push(e) } } : {}),
            }).then((node) => {
              started.push(node);
              resolve(node);
            }, reject);
          }, l.delayMs);
        }),
    ),
  );
}

/** Every node sees the same settled ring with all of them in it, and a w = n put / r = n get works. */
async function expectOneCluster(clock: VirtualClock, nodes: DynamoNode<unknown>[]): Promise<void> {
  const n = nodes.length;
  const statuses = nodes.map((node) => node.ringStatus());
  for (const s of statuses) {
    expect(s.settled).toBe(true);
    expect(s.version).toBe(statuses[0]!.version);
    expect(s.members.map((m) => m.id).sort()).toEqual(nodes.map((x) => x.id).sort());
  }
  for (const [i, node] of nodes.entries()) {
    await drive(clock, node.put(`k${i}`, i, { w: n }));
    const read = await drive(clock, nodes[(i + 1) % n]!.get(`k${i}`, { r: n }));
    expect(read.values).toEqual([i]);
  }
}

/** Delays for `count` nodes: a seeded shuffle of start times spread over `spreadMs`. */
function delays(seed: number, count: number, spreadMs: number): number[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => Math.floor(random.next() * spreadMs));
}

describe('nodes that list each other as seeds form exactly one cluster', () => {
  for (const count of [3, 5]) {
    for (const [label, spreadMs] of [
      ['started together', 0],
      ['started within 300 ms', 300],
      ['started within 20 s', 20_000],
    ] as const) {
      it(`${count} nodes with static seeds, ${label}, for 4 start orders: one cluster, formed by the smallest id, w = n works`, async () => {
        for (const seed of [1, 2, 3, 4]) {
          const clock = new VirtualClock();
          const network = new MemoryNetwork({ clock, seed });
          // Ids sort differently from addresses: the choice is made by id, learnt from answers.
          const ids = Array.from({ length: count }, (_, i) => `node-${String.fromCharCode(97 + i)}`);
          const addresses = ids.map((_, i) => `10.0.0.${count - i}:7001`);
          const wait = delays(seed, count, spreadMs);
          const attempts: JoinAttempt[] = [];
          const nodes = await drive(
            clock,
            launch(
              clock,
              network,
              ids.map((id, i) => ({
                id,
                address: addresses[i]!,
                seeds: addresses.filter((a) => a !== addresses[i]),
                delayMs: wait[i]!,
              })),
              { quorum: { n: count, r: count, w: count }, waitUntilReady: true },
              attempts,
            ),
          );
          const formed = attempts.filter((a) => a.outcome === 'formed');
          expect(formed).toHaveLength(1);
          expect(nodes.map((node) => node.ringStatus().claimant)).toEqual(ids.map(() => 'node-a'));
          await expectOneCluster(clock, nodes);
          await Promise.all(started.splice(0).map((node) => node.stop()));
        }
      });
    }
  }

  it('5 nodes whose seed function lists every address (also its own), started in reverse order', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const ids = ['n1', 'n2', 'n3', 'n4', 'n5'];
    const everyone = async () => ids;
    const nodes = await drive(
      clock,
      launch(
        clock,
        network,
        ids.map((id, i) => ({ id, address: id, seeds: everyone, delayMs: (ids.length - i) * 700 })),
        { quorum: { n: 5, r: 5, w: 5 }, waitUntilReady: true },
      ),
    );
    await expectOneCluster(clock, nodes);
  });

  it('dnsSeeds over an injected SRV resolver: pods published as they are created, started in parallel', async () => {
    for (const seed of [1, 2, 3]) {
      const clock = new VirtualClock();
      const network = new MemoryNetwork({ clock, seed });
      const pods = ['dynamo-0', 'dynamo-1', 'dynamo-2', 'dynamo-3', 'dynamo-4'];
      const host = (pod: string) => `${pod}.dynamo.default.svc.cluster.local`;
      // A headless Service with publishNotReadyAddresses: every pod is listed from its creation.
      const resolver = {
        resolve4: async () => [],
        resolve6: async () => [],
        resolveSrv: async () => pods.map((pod) => ({ name: host(pod), port: 7001, priority: 0, weight: 1 })),
      };
      const seeds = dnsSeeds('_peer._tcp.dynamo.default.svc.cluster.local', 0, { records: 'srv', resolver });
      const wait = delays(seed, pods.length, 3_000);
      const attempts: JoinAttempt[] = [];
      const nodes = await drive(
        clock,
        launch(
          clock,
          network,
          pods.map((pod, i) => ({ id: pod, address: `${host(pod)}:7001`, seeds, delayMs: wait[i]! })),
          { quorum: { n: 3, r: 3, w: 3 }, waitUntilReady: true },
          attempts,
        ),
      );
      expect(attempts.filter((a) => a.outcome === 'formed')).toHaveLength(1);
      expect(nodes[0]!.ringStatus().claimant).toBe('dynamo-0');
      const statuses = nodes.map((node) => node.ringStatus());
      for (const s of statuses) {
        expect(s.settled).toBe(true);
        expect(s.members).toHaveLength(5);
      }
      await drive(clock, nodes[4]!.put('cart', 'x', { w: 3 }));
      expect((await drive(clock, nodes[1]!.get('cart', { r: 3 }))).values).toEqual(['x']);
      await Promise.all(started.splice(0).map((node) => node.stop()));
    }
  });

  it('dnsSeeds over an SRV resolver whose records appear one pod at a time: still one cluster', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const pods = ['dynamo-0', 'dynamo-1', 'dynamo-2'];
    const published: string[] = [];
    const resolver = {
      resolve4: async () => [],
      resolve6: async () => [],
      resolveSrv: async () => published.map((name) => ({ name, port: 7001, priority: 0, weight: 1 })),
    };
    const seeds = dnsSeeds('_peer._tcp.dynamo', 0, { records: 'srv', resolver });
    // Pods appear in DNS 1 s apart, each starting as soon as it appears (ordered start).
    for (const [i, pod] of pods.entries()) clock.setTimeout(() => published.push(pod), i * 1000);
    const nodes = await drive(
      clock,
      launch(
        clock,
        network,
        pods.map((pod, i) => ({ id: pod, address: `${pod}:7001`, seeds, delayMs: i * 1000 })),
        { waitUntilReady: true },
      ),
    );
    await expectOneCluster(clock, nodes);
  });
});

describe('what a start says while it waits, and when it gives up', () => {
  it('reports a seed that answers without a ring as such, an unreachable one as unreachable; the timeout names both', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const attempts: JoinAttempt[] = [];
    // a and b list each other and c; c never starts, so nobody may form the cluster.
    const a = launch(
      clock,
      network,
      [{ id: 'a', address: 'a', seeds: ['b', 'c'], delayMs: 0 }],
      {},
      attempts,
    );
    const b = launch(clock, network, [{ id: 'b', address: 'b', seeds: ['a', 'c'], delayMs: 0 }]);
    const t0 = clock.now();
    const outcome = await drive(
      clock,
      Promise.allSettled([
        DynamoNode.start(
          {
            ...fast,
            id: 'd',
            transport: network.connect('d'),
            storage: new MemoryStorage(),
            seeds: ['a', 'c'],
            clock,
          },
          { timeoutMs: 3000 },
        ),
      ]),
    );
    const [result] = outcome;
    expect(result.status).toBe('rejected');
    const error = (result as PromiseRejectedResult).reason as TimeoutError;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(clock.now() - t0).toBeLessThanOrEqual(3000 + 10);
    expect(error.message).toContain('a: not in a cluster yet');
    expect(error.message).toMatch(/c: unreachable/);
    expect(error.message).not.toMatch(/a: unreachable/);
    const last = attempts.at(-1)!;
    expect(last.seeds.find((s) => s.address === 'b')).toMatchObject({ id: 'b', answer: 'no-ring' });
    expect(last.seeds.find((s) => s.address === 'c')).toMatchObject({ answer: 'unreachable' });
    // a and b are still waiting for c (all seeds must answer before one forms the cluster).
    await clock.advance(1000);
    expect(attempts.every((x) => x.outcome === 'waiting')).toBe(true);
    void a.catch(() => {});
    void b.catch(() => {});
  });

  it('start with unreachable seeds rejects within its timeoutMs, and within waitUntilReady.timeoutMs, naming the seeds', async () => {
    for (const bound of [
      { start: { timeoutMs: 2000 }, options: {} },
      { start: {}, options: { waitUntilReady: { timeoutMs: 2000 } } },
      { start: { timeoutMs: 5000 }, options: { waitUntilReady: { timeoutMs: 2000 } } },
    ]) {
      const clock = new VirtualClock();
      const network = new MemoryNetwork({ clock });
      const storage = new MemoryStorage();
      const t0 = clock.now();
      const error = await drive(
        clock,
        DynamoNode.start(
          {
            ...fast,
            ...bound.options,
            id: 'x',
            transport: network.connect('x'),
            storage,
            seeds: ['10.0.0.10:7001', '10.0.0.11:7001'],
            clock,
          },
          bound.start,
        ).then(
          () => undefined,
          (err: unknown) => err,
        ),
      );
      expect(error).toBeInstanceOf(TimeoutError);
      expect(clock.now() - t0).toBeGreaterThanOrEqual(2000);
      expect(clock.now() - t0).toBeLessThanOrEqual(2010);
      expect((error as Error).message).toMatch(
        /10\.0\.0\.10:7001: unreachable.*10\.0\.0\.11:7001: unreachable/,
      );
      // Stopped and released: the storage serves another node at once.
      const again = await drive(
        clock,
        DynamoNode.start({ ...fast, id: 'x', transport: network.connect('x2'), storage, seeds: [], clock }),
      );
      await again.stop();
    }
  });

  it('an aborted start rejects with NotRunningError carrying the reason and naming the seeds', async () => {
    for (const where of ['start', 'waitUntilReady'] as const) {
      const clock = new VirtualClock();
      const network = new MemoryNetwork({ clock });
      const controller = new AbortController();
      clock.setTimeout(() => controller.abort(new Error('shutting down')), 700);
      const t0 = clock.now();
      const error = await drive(
        clock,
        DynamoNode.start(
          {
            ...fast,
            id: 'x',
            transport: network.connect('x'),
            storage: new MemoryStorage(),
            seeds: ['s1'],
            clock,
            ...(where === 'waitUntilReady' ? { waitUntilReady: { signal: controller.signal } } : {}),
          },
          where === 'start' ? { signal: controller.signal } : {},
        ).then(
          () => undefined,
          (err: unknown) => err,
        ),
      );
      expect(error).toBeInstanceOf(NotRunningError);
      expect((error as Error).cause).toEqual(new Error('shutting down'));
      expect((error as Error).message).toMatch(/s1: unreachable/);
      expect(clock.now() - t0).toBeLessThanOrEqual(710);
    }
  });

  it('a seed with another partitions setting is reported incompatible, with both figures', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const [seed] = await drive(
      clock,
      launch(clock, network, [{ id: 's', address: 's', seeds: [], delayMs: 0 }]),
    );
    const attempts: JoinAttempt[] = [];
    const error = await drive(
      clock,
      DynamoNode.start(
        {
          ...fast,
          id: 'x',
          transport: network.connect('x'),
          storage: new MemoryStorage(),
          seeds: ['s'],
          partitions: 128,
          clock,
          on: { 'join:attempt': (e) => attempts.push(e) },
        },
        { timeoutMs: 1000 },
      ).then(
        () => undefined,
        (err: unknown) => err,
      ),
    );
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toContain('s: incompatible: partitions 256 there, 128 here');
    expect(attempts[0]!.seeds).toEqual([
      {
        address: 's',
        id: 's',
        answer: 'incompatible',
        reason: 'incompatible: partitions 256 there, 128 here',
      },
    ]);
    // The seed did not take the incompatible node in.
    expect(seed!.members().map((m) => m.id)).toEqual(['s']);
  });

  it('a seed function that fails or lists nothing is reported in join:attempt and in the timeout', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const attempts: JoinAttempt[] = [];
    let calls = 0;
    const seeds = async () => {
      calls++;
      if (calls % 2 === 1) throw new Error('SERVFAIL');
      return [];
    };
    const error = await drive(
      clock,
      DynamoNode.start(
        {
          ...fast,
          id: 'x',
          transport: network.connect('x'),
          storage: new MemoryStorage(),
          seeds,
          clock,
          on: { 'join:attempt': (e) => attempts.push(e) },
        },
        { timeoutMs: 1000 },
      ).then(
        () => undefined,
        (err: unknown) => err,
      ),
    );
    expect(error).toBeInstanceOf(TimeoutError);
    expect(attempts[0]).toMatchObject({
      attempt: 1,
      seeds: [],
      problem: 'the seed function failed: SERVFAIL',
    });
    expect(attempts[1]).toMatchObject({ attempt: 2, problem: 'the seed function listed no address' });
    expect((error as Error).message).toMatch(/the seed function (failed: SERVFAIL|listed no address)/);
  });
});
