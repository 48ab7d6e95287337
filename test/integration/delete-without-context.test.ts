/**
 * `delete(key)` without a context deletes what a quorum read returns (Riak's delete without a
 * vector clock): two concurrent siblings go at once, through a node and through a client.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DynamoClient } from '../../src/client/index.js';
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

const fast = { requestTimeoutMs: 100, gossipIntervalMs: 100, hintedHandoff: { intervalMs: 100 } };
/** The client takes no node-only option (hintedHandoff): unknown options are errors. */
const { hintedHandoff: _nodeOnly, ...clientFast } = fast;

describe('delete without a context', () => {
  it('removes both siblings of two concurrent puts (through a node)', async () => {
    cluster = await createCluster({ nodes: 3, nodeOptions: fast });
    const [a, b, c] = cluster.nodes;
    await drive(cluster.clock, a!.put('cart', 'v1'));
    await drive(cluster.clock, b!.put('cart', 'v2'));
    expect((await drive(cluster.clock, c!.get('cart'))).values.sort()).toEqual(['v1', 'v2']);
    await drive(cluster.clock, c!.delete('cart'));
    for (const node of cluster.nodes) {
      expect((await drive(cluster.clock, node.get('cart', { r: 3 }))).values).toEqual([]);
    }
    // A later put without a context is a new value, not hidden behind the tombstone.
    await drive(cluster.clock, a!.put('cart', 'v3'));
    expect((await drive(cluster.clock, b!.get('cart', { r: 3 }))).values).toEqual(['v3']);
  });

  it('removes both siblings through a DynamoClient too, and deleting an absent key succeeds', async () => {
    cluster = await createCluster({ nodes: 3, nodeOptions: fast });
    const c = cluster;
    const client = await drive(
      c.clock,
      DynamoClient.start({
        ...clientFast,
        id: 'web',
        transport: c.network.connect('web'),
        seeds: ['n1'],
        clock: c.clock,
        random: seededRandom('web'),
      }),
    );
    clients.push(client);
    await drive(c.clock, c.nodes[0]!.put('k', { n: 1 }));
    await drive(c.clock, c.nodes[1]!.put('k', { n: 2 }));
    await drive(c.clock, client.delete('k'));
    expect((await drive(c.clock, client.get('k', { r: 3 }))).values).toEqual([]);
    await drive(c.clock, client.delete('never-written'));
    expect((await drive(c.clock, c.nodes[2]!.get('never-written'))).values).toEqual([]);
  });
});
