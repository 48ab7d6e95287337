/**
 * ready() with real processes: 3 and then 5 node processes (`test/process/tcp-node.ts`: TcpTransport on
 * loopback, LevelStorage) started at the same time with N = node count and `waitUntilReady`. As
 * soon as every process says it serves, a put with W = N and a get with R = N through each node
 * must succeed, without waiting for anything else.
 *
 * Wall-clock waits are unavoidable here (processes, sockets); only process start has a deadline.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { NodeProcess } from '../process/node-process.js';

let root: string | undefined;
const procs: NodeProcess[] = [];

afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => p.kill()));
  if (root) await rm(root, { recursive: true, force: true });
  root = undefined;
});

for (const count of [3, 5]) {
  test(`${count} TCP node processes started together serve W = R = ${count} as soon as they are ready`, async () => {
    root = await mkdtemp(join(tmpdir(), 'dynamo-tcp-ready-'));
    const args = ['--gossip-ms', '200', '--n', String(count), '--r', String(count), '--w', String(count)];
    const first = await NodeProcess.start({ id: 'n1', dataDir: join(root, 'n1'), args });
    procs.push(first);
    const rest = await Promise.all(
      Array.from({ length: count - 1 }, (_, i) =>
        NodeProcess.start({
          id: `n${i + 2}`,
          dataDir: join(root!, `n${i + 2}`),
          seeds: [first.address],
          args,
        }),
      ),
    );
    procs.push(...rest);
    const nodes = [first, ...rest];
    // No polling: every start resolved after node.ready(), so the first requests must succeed.
    for (const [i, node] of nodes.entries()) {
      await node.put(`first-${i}`, i, { w: count });
      const read = await nodes[(i + 1) % count]!.get(`first-${i}`, { r: count });
      expect(read.values).toEqual([i]);
    }
    for (const status of await Promise.all(nodes.map((n) => n.ringStatus()))) {
      expect(status.settled).toBe(true);
      expect(status.pending).toEqual([]);
      expect(status.members).toHaveLength(count);
    }
  }, 90_000);
}
