/** DynamoClient over real TCP sockets on 127.0.0.1: shared secret and mutual TLS (bounded polls). */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { DynamoClient } from '../../src/client/index.js';
import { AuthError, DynamoNode, MemoryStorage } from '../../src/index.js';
import { TcpTransport, type TcpTransportOptions } from '../../src/tcp/index.js';
import { makePki, type TestPki } from '../unit/tcp/helpers.js';

const nodes: DynamoNode<unknown>[] = [];
const clients: DynamoClient<unknown>[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.stop()));
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

const common = { requestTimeoutMs: 2000, gossipIntervalMs: 200 };

async function waitUntil(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`still waiting after ${timeoutMs} ms for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function threeNodes(transport: () => TcpTransportOptions): Promise<DynamoNode<unknown>[]> {
  const first = await DynamoNode.start<unknown>({
    ...common,
    id: 'n1',
    transport: new TcpTransport(transport()),
    storage: new MemoryStorage(),
  });
  nodes.push(first);
  for (const id of ['n2', 'n3']) {
    nodes.push(
      await DynamoNode.start<unknown>({
        ...common,
        id,
        transport: new TcpTransport(transport()),
        storage: new MemoryStorage(),
        seeds: [first.address],
      }),
    );
  }
  await waitUntil('a shared ring', () =>
    nodes.every(
      (n) => n.members().length === 3 && n.members().every((m) => m.status === 'up' && m.partitions > 0),
    ),
  );
  return nodes;
}

async function readsAndWrites(client: DynamoClient<unknown>, cluster: DynamoNode<unknown>[]): Promise<void> {
  for (let i = 0; i < 20; i++) await client.put(`k${i}`, { i });
  for (let i = 0; i < 20; i++) expect((await cluster[i % 3]!.get(`k${i}`)).values).toEqual([{ i }]);
  const { context } = await client.get('k0');
  await client.put('k0', 'next', { context });
  expect((await cluster[1]!.get('k0')).values).toEqual(['next']);
  expect(cluster.every((n) => n.members().every((m) => m.id !== 'client'))).toBe(true);
}

describe('DynamoClient over TCP', () => {
  test('with a shared secret; a client with the wrong secret fails to start with AuthError', async () => {
    const cluster = await threeNodes(() => ({ secret: 'cluster secret' }));
    const client = await DynamoClient.start<unknown>({
      ...common,
      id: 'client',
      transport: new TcpTransport({ secret: 'cluster secret' }),
      seeds: [cluster[0]!.address],
    });
    clients.push(client);
    await readsAndWrites(client, cluster);
    await expect(
      DynamoClient.start<unknown>({
        ...common,
        id: 'intruder',
        transport: new TcpTransport({ secret: 'guess' }),
        seeds: [cluster[0]!.address],
      }),
    ).rejects.toBeInstanceOf(AuthError);
  });

  describe('with mutual TLS', () => {
    let pki: TestPki;
    beforeAll(() => {
      pki = makePki();
    });
    afterAll(() => pki.cleanup());

    test('reads and writes', async () => {
      const tls = (pair: 'nodeA' | 'nodeB') => ({
        tls: { ca: pki.ca, key: pki[pair].key, cert: pki[pair].cert },
      });
      const cluster = await threeNodes(() => tls('nodeA'));
      const client = await DynamoClient.start<unknown>({
        ...common,
        id: 'client',
        transport: new TcpTransport(tls('nodeB')),
        seeds: [cluster[0]!.address],
      });
      clients.push(client);
      await readsAndWrites(client, cluster);
    });
  });
});
