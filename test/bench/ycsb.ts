/**
 * YCSB core workloads A, B, C, D and F (see `ycsb-core.ts`) against the engine in three set-ups:
 * 3 nodes in one process on MemoryStorage, the same on LevelStorage (N=3 R=2 W=2, a
 * MemoryNetwork, the engine from an esbuild bundle as the package ships), and 3 processes on
 * TcpTransport over loopback with LevelStorage, each process one YCSB client of its own node.
 * Each set-up loads `records` records, then runs the workloads in YCSB's order (A, B, C, F, D),
 * `operations` operations each (split evenly over the 3 processes over TCP), and reports per
 * workload ops/s, latency per operation kind, CPU per operation (all threads of all processes),
 * and the versions (siblings) per read.
 *
 *   npx tsx test/bench/ycsb.ts [--workload a,b,c,d,f] [--setup memory,level,tcp] [--records 100000]
 *                              [--operations 100000] [--in-flight 128] [--runs 1]
 *
 * prints each run and, with `--runs` above 1, the medians; `benchYcsb()` is the `npm run bench`
 * entry (`--only ycsb`, `--workload`).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Storage } from '../../src/index.js';
import { startCluster, systems } from './cluster.js';
import { type BenchRow, formatTable } from './lib.js';
import { type BenchNode, childCommand, medianRows, settled, startNode } from './tcp-cluster.js';
import {
  combineYcsb,
  dynamoTarget,
  measurePhase,
  prepareLoad,
  prepareRun,
  Sequence,
  siblingSummary,
  WORKLOADS,
  type Workload,
  YCSB_OPS,
  type YcsbPhase,
  type YcsbResult,
  ycsbProperties,
} from './ycsb-core.js';

export type YcsbSetup = 'memory' | 'level' | 'tcp';
export const YCSB_SETUPS: readonly YcsbSetup[] = ['memory', 'level', 'tcp'];

export interface YcsbBenchOptions {
  workloads?: readonly Workload[];
  setups?: readonly YcsbSetup[];
  /** Records loaded before the workloads run (default 100 000). */
  records?: number;
  /** Operations per workload, all clients together (default 100 000). */
  operations?: number;
  /** Operations in flight per client (default 128; over TCP each of the 3 processes is a client). */
  inFlight?: number;
}

const SETUP_LABEL: Record<YcsbSetup, string> = {
  memory: '3 nodes in one process, MemoryStorage',
  level: '3 nodes in one process, LevelStorage',
  tcp: '3 processes over loopback TCP, LevelStorage',
};

/** The load phase and each workload's run phase, combined over the clients. */
interface SetupResult {
  load: YcsbPhase;
  runs: { workload: Workload; phase: YcsbPhase }[];
}

async function inProcess(
  storage: 'memory' | 'level',
  o: Required<YcsbBenchOptions>,
  root: string,
): Promise<SetupResult> {
  const { LevelStorage, MemoryStorage } = await systems();
  const make = (id: string): Storage =>
    storage === 'memory' ? new MemoryStorage() : new LevelStorage({ path: join(root, id) });
  const { nodes } = await startCluster(make, ['a', 'b', 'c']);
  try {
    const target = dynamoTarget(nodes);
    const load = combineYcsb([await measurePhase(prepareLoad(target, o.records, o.inFlight))]);
    const runs = [];
    for (const workload of o.workloads) {
      const sequence = new Sequence(workload, o.records, o.operations, 'client-1');
      const phase = combineYcsb([await measurePhase(prepareRun(target, sequence, o.inFlight))]);
      runs.push({ workload, phase });
    }
    return { load, runs };
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
  }
}

async function overTcp(o: Required<YcsbBenchOptions>, root: string): Promise<SetupResult> {
  const script = await childCommand(false);
  const nodes: BenchNode[] = [];
  try {
    const first = await startNode('n1', join(root, 'n1'), [], script, {});
    nodes.push(first);
    nodes.push(
      ...(await Promise.all(
        ['n2', 'n3'].map((id) => startNode(id, join(root, id), [first.address], script, {})),
      )),
    );
    await settled(nodes);
    const clients = nodes.length;
    const load = combineYcsb(
      await Promise.all(
        nodes.map((n, i) =>
          n.call<YcsbResult>({
            cmd: 'ycsb-load',
            records: o.records,
            inFlight: o.inFlight,
            first: i,
            stride: clients,
          }),
        ),
      ),
    );
    const runs = [];
    for (const workload of o.workloads) {
      const results = await Promise.all(
        nodes.map((n, i) =>
          n.call<YcsbResult>({
            cmd: 'ycsb-run',
            workload: workload.name,
            records: o.records,
            operations: Math.round(o.operations / clients),
            inFlight: o.inFlight,
            seed: `client-${i + 1}`,
            firstInsert: i,
            insertStride: clients,
          }),
        ),
      );
      runs.push({ workload, phase: combineYcsb(results) });
    }
    return { load, runs };
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
  }
}

function rows(setup: YcsbSetup, r: SetupResult, o: Required<YcsbBenchOptions>): BenchRow[] {
  const label = SETUP_LABEL[setup];
  const clients = setup === 'tcp' ? 3 : 1;
  const common = (p: YcsbPhase) => ({
    opsPerSec: p.opsPerSec,
    p50Ms: p.p50Ms,
    p99Ms: p.p99Ms,
    p999Ms: p.p999Ms,
  });
  const problems = (p: YcsbPhase) => ({
    ...(p.failures
      ? {
          failures: `${p.failures}(${Object.entries(p.failureKinds)
            .map(([kind, n]) => `${kind}:${n}`)
            .join(',')})`,
        }
      : {}),
    ...(p.notFound ? { notFound: p.notFound } : {}),
  });
  const out: BenchRow[] = [
    {
      scenario: `YCSB load ${o.records} records of 1 KiB, ${label}`,
      ...common(r.load),
      extra: {
        cpuUsPerOp: r.load.cpuUsPerOp.toFixed(1),
        inFlight: `${clients}x${o.inFlight}`,
        ...problems(r.load),
      },
    },
  ];
  for (const { workload, phase } of r.runs) {
    const s = siblingSummary(phase.siblings);
    const reads = phase.perOp.READ !== undefined || phase.perOp['READ-MODIFY-WRITE'] !== undefined;
    out.push({
      scenario: `YCSB ${workload.title}, ${label}`,
      ...common(phase),
      extra: {
        cpuUsPerOp: phase.cpuUsPerOp.toFixed(1),
        ...(reads
          ? {
              siblingsPerRead: s.mean.toFixed(3),
              readsWithSiblingsPct: s.multiPct.toFixed(2),
              maxSiblings: s.max,
            }
          : {}),
        ...problems(phase),
      },
    });
    for (const op of YCSB_OPS) {
      const f = phase.perOp[op];
      if (!f) continue;
      out.push({
        scenario: `YCSB ${workload.name.toUpperCase()} ${setup}: ${op}`,
        opsPerSec: f.opsPerSec,
        p50Ms: f.p50Ms,
        p99Ms: f.p99Ms,
        p999Ms: f.p999Ms,
        extra: { count: f.count },
      });
    }
  }
  return out;
}

export async function benchYcsb(options: YcsbBenchOptions = {}): Promise<BenchRow[]> {
  const o: Required<YcsbBenchOptions> = {
    workloads: options.workloads ?? WORKLOADS,
    setups: options.setups ?? YCSB_SETUPS,
    records: options.records ?? 100_000,
    operations: options.operations ?? 100_000,
    inFlight: options.inFlight ?? 128,
  };
  const out: BenchRow[] = [];
  for (const setup of o.setups) {
    const root = await mkdtemp(join(tmpdir(), `dynamo-bench-ycsb-${setup}-`));
    try {
      process.stderr.write(`ycsb: ${SETUP_LABEL[setup]}...\n`);
      const result = setup === 'tcp' ? await overTcp(o, root) : await inProcess(setup, o, root);
      out.push(...rows(setup, result, o));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      workload: { type: 'string', default: WORKLOADS.map((w) => w.name).join(',') },
      setup: { type: 'string', default: YCSB_SETUPS.join(',') },
      records: { type: 'string', default: '100000' },
      operations: { type: 'string', default: '100000' },
      'in-flight': { type: 'string', default: '128' },
      runs: { type: 'string', default: '1' },
      'print-ycsb': { type: 'boolean', default: false },
    },
  });
  const { workloadsNamed } = await import('./ycsb-core.js');
  const workloads = workloadsNamed(values.workload);
  const setups = values.setup.split(',').map((s) => {
    if (!YCSB_SETUPS.includes(s as YcsbSetup))
      throw new RangeError(`unknown setup ${s}; known: ${YCSB_SETUPS}`);
    return s as YcsbSetup;
  });
  const positive = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`--${name} must be a positive integer, got ${v}`);
    return n;
  };
  const records = positive('records', values.records);
  const operations = positive('operations', values.operations);
  const inFlight = positive('in-flight', values['in-flight']);
  if (values['print-ycsb']) {
    // The Java YCSB's parameters for the same mixes, for a run against another store.
    for (const w of workloads)
      console.log(`workload${w.name}: ${ycsbProperties(w, records, operations, inFlight)}`);
    process.exit(0);
  }
  const runs: BenchRow[][] = [];
  for (let r = 0; r < positive('runs', values.runs); r++) {
    const out = await benchYcsb({ workloads, setups, records, operations, inFlight });
    console.log(`run ${r + 1}:\n${formatTable(out)}\n`);
    runs.push(out);
  }
  if (runs.length > 1) console.log(formatTable(medianRows(runs)));
}
