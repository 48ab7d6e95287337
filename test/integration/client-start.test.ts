/**
 * How a DynamoClient starts: from a seed function as a node does; refused at once (RangeError)
 * when the cluster has another `partitions` or `quorum.n` (the client refuses rather than adopts:
 * its r, w and the application's expectations were chosen for its n); bounded by a timeout and a
 * signal that name the seeds.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DynamoClient } from '../../src/client/index.js';
import { NotRunningError, seededRandom, TimeoutError } from '../../src/index.js';
import { type Cluster, createCluster } from '../../src/testing/index.js';
import { drive } from '../helpers.js';

let cluster: Cluster<unknown> | undefined;
const clients: DynamoClient<unknown>[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.stop()));
  await cluster?.stop();
  cluster = undefined;
});

const fast = { requestTimeoutMs: 100, gossipIntervalMs: 100 };

function startClient(
  c: Cluster<unknown>,
  options: Partial<Parameters<typeof DynamoClient.start>[0]>,
  startOptions: Parameters<typeof DynamoClient.start>[1] = {},
): Promise<DynamoClient<unknown>> {
  return drive(
    c.clock,
    DynamoClient.start(
      {
        ...fast,
        id: 'web',
        transport: c.network.connect(`web-${c.clock.now()}`),
        seeds: ['n1'],
        clock: c.clock,
        random: seededRandom('web'),
        ...options,
      },
      startOptions,
    ).then((client) => {
      clients.push(client);
      return client;
    }),
  );
}

describe('DynamoClient start', () => {
  it('takes a seed function, asked again until it lists a member', async () => {
    cluster = await createCluster({ nodes: 3, nodeOptions: fast });
    let calls = 0;
    const seeds = async () => (++calls < 3 ? [] : ['n2', 'n3']);
    const client = await startClient(cluster, { seeds });
    expect(calls).toBe(3);
    await drive(cluster.clock, client.put('k', 1));
    expect((await drive(cluster.clock, cluster.nodes[0]!.get('k'))).values).toEqual([1]);
  });

  it('refuses a cluster with another partitions or quorum.n at once, naming both figures', async () => {
    cluster = await createCluster({ nodes: 3, nodeOptions: fast });
    const t0 = cluster.clock.now();
    await expect(startClient(cluster, { partitions: 128 })).rejects.toThrow(
      /DynamoClient: the cluster member at n1 \(n1\) has another shape: partitions 256 there, 128 here/,
    );
    await expect(startClient(cluster, { quorum: { n: 5, r: 3, w: 3 } })).rejects.toThrow(
      /quorum\.n 3 there, 5 here; partitions and quorum\.n must be the cluster's/,
    );
    await expect(startClient(cluster, { partitions: 128 })).rejects.toBeInstanceOf(RangeError);
    expect(cluster.clock.now() - t0).toBeLessThan(100);
  });

  it('gives up after timeoutMs with TimeoutError, and on abort with NotRunningError, naming the seeds', async () => {
    cluster = await createCluster({ nodes: 1, quorum: { n: 1 }, nodeOptions: fast });
    const t0 = cluster.clock.now();
    const timedOut = await startClient(cluster, { seeds: ['nowhere', 'n1-typo'] }, { timeoutMs: 1500 }).catch(
      (err: unknown) => err,
    );
    expect(timedOut).toBeInstanceOf(TimeoutError);
    expect((timedOut as Error).message).toMatch(
      /not started after 1500 ms: nowhere: unreachable.*n1-typo: unreachable/,
    );
    expect(cluster.clock.now() - t0).toBeLessThanOrEqual(1510);
    const controller = new AbortController();
    cluster.clock.setTimeout(() => controller.abort(new Error('bye')), 300);
    const aborted = await startClient(cluster, { seeds: ['nowhere'] }, { signal: controller.signal }).catch(
      (err: unknown) => err,
    );
    expect(aborted).toBeInstanceOf(NotRunningError);
    expect((aborted as Error).cause).toEqual(new Error('bye'));
    expect((aborted as Error).message).toMatch(/nowhere: unreachable/);
  });
});
