/**
 * Day one with real processes (`test/process/tcp-node.ts`: TcpTransport on loopback, LevelStorage):
 * nodes started together with each other as seeds form one cluster and take a `w: n` put (static
 * seeds, and a seed file re-read every round as `dnsSeeds` re-asks DNS); an id that left or was
 * removed comes back with its old or an empty data directory; a start with unreachable seeds ends
 * within its timeout naming them; a second process under a live node's id is refused.
 *
 * Wall-clock waits are unavoidable here (processes, sockets); each has a deadline.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { clusterSettled, NodeProcess, waitFor } from '../process/node-process.js';

let root: string | undefined;
const procs: NodeProcess[] = [];

afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => p.kill()));
  if (root) await rm(root, { recursive: true, force: true });
  root = undefined;
});

const FAST = ['--gossip-ms', '200', '--request-timeout-ms', '500'];

/** Ports free right now on loopback (bound together, then released). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve) => {
          const server = createServer();
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

function quorum(n: number): string[] {
  return ['--n', String(n), '--r', String(n), '--w', String(n)];
}

async function expectOneCluster(nodes: NodeProcess[], claimant: string): Promise<void> {
  const n = nodes.length;
  for (const status of await Promise.all(nodes.map((p) => p.ringStatus()))) {
    expect(status.settled).toBe(true);
    expect(status.claimant).toBe(claimant);
    expect(status.members.map((m) => m.id).sort()).toEqual(nodes.map((p) => p.id).sort());
  }
  for (const [i, node] of nodes.entries()) {
    await node.put(`first-${i}`, i, { w: n });
    expect((await nodes[(i + 1) % n]!.get(`first-${i}`, { r: n })).values).toEqual([i]);
  }
}

test('3 processes started together, each with the other two as static seeds: one cluster, w = 3 works; a second process under a live id is refused', async () => {
  root = await mkdtemp(join(tmpdir(), 'dynamo-tcp-boot-'));
  const ports = await freePorts(3);
  const ids = ['c', 'a', 'b'];
  const address = (i: number) => `127.0.0.1:${ports[i]}`;
  const nodes = await Promise.all(
    ids.map((id, i) =>
      NodeProcess.start({
        id,
        dataDir: join(root!, id),
        port: ports[i],
        seeds: ids.map((_, j) => address(j)).filter((_, j) => j !== i),
        args: [...FAST, ...quorum(3)],
      }),
    ),
  );
  procs.push(...nodes);
  await expectOneCluster(nodes, 'a');

  // One live node per id: a second process under b's id is refused at once; b is unharmed.
  const [c, a, b] = nodes as [NodeProcess, NodeProcess, NodeProcess];
  const error = await NodeProcess.start({
    id: 'b',
    dataDir: join(root, 'b-impostor'),
    seeds: [a.address],
    args: [...FAST, ...quorum(3), '--ready-timeout-ms', '20000'],
    stderr: false,
  }).catch((err: unknown) => err);
  expect((error as { code?: string }).code).toBe('DYNAMO_ID_IN_USE');
  expect((error as Error).message).toMatch(/id b is held by a live member at 127\.0\.0\.1:\d+/);
  for (const view of await Promise.all(nodes.map((p) => p.members()))) {
    expect(view.map((m) => [m.id, m.address, m.status])).toEqual([
      ['a', a.address, 'up'],
      ['b', b.address, 'up'],
      ['c', c.address, 'up'],
    ]);
  }
  await b.put('still', 'fine', { w: 3 });
  expect((await c.get('still', { r: 3 })).values).toEqual(['fine']);
}, 90_000);

test('5 processes whose seeds appear in a file (as DNS publishes pods) form one cluster; w = 5 works', async () => {
  root = await mkdtemp(join(tmpdir(), 'dynamo-tcp-dns-'));
  const seedsFile = join(root, 'seeds');
  await writeFile(seedsFile, '');
  const ids = ['dynamo-3', 'dynamo-0', 'dynamo-4', 'dynamo-1', 'dynamo-2'];
  const listening: string[] = [];
  let published: Promise<void> | undefined;
  const nodes = await Promise.all(
    ids.map((id) =>
      NodeProcess.start({
        id,
        dataDir: join(root!, id),
        args: [...FAST, ...quorum(5), '--seeds-file', seedsFile],
        onListening: (address) => {
          listening.push(address);
          // Every pod is published once it has an address, not once it is ready.
          if (listening.length === ids.length) published = writeFile(seedsFile, listening.join('\n'));
        },
      }),
    ),
  );
  procs.push(...nodes);
  await published;
  await expectOneCluster(nodes, 'dynamo-0');
}, 120_000);

test('an id comes back after leave (old data directory) and after remove (empty one); every key reads at r = 3', async () => {
  root = await mkdtemp(join(tmpdir(), 'dynamo-tcp-rejoin-'));
  const args = [...FAST, ...quorum(3)];
  const a = await NodeProcess.start({ id: 'a', dataDir: join(root, 'a'), args });
  const rest = await Promise.all(
    ['b', 'c', 'd'].map((id) =>
      NodeProcess.start({ id, dataDir: join(root!, id), seeds: [a.address], args }),
    ),
  );
  procs.push(a, ...rest);
  const [b, c, d] = rest as [NodeProcess, NodeProcess, NodeProcess];
  for (let i = 0; i < 30; i++) await [a, b, c, d][i % 4]!.put(`k${i}`, i, { w: 3 });
  const readAll = async (through: NodeProcess) => {
    for (let i = 0; i < 30; i++) expect((await through.get(`k${i}`, { r: 3 })).values).toEqual([i]);
  };

  // d leaves, then comes back with its old data directory.
  await d.leave();
  procs.splice(procs.indexOf(d), 1);
  await waitFor(
    'd to be gone from the ring',
    async () => (await a.members()).every((m) => m.id !== 'd'),
    30_000,
  );
  const d2 = await NodeProcess.start({ id: 'd', dataDir: join(root, 'd'), seeds: [a.address], args });
  procs.push(d2);
  await waitFor('the ring to settle with d back', () => clusterSettled([a, b, c, d2]), 30_000);
  await readAll(d2);

  // c is killed and removed, then comes back with an empty data directory.
  await c.kill();
  procs.splice(procs.indexOf(c), 1);
  await a.remove('c');
  await waitFor(
    'c to be gone from the ring',
    async () => (await a.members()).every((m) => m.id !== 'c'),
    30_000,
  );
  const c2 = await NodeProcess.start({ id: 'c', dataDir: join(root, 'c-new'), seeds: [b.address], args });
  procs.push(c2);
  await waitFor('the ring to settle with c back', () => clusterSettled([a, b, c2, d2]), 30_000);
  await readAll(c2);
  await readAll(a);
}, 180_000);

test('a start whose seeds are unreachable fails within its timeout, naming each seed', async () => {
  root = await mkdtemp(join(tmpdir(), 'dynamo-tcp-bounded-'));
  const [dead1, dead2] = await freePorts(2);
  const started = Date.now();
  const error = await NodeProcess.start({
    id: 'lonely',
    dataDir: join(root, 'lonely'),
    seeds: [`127.0.0.1:${dead1}`, `127.0.0.1:${dead2}`],
    args: [...FAST, '--ready-timeout-ms', '2000'],
    stderr: false,
  }).catch((err: unknown) => err);
  expect((error as Error).message).toMatch(
    new RegExp(
      `failed to start: node lonely not started after 2000 ms: not in a cluster yet; seeds: 127\\.0\\.0\\.1:${dead1}: unreachable: .*; 127\\.0\\.0\\.1:${dead2}: unreachable`,
    ),
  );
  expect((error as { code?: string }).code).toBe('DYNAMO_TIMEOUT');
  // Process start (tsx) plus the 2 s bound; far from the minute the default would take.
  expect(Date.now() - started).toBeLessThan(20_000);
}, 60_000);
