/**
 * In-process cluster benchmarks: 3 DynamoNodes (N=3 R=2 W=2) on a MemoryNetwork with no latency,
 * clients spread over the nodes, 100-byte values. Each scenario sits next to the same run's raw
 * storage rate, the ceiling the engine is compared with (a put stores on 3 replicas, so a
 * cluster put rate near a third of the raw rate means the engine adds little of its own).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoNode, MemoryNetwork, MemoryStorage, type Storage } from '../../src/index.js';
import { LevelStorage } from '../../src/level/index.js';
import { type BenchRow, runClosedLoop, runOpenLoop } from './lib.js';

const VALUE = new Uint8Array(100).fill(7);
const codec = { encode: (v: Uint8Array) => v, decode: (b: Uint8Array) => b };

export interface ClusterBenchOptions {
  storage: 'memory' | 'level';
  ops?: number;
  inFlight?: number;
}

async function startCluster(
  makeStorage: (id: string) => Storage,
  ids: string[],
  extra: Partial<Parameters<typeof DynamoNode.start<Uint8Array>>[0]> = {},
) {
  const network = new MemoryNetwork();
  const nodes: DynamoNode<Uint8Array>[] = [];
  for (const id of ids) {
    nodes.push(
      await DynamoNode.start<Uint8Array>({
        id,
        transport: network.connect(id),
        storage: makeStorage(id),
        seeds: id === ids[0] ? [] : [ids[0]!],
        quorum: { n: 3, r: 2, w: 2 },
        codec,
        ...extra,
      }),
    );
  }
  // Measure only once the ring has settled (every rebalance of the joins finished).
  while (
    !nodes.every((n) => n.members().length === ids.length && n.members().every((m) => m.status === 'up'))
  ) {
    await new Promise((r) => setTimeout(r, 10));
  }
  return { network, nodes };
}

async function rawBaseline(storage: Storage, ops: number, inFlight: number) {
  await storage.open();
  const key = (i: number) => new TextEncoder().encode(`raw-key-${i}`);
  const put = await runClosedLoop(ops, inFlight, (i) =>
    storage.batch([{ type: 'put', key: key(i), value: VALUE }]),
  );
  const get = await runClosedLoop(ops, inFlight, (i) => storage.get(key(i)));
  await storage.close();
  return { put, get };
}

export async function benchCluster(options: ClusterBenchOptions): Promise<BenchRow[]> {
  const ops = options.ops ?? 100_000;
  const inFlight = options.inFlight ?? 128;
  const dirs: string[] = [];
  const make = async (): Promise<(id: string) => Storage> => {
    if (options.storage === 'memory') return () => new MemoryStorage();
    const root = await mkdtemp(join(tmpdir(), 'dynamo-bench-cluster-'));
    dirs.push(root);
    return (id) => new LevelStorage({ path: join(root, id) });
  };
  const label = options.storage === 'memory' ? 'MemoryStorage' : 'LevelStorage';
  try {
    const raw = await rawBaseline((await make())('raw'), ops, inFlight);
    const { nodes } = await startCluster(await make(), ['a', 'b', 'c']);
    const put = await runClosedLoop(ops, inFlight, (i) => nodes[i % 3]!.put(`key-${i}`, VALUE));
    const get = await runClosedLoop(ops, inFlight, (i) => nodes[i % 3]!.get(`key-${i}`));
    // Latency at half the peak rate (open loop), the figure a service would run at.
    const halfPut = await runOpenLoop(put.opsPerSec / 2, 2000, (i) => nodes[i % 3]!.put(`half-${i}`, VALUE));
    const halfGet = await runOpenLoop(get.opsPerSec / 2, 2000, (i) => nodes[i % 3]!.get(`key-${i % ops}`));
    await Promise.all(nodes.map((n) => n.stop()));
    const base = (kind: 'put' | 'get') => ({
      baseline: `raw ${label} ${kind}`,
      baselineOpsPerSec: raw[kind].opsPerSec,
    });
    return [
      { scenario: `3 nodes ${label} put (${inFlight} in flight)`, ...put, ...base('put') },
      { scenario: `3 nodes ${label} get (${inFlight} in flight)`, ...get, ...base('get') },
      { scenario: `3 nodes ${label} put at half peak`, ...halfPut, ...base('put') },
      { scenario: `3 nodes ${label} get at half peak`, ...halfGet, ...base('get') },
    ];
  } finally {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
}

/**
 * Failure handling (each operation starts in its own macrotask, as over a socket): 4 nodes (N=3 W=2, so a fallback exists), puts while one node is partitioned
 * away (after the failure detector noticed), then while it is back and its hints are delivered,
 * next to the healthy rate of the same run.
 */
export async function benchFailover(ops = 50_000, inFlight = 128): Promise<BenchRow[]> {
  const { network, nodes } = await startCluster(() => new MemoryStorage(), ['a', 'b', 'c', 'd'], {
    requestTimeoutMs: 200,
    hintedHandoff: { intervalMs: 100 },
  });
  const writers = nodes.slice(0, 3);
  const io = { macrotaskPerOp: true };
  const healthy = await runClosedLoop(ops, inFlight, (i) => writers[i % 3]!.put(`h-${i}`, VALUE), io);
  network.partition(['d']);
  // Warm-up: the first requests to d time out and mark it down; measure after that.
  await runClosedLoop(2000, inFlight, (i) => writers[i % 3]!.put(`w-${i}`, VALUE).catch(() => {}), io);
  const degraded = await runClosedLoop(ops, inFlight, (i) => writers[i % 3]!.put(`d-${i}`, VALUE), io);
  const hintsBefore = nodes.reduce((s, n) => s + n.stats().hints.pending, 0);
  network.heal();
  // Measure once the writers' failure detectors have probed d back up: from then on hints flow.
  while (writers.some((w) => w.members().find((m) => m.id === 'd')?.status !== 'up')) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const delivering = await runClosedLoop(ops, inFlight, (i) => writers[i % 3]!.put(`r-${i}`, VALUE), io);
  const hintsAfter = nodes.reduce((s, n) => s + n.stats().hints.pending, 0);
  await Promise.all(nodes.map((n) => n.stop()));
  const base = { baseline: '4 nodes healthy put', baselineOpsPerSec: healthy.opsPerSec };
  return [
    { scenario: '4 nodes MemoryStorage put, healthy', ...healthy },
    {
      scenario: '4 nodes put, 1 node down (sloppy quorum)',
      ...degraded,
      ...base,
      extra: { hints: hintsBefore },
    },
    {
      scenario: '4 nodes put, during hint delivery',
      ...delivering,
      ...base,
      extra: { hintsBefore: hintsBefore, hintsLeft: hintsAfter },
    },
  ];
}

/**
 * Membership: time and bytes to add a 4th node to 3 nodes holding `keys` keys, and foreground
 * put latency (open loop, fixed rate) during the transfer next to the idle figure of the run.
 */
export async function benchJoin(keys = 100_000, ratePerSec = 2_000): Promise<BenchRow[]> {
  const { network, nodes } = await startCluster(() => new MemoryStorage(), ['a', 'b', 'c']);
  for (let i = 0; i < keys; i += 1000) {
    await Promise.all(Array.from({ length: 1000 }, (_, j) => nodes[(i + j) % 3]!.put(`key-${i + j}`, VALUE)));
  }
  const idle = await runOpenLoop(ratePerSec, 2000, (i) => nodes[i % 3]!.put(`idle-${i}`, VALUE));
  const started = performance.now();
  const joining = DynamoNode.start<Uint8Array>({
    id: 'd',
    transport: network.connect('d'),
    storage: new MemoryStorage(),
    seeds: ['a'],
    quorum: { n: 3, r: 2, w: 2 },
    codec,
  });
  let d: DynamoNode<Uint8Array> | undefined;
  joining.then((n) => {
    d = n;
  });
  const settled = () =>
    nodes.every((n) => {
      const members = n.members();
      return members.length === 4 && members.every((m) => m.status === 'up');
    });
  // Foreground load while the partitions stream, until the ring has switched.
  const during = await runOpenLoop(
    ratePerSec,
    120_000,
    (i) => nodes[i % 3]!.put(`during-${i}`, VALUE),
    settled,
  );
  const seconds = (performance.now() - started) / 1000;
  await joining;
  const transfers = nodes.map(
    (n) => (n as unknown as { transfer: { keysSent: number; bytesSent: number } }).transfer,
  );
  const keysMoved = transfers.reduce((s, t) => s + t.keysSent, 0);
  const bytesMoved = transfers.reduce((s, t) => s + t.bytesSent, 0);
  await Promise.all([...nodes, d!].map((n) => n.stop()));
  return [
    { scenario: `put at ${ratePerSec}/s, idle (3 nodes, ${keys} keys)`, ...idle },
    {
      scenario: `put at ${ratePerSec}/s while a 4th node joins`,
      ...during,
      baseline: 'idle put',
      baselineOpsPerSec: idle.opsPerSec,
      extra: {
        joinSeconds: seconds.toFixed(1),
        keysMoved,
        MB: (bytesMoved / 1e6).toFixed(1),
        copies: keys * 3,
      },
    },
  ];
}

/**
 * Data types: counter increments (`node.counter(key).increment()`: a quorum read, the merge, a
 * put with the read's context) next to the same run's plain blind puts and plain read-modify-write
 * (`node.update`, also a read and a put), 3 nodes on MemoryStorage, over `keys` distinct keys.
 */
export async function benchCounter(ops = 30_000, inFlight = 128, keys = 5_000): Promise<BenchRow[]> {
  const { nodes } = await startCluster(() => new MemoryStorage(), ['a', 'b', 'c']);
  // Warm-up (JIT) for all three paths, then the measured runs. Blind puts go to fresh keys (a
  // blind put to an existing key adds a sibling); update and increment revisit `keys` keys.
  await runClosedLoop(3_000, inFlight, (i) =>
    i % 3 === 0
      ? nodes[0]!.put(`w-${i}`, VALUE)
      : i % 3 === 1
        ? nodes[1]!.update(`w-${i % 100}`, () => VALUE)
        : nodes[2]!.counter(`wc-${i % 100}`).increment(),
  );
  const put = await runClosedLoop(ops, inFlight, (i) => nodes[i % 3]!.put(`p-${i}`, VALUE));
  const update = await runClosedLoop(ops, inFlight, (i) =>
    nodes[i % 3]!.update(`u-${i % keys}`, () => VALUE),
  );
  const counter = await runClosedLoop(ops, inFlight, (i) =>
    nodes[i % 3]!.counter(`c-${i % keys}`).increment(),
  );
  const expected = Math.floor(ops / keys);
  const sample = await nodes[0]!.counter('c-1').value();
  await Promise.all(nodes.map((n) => n.stop()));
  if (sample < expected) throw new Error(`counter c-1 reads ${sample}, expected at least ${expected}`);
  return [
    { scenario: `3 nodes MemoryStorage put, fresh keys (${inFlight} in flight)`, ...put },
    {
      scenario: `3 nodes MemoryStorage update (get + put with context, ${keys} keys)`,
      ...update,
      baseline: 'plain put',
      baselineOpsPerSec: put.opsPerSec,
    },
    {
      scenario: '3 nodes MemoryStorage counter increment',
      ...counter,
      baseline: 'plain put',
      baselineOpsPerSec: put.opsPerSec,
      extra: { vsUpdate: (counter.opsPerSec / update.opsPerSec).toFixed(2) },
    },
  ];
}
