/**
 * The context a put returns, between real node processes over TCP: a put made with it supersedes
 * the caller's own write and keeps a concurrent write it was not shown as a sibling.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { clusterSettled, NodeProcess, waitFor } from '../process/node-process.js';

let root: string | undefined;
const procs: NodeProcess[] = [];

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  if (root) await rm(root, { recursive: true, force: true });
});

test("a put with the context a put returned keeps another node's concurrent write", async () => {
  root = await mkdtemp(join(tmpdir(), 'dynamo-returned-context-'));
  const args = ['--gossip-ms', '200'];
  const a = await NodeProcess.start({ id: 'a', dataDir: join(root, 'a'), args });
  procs.push(a);
  const rest = await Promise.all(
    ['b', 'c'].map((id) => NodeProcess.start({ id, dataDir: join(root!, id), seeds: [a.address], args })),
  );
  procs.push(...rest);
  const b = rest[0]!;
  await waitFor('the cluster to form', () => clusterSettled(procs), 30_000);

  await a.put('k', 'v1');
  const seen = await a.get('k');
  await b.put('k', 'v2-from-B');
  const r1 = await a.put('k', 'v1+a', { context: seen.context });
  await a.put('k', 'v1+a+b', { context: r1.context });
  // Every replica answers (r = 3), so every acknowledged write shows: the concurrent one as a
  // sibling, and none that a put with a context covering it superseded.
  expect(((await a.get('k', { r: 3 })).values as string[]).sort()).toEqual(['v1+a+b', 'v2-from-B']);
});
