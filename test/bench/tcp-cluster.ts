/**
 * The 3-process loopback benchmark: three DynamoNodes, each in its own process, on
 * TcpTransport over 127.0.0.1 and LevelStorage, N=3 R=2 W=2, 100-byte values.
 *
 * Load: every node process runs its own closed-loop client against its local node (128 in
 * flight each, so 384 cluster-wide) — see `tcp-cluster-node.ts`. The parent starts the three at
 * once over IPC, and reports the cluster-wide rate as all operations over the span from the first
 * start to the last finish, with latency percentiles from the three raw HDR histograms merged.
 * Then open-loop runs at half and at 20 % of that peak rate (latency counted from each operation's
 * due time), the figures a service would run at, with their CPU per operation also net of what the
 * processes spend idle at that offered rate. Beside them, the same run's raw LevelDB rate: classic-level
 * put / get in one process, 64 in flight, no engine.
 *
 *   npx tsx test/bench/tcp-cluster.ts [--runs 3] [--ops 100000] [--cpu-prof DIR] [--tsx] [--uv-threads N]
 *
 * prints each run and the median of the runs; `benchTcpCluster()` is the `npm run bench` entry.
 * The node processes run `tcp-cluster-node.ts` bundled with esbuild (as tsup builds the package),
 * so they measure the code users get; `--tsx` runs them from source under tsx instead, whose
 * transform adds a `__name()` call to every named closure (10–20 % more CPU on this path).
 * `--cpu-prof DIR` starts the node processes with `node --cpu-prof` (profiles land in DIR).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ClassicLevel } from 'classic-level';
import type { MemberView } from '../../src/index.js';
import {
  BenchChild,
  bundleChild,
  combine,
  idleUsPerSec,
  netCpuUsPerOp,
  OPEN_LOADS,
  type Phase,
  type Unsequenced,
} from './children.js';
import { type BenchRow, formatTable, median, runClosedLoop } from './lib.js';
import type { LoadResult } from './load.js';
import type { BenchCommand, EngineResult } from './tcp-cluster-node.js';

const CHILD = fileURLToPath(new URL('./tcp-cluster-node.ts', import.meta.url));
const IN_FLIGHT_PER_NODE = 128;
const RAW_IN_FLIGHT = 64;
const HALF_PEAK_MS = 3000;

export interface TcpClusterBenchOptions {
  /** Operations per node process per closed-loop phase (default 100 000). */
  ops?: number;
  /** Write a V8 CPU profile per node process into this directory. */
  cpuProfDir?: string;
  /** Run the node processes from source under tsx instead of an esbuild bundle. */
  tsx?: boolean;
  /**
   * `UV_THREADPOOL_SIZE` of the node processes (default: Node's, 4), the pool LevelDB's reads and
   * writes run on. Try 2 and 4 with interleaved pairs of runs: which is faster depends on how many
   * LevelDB calls the engine makes per operation.
   */
  uvThreads?: number;
}

/**
 * The node process script: the source under tsx, or a bundle whose dependencies stay external
 * (so it lives under node_modules/.cache, where they resolve).
 */
export async function childCommand(tsx: boolean | undefined): Promise<string[]> {
  if (tsx) return ['--import', 'tsx', CHILD];
  return [await bundleChild(CHILD, 'tcp-cluster-node')];
}

export type BenchNode = BenchChild<BenchCommand> & { readonly id: string };

export async function startNode(
  id: string,
  dataDir: string,
  seeds: string[],
  script: string[],
  options: TcpClusterBenchOptions,
): Promise<BenchNode> {
  const flags = options.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfDir] : [];
  const env = options.uvThreads
    ? { ...process.env, UV_THREADPOOL_SIZE: String(options.uvThreads) }
    : process.env;
  const child = await BenchChild.start<BenchCommand>(
    `bench node ${id}`,
    [...flags, ...script, '--id', id, '--data', dataDir, '--seeds', seeds.join(',')],
    env,
  );
  return Object.assign(child, { id });
}

async function rawBaseline(dir: string, ops: number) {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  const value = new Uint8Array(100).fill(7);
  const keys = Array.from({ length: ops }, (_, i) => new TextEncoder().encode(`raw-key-${i}`));
  const put = await runClosedLoop(ops, RAW_IN_FLIGHT, (i) => db.put(keys[i]!, value));
  const get = await runClosedLoop(ops, RAW_IN_FLIGHT, (i) => db.get(keys[i]!));
  await db.close();
  return { put, get };
}

export async function settled(nodes: BenchNode[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const views = await Promise.all(nodes.map((n) => n.call<MemberView[]>({ cmd: 'members' })));
    if (
      views.every((v) => v.length === nodes.length && v.every((m) => m.status === 'up' && m.partitions > 0))
    )
      return;
    if (Date.now() > deadline) throw new Error(`cluster did not settle: ${JSON.stringify(views)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

interface EnginePhase extends Phase {
  /** Socket writes per operation (all three processes), frames per socket write. */
  writesPerOp: number;
  framesPerWrite: number;
  /** Keys per LevelDB getMany, records per LevelDB write (as the floor reports them). */
  keysPerGetMany: number;
  recordsPerWrite: number;
}

/** `combine` plus the coalescing the transport and the storage achieved. */
function combineEngine(results: EngineResult[]): EnginePhase {
  const sum = (f: (r: EngineResult) => number) => results.reduce((s, r) => s + f(r), 0);
  return {
    ...combine(results),
    writesPerOp: sum((r) => r.counts.writes) / sum((r) => r.ops),
    framesPerWrite: sum((r) => r.counts.frames) / sum((r) => r.counts.writes),
    keysPerGetMany: sum((r) => r.counts.reads) / sum((r) => r.counts.getManys),
    recordsPerWrite: sum((r) => r.counts.records) / sum((r) => r.counts.levelWrites),
  };
}

/**
 * One full run: baseline, cluster start, put peak, get peak, then open-loop puts and gets at each of
 * OPEN_LOADS of those peaks (CPU per operation also net of the processes' idle CPU at that rate).
 */
export async function benchTcpCluster(options: TcpClusterBenchOptions = {}): Promise<BenchRow[]> {
  const ops = options.ops ?? 100_000;
  const root = await mkdtemp(join(tmpdir(), 'dynamo-bench-tcp-'));
  const nodes: BenchNode[] = [];
  try {
    const raw = await rawBaseline(join(root, 'raw'), Math.max(ops, 100_000));
    const script = await childCommand(options.tsx);
    const first = await startNode('n1', join(root, 'n1'), [], script, options);
    nodes.push(first);
    nodes.push(
      ...(await Promise.all(
        ['n2', 'n3'].map((id) => startNode(id, join(root, id), [first.address], script, options)),
      )),
    );
    await settled(nodes);
    const all = <T>(request: (n: BenchNode) => Unsequenced<BenchCommand>) =>
      Promise.all(nodes.map((n) => n.call<T>(request(n))));
    // Warm-up (JIT, connections, LevelDB memtables), not measured.
    await all<LoadResult>((n) => ({
      cmd: 'closed',
      op: 'put',
      total: Math.min(ops, 20_000),
      inFlight: IN_FLIGHT_PER_NODE,
      prefix: `warm-${n.id}`,
    }));
    const put = combineEngine(
      await all<EngineResult>((n) => ({
        cmd: 'closed',
        op: 'put',
        total: ops,
        inFlight: IN_FLIGHT_PER_NODE,
        prefix: n.id,
      })),
    );
    const get = combineEngine(
      await all<EngineResult>((n) => ({
        cmd: 'closed',
        op: 'get',
        total: ops,
        inFlight: IN_FLIGHT_PER_NODE,
        prefix: n.id,
      })),
    );
    const open = (
      op: 'put' | 'get' | 'none',
      clusterRate: number,
      prefix: string,
      durationMs = HALF_PEAK_MS,
    ) =>
      all<EngineResult>((n) => ({
        cmd: 'open',
        op,
        ratePerSec: clusterRate / nodes.length,
        durationMs,
        prefix: `${prefix}${n.id}`,
        keyCount: op === 'get' ? ops : 0,
      })).then(combineEngine);
    const lowest = OPEN_LOADS[OPEN_LOADS.length - 1]!.fraction;
    const idle = idleUsPerSec(await open('none', put.opsPerSec * lowest, '', 1000));
    const loads: { name: string; put: EnginePhase; get: EnginePhase }[] = [];
    for (const [i, load] of OPEN_LOADS.entries()) {
      loads.push({
        name: load.name,
        put: await open('put', put.opsPerSec * load.fraction, `open${i}-`),
        get: await open('get', get.opsPerSec * load.fraction, ''),
      });
    }
    const base = (kind: 'put' | 'get') => ({
      baseline: `raw classic-level ${kind}, 1 process, ${RAW_IN_FLIGHT} in flight`,
      baselineOpsPerSec: raw[kind].opsPerSec,
    });
    const row = (
      scenario: string,
      p: EnginePhase,
      kind: 'put' | 'get',
      extra: BenchRow['extra'] = {},
    ): BenchRow => ({
      scenario,
      opsPerSec: p.opsPerSec,
      p50Ms: p.p50Ms,
      p99Ms: p.p99Ms,
      p999Ms: p.p999Ms,
      ...base(kind),
      extra: {
        cpuUsPerOp: Math.round(p.cpuUsPerOp),
        ...extra,
        writesPerOp: p.writesPerOp.toFixed(2),
        framesPerWrite: p.framesPerWrite.toFixed(1),
        ...(p.keysPerGetMany ? { keysPerGetMany: p.keysPerGetMany.toFixed(1) } : {}),
        ...(p.recordsPerWrite ? { recordsPerWrite: p.recordsPerWrite.toFixed(1) } : {}),
        ...(p.failures ? { failures: p.failures } : {}),
      },
    });
    const setup = [
      options.tsx ? 'from source (tsx)' : '',
      options.uvThreads ? `UV_THREADPOOL_SIZE=${options.uvThreads}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    const label = `3 processes TCP loopback, LevelStorage${setup ? ` (${setup})` : ''}, N=3 R=2 W=2`;
    return [
      row(`${label}: put (3×${IN_FLIGHT_PER_NODE} in flight)`, put, 'put'),
      row(`${label}: get (3×${IN_FLIGHT_PER_NODE} in flight)`, get, 'get'),
      ...loads.flatMap((l) =>
        (['put', 'get'] as const).map((kind) => {
          const net = netCpuUsPerOp(l[kind], idle);
          return row(`${label}: ${kind} at ${l.name} (open loop)`, l[kind], kind, {
            netCpuUsPerOp: Math.round(net),
            cpuVsPeak: (net / (kind === 'put' ? put : get).cpuUsPerOp).toFixed(2),
          });
        }),
      ),
    ];
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    await rm(root, { recursive: true, force: true });
  }
}

/** Row-wise median of several runs (each figure on its own, numeric extras included). */
export function medianRows(runs: BenchRow[][]): BenchRow[] {
  return runs[0]!.map((first, i) => {
    const pick = (f: (r: BenchRow) => number | undefined) => median(runs.map((run) => f(run[i]!) ?? 0));
    const extra: Record<string, number | string> = {};
    for (const key of Object.keys(first.extra ?? {})) {
      const m = pick((r) => Number(r.extra?.[key]));
      extra[key] = Number.isInteger(m) ? m : m.toFixed(1);
    }
    return {
      ...first,
      scenario: `${first.scenario} [median of ${runs.length}]`,
      opsPerSec: pick((r) => r.opsPerSec),
      p50Ms: pick((r) => r.p50Ms),
      p99Ms: pick((r) => r.p99Ms),
      p999Ms: pick((r) => r.p999Ms),
      ...(first.baselineOpsPerSec === undefined
        ? {}
        : { baselineOpsPerSec: pick((r) => r.baselineOpsPerSec) }),
      extra,
    };
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '1' },
      ops: { type: 'string', default: '100000' },
      'cpu-prof': { type: 'string' },
      tsx: { type: 'boolean', default: false },
      'uv-threads': { type: 'string' },
    },
  });
  const runs: BenchRow[][] = [];
  for (let r = 0; r < Number(values.runs); r++) {
    const rows = await benchTcpCluster({
      ops: Number(values.ops),
      cpuProfDir: values['cpu-prof'],
      tsx: values.tsx,
      uvThreads: values['uv-threads'] ? Number(values['uv-threads']) : undefined,
    });
    console.log(`run ${r + 1}:\n${formatTable(rows)}\n`);
    runs.push(rows);
  }
  if (runs.length > 1) console.log(formatTable(medianRows(runs)));
}
