/**
 * In-process cluster benchmarks: 3 DynamoNodes (N=3 R=2 W=2) on a MemoryNetwork with no latency,
 * clients spread over the nodes, 100-byte values. Each scenario sits next to the same run's
 * in-process floor (`floor-inprocess.ts`: the same replica work on the same storage without the
 * engine), with the CPU per operation of both (process CPU, so LevelDB's threads too; in the
 * open loops less what the load driver takes on its own, measured in the same run). Each phase
 * runs on the floor, then on the engine, before the next phase, so compared figures are seconds apart.
 *
 *   npx tsx test/bench/cluster.ts [--storage memory|level] [--runs 3] [--ops 100000]
 *
 * prints each run and the medians; `benchCluster()` is the `npm run bench` entry.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { DynamoNode, DynamoNodeOptions, Storage } from '../../src/index.js';
import { bundleChild, OPEN_LOADS } from './children.js';
import { type BenchRow, formatTable, runClosedLoop, runOpenLoop } from './lib.js';
import { medianRows } from './tcp-cluster.js';

const VALUE = new Uint8Array(100).fill(7);
const codec = { encode: (v: Uint8Array) => v, decode: (b: Uint8Array) => b };
const WARM_UP_OPS = 20_000;
/** Length of each open-loop phase. */
const OPEN_LOOP_MS = 2000;

type Systems = typeof import('./inprocess-systems.js');
let loaded: Promise<Systems> | undefined;
/** The engine and the floor from an esbuild bundle of `inprocess-systems.ts` (built once per run). */
export function systems(): Promise<Systems> {
  loaded ??= bundleChild(
    fileURLToPath(new URL('./inprocess-systems.ts', import.meta.url)),
    'inprocess-systems',
  ).then((file) => import(pathToFileURL(file).href) as Promise<Systems>);
  return loaded;
}

export interface ClusterBenchOptions {
  storage: 'memory' | 'level';
  ops?: number;
  inFlight?: number;
}

export async function startCluster(
  makeStorage: (id: string) => Storage,
  ids: string[],
  extra: Partial<DynamoNodeOptions<Uint8Array>> = {},
) {
  const { DynamoNode, MemoryNetwork } = await systems();
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

type Result = Awaited<ReturnType<typeof runClosedLoop>>;
type Measured = Result & { cpuUsPerOp: number };

/**
 * Runs a load and adds the process CPU it took per operation, less `driverUsPerSec` (the open-loop
 * driver's own CPU: its 1 ms timer wakes the process a thousand times a second whatever the load,
 * which at 20 % of peak would otherwise add several µs to every operation of either system).
 */
async function withCpu(load: () => Promise<Result>, driverUsPerSec = 0): Promise<Measured> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await load();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const us = cpu.user + cpu.system - driverUsPerSec * seconds;
  return { ...result, cpuUsPerOp: us / (result.opsPerSec * seconds) };
}

/** CPU µs per second the open-loop driver takes on its own, issuing operations that do nothing. */
async function openLoopDriverUsPerSec(ratePerSec: number): Promise<number> {
  const idle = await withCpu(() => runOpenLoop(ratePerSec, 1000, () => Promise.resolve()));
  return idle.cpuUsPerOp * idle.opsPerSec;
}

/** One system under test: puts and gets coordinated at replica i % 3. */
interface Target {
  put(i: number, key: string): Promise<unknown>;
  get(i: number, key: string): Promise<unknown>;
}

/**
 * The closed loops (puts, then gets of those keys), then the open loops at each of OPEN_LOADS of
 * those peaks, each phase run on every target in turn before the next phase: on a shared machine
 * whose speed drifts within minutes, the figures compared are taken seconds apart.
 */
async function phases(targets: Target[], ops: number, inFlight: number) {
  const each = async (load: (t: Target, i: number) => Promise<Measured>) => {
    const out: Measured[] = [];
    for (const [i, t] of targets.entries()) out.push(await load(t, i));
    return out;
  };
  await each((t) =>
    withCpu(() => runClosedLoop(Math.min(ops, WARM_UP_OPS), inFlight, (i) => t.put(i, `warm-${i}`))),
  );
  const put = await each((t) => withCpu(() => runClosedLoop(ops, inFlight, (i) => t.put(i, `key-${i}`))));
  const get = await each((t) => withCpu(() => runClosedLoop(ops, inFlight, (i) => t.get(i, `key-${i}`))));
  const open = [];
  for (const load of OPEN_LOADS) {
    // Measured next to the phases it is taken from (the machine's speed drifts).
    const driver = await openLoopDriverUsPerSec(put[0]!.opsPerSec * load.fraction);
    const p = await each((t, i) =>
      withCpu(
        () =>
          runOpenLoop(put[i]!.opsPerSec * load.fraction, OPEN_LOOP_MS, (k) => t.put(k, `${load.name}-${k}`)),
        driver,
      ),
    );
    const g = await each((t, i) =>
      withCpu(
        () => runOpenLoop(get[i]!.opsPerSec * load.fraction, OPEN_LOOP_MS, (k) => t.get(k, `key-${k % ops}`)),
        driver,
      ),
    );
    open.push({ name: load.name, put: p, get: g });
  }
  return { put, get, open };
}

export async function benchCluster(options: ClusterBenchOptions): Promise<BenchRow[]> {
  const ops = options.ops ?? 100_000;
  const inFlight = options.inFlight ?? 128;
  const dirs: string[] = [];
  const { InProcessFloor, LevelStorage, MemoryStorage } = await systems();
  const make = async (): Promise<(id: string) => Storage> => {
    if (options.storage === 'memory') return () => new MemoryStorage();
    const root = await mkdtemp(join(tmpdir(), 'dynamo-bench-cluster-'));
    dirs.push(root);
    return (id) => new LevelStorage({ path: join(root, id) });
  };
  const label = options.storage === 'memory' ? 'MemoryStorage' : 'LevelStorage';
  try {
    const raw = await rawBaseline((await make())('raw'), ops, inFlight);
    const floor = await InProcessFloor.start(['a', 'b', 'c'].map(await make()));
    const { nodes } = await startCluster(await make(), ['a', 'b', 'c']);
    const results = await phases(
      [
        { put: (i, key) => floor.put(i % 3, key, VALUE), get: (i, key) => floor.get(i % 3, key) },
        { put: (i, key) => nodes[i % 3]!.put(key, VALUE), get: (i, key) => nodes[i % 3]!.get(key) },
      ],
      ops,
      inFlight,
    );
    await floor.stop();
    await Promise.all(nodes.map((n) => n.stop()));
    const { mismatches } = floor.counts;
    if (mismatches > 0) throw new Error(`in-process floor: ${mismatches} replies differed`);
    const pick = (at: 0 | 1) => ({
      put: results.put[at]!,
      get: results.get[at]!,
      open: results.open.map((o) => ({ name: o.name, put: o.put[at]!, get: o.get[at]! })),
    });
    const floorResult = pick(0);
    const engine = pick(1);
    const row = (
      scenario: string,
      e: Measured,
      f: Measured,
      more: Record<string, string> = {},
    ): BenchRow => ({
      scenario: `3 nodes ${label} ${scenario}`,
      ...e,
      baseline: `in-process floor ${scenario}`,
      baselineOpsPerSec: f.opsPerSec,
      extra: {
        cpuUsPerOp: e.cpuUsPerOp.toFixed(1),
        floorCpuUsPerOp: f.cpuUsPerOp.toFixed(1),
        cpuVsFloor: (e.cpuUsPerOp / f.cpuUsPerOp).toFixed(2),
        floorP999Ms: f.p999Ms.toFixed(1),
        ...more,
      },
    });
    const rawOf = (r: Result) => ({ rawOpsPerSec: String(Math.round(r.opsPerSec)) });
    const rows = [
      row(`put (${inFlight} in flight)`, engine.put, floorResult.put, rawOf(raw.put)),
      row(`get (${inFlight} in flight)`, engine.get, floorResult.get, rawOf(raw.get)),
    ];
    for (let i = 0; i < OPEN_LOADS.length; i++) {
      const e = engine.open[i]!;
      const f = floorResult.open[i]!;
      // CPU per operation at this load over that at the peak: what a lightly loaded service pays.
      const vsPeak = (m: Measured, peak: Measured) => (m.cpuUsPerOp / peak.cpuUsPerOp).toFixed(2);
      rows.push(
        row(`put at ${e.name} (open loop)`, e.put, f.put, {
          cpuVsPeak: vsPeak(e.put, engine.put),
          floorCpuVsPeak: vsPeak(f.put, floorResult.put),
        }),
        row(`get at ${e.name} (open loop)`, e.get, f.get, {
          cpuVsPeak: vsPeak(e.get, engine.get),
          floorCpuVsPeak: vsPeak(f.get, floorResult.get),
        }),
      );
    }
    return rows;
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
  const { MemoryStorage } = await systems();
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
  const { DynamoNode, MemoryStorage } = await systems();
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
  const { MemoryStorage } = await systems();
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

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      storage: { type: 'string', default: 'level' },
      runs: { type: 'string', default: '1' },
      ops: { type: 'string', default: '100000' },
    },
  });
  const storage = values.storage;
  if (storage !== 'memory' && storage !== 'level')
    throw new RangeError(`--storage must be memory or level, got ${storage}`);
  const runs: BenchRow[][] = [];
  for (let r = 0; r < Number(values.runs); r++) {
    const rows = await benchCluster({ storage, ops: Number(values.ops) });
    console.log(`run ${r + 1}:\n${formatTable(rows)}\n`);
    runs.push(rows);
  }
  if (runs.length > 1) console.log(formatTable(medianRows(runs)));
}
