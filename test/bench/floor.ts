/**
 * The floor of the 3-process loopback benchmark (`tcp-cluster.ts`): the same storage and network
 * work per operation — three processes, full-mesh TCP on 127.0.0.1, classic-level in each, N=3
 * W=2 puts that read before they write on every replica, R=2 gets, 100-byte values, 3×128 in
 * flight — done by `floor-node.ts` with as little JavaScript as possible and no engine. Its rate
 * is about what this machine allows for that work at all, so it tells how far the engine is from
 * the best it could do, and whether a target is reachable on this machine in the first place.
 *
 *   npx tsx test/bench/floor.ts [--runs 3] [--ops 100000] [--blind] [--net-flush tick|immediate]
 *                               [--db-flush tick|immediate] [--half-rate N]
 *
 * prints each run and the median of the runs; `benchFloor()` is for `npm run bench`. As in
 * `tcp-cluster.ts`: puts then gets of the same keys, each process running a closed loop against
 * itself, then an open loop of puts (new keys) and one of gets (the keys just put) at half the
 * peak rate each closed loop measured, then both at 20 % of it, for 3 s each, latency counted from each operation's due time
 * (the figure a service would run at). The rate is all operations over the span from the first
 * start to the last finish, latencies from the three HDR histograms merged, CPU per operation
 * from the three processes' `process.cpuUsage` (all threads, so LevelDB's too). `--half-rate N`
 * runs the half-peak open loops at N operations/s cluster-wide instead (and the 20 % ones at 0.4 N),
 * for asking what latency the floor has at a given rate. `--blind` writes without reading first, what a store
 * that does not merge versions would do. The flush options choose when a turn's queued socket
 * writes and LevelDB calls go out (see `floor-node.ts`); the defaults are the faster ones measured.
 */
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  BenchChild,
  bundleChild,
  combine,
  idleUsPerSec,
  netCpuUsPerOp,
  OPEN_LOADS,
  type Phase,
} from './children.js';
import type { FloorCommand, FloorResult, FlushMode } from './floor-node.js';
import { type BenchRow, formatTable } from './lib.js';
import { medianRows } from './tcp-cluster.js';

const CHILD = fileURLToPath(new URL('./floor-node.ts', import.meta.url));
const PROCESSES = 3;
const IN_FLIGHT_PER_PROCESS = 128;
const WARM_UP_OPS = 20_000;
/** Length of each open-loop phase, as tcp-cluster.ts's. */
const HALF_PEAK_MS = 3000;

export interface FloorBenchOptions {
  /** Operations per process per phase (default 100 000). */
  ops?: number;
  /** Puts write without reading the current record first, locally and on the peers. */
  blind?: boolean;
  /** When queued socket writes go out (default `immediate`). */
  netFlush?: FlushMode;
  /** When queued LevelDB reads and writes go out (default `immediate`). */
  dbFlush?: FlushMode;
  /** Cluster-wide operations/s of both open-loop phases (default: half the closed-loop peak of each). */
  halfRate?: number;
}

interface FloorPhase extends Phase {
  mismatches: number;
  misses: number;
  /** Keys per LevelDB getMany, records per LevelDB write, messages per frame (socket write). */
  keysPerGetMany: number;
  recordsPerWrite: number;
  messagesPerFrame: number;
  /** Socket writes per operation (all three processes). */
  writesPerOp: number;
}

/** `combine` plus what the floor counts: mismatches, misses and the coalescing achieved. */
function combineFloor(results: FloorResult[]): FloorPhase {
  const sum = (f: (r: FloorResult) => number) => results.reduce((s, r) => s + f(r), 0);
  return {
    ...combine(results),
    mismatches: sum((r) => r.mismatches),
    misses: sum((r) => r.misses),
    keysPerGetMany: sum((r) => r.counts.reads) / sum((r) => r.counts.getManys),
    recordsPerWrite: sum((r) => r.counts.writes) / sum((r) => r.counts.batches),
    messagesPerFrame: sum((r) => r.counts.messages) / sum((r) => r.counts.frames),
    writesPerOp: sum((r) => r.counts.frames) / sum((r) => r.ops),
  };
}

function row(scenario: string, p: FloorPhase): BenchRow {
  return {
    scenario,
    opsPerSec: p.opsPerSec,
    p50Ms: p.p50Ms,
    p99Ms: p.p99Ms,
    p999Ms: p.p999Ms,
    extra: {
      cpuUsPerOp: Math.round(p.cpuUsPerOp),
      ...(p.keysPerGetMany ? { keysPerGetMany: p.keysPerGetMany.toFixed(1) } : {}),
      ...(p.recordsPerWrite ? { recordsPerWrite: p.recordsPerWrite.toFixed(1) } : {}),
      messagesPerFrame: p.messagesPerFrame.toFixed(1),
      writesPerOp: p.writesPerOp.toFixed(2),
      ...(p.failures ? { failures: p.failures } : {}),
      ...(p.mismatches ? { mismatches: p.mismatches } : {}),
      ...(p.misses ? { misses: p.misses } : {}),
    },
  };
}

/**
 * One run: start and connect three processes, warm up, closed-loop puts, then gets of those keys,
 * then open-loop puts and gets at half and 20 % of those peaks (or of twice `halfRate`).
 */
export async function benchFloor(options: FloorBenchOptions = {}): Promise<BenchRow[]> {
  const ops = options.ops ?? 100_000;
  const netFlush = options.netFlush ?? 'immediate';
  const dbFlush = options.dbFlush ?? 'immediate';
  const root = await mkdtemp(join(tmpdir(), 'dynamo-bench-floor-'));
  const nodes: BenchChild<FloorCommand>[] = [];
  // Should this process exit without reaching `finally` (an uncaught error, SIGINT in the CLI).
  const onExit = () => {
    for (const n of nodes) n.child.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  try {
    const script = await bundleChild(CHILD, 'floor-node');
    const started = await Promise.all(
      Array.from({ length: PROCESSES }, (_, i) =>
        BenchChild.start<FloorCommand>(`floor process n${i + 1}`, [
          script,
          '--data',
          join(root, `n${i + 1}`),
          '--actor',
          String(i),
          '--net-flush',
          netFlush,
          '--db-flush',
          dbFlush,
          ...(options.blind ? ['--blind'] : []),
        ]),
      ),
    );
    nodes.push(...started);
    await Promise.all(
      nodes.map((n) => n.call({ cmd: 'connect', peers: nodes.filter((o) => o !== n).map((o) => o.address) })),
    );
    const closed = (op: 'put' | 'get', total: number, prefix: (i: number) => string) =>
      Promise.all(
        nodes.map((n, i) =>
          n.call<FloorResult>({
            cmd: 'closed',
            op,
            total,
            inFlight: IN_FLIGHT_PER_PROCESS,
            prefix: prefix(i),
          }),
        ),
      );
    // Warm-up (JIT, connections, LevelDB memtables), not measured.
    await closed('put', Math.min(ops, WARM_UP_OPS), (i) => `warm-n${i + 1}`);
    const put = combineFloor(await closed('put', ops, (i) => `n${i + 1}`));
    const get = combineFloor(await closed('get', ops, (i) => `n${i + 1}`));
    // As tcp-cluster.ts: each process offers a third of the cluster-wide rate; puts write new
    // keys, gets read the keys the closed loop put.
    const open = (
      op: 'put' | 'get' | 'none',
      clusterRate: number,
      prefix: (i: number) => string,
      durationMs = HALF_PEAK_MS,
    ) =>
      Promise.all(
        nodes.map((n, i) =>
          n.call<FloorResult>({
            cmd: 'open',
            op,
            ratePerSec: clusterRate / PROCESSES,
            durationMs,
            prefix: prefix(i),
            keyCount: op === 'get' ? ops : 0,
          }),
        ),
      );
    // `halfRate` replaces the half-peak rate; the other loads keep their ratio to it.
    const rate = (peak: number, fraction: number) =>
      (options.halfRate ? options.halfRate * 2 : peak) * fraction;
    const lowest = OPEN_LOADS[OPEN_LOADS.length - 1]!.fraction;
    const idle = idleUsPerSec(combine(await open('none', rate(put.opsPerSec, lowest), () => 'idle', 1000)));
    const loads: { name: string; fraction: number; put: FloorPhase; get: FloorPhase }[] = [];
    for (const [i, load] of OPEN_LOADS.entries()) {
      loads.push({
        ...load,
        put: combineFloor(await open('put', rate(put.opsPerSec, load.fraction), (n) => `open${i}-n${n + 1}`)),
        get: combineFloor(await open('get', rate(get.opsPerSec, load.fraction), (n) => `n${n + 1}`)),
      });
    }
    const flush = netFlush === dbFlush ? netFlush : `net ${netFlush}, db ${dbFlush}`;
    const label = `floor: 3 processes TCP loopback, classic-level, ${flush} flush`;
    const inFlight = `${PROCESSES}×${IN_FLIGHT_PER_PROCESS} in flight`;
    const rowAt = (kind: 'put' | 'get', l: (typeof loads)[number]) => {
      const at =
        options.halfRate === undefined ? l.name : `${Math.round(options.halfRate * 2 * l.fraction)} ops/s`;
      const r = row(`${label}: ${kind} at ${at} (open loop)`, l[kind]);
      const net = netCpuUsPerOp(l[kind], idle);
      r.extra = {
        ...r.extra,
        netCpuUsPerOp: Math.round(net),
        cpuVsPeak: (net / (kind === 'put' ? put : get).cpuUsPerOp).toFixed(2),
      };
      return r;
    };
    return [
      row(`${label}: put N=3 W=2${options.blind ? ' blind' : ' read-before-write'} (${inFlight})`, put),
      row(`${label}: get N=3 R=2 (${inFlight})`, get),
      ...loads.flatMap((l) => [rowAt('put', l), rowAt('get', l)]),
    ];
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    await rm(root, { recursive: true, force: true });
    process.off('exit', onExit);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '1' },
      ops: { type: 'string', default: '100000' },
      blind: { type: 'boolean', default: false },
      'net-flush': { type: 'string', default: 'immediate' },
      'db-flush': { type: 'string', default: 'immediate' },
      'half-rate': { type: 'string' },
    },
  });
  const mode = (name: string, v: string | undefined): FlushMode => {
    if (v === 'tick' || v === 'immediate') return v;
    throw new RangeError(`--${name} must be tick or immediate, got ${v}`);
  };
  const halfRate = values['half-rate'] === undefined ? undefined : Number(values['half-rate']);
  if (halfRate !== undefined && !(halfRate > 0 && Number.isFinite(halfRate)))
    throw new RangeError(`--half-rate must be a positive number of operations/s, got ${values['half-rate']}`);
  // Exit through process.exit so benchFloor's 'exit' cleanup runs (kills children, removes data).
  process.once('SIGINT', () => process.exit(130));
  const runs: BenchRow[][] = [];
  for (let r = 0; r < Number(values.runs); r++) {
    const rows = await benchFloor({
      ops: Number(values.ops),
      blind: values.blind,
      netFlush: mode('net-flush', values['net-flush']),
      dbFlush: mode('db-flush', values['db-flush']),
      halfRate,
    });
    console.log(`run ${r + 1}:\n${formatTable(rows)}\n`);
    runs.push(rows);
  }
  if (runs.length > 1) console.log(formatTable(medianRows(runs)));
}
