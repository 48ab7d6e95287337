/**
 * `npm run chaos`: the fault harness on a real network. Five node processes (TcpTransport and
 * LevelStorage), each in its own network namespace behind a bridge (see `netns.ts`), run a set
 * workload while partitions that drop packets silently come and go; the recorded history is then
 * checked by the simulator's checkers (no acknowledged add lost, replicas converged, no value from
 * nowhere), and the time each heal took to be noticed is measured.
 *
 *   npm run chaos                         5 runs of every fault kind (about 8 minutes)
 *   npm run chaos -- --profile short      1 shorter run of every kind (what CI runs)
 *   npm run chaos -- --runs 2 --kinds isolate,split --hold-ms 7000 --json out.json
 *   npm run chaos -- --workload registers   register writes without a resolver (causal checker)
 *
 * Needs root and `ip netns`; where namespaces cannot be made it says why and exits 0 without
 * claiming a pass. Every loop is bounded; every namespace, process and directory it made is
 * removed when it ends, fails, or is interrupted (SIGINT, SIGTERM).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type CheckResult,
  checkAll,
  checkConvergence,
  checkLostAdds,
  checkUnexpectedValues,
  type FinalKeyState,
  type FinalState,
  type HistoryEvent,
  HistoryRecorder,
} from '../../src/testing/index.js';
import { ChaosNetwork, unavailableReason } from './netns.js';
import type { Reply, Request } from './protocol.js';

// --- options -------------------------------------------------------------------------------------

const KINDS = ['isolate', 'split', 'bridge', 'kill', 'flap'] as const;
type Kind = (typeof KINDS)[number];

const PROFILES = {
  full: { runs: 5, holdMs: 7000, baselineMs: 2000, recoverMs: 3000 },
  short: { runs: 1, holdMs: 5000, baselineMs: 1000, recoverMs: 2000 },
} as const;

const { values: argv } = parseArgs({
  options: {
    profile: { type: 'string', default: 'full' },
    runs: { type: 'string' },
    kinds: { type: 'string', default: KINDS.join(',') },
    'hold-ms': { type: 'string' },
    storage: { type: 'string', default: 'level' },
    workload: { type: 'string', default: 'sets' },
    'clients-per-node': { type: 'string', default: '2' },
    keys: { type: 'string', default: '12' },
    'think-ms': { type: 'string', default: '20' },
    'request-timeout-ms': { type: 'string', default: '1000' },
    'probe-interval-ms': { type: 'string', default: '500' },
    'dead-connection-ms': { type: 'string' },
    json: { type: 'string' },
  },
});

const profile = PROFILES[argv.profile as keyof typeof PROFILES];
if (!profile) throw new Error(`--profile must be one of ${Object.keys(PROFILES).join(', ')}`);
const kinds = argv.kinds!.split(',') as Kind[];
for (const k of kinds)
  if (!KINDS.includes(k)) throw new Error(`unknown kind ${k} (kinds: ${KINDS.join(', ')})`);
if (argv.workload !== 'sets' && argv.workload !== 'registers')
  throw new Error('--workload must be sets or registers');
const opts = {
  workload: argv.workload as 'sets' | 'registers',
  runs: Number(argv.runs ?? profile.runs),
  holdMs: Number(argv['hold-ms'] ?? profile.holdMs),
  baselineMs: profile.baselineMs,
  recoverMs: profile.recoverMs,
  storage: argv.storage!,
  clientsPerNode: Number(argv['clients-per-node']),
  keys: Number(argv.keys),
  thinkMs: Number(argv['think-ms']),
  requestTimeoutMs: Number(argv['request-timeout-ms']),
  probeIntervalMs: Number(argv['probe-interval-ms']),
  deadConnectionMs: argv['dead-connection-ms'],
};
const IDS = ['n1', 'n2', 'n3', 'n4', 'n5'];
/** Key prefix of each write path. */
const PREFIX = { update: 'u:', getput: 'g:', write: 'r:' } as const;
const PORT = 7000;
/** Heal noticed within this after an isolate or a split (the acceptance bound). */
const HEAL_BOUND_MS = 2 * opts.probeIntervalMs + 1000;
/** Bounds of the harness's own waits, ms. */
const START_TIMEOUT_MS = 30_000;
const CALL_TIMEOUT_MS = 20_000;
const HEAL_WAIT_MAX_MS = 60_000;
const SETTLE_MAX_ROUNDS = 30;
const MEMBERS_POLL_MS = 25;

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
// Real time on purpose: the nodes are separate processes on a real (namespaced) network, where
// kernel retransmits and TCP timers decide what a heal costs; a virtual clock cannot drive them.
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const now = () => performance.now();

// --- cleanup of everything this process made -------------------------------------------------------

const live = {
  network: undefined as ChaosNetwork | undefined,
  nodes: new Set<NodeProc>(),
  dirs: new Set<string>(),
};

/** The last lines of every node log in `dir`, printed before the directory is removed. */
function printLogs(dir: string): void {
  for (const id of IDS) {
    let text = '';
    try {
      text = readFileSync(join(dir, `${id}.log`), 'utf8');
    } catch {
      continue;
    }
    const lines = text.trimEnd().split('\n').slice(-15);
    console.error(`--- ${id}.log (last ${lines.length} lines)\n${lines.join('\n')}`);
  }
}

function cleanup(failed = false): void {
  for (const n of live.nodes) n.kill();
  live.nodes.clear();
  const left = live.network?.destroy() ?? [];
  for (const f of left) console.error(`chaos: could not remove namespace ${f}`);
  live.network = undefined;
  for (const d of live.dirs) {
    if (failed) printLogs(d);
    rmSync(d, { recursive: true, force: true });
  }
  live.dirs.clear();
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`chaos: ${signal}: cleaning up`);
    cleanup(true);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}
process.once('uncaughtException', (err) => {
  console.error('chaos: failed:', err);
  cleanup(true);
  process.exit(1);
});

// --- node processes ----------------------------------------------------------------------------------

class NodeProc {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  private exited: Promise<void> = Promise.resolve();
  running = false;

  constructor(
    readonly id: string,
    private readonly network: ChaosNetwork,
    private readonly dataDir: string,
    private readonly secret: string,
  ) {}

  get address(): string {
    return `${this.network.addressOf(this.id)}:${PORT}`;
  }

  /** Starts the process in its namespace; resolves once its node serves requests. */
  async start(how: 'form' | 'join' | 'restart'): Promise<void> {
    // The first node forms the cluster alone; the others join through it.
    const seeds = how === 'form' ? '' : IDS.map((id) => `${this.network.addressOf(id)}:${PORT}`).join(',');
    const args = [
      'netns',
      'exec',
      this.network.namespace(this.id),
      process.execPath,
      '--import',
      'tsx',
      join(here, 'node-process.ts'),
      `--id=${this.id}`,
      `--host=${this.network.addressOf(this.id)}`,
      `--port=${PORT}`,
      `--seeds=${seeds}`,
      `--data=${join(this.dataDir, this.id)}`,
      `--storage=${opts.storage}`,
      `--resolver=${opts.workload === 'sets' ? 'union' : 'none'}`,
      `--secret=${this.secret}`,
      `--request-timeout-ms=${opts.requestTimeoutMs}`,
      `--probe-interval-ms=${opts.probeIntervalMs}`,
      ...(opts.deadConnectionMs ? [`--dead-connection-ms=${opts.deadConnectionMs}`] : []),
      ...(how === 'restart' ? [] : ['--wait-ready']),
    ];
    const child = spawn('ip', args, { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    live.nodes.add(this);
    const log = createWriteStream(join(this.dataDir, `${this.id}.log`), { flags: 'a' });
    child.stderr!.pipe(log);
    let ready!: () => void;
    const readyLine = new Promise<void>((resolve) => {
      ready = resolve;
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let reply: Reply & { id: number };
      try {
        reply = JSON.parse(line);
      } catch {
        return;
      }
      if (reply.id === 0) {
        this.running = true;
        ready();
        return;
      }
      this.waiting.get(reply.id)?.(reply);
      this.waiting.delete(reply.id);
    });
    this.exited = new Promise<void>((resolve) =>
      child.once('exit', () => {
        this.running = false;
        live.nodes.delete(this);
        for (const done of this.waiting.values()) done({ ok: false, error: 'PROCESS_EXITED' });
        this.waiting.clear();
        resolve();
      }),
    );
    const outcome = await Promise.race([
      readyLine.then(() => 'ready'),
      this.exited.then(() => 'exited'),
      sleep(START_TIMEOUT_MS).then(() => 'timeout'),
    ]);
    if (outcome !== 'ready') {
      this.kill();
      throw new Error(`${this.id} did not start (${outcome}); see ${join(this.dataDir, `${this.id}.log`)}`);
    }
  }

  /** Sends one request; a dead or silent process answers `{ ok: false }` (never throws). */
  call(req: Request, timeoutMs = CALL_TIMEOUT_MS): Promise<Reply & { sent: boolean }> {
    const child = this.child;
    if (!this.running || !child?.stdin?.writable) {
      return Promise.resolve({ ok: false, error: 'NOT_RUNNING', sent: false });
    }
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve({ ok: false, error: 'HARNESS_TIMEOUT', sent: true });
      }, timeoutMs);
      this.waiting.set(id, (r) => {
        clearTimeout(timer);
        resolve({ ...r, sent: true });
      });
      child.stdin!.write(`${JSON.stringify({ id, ...req })}\n`);
    });
  }

  /** SIGKILL, no goodbye (also how the harness ends a process it must not leave behind). */
  kill(): void {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
    }
    this.running = false;
  }

  async killAndWait(): Promise<void> {
    this.kill();
    await this.exited;
  }

  /** Clean stop: the node stops, then the process exits (killed if it does not within 15 s). */
  async stop(): Promise<void> {
    if (!this.running) return this.killAndWait();
    await this.call({ cmd: 'stop' }, 15_000);
    this.child?.stdin?.end();
    await Promise.race([this.exited, sleep(15_000)]);
    await this.killAndWait();
  }
}

// --- one run -----------------------------------------------------------------------------------------

interface OpRecord {
  path: 'update' | 'getput' | 'write';
  node: string;
  start: number;
  ok: boolean;
  ms: number;
  getMs?: number;
  putMs?: number;
}

interface FaultWindow {
  kind: Kind;
  description: string;
  start: number;
  heal: number;
  /** Groups of node ids (sides) during the fault; `minority` names the smaller side, if any. */
  sides: Record<string, string[]>;
  minority?: string;
  /** When every minority node first saw every other node down (relative to t0), if it did. */
  knownDown?: number;
  healMs?: number;
}

interface RunResult {
  run: number;
  passed: boolean;
  failures: string[];
  faults: FaultWindow[];
  checks: { path: string; results: CheckResult[] }[];
  ops: OpRecord[];
  /** Connections closed by the liveness rule, in all and while no fault was on. */
  deadConnections: number;
  calmCloses: number;
}

async function runOnce(run: number): Promise<RunResult> {
  const prefix = `dch${process.pid}r${run}`;
  const network = new ChaosNetwork(prefix, IDS);
  live.network = network;
  network.create();
  const dataDir = mkdtempSync(join(tmpdir(), 'dynamo-chaos-'));
  live.dirs.add(dataDir);
  const secret = `chaos-${process.pid}-${run}`;
  const nodes = new Map(IDS.map((id) => [id, new NodeProc(id, network, dataDir, secret)]));
  const t0 = now();
  const recorder = new HistoryRecorder(() => now() - t0);
  const failures: string[] = [];
  const faults: FaultWindow[] = [];
  const ops: OpRecord[] = [];

  console.log(`run ${run}: starting ${IDS.length} nodes (${opts.storage}) in namespaces ${prefix}-*`);
  await nodes.get(IDS[0]!)!.start('form');
  await Promise.all(IDS.slice(1).map((id) => nodes.get(id)!.start('join')));

  // The workload: each client adds unique elements to set keys through its node, half through
  // update() (keys u:*) and half through get + put (keys g:*); or (registers) writes unique values
  // to register keys (r:*) with the context of a read just before. Every operation is recorded.
  let stopping = false;
  let element = 0;
  const clients = IDS.flatMap((id, i) =>
    Array.from({ length: opts.clientsPerNode }, (_, j) => ({
      name: `c${i * opts.clientsPerNode + j}`,
      node: id,
    })),
  );
  const loops = clients.map(async (client, ci) => {
    for (let i = 0; !stopping && i < 1_000_000; i++) {
      const node = nodes.get(client.node)!;
      const path = opts.workload === 'registers' ? 'write' : (i + ci) % 2 === 0 ? 'update' : 'getput';
      const key = `${PREFIX[path]}${(i * 7 + ci) % opts.keys}`;
      const start = now() - t0;
      const f = path === 'write' ? 'write' : 'add';
      const value = path === 'write' ? `v${++element}` : ++element;
      recorder.invoke(client.name, f, key, client.node, value);
      const reply = await node.call(
        path === 'write'
          ? { cmd: path, key, value: value as string }
          : { cmd: path, key, element: value as number },
      );
      const seen = { context: reply.context, observed: reply.observed };
      if (reply.ok)
        recorder.ok(client.name, f, key, client.node, { ...seen, resultContext: reply.resultContext });
      else
        recorder.fail(client.name, f, key, client.node, {
          ...seen,
          error: reply.error,
          definite: !reply.sent || reply.definite === true,
        });
      if (reply.sent && reply.error !== 'PROCESS_EXITED' && reply.error !== 'HARNESS_TIMEOUT') {
        ops.push({
          path,
          node: client.node,
          start,
          ok: reply.ok,
          ms: reply.ms ?? 0,
          getMs: reply.getMs,
          putMs: reply.putMs,
        });
      }
      await sleep(reply.sent ? opts.thinkMs : 100);
    }
  });

  // The nemesis: each kind in turn, on nodes that rotate with the run.
  const pick = (k: number) => IDS[(run + k) % IDS.length]!;
  const deadConnections = async () =>
    (await Promise.all([...nodes.values()].map((n) => n.call({ cmd: 'state' })))).reduce(
      (sum, r) => sum + (r.deadConnections ?? 0),
      0,
    );
  let calmCloses = 0;
  for (const kind of kinds) {
    // Connections the liveness rule closes while no fault is on: it should close none.
    const before = await deadConnections();
    await sleep(opts.baselineMs);
    calmCloses += (await deadConnections()) - before;
    const fault = await applyFault(kind, network, nodes, pick, t0, recorder);
    fault.healMs = await timeUntilAllUp(nodes);
    faults.push(fault);
    console.log(
      `  ${fault.description}: every node saw every member up ${fmt(fault.healMs)} ms after the heal`,
    );
    if ((kind === 'isolate' || kind === 'split') && fault.healMs > HEAL_BOUND_MS) {
      failures.push(`${kind}: heal noticed after ${fmt(fault.healMs)} ms (bound ${HEAL_BOUND_MS} ms)`);
    }
    await sleep(opts.recoverMs);
  }
  stopping = true;
  await Promise.all(loops);

  // Settle: read every key at r = n from every node until no read repair and no hint is left.
  const paths = opts.workload === 'registers' ? (['write'] as const) : (['update', 'getput'] as const);
  const keys = paths.flatMap((path) => Array.from({ length: opts.keys }, (_, i) => `${PREFIX[path]}${i}`));
  const state = async () => Promise.all([...nodes.values()].map((n) => n.call({ cmd: 'state' })));
  let settled = false;
  for (let round = 0; round < SETTLE_MAX_ROUNDS && !settled; round++) {
    await sleep(1000);
    const before = await state();
    await Promise.all(
      [...nodes.values()].map(async (n) => {
        for (const key of keys) await n.call({ cmd: 'read', key, r: 3 });
      }),
    );
    const after = await state();
    const repairs = (s: Reply[]) => s.reduce((sum, r) => sum + (r.readRepairs ?? 0), 0);
    const hints = after.reduce((sum, r) => sum + (r.hintsPending ?? 0), 0);
    settled = hints === 0 && repairs(after) === repairs(before) && after.every((r) => r.ok);
  }
  if (!settled) failures.push(`not settled after ${SETTLE_MAX_ROUNDS} rounds`);

  // Final state: a read at r = n of every key, and what each primary stores.
  const reader = nodes.get(IDS[0]!)!;
  const finalValues = new Map<string, unknown[]>();
  for (const key of keys) {
    recorder.invoke('final', 'read', key, reader.id);
    const r = await reader.call({ cmd: 'read', key, r: 3 });
    if (r.ok) recorder.ok('final', 'read', key, reader.id, { value: r.values, siblings: r.values?.length });
    else {
      recorder.fail('final', 'read', key, reader.id, { error: r.error, definite: true });
      failures.push(`final read of ${key} failed: ${r.error} ${r.message ?? ''}`);
    }
    finalValues.set(key, r.values ?? []);
  }
  await sleep(500);
  const primaries = (await reader.call({ cmd: 'primaries', keys })).primaries ?? [];
  const snapshots = new Map<string, Reply['snapshots']>();
  for (const id of IDS) snapshots.set(id, (await nodes.get(id)!.call({ cmd: 'snapshot', keys })).snapshots);
  const endState = await state();
  const finalKeys: FinalKeyState[] = keys.map((key, k) => ({
    key,
    kind: opts.workload === 'registers' ? 'register' : 'set',
    values: finalValues.get(key) ?? [],
    replicas: (primaries[k] ?? []).map((id) => {
      const s = snapshots.get(id)?.[k];
      return s ? { node: id, ...s } : { node: id, encoded: null, ctx: [], siblings: [] };
    }),
  }));
  const hintsPending = endState.reduce((sum, r) => sum + (r.hintsPending ?? 0), 0);
  const history = recorder.events;
  const checks = paths.map((path) => {
    const prefix = PREFIX[path];
    const final: FinalState = {
      n: 3,
      resolver: path === 'write' ? 'siblings' : 'custom',
      maxSiblings: 100,
      hintsPending,
      keys: finalKeys.filter((k) => k.key.startsWith(prefix)),
    };
    const h = history.filter((e: HistoryEvent) => e.type === 'nemesis' || e.key.startsWith(prefix));
    return {
      path,
      results:
        path === 'write'
          ? checkAll(h, final).results
          : [checkLostAdds(h, final), checkUnexpectedValues(h, final), checkConvergence(h, final)],
    };
  });
  for (const c of checks) {
    for (const r of c.results) {
      if (!r.ok)
        failures.push(
          `${c.path}: ${r.checker}: ${r.problems
            .map((p) => p.message)
            .join('; ')
            .slice(0, 600)}`,
        );
    }
  }
  for (const kind of kinds) {
    if (!faults.some((f) => f.kind === kind)) failures.push(`${kind} was not exercised`);
  }
  writeFileSync(join(dataDir, 'history.json'), JSON.stringify(history));

  await Promise.all([...nodes.values()].map((n) => n.stop()));
  const left = network.destroy();
  live.network = undefined;
  if (left.length > 0) failures.push(`namespaces not removed: ${left.join(', ')}`);
  if (failures.length > 0) printLogs(dataDir);
  rmSync(dataDir, { recursive: true, force: true });
  live.dirs.delete(dataDir);
  const closed = endState.reduce((sum, r) => sum + (r.deadConnections ?? 0), 0);
  console.log(`  liveness rule: ${closed} connections closed, ${calmCloses} of them while no fault was on`);
  return {
    run,
    passed: failures.length === 0,
    failures,
    faults,
    checks,
    ops,
    deadConnections: closed,
    calmCloses,
  };
}

/** Applies one fault for `holdMs`, then heals it; returns its window (times relative to t0). */
async function applyFault(
  kind: Kind,
  network: ChaosNetwork,
  nodes: Map<string, NodeProc>,
  pick: (k: number) => string,
  t0: number,
  recorder: HistoryRecorder,
): Promise<FaultWindow> {
  const others = (ids: string[]) => IDS.filter((x) => !ids.includes(x));
  const start = now() - t0;
  let fault: FaultWindow;
  let watching = true;
  let watcher: Promise<void> = Promise.resolve();
  const begin = (description: string, sides: Record<string, string[]>, minority?: string) => {
    recorder.nemesis('start', kind, description);
    const f: FaultWindow = { kind, description, start, heal: 0, sides, ...(minority ? { minority } : {}) };
    fault = f;
    if (minority) watcher = watchKnownDown(f, nodes, t0, () => watching);
  };
  switch (kind) {
    case 'isolate': {
      const x = pick(0);
      network.isolate(x);
      begin(`isolate ${x}`, { minority: [x], majority: others([x]) }, 'minority');
      await sleep(opts.holdMs);
      break;
    }
    case 'split': {
      const small = [pick(0), pick(2)];
      network.partition(small, others(small));
      begin(
        `split ${small.join(' ')} | ${others(small).join(' ')}`,
        { minority: small, majority: others(small) },
        'minority',
      );
      await sleep(opts.holdMs);
      break;
    }
    case 'bridge': {
      const b = pick(0);
      const a = [pick(1), pick(2)];
      const c = [pick(3), pick(4)];
      network.partition(a, c);
      begin(`bridge ${a.join(' ')} | ${b} | ${c.join(' ')}`, { left: a, bridge: [b], right: c });
      await sleep(opts.holdMs);
      break;
    }
    case 'kill': {
      // A split, and a node of its minority SIGKILLed and restarted while the split lasts.
      const small = [pick(0), pick(2)];
      network.partition(small, others(small));
      const victim = nodes.get(small[1]!)!;
      begin(
        `split ${small.join(' ')} | ${others(small).join(' ')}, SIGKILL + restart ${victim.id}`,
        {
          minority: small,
          majority: others(small),
        },
        'minority',
      );
      await sleep(opts.holdMs / 4);
      await victim.killAndWait();
      recorder.nemesis('start', 'crash', `SIGKILL ${victim.id}`);
      await sleep(opts.holdMs / 4);
      const restarted = victim.start('restart');
      await sleep(opts.holdMs / 2);
      await restarted;
      recorder.nemesis('stop', 'crash', `restarted ${victim.id}`);
      break;
    }
    case 'flap': {
      const x = pick(0);
      begin(`flap ${x} (500 ms cut, 500 ms joined)`, { flapping: [x], others: others([x]) });
      for (let t = 0; t < opts.holdMs; t += 1000) {
        network.isolate(x);
        await sleep(500);
        network.heal();
        await sleep(500);
      }
      break;
    }
  }
  watching = false;
  await watcher;
  network.heal();
  recorder.nemesis('stop', kind, fault!.description);
  fault!.heal = now() - t0;
  return fault!;
}

/** Records when every minority node first sees every other node down (polled until `more()` ends). */
async function watchKnownDown(
  f: FaultWindow,
  nodes: Map<string, NodeProc>,
  t0: number,
  more: () => boolean,
): Promise<void> {
  const minority = f.sides[f.minority!]!;
  for (let i = 0; more() && i < 10_000; i++) {
    const views = await Promise.all(minority.map((id) => nodes.get(id)!.call({ cmd: 'members' }, 5000)));
    const all = views.every(
      (v, k) =>
        v.ok &&
        v.members!.every(([id, status]) => minority.includes(id) || status === 'down' || id === minority[k]),
    );
    if (all) {
      f.knownDown = now() - t0;
      return;
    }
    await sleep(50);
  }
}

/** Ms from now until every node sees every member up (polled every MEMBERS_POLL_MS). */
async function timeUntilAllUp(nodes: Map<string, NodeProc>): Promise<number> {
  const start = now();
  while (now() - start < HEAL_WAIT_MAX_MS) {
    const views = await Promise.all([...nodes.values()].map((n) => n.call({ cmd: 'members' }, 5000)));
    if (
      views.every((v) => v.ok && v.members?.length === IDS.length && v.members.every(([, s]) => s === 'up'))
    ) {
      return now() - start;
    }
    await sleep(MEMBERS_POLL_MS);
  }
  return Number.POSITIVE_INFINITY;
}

// --- figures -----------------------------------------------------------------------------------------

function p99(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.ceil(sorted.length * 0.99) - 1];
}

function fmt(ms: number | undefined): string {
  return ms === undefined ? '–' : Number.isFinite(ms) ? String(Math.round(ms)) : '∞';
}

/** Operations invoked on `side`'s nodes during a fault (with `known`: once the other side was known down). */
function during(r: RunResult, f: FaultWindow, side: string, known = false): OpRecord[] {
  const ids = f.sides[side] ?? [];
  const from = known ? (f.knownDown ?? Number.POSITIVE_INFINITY) : f.start;
  return r.ops.filter((o) => ids.includes(o.node) && o.start >= from && o.start < f.heal);
}

function summarise(results: RunResult[]): object {
  const rows: Record<string, unknown>[] = [];
  for (const kind of kinds) {
    const windows = results.flatMap((r) => r.faults.filter((f) => f.kind === kind).map((f) => ({ r, f })));
    const heal = windows.map(({ f }) => f.healMs ?? Number.POSITIVE_INFINITY);
    const sides = Object.keys(windows[0]?.f.sides ?? {});
    const acked: Record<string, string> = {};
    for (const side of sides) {
      const o = windows.flatMap(({ r, f }) => during(r, f, side));
      acked[side] =
        o.length === 0 ? '–' : `${((100 * o.filter((x) => x.ok).length) / o.length).toFixed(1)} %`;
    }
    const row: Record<string, unknown> = {
      kind,
      healMsMax: fmt(Math.max(...heal)),
      healMsEach: heal.map(fmt).join(' '),
      acked,
    };
    if (windows[0]?.f.minority) {
      const minority = (known: boolean) => windows.flatMap(({ r, f }) => during(r, f, 'minority', known));
      const okOnly = (o: OpRecord[]) => o.filter((x) => x.ok);
      const all = minority(false);
      const known = minority(true);
      row.minority = {
        getP99Ms: fmt(p99(okOnly(all).flatMap((o) => (o.getMs === undefined ? [] : [o.getMs])))),
        putP99Ms: fmt(p99(okOnly(all).flatMap((o) => (o.putMs === undefined ? [] : [o.putMs])))),
        updateP99Ms: fmt(
          p99(
            okOnly(all)
              .filter((o) => o.path === 'update')
              .map((o) => o.ms),
          ),
        ),
        slowest: okOnly(all)
          .sort((a, b) => b.ms - a.ms)
          .slice(0, 5)
          .map(
            (o) =>
              `${o.path}@${o.node} +${fmt(o.start - windows.find(({ r }) => r.ops.includes(o))!.f.start)}ms: ${fmt(o.ms)} (get ${fmt(o.getMs)}, put ${fmt(o.putMs)})`,
          ),
        knownDownAfterMs: windows
          .map(({ f }) => fmt(f.knownDown === undefined ? undefined : f.knownDown - f.start))
          .join(' '),
        onceKnownDown: {
          getP99Ms: fmt(p99(okOnly(known).flatMap((o) => (o.getMs === undefined ? [] : [o.getMs])))),
          putP99Ms: fmt(p99(okOnly(known).flatMap((o) => (o.putMs === undefined ? [] : [o.putMs])))),
          updateP99Ms: fmt(
            p99(
              okOnly(known)
                .filter((o) => o.path === 'update')
                .map((o) => o.ms),
            ),
          ),
        },
      };
    }
    rows.push(row);
  }
  return rows;
}

// --- main --------------------------------------------------------------------------------------------

const reason = unavailableReason(`dch${process.pid}`);
if (reason !== undefined) {
  console.log(`chaos: skipped, nothing was run: ${reason}`);
  process.exit(0);
}
console.log(
  `chaos: ${opts.runs} run(s) of ${kinds.join(', ')}; faults held ${opts.holdMs} ms; requestTimeoutMs ${opts.requestTimeoutMs}, probeIntervalMs ${opts.probeIntervalMs}${opts.deadConnectionMs ? `, deadConnectionMs ${opts.deadConnectionMs}` : ''}`,
);
const results: RunResult[] = [];
try {
  for (let run = 1; run <= opts.runs; run++) {
    const result = await runOnce(run);
    results.push(result);
    for (const c of result.checks) {
      const lost = c.results.find((r) => r.checker === (c.path === 'write' ? 'causal' : 'lost-adds'))!.stats;
      const what = c.path === 'write' ? 'writes' : 'adds';
      console.log(
        `  ${c.path}: ${lost.acknowledged} acknowledged ${what}, ${lost.lost} lost; ${c.results.map((r) => `${r.checker} ${r.ok ? 'ok' : 'FAILED'}`).join(', ')}`,
      );
    }
    console.log(`run ${run}: ${result.passed ? 'passed' : `FAILED\n    ${result.failures.join('\n    ')}`}`);
  }
} finally {
  cleanup();
}
const summary = summarise(results);
console.log(JSON.stringify(summary, null, 2));
if (argv.json) {
  writeFileSync(
    argv.json,
    JSON.stringify({ options: opts, summary, runs: results.map(({ ops: _o, ...r }) => r) }, null, 2),
  );
}
const passed = results.filter((r) => r.passed).length;
console.log(`chaos: ${passed} passed, ${results.length - passed} failed`);
process.exit(passed === results.length ? 0 : 1);
