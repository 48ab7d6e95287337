/**
 * Safe retries with real processes: three `test/process/tcp-node.ts` processes
 * (TcpTransport on loopback, LevelStorage); while the two joiners are not yet in the ring, a
 * `w: 3` put fails, and the natural loop retries it until it succeeds. Every failed attempt had
 * stored the value at its coordinator; the key must still end with exactly one value, stored once.
 *
 * Wall-clock waits are unavoidable here (processes, sockets); every one polls against a deadline.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { NodeCallError, NodeProcess, waitFor } from '../process/node-process.js';

const NODE_ARGS = ['--gossip-ms', '200', '--request-timeout-ms', '500', '--anti-entropy-ms', '1000'];
const procs: NodeProcess[] = [];
let root: string | undefined;

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  if (root) await rm(root, { recursive: true, force: true });
});

test('a w:3 put retried until the ring has three nodes ends with exactly one value', async () => {
  root = await mkdtemp(join(tmpdir(), 'dynamo-tcp-retries-'));
  const start = async (id: string, seeds: string[]) => {
    const p = await NodeProcess.start({ id, dataDir: join(root!, id), seeds, args: NODE_ARGS });
    procs.push(p);
    return p;
  };
  const n1 = await start('n1', []);
  const joining = Promise.all([start('n2', [n1.address]), start('n3', [n1.address])]);
  let failures = 0;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await n1.put('k', ['v'], { w: 3 });
      break;
    } catch (err) {
      expect(err).toBeInstanceOf(NodeCallError);
      expect((err as NodeCallError).code).toBe('DYNAMO_QUORUM');
      failures++;
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  expect(failures).toBeGreaterThan(0);
  const nodes = [n1, ...(await joining)];
  const read = await n1.get('k', { r: 3 });
  expect(read.values).toEqual([['v']]);
  // Stored once on every node (each node's own LevelDB), not merely shown once.
  await waitFor(
    'every node to hold the key',
    async () => (await Promise.all(nodes.map((n) => n.local(['k'])))).every(([values]) => values !== null),
    30_000,
  );
  for (const n of nodes) expect(await n.local(['k'])).toEqual([[['v']]]);
});
