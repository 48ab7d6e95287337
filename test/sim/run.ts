/**
 * `npm run sim`: runs seeded simulations and the checkers.
 *
 *   npm run sim                          seeds 1..20 (the CI list's size), default settings
 *   SEED=123 npm run sim                 replays seed 123 exactly and prints its full report
 *   npm run sim -- --seeds 1000          seeds 1..1000 with a progress line and a summary
 *   npm run sim -- --seeds 100 --lww     the last-write-wins control: how many acknowledged adds it loses
 *   npm run sim -- --bench               5 nodes × 10,000 operations: wall time
 *   npm run sim -- --seeds 300 --workload chain     set adds by chains of puts on the contexts puts return
 *   npm run sim -- --seeds 300 --workload client    everything through DynamoClients (get + put, update())
 *   npm run sim -- --seeds 300 --workload update    set adds through node.update() with a set-union resolver
 *   npm run sim -- --seeds 300 --workload resolved  set adds by a resolved get (write-back) then put
 *   npm run sim -- --seeds 300 --workload mixed     every path above, at random per add
 *   npm run sim -- --seeds 300 --workload counter   counters (node.counter): final value vs acknowledged increments
 *   npm run sim -- --seeds 300 --workload orset     OR-sets (node.set): no lost add, no removed element back
 *   npm run sim -- --seeds 300 --workload ttl       puts with ttlMs: no read returns a value expired on every clock,
 *                                                   no value a write superseded comes back once that write expired
 *
 *   npm run sim -- --seeds 300 --zones 3 --nodes 6   6 nodes in 3 zones: every fault, zone outages too
 *
 * Settings: --nodes 5 --zones 0 --ops 1000 --clients 5 --keys 5 --register-keys 3 --retries 0 --quorum 3,2,2 --strict
 * --no-faults --faults crash,isolate --fault-interval-ms 200,1500 (quiet time before each fault)
 * --max-sessions N (data-type sessions a node keeps: small values
 * make nodes evict and resume actors) --from 1 --history FILE (one seed: write its history as JSON)
 * --latency-aware (every node with latencyAware: hedged reads, latency-ranked put coordinators)
 * --json FILE (write per-seed figures), --trace KEY [--trace-from MS --trace-to MS --trace-element N]
 * (one seed: print every write of KEY on every node, see trace.ts). Exit code 1 when a seed fails (with --lww: never, the loss is
 * the expected result, reported in the summary).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  type FaultKind,
  formatSimulationReport,
  runSimulation,
  SET_WORKLOADS,
  type SimulationOptions,
  type SimulationResult,
  type SimWorkload,
} from '../../src/testing/index.js';
import { installTrace } from './trace.js';

const USAGE = `usage: npm run sim -- [flags]          (SEED=N npm run sim replays seed N)

  --seeds N            run seeds 1..N (default 20) with a progress line and a summary
  --from N             first seed of --seeds (default 1)
  --seed S             run one seed (a number or a string) and print its full report
  --bench              5 nodes x 10,000 operations: wall time and CPU
  --lww                the last-write-wins control: how many acknowledged adds it loses
  --workload W         sets (default: get, merge, put with the read's context), chain (puts on
                       the contexts puts return), client (through DynamoClients), update
                       (node.update with a resolver), resolved (resolved get, then put), mixed
                       (every path at random), counter, orset, map (the data types), ttl (ttlMs)
  --nodes N --ops N --clients N --keys N --register-keys N --retries N
  --zones N            spread the nodes over N zones (zone outages join the faults)
  --quorum n,r,w       default 3,2,2
  --strict             strict quorum (sloppyQuorum: false)
  --latency-aware      every node with latencyAware
  --no-faults          no fault schedule; --faults crash,isolate,... picks the kinds
  --fault-interval-ms MIN,MAX   quiet time before each fault (default 200,1500)
  --max-sessions N     data-type sessions a node keeps
  --history FILE       (one seed) write its history as JSON
  --json FILE          write per-seed figures
  --trace KEY          (one seed) print every write of KEY on every node
                       [--trace-from MS --trace-to MS --trace-element N]
  --verbose            print the run's statistics
  -h, --help           this text

Exit code 1 when a seed fails (with --lww: never), 2 on a bad flag.
`;

function parseFlags() {
  try {
    return parseArgs({ options: FLAGS, strict: true }).values;
  } catch (err) {
    process.stderr.write(`sim: ${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    process.exit(2);
  }
}

const FLAGS = {
  seeds: { type: 'string' },
  from: { type: 'string' },
  seed: { type: 'string' },
  lww: { type: 'boolean', default: false },
  workload: { type: 'string' },
  nodes: { type: 'string' },
  zones: { type: 'string' },
  ops: { type: 'string' },
  clients: { type: 'string' },
  keys: { type: 'string' },
  'register-keys': { type: 'string' },
  retries: { type: 'string' },
  quorum: { type: 'string' },
  strict: { type: 'boolean', default: false },
  'latency-aware': { type: 'boolean', default: false },
  'no-faults': { type: 'boolean', default: false },
  'fault-interval-ms': { type: 'string' },
  faults: { type: 'string' },
  history: { type: 'string' },
  json: { type: 'string' },
  bench: { type: 'boolean', default: false },
  verbose: { type: 'boolean', default: false },
  trace: { type: 'string' },
  'trace-from': { type: 'string' },
  'trace-to': { type: 'string' },
  'trace-element': { type: 'string' },
  'max-sessions': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;
const args = parseFlags();
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

function int(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new RangeError(`--${name} must be a non-negative integer, got ${value}`);
  return n;
}

/** The flags that change the run, so a printed replay command reproduces it. */
function replayFlags(): string[] {
  const flags: string[] = [];
  const pass = [
    'lww',
    'workload',
    'nodes',
    'zones',
    'ops',
    'clients',
    'keys',
    'register-keys',
    'retries',
    'quorum',
    'strict',
    'latency-aware',
    'no-faults',
    'fault-interval-ms',
    'faults',
    'max-sessions',
  ];
  for (const name of pass) {
    const v = (args as Record<string, string | boolean | undefined>)[name];
    if (v === true) flags.push(`--${name}`);
    else if (typeof v === 'string') flags.push(`--${name} ${v}`);
  }
  return flags;
}

function replayCommand(seed: number | string): string {
  const flags = replayFlags();
  return `SEED=${seed} npm run sim${flags.length ? ` -- ${flags.join(' ')}` : ''}`;
}

function simulationOptions(seed: number | string): SimulationOptions {
  const options: SimulationOptions = { seed };
  if (args.bench) Object.assign(options, { nodes: 5, operations: 10_000, keys: 50, registerKeys: 10 });
  options.nodes = int('nodes', args.nodes) ?? options.nodes;
  options.zones = int('zones', args.zones) ?? options.zones;
  options.operations = int('ops', args.ops) ?? options.operations;
  options.clients = int('clients', args.clients) ?? options.clients;
  options.keys = int('keys', args.keys) ?? options.keys;
  options.registerKeys = int('register-keys', args['register-keys']) ?? options.registerKeys;
  options.retries = int('retries', args.retries) ?? options.retries;
  if (args.quorum) {
    const [n, r, w] = args.quorum.split(',').map(Number);
    options.quorum = { n, r, w } as { n: number; r: number; w: number };
  }
  if (args.strict) options.sloppyQuorum = false;
  if (args['latency-aware']) options.nodeOptions = { latencyAware: true };
  if (args.lww) options.resolver = 'lww';
  if (args.workload !== undefined) {
    const all = [...SET_WORKLOADS, 'counter', 'orset', 'map', 'ttl'];
    if (!all.includes(args.workload as SimWorkload)) {
      throw new RangeError(`--workload must be one of ${all.join(', ')}, got ${args.workload}`);
    }
    options.workload = args.workload as SimWorkload;
  }
  const maxSessions = int('max-sessions', args['max-sessions']);
  if (maxSessions !== undefined) options.nodeOptions = { ...options.nodeOptions, dataTypes: { maxSessions } };
  if (args['no-faults']) options.nemesis = false;
  else {
    if (args.faults) options.nemesis = { faults: args.faults.split(',') as FaultKind[] };
    if (args['fault-interval-ms']) {
      const [min, max] = args['fault-interval-ms'].split(',').map(Number);
      if (!(Number.isFinite(min) && Number.isFinite(max) && min! >= 0 && max! >= min!))
        throw new RangeError('--fault-interval-ms must be MIN,MAX (ms)');
      options.nemesis = { ...(options.nemesis || {}), intervalMs: { min: min!, max: max! } };
    }
  }
  return options;
}

function parseSeed(s: string): number | string {
  return /^\d+$/.test(s) ? Number(s) : s;
}

function fmtMs(ms: number): string {
  return ms >= 10_000
    ? `${(ms / 1000).toFixed(0)} s`
    : ms >= 1000
      ? `${(ms / 1000).toFixed(1)} s`
      : `${ms.toFixed(0)} ms`;
}

interface SeedFigures {
  seed: number | string;
  ok: boolean;
  wallMs: number;
  acknowledged: number;
  lost: number;
  failedChecks: string[];
  /** Typed workloads: the `counters` / `orsets` checker's figures. */
  typed?: Record<string, number>;
}

function figures(result: SimulationResult, wallMs: number): SeedFigures {
  const lost = result.report.results.find((r) => r.checker === 'lost-adds');
  return {
    seed: result.seed,
    ok: result.ok,
    wallMs,
    acknowledged: lost?.stats.acknowledged ?? 0,
    lost: lost?.stats.lost ?? 0,
    failedChecks: result.report.results.filter((r) => !r.ok).map((r) => r.checker),
    typed:
      result.options.workload === 'counter'
        ? result.report.results.find((r) => r.checker === 'counters')?.stats
        : result.options.workload === 'orset' || result.options.workload === 'map'
          ? result.report.results.find((r) => r.checker === 'orsets')?.stats
          : result.options.workload === 'ttl'
            ? result.report.results.find((r) => r.checker === 'expired-reads')?.stats
            : undefined,
  };
}

async function runOne(seed: number | string): Promise<{ result: SimulationResult; wallMs: number }> {
  const started = performance.now();
  const result = await runSimulation(simulationOptions(seed));
  return { result, wallMs: performance.now() - started };
}

async function single(seed: number | string): Promise<number> {
  if (args.trace !== undefined) {
    const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
    installTrace({
      key: args.trace,
      from: num(args['trace-from']),
      to: num(args['trace-to']),
      element: num(args['trace-element']),
    });
  }
  const { result, wallMs } = await runOne(seed);
  console.log(formatSimulationReport(result, { replay: replayCommand(seed), excerptLines: 80 }));
  const opsTotal = Object.values(result.stats.operations).reduce((s, x) => s + x.ok + x.fail, 0);
  console.log(
    `  wall ${fmtMs(wallMs)} for ${opsTotal} operations (${Math.round((opsTotal / wallMs) * 1000)} ops/s), ` +
      `${result.history.length} history events, ${result.stats.network.sent} messages, ` +
      `${result.stats.settleRounds} settle round(s), ${result.stats.readRepairs} read repairs`,
  );
  if (args.verbose) console.log(JSON.stringify(result.stats, null, 2));
  if (args.history) {
    writeFileSync(args.history, JSON.stringify(result.history, null, 1));
    console.log(`  history written to ${args.history}`);
  }
  return result.ok || args.lww ? 0 : 1;
}

async function many(from: number, count: number): Promise<number> {
  const all: SeedFigures[] = [];
  const started = performance.now();
  const failed: SeedFigures[] = [];
  const faults: Record<string, number> = {};
  const siblingsRead: Record<string, number> = {};
  const tty = process.stdout.isTTY;
  let lastLine = 0;
  for (let i = 0; i < count; i++) {
    const seed = from + i;
    let run: Awaited<ReturnType<typeof runOne>>;
    try {
      run = await runOne(seed);
    } catch (err) {
      // A run that throws (a phase that never ends, a crash in the engine) is a failed seed too.
      if (tty) process.stdout.write('\r\x1b[K');
      console.log(`seed ${seed}: ERROR ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      console.log(`  replay: ${replayCommand(seed)}`);
      const f: SeedFigures = {
        seed,
        ok: false,
        wallMs: 0,
        acknowledged: 0,
        lost: 0,
        failedChecks: ['error'],
      };
      all.push(f);
      failed.push(f);
      continue;
    }
    const { result, wallMs } = run;
    const f = figures(result, wallMs);
    all.push(f);
    for (const [k, v] of Object.entries(result.stats.faults)) faults[k] = (faults[k] ?? 0) + (v ?? 0);
    for (const [k, v] of Object.entries(result.stats.siblingsRead))
      siblingsRead[k] = (siblingsRead[k] ?? 0) + v;
    if (!result.ok && !args.lww) {
      failed.push(f);
      if (tty) process.stdout.write('\r\x1b[K');
      console.log(formatSimulationReport(result, { replay: replayCommand(seed) }));
    }
    const now = performance.now();
    if (tty || now - lastLine > 10_000 || i === count - 1) {
      lastLine = now;
      const elapsed = now - started;
      const eta = (elapsed / (i + 1)) * (count - i - 1);
      const acked = all.reduce((s, x) => s + x.acknowledged, 0);
      const lost = all.reduce((s, x) => s + x.lost, 0);
      const line =
        `[${String(i + 1).padStart(String(count).length)}/${count}] seed ${seed} · ` +
        `${args.lww ? '' : `${failed.length} failed · `}lost ${lost} of ${acked} acked adds · ` +
        `${fmtMs(elapsed)} elapsed, eta ${fmtMs(eta)}`;
      if (tty) process.stdout.write(`\r\x1b[K${line}`);
      else console.log(line);
    }
  }
  if (tty) process.stdout.write('\n');

  const wall = all.map((x) => x.wallMs).sort((a, b) => a - b);
  const acked = all.reduce((s, x) => s + x.acknowledged, 0);
  const lost = all.reduce((s, x) => s + x.lost, 0);
  const withLoss = all.filter((x) => x.lost > 0).length;
  const perSeedLoss = all.map((x) => (x.acknowledged ? x.lost / x.acknowledged : 0)).sort((a, b) => a - b);
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  console.log(
    `\nsummary: ${count} seeds (${from}..${from + count - 1}), ${args.lww ? 'last-write-wins control' : `${args.workload ?? 'sets'} workload${args.workload === 'counter' || args.workload === 'orset' || args.workload === 'map' ? ' (data types)' : ''}`}`,
  );
  const typed: Record<string, number> = {};
  for (const x of all) for (const [k, v] of Object.entries(x.typed ?? {})) typed[k] = (typed[k] ?? 0) + v;
  if (Object.keys(typed).length > 0) {
    console.log(
      `  ${args.workload}: ${Object.entries(typed)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
  } else {
    console.log(
      `  acknowledged adds ${acked}, lost ${lost} (${pct(acked ? lost / acked : 0)}); seeds with a loss: ${withLoss} of ${count}`,
    );
  }
  if (args.lww) {
    console.log(
      `  loss per seed: min ${pct(perSeedLoss[0] ?? 0)}, median ${pct(perSeedLoss[Math.floor(perSeedLoss.length / 2)] ?? 0)}, max ${pct(perSeedLoss[perSeedLoss.length - 1] ?? 0)}`,
    );
  } else {
    console.log(
      `  failed seeds: ${failed.length ? failed.map((f) => `${f.seed} (${f.failedChecks.join(', ')})`).join('; ') : 'none'}`,
    );
  }
  const reads = Object.values(siblingsRead).reduce((a, b) => a + b, 0);
  console.log(
    `  values per client read: ${Object.entries(siblingsRead)
      .map(([n, c]) => `${n}×${c} (${pct(reads ? c / reads : 0)})`)
      .join(' ')}`,
  );
  console.log(
    `  faults injected: ${Object.entries(faults)
      .map(([k, v]) => `${k}×${v}`)
      .join(' ')}`,
  );
  console.log(
    `  wall per seed: median ${fmtMs(wall[Math.floor(wall.length / 2)] ?? 0)}, max ${fmtMs(wall[wall.length - 1] ?? 0)}; total ${fmtMs(performance.now() - started)}`,
  );
  if (args.json) writeFileSync(args.json, JSON.stringify(all, null, 1));
  return failed.length > 0 ? 1 : 0;
}

async function bench(): Promise<number> {
  // First run pays for module loading and JIT warm-up; time the second.
  await runOne('bench-warmup');
  // CPU time next to wall time: on a shared machine the wall clock also counts other processes.
  const cpuBefore = process.cpuUsage();
  const { result, wallMs } = await runOne(args.seed ?? process.env.SEED ?? 1);
  const cpu = process.cpuUsage(cpuBefore);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const ops = Object.values(result.stats.operations).reduce((s, x) => s + x.ok + x.fail, 0);
  console.log(formatSimulationReport(result));
  console.log(
    `bench: ${result.options.nodes} nodes × ${ops} operations (+ settle): wall ${fmtMs(wallMs)}, CPU ${fmtMs(cpuMs)}, ` +
      `${Math.round((ops / wallMs) * 1000)} ops/s, ${Math.round(result.stats.virtualMs)} virtual ms, ` +
      `${result.stats.network.sent} messages`,
  );
  return result.ok ? 0 : 1;
}

const envSeed = process.env.SEED;
let from: number;
let seeds: number;
try {
  // Every flag value checked before anything runs: a bad one is a usage error, not a crash.
  simulationOptions(1);
  from = int('from', args.from) ?? 1;
  seeds = int('seeds', args.seeds) ?? 20;
} catch (err) {
  process.stderr.write(`sim: ${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
  process.exit(2);
}
let code: number;
if (args.bench) code = await bench();
else if (args.seed !== undefined || envSeed !== undefined)
  code = await single(parseSeed(args.seed ?? envSeed!));
else code = await many(from, seeds);
process.exit(code);
