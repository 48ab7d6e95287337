/**
 * `npx tsx examples/tcp-cluster.ts`: three dynamo-engine nodes, each in its own process
 * (`tcp-node.ts` beside this file: TcpTransport over loopback, LevelStorage in a temporary
 * directory), N=3 R=2 W=2. This process is not a node: it reads and writes the cluster with a
 * `DynamoClient`, which holds the ring and sends each request straight to the key's replicas.
 * It shows where each key lives, then stops the three processes and removes their data. Runs in
 * a few seconds.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DynamoClient } from 'dynamo-engine/client';
import { TcpTransport } from 'dynamo-engine/tcp';

const NODE_SCRIPT = fileURLToPath(new URL('./tcp-node.ts', import.meta.url));
const say = (text: string) => console.log(text);

interface NodeProcess {
  id: string;
  child: ChildProcess;
  address: string;
}

/** Starts `tcp-node.ts` and resolves with its address once it says it is serving. */
function startNode(id: string, dataDir: string, seeds: string[]): Promise<NodeProcess> {
  const argv = ['--id', id, '--data', dataDir, '--gossip-ms', '200'];
  if (seeds.length > 0) argv.push('--seeds', seeds.join(','));
  // process.execArgv carries the TypeScript loader this process runs under (tsx) to the child.
  const child = spawn(process.execPath, [...process.execArgv, NODE_SCRIPT, ...argv], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`node ${id} exited with code ${code} before serving`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const serving = /^node \S+ serving at (\S+)$/.exec(line);
      if (serving) resolve({ id, child, address: serving[1]! });
    });
  });
}

async function stopNode(node: NodeProcess): Promise<void> {
  if (node.child.exitCode !== null) return;
  const exited = new Promise((resolve) => node.child.once('exit', resolve));
  node.child.kill('SIGTERM'); // the node stops cleanly: data and membership stay on disk
  await exited;
}

const root = await mkdtemp(join(tmpdir(), 'dynamo-tcp-cluster-'));
const nodes: NodeProcess[] = [];
let client: DynamoClient<unknown> | undefined;
try {
  say('Starting three node processes on 127.0.0.1 (TcpTransport, LevelStorage, N=3 R=2 W=2).');
  const a = await startNode('a', join(root, 'a'), []);
  nodes.push(a);
  say(`  node a: pid ${a.child.pid}, listening on ${a.address}`);
  // Each node waits until the ring is settled with it in it, so once b and c serve, all three do.
  for (const n of await Promise.all(['b', 'c'].map((id) => startNode(id, join(root, id), [a.address])))) {
    nodes.push(n);
    say(`  node ${n.id}: pid ${n.child.pid}, listening on ${n.address}, joined through ${a.address}`);
  }

  client = await DynamoClient.start<unknown>({
    id: 'example-client',
    transport: new TcpTransport({ host: '127.0.0.1', port: 0 }),
    seeds: nodes.map((n) => n.address),
  });
  const members = client.members();
  say(
    `The client sees ${members.map((m) => `${m.id} (${m.status}, ${m.partitions} partitions)`).join(', ')}.`,
  );

  say('\nWriting three keys (each acknowledged by 2 of its 3 replicas):');
  const writes: [string, unknown][] = [
    ['user:alice', { name: 'Alice', plan: 'pro' }],
    ['cart:42', ['book', 'pen']],
    ['page:home', 'Welcome!'],
  ];
  for (const [key, value] of writes) {
    await client.put(key, value);
    const replicas = client.preferenceList(key).map((e) => `${e.id} (${e.kind})`);
    say(`  ${key} = ${JSON.stringify(value)}; replicas in order: ${replicas.join(' -> ')}`);
  }

  say('\nReading them back with r = 3 (every replica answers):');
  for (const [key] of writes) {
    say(`  ${key}: ${JSON.stringify((await client.get(key, { r: 3 })).values)}`);
  }

  say('\nUpdating cart:42 with the context of a read (it supersedes what the read saw):');
  const read = await client.get('cart:42');
  await client.put('cart:42', [...(read.values[0] as string[]), 'lamp'], { context: read.context });
  say(`  cart:42 is now ${JSON.stringify((await client.get('cart:42')).values)}`);

  say('\nStopping the client and the three nodes.');
} finally {
  await client?.stop();
  await Promise.all(nodes.map(stopNode));
  await rm(root, { recursive: true, force: true });
}
say('Done: every process exited and the data directories are removed.');
