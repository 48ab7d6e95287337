/**
 * Deterministic simulation (FoundationDB / TigerBeetle style): real `DynamoNode`s on
 * `MemoryStorage`, talking over a `MemoryNetwork`, all on one `VirtualClock`, driven by one seed.
 * Clients run a set-union workload and register writes while a nemesis injects faults; then the
 * network heals, the cluster settles, and the checkers compare the recorded history with what the
 * replicas hold. Same seed, same run: the history is identical byte for byte, so a failing seed is
 * a reproducible test case.
 */
import { Packr } from 'msgpackr';
import { DynamoClient, type DynamoClientOptions } from '../client/client.js';
import { DynamoError } from '../errors.js';
import type { KeysPage } from '../listing/listing.js';
import { DynamoNode } from '../node.js';
import type { PutOptions } from '../operation-types.js';
import type { DynamoNodeOptions, QuorumOptions, Resolver } from '../options.js';
import { dataKey } from '../replica/layout.js';
import { resolvers } from '../resolvers.js';
import { loadHasher, partitionOf } from '../ring/index.js';
import { MemoryStorage } from '../storage/memory.js';
import { type LatencyRange, MemoryNetwork, type MemoryNetworkCounters } from '../transport/memory.js';
import { decodeState, isTypedValue } from '../types/codec.js';
import type { MapHandle } from '../types/handles.js';
import { type MapValue, typeValue } from '../types/ops.js';
import { VirtualClock } from '../util/clock.js';
import { type Random, seededRandom } from '../util/random.js';
import { decodeObject } from '../versioning/codec.js';
import {
  type CheckOptions,
  type CheckReport,
  type CheckResult,
  checkAll,
  type FinalKeyState,
  type FinalState,
  type ReplicaSnapshot,
} from './checkers.js';
import { SkewedClock } from './sim-clock.js';
import {
  type Completion,
  type HistoryEvent,
  HistoryRecorder,
  historyExcerpt,
  type OperationFunction,
} from './sim-history.js';
import { FAULT_KINDS, type FaultKind, Nemesis, type NemesisOptions } from './sim-nemesis.js';

/**
 * Values in a simulation. Set keys hold arrays of element numbers: the elements already there in
 * ascending order, then the element the write added (so every set value names the add that
 * wrote it). Register keys hold unique strings (`c2:17`: client 2's 17th write).
 */
export type SimValue = number[] | string;

/**
 * What clients do (see `SimulationOptions.workload`). The set workloads differ in the path an add
 * takes — every way the public API lets an application read, modify and write — because a
 * guarantee holds only on the paths the checkers drive.
 */
export type SimWorkload =
  | 'sets'
  | 'chain'
  | 'client'
  | 'update'
  | 'resolved'
  | 'mixed'
  | 'counter'
  | 'orset'
  | 'map'
  | 'ttl';

/** Where a client sends an operation: a node, or its own DynamoClient. */
type SimTarget = DynamoNode<SimValue> | DynamoClient<SimValue>;

/** A context a client holds for a register key, and the values its holder had been shown. */
interface Held {
  context: string;
  observed: unknown[];
}

/** A client's chain of puts on one set key: the context its last put returned, and the value it wrote. */
interface Chain {
  context: string;
  value: number[];
}

/**
 * The set value an add writes: the union of `values` (sets: arrays of elements) in ascending
 * order, then `element` last, so every set value names the add that wrote it and the checkers
 * can tell which operation created a sibling.
 */
function withElement(values: readonly SimValue[], element: number): number[] {
  const merged = new Set<number>();
  for (const v of values) if (Array.isArray(v)) for (const e of v) merged.add(e);
  const value = [...merged].sort((a, b) => a - b);
  value.push(element);
  return value;
}

/** Set union, the resolver of the workloads that resolve reads. */
const unionResolver: Resolver<SimValue> = resolvers.merge<SimValue>((a, b) => {
  const merged = new Set<number>([...(Array.isArray(a) ? a : []), ...(Array.isArray(b) ? b : [])]);
  return [...merged].sort((x, y) => x - y);
});

/** The plain-value workloads (set keys, and register keys where no resolver is set). */
export const SET_WORKLOADS: readonly SimWorkload[] = [
  'sets',
  'chain',
  'client',
  'update',
  'resolved',
  'mixed',
];

/** How one add reaches the cluster. */
type AddPath = 'get-put' | 'update' | 'chain' | 'client-get-put' | 'client-update';

/** The workloads whose nodes (and clients) resolve reads with a set-union merge. */
const UNION_WORKLOADS: ReadonlySet<SimWorkload> = new Set(['update', 'resolved', 'mixed']);

/** The workloads that go through DynamoClients. */
const CLIENT_WORKLOADS: ReadonlySet<SimWorkload> = new Set(['client', 'mixed']);

/** The node options that mean something to a DynamoClient (it stores nothing). */
function clientOptionsOf(o: Partial<DynamoNodeOptions<SimValue>>): Partial<DynamoClientOptions<SimValue>> {
  const out: Record<string, unknown> = { ...o };
  for (const name of [
    'storage',
    'weight',
    'hintedHandoff',
    'antiEntropy',
    'tombstoneGraceMs',
    'seeds',
    'waitUntilReady',
  ])
    delete out[name];
  return out as Partial<DynamoClientOptions<SimValue>>;
}

/** A simulation run: cluster, workload, faults, settling, checks. Every field has a default. */
export interface SimulationOptions {
  /** Seeds everything: workload, nemesis, network faults, node randomness, clock offsets. Default 1. */
  seed?: number | string;
  /** Node count (ids n1..nK). Default 5. */
  nodes?: number;
  /**
   * Spread the nodes over this many zones (`zone-1`...: n1 in zone-1, n2 in zone-2, ... round
   * robin), so every key's replicas span min(N, zones) zones; enables the `zone-outage` fault.
   * Default 0: no zones.
   */
  zones?: number;
  /** Default { n: 3, r: 2, w: 2 }. */
  quorum?: Partial<QuorumOptions>;
  /** Default true. */
  sloppyQuorum?: boolean;
  /** Client operations in the run (adds, writes, deletes; listings and the final reads come on top). Default 1000. */
  operations?: number;
  /** Concurrent clients, each with one operation in flight at a time. Default 5. */
  clients?: number;
  /** Set-valued keys (`set:0`, ...), the Jepsen set workload. Default 5. */
  keys?: number;
  /**
   * What clients do. On plain values, set keys get adds and register keys get writes (with the
   * context of a fresh read, or the one the client's last write returned) and deletes:
   * - `sets` (default): no resolver; an add reads, merges the siblings (union), and puts with the
   *   read's context;
   * - `chain`: no resolver; an add puts with the context the client's previous put on that key
   *   returned, its value the client's previous value plus the new element (reading only to start
   *   a chain, after a failure, and now and then);
   * - `client`: no resolver; every operation through a `DynamoClient` (one per client), adds by
   *   get + put and by `update()`;
   * - `update`: a set-union resolver; adds through `node.update()`; no register keys (a resolver's
   *   write-backs supersede register siblings without a recorded write);
   * - `resolved`: a set-union resolver; adds by a resolved `get` (which writes the merge back)
   *   then a put with its context; no register keys;
   * - `mixed`: a set-union resolver on nodes and clients; each add takes one of the paths above
   *   at random; no register keys.
   * Typed: `counter`: `keys` counters (`counter:0`, ...) incremented by 1..5 through
   * `node.counter(key)`; `orset`: `keys` OR-sets (`orset:0`, ...): adds of unique elements, and
   * removes of an element a read saw, with that read's context, through `node.set(key)`; `map`:
   * `keys` maps (`map:0`, ...) changed through `node.map(key).update()`: increments of an embedded
   * counter `n` and of the counter `n` of an embedded map `m`, adds to an embedded set `s` and
   * removes from it with a read's context, enables and disables of a flag `f`, assignments to a
   * multi-value register `r` — recorded, and checked, as counters `map:0/n`, `map:0/m/n`, OR-set
   * `map:0/s`, flag `map:0/f` and multi-value register `map:0/r`.
   * Expiry: `ttl`: `keys` register keys (`ttl:0`, ...) written with unique values, most of them with
   * a `ttlMs` (see `ttlMs`, `ttlShare`), with fresh or stale contexts, read, and sometimes deleted;
   * checked by `expired-reads` (no read returns a value whose expiry passed on every clock) and the
   * register checks (no value a write superseded comes back once that write expired).
   */
  workload?: SimWorkload;
  /** `ttl` workload: the range `ttlMs` is drawn from, ms. Default { min: 50, max: 2000 }. */
  ttlMs?: LatencyRange;
  /** `ttl` workload: share of writes with a `ttlMs` (the rest never expire), in [0, 1]. Default 0.8. */
  ttlShare?: number;
  /**
   * Register keys (`reg:0`, ...), written with fresh or stale contexts and sometimes deleted.
   * Default 3 (0 for the typed workloads and those with a resolver).
   */
  registerKeys?: number;
  /** Share of operations that go to register keys, in [0, 1]. Default 0.25. */
  registerShare?: number;
  /**
   * How often a client retries a register write that failed (same value, context and
   * `requestId`, through a node picked afresh), as careful applications do on `QuorumError`.
   * Default 0.
   */
  retries?: number;
  /**
   * How reads resolve siblings. `siblings` (default but for the `update`, `resolved` and `mixed`
   * workloads): no resolver, the workload merges sibling sets itself (union); `union`: a set-union
   * resolver (the default of those three); `lww`: `resolvers.lastWriteWins()`, the control that
   * shows what last-write-wins loses; or your own resolver, to test your merge function.
   */
  resolver?: 'siblings' | 'union' | 'lww' | Resolver<SimValue>;
  /** Fault schedule; `false`: no faults. Default: every fault kind. */
  nemesis?: NemesisOptions | false;
  /** Each node's clock is offset by up to ± this many ms from the shared virtual clock. Default 250. */
  clockSkewMs?: number;
  /** One-way message latency outside latency spikes. Default { min: 0.5, max: 3 }. */
  latencyMs?: LatencyRange;
  /** A client's pause between two operations. Default { min: 0, max: 20 }. */
  thinkTimeMs?: LatencyRange;
  /**
   * Extra node options for every node (timeouts, limits, antiEntropy, ...). The simulator's own
   * defaults: partitions 64, requestTimeoutMs 200, gossipIntervalMs 200,
   * hintedHandoff.intervalMs 200, antiEntropy.intervalMs 5000. The simulator always sets id,
   * transport, storage, seeds, clock, random, codec, quorum, sloppyQuorum and resolver itself.
   */
  nodeOptions?: Partial<DynamoNodeOptions<SimValue>>;
  /**
   * After healing: wait `initialMs` (failure-detector probes back off up to 10 s, so nodes need
   * that long to see each other up again), then repeat rounds of "read every key at r = n from
   * every node (read repair), wait `roundMs`" until a round repairs nothing and no hint is
   * pending, at most `maxRounds` times. Works with or without anti-entropy. Defaults 12000, 2000, 6.
   */
  settle?: {
    /** Wait after healing before the first round, virtual ms. Default 12000. */
    initialMs?: number;
    /** Wait between rounds, virtual ms. Default 2000. */
    roundMs?: number;
    /** Most rounds. Default 6. */
    maxRounds?: number;
  };
  /** Passed to the checkers. Default: `registerSiblingBound` = clients + 2. */
  check?: CheckOptions;
}

/** The options a run actually used (JSON-friendly: a custom resolver shows as `custom`). */
export interface ResolvedSimulationOptions {
  /** See `SimulationOptions.seed`. */
  seed: number | string;
  /** See `SimulationOptions.nodes`. */
  nodes: number;
  /** See `SimulationOptions.zones` (0: no zones). */
  zones: number;
  /** See `SimulationOptions.quorum`. */
  quorum: QuorumOptions;
  /** See `SimulationOptions.sloppyQuorum`. */
  sloppyQuorum: boolean;
  /** See `SimulationOptions.operations`. */
  operations: number;
  /** See `SimulationOptions.clients`. */
  clients: number;
  /** See `SimulationOptions.workload`. */
  workload: SimWorkload;
  /** See `SimulationOptions.keys`. */
  keys: number;
  /** See `SimulationOptions.registerKeys`. */
  registerKeys: number;
  /** See `SimulationOptions.registerShare`. */
  registerShare: number;
  /** See `SimulationOptions.ttlMs`. */
  ttlMs: LatencyRange;
  /** See `SimulationOptions.ttlShare`. */
  ttlShare: number;
  /** See `SimulationOptions.retries`. */
  retries: number;
  /** See `SimulationOptions.resolver` (`custom`: a function of yours). */
  resolver: 'siblings' | 'union' | 'lww' | 'custom';
  /** The fault kinds the nemesis chose from; false: none. */
  faults: readonly FaultKind[] | false;
  /** See `SimulationOptions.clockSkewMs`. */
  clockSkewMs: number;
  /** See `SimulationOptions.latencyMs`. */
  latencyMs: LatencyRange;
  /** See `SimulationOptions.thinkTimeMs`. */
  thinkTimeMs: LatencyRange;
}

/** What a run did. */
export interface SimulationStats {
  /** Client operations by function and outcome (settle and final reads not included). */
  operations: Record<string, { ok: number; fail: number }>;
  /** Virtual ms from start to the end of settling. */
  virtualMs: number;
  /** Virtual ms when the workload finished. */
  workloadMs: number;
  /** Settle rounds it took. */
  settleRounds: number;
  /** Faults injected, by kind. */
  faults: Partial<Record<FaultKind, number>>;
  /** The simulated network's message counters. */
  network: MemoryNetworkCounters;
  /** Background errors the nodes emitted (`error` events: failed repairs, unreachable peers...). */
  backgroundErrors: number;
  /** Read repairs the nodes sent. */
  readRepairs: number;
  /** Client reads by the number of values they returned (0, 1, 2 ...): siblings seen. */
  siblingsRead: Record<number, number>;
}

/** The outcome of one run: replay it with the same `seed` and options. */
export interface SimulationResult {
  /** The run's seed. */
  seed: number | string;
  /** The options it used. */
  options: ResolvedSimulationOptions;
  /** Every operation and fault, in order. */
  history: HistoryEvent[];
  /** Every key's replicas after healing and settling. */
  final: FinalState;
  /** What the checkers found. */
  report: CheckReport;
  /** True when every checker passed. */
  ok: boolean;
  /** Counters of the run. */
  stats: SimulationStats;
}

/**
 * Partitions (Q) of the simulated ring unless `nodeOptions.partitions` says otherwise: plenty for
 * up to a few dozen nodes, and a quarter of the default's per-partition background work
 * (membership plans, anti-entropy passes), which dominates the cost of a run at Q = 256.
 */
const SIM_PARTITIONS = 64;
/** `tombstoneGraceMs` of the `ttl` workload unless `nodeOptions` says otherwise. */
const TTL_TOMBSTONE_GRACE_MS = 10_000;
/** Step of virtual time while driving (a client's think time and message latencies are finer). */
const STEP_MS = 5;
/** Workloads of data types: one operation per step through `node.counter` / `set` / `map`. */
const TYPED_WORKLOADS: ReadonlySet<SimWorkload> = new Set(['counter', 'orset', 'map']);

/**
 * A map's final value as the keys its fields were recorded under: counters `key/n` and `key/m/n`,
 * OR-set `key/s`, flag `key/f`, multi-value register `key/r`, each with the map's replicas.
 */
function mapFields(key: string, value: unknown, replicas: ReplicaSnapshot[]): FinalKeyState[] {
  const map = value as MapValue | undefined;
  return [
    { key: `${key}/n`, kind: 'counter', values: [map?.counters.n ?? 0], replicas },
    { key: `${key}/m/n`, kind: 'counter', values: [map?.maps.m?.counters.n ?? 0], replicas },
    { key: `${key}/s`, kind: 'orset', values: [map?.sets.s ?? []], replicas },
    { key: `${key}/f`, kind: 'flag', values: [map?.flags.f ?? false], replicas },
    { key: `${key}/r`, kind: 'mvregister', values: [map?.mvRegisters.r ?? []], replicas },
  ];
}

/** Share of client operations followed by a listing of every key. */
const LIST_SHARE = 0.02;
/** Virtual time starts here, so negative clock offsets still give positive timestamps. */
const EPOCH_MS = 1_000_000_000;
/** Longest a workload or settle phase may take in virtual time before the run is declared stuck. */
const MAX_PHASE_MS = 3_600_000;

/** History excerpts show this much virtual time before and after the operations of a problem. */
const EXCERPT_MARGIN_MS = 300;

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });
const codec = {
  encode: (v: SimValue) => packr.pack(v) as Uint8Array,
  decode: (b: Uint8Array) => packr.unpack(b) as SimValue,
};
const utf8 = new TextEncoder();

/** The error codes a client may get under faults; anything else is reported as a problem. */
const EXPECTED_ERRORS = new Set([
  'DYNAMO_QUORUM',
  'DYNAMO_TIMEOUT',
  'DYNAMO_NOT_RUNNING',
  'DYNAMO_TRANSPORT',
  'DYNAMO_LIMIT',
]);

/**
 * One seeded simulation run. `new Simulation(options).run()` (or `runSimulation(options)`)
 * starts the cluster, runs workload + nemesis, heals, settles, snapshots every key's primaries,
 * runs the checkers, stops the nodes and resolves with the history, final state and report.
 *
 * ```ts
 * const result = await runSimulation({ seed: 42, nodes: 5, operations: 2000 });
 * if (!result.ok) console.log(formatSimulationReport(result));
 * ```
 */
export class Simulation {
  /** The options this run uses, defaults filled in. */
  readonly options: ResolvedSimulationOptions;
  private readonly settleOptions: { initialMs: number; roundMs: number; maxRounds: number };
  private readonly checkOptions: CheckOptions;
  private readonly nemesisOptions: NemesisOptions | false;
  private readonly resolver: Resolver<SimValue> | undefined;
  private readonly nodeOptions: Partial<DynamoNodeOptions<SimValue>>;
  private readonly random: Random;
  /** Which deletes pass no context (a stream of its own, so the other choices of a seed stay as they were). */
  private readonly deleteRandom: Random;
  /** Which reads prefer the caller's zone and which writes need two zones (zoned clusters). */
  private readonly zoneRandom: Random;
  private readonly clock = new VirtualClock(EPOCH_MS);
  private readonly ids: string[];
  /** One DynamoClient per client process, in the workloads that use them. */
  private readonly clients: DynamoClient<SimValue>[] = [];
  private readonly recorder = new HistoryRecorder(() => this.clock.now() - EPOCH_MS);
  private network!: MemoryNetwork;
  private readonly nodes = new Map<string, DynamoNode<SimValue>>();
  private readonly storages = new Map<string, MemoryStorage>();
  private readonly clocks = new Map<string, SkewedClock>();
  private readonly generations = new Map<string, number>();
  /** Nodes the clients cannot reach (a zone cut off by the nemesis). */
  private unreachable: ReadonlySet<string> = new Set();
  private issued = 0;
  private nextElement = 0;
  private readRepairs = 0;
  private readonly siblingsRead: Record<number, number> = {};
  private backgroundErrors = 0;
  private readonly clientErrors: { process: string; message: string }[] = [];
  private readonly opStats: Record<string, { ok: number; fail: number }> = {};
  private used = false;

  constructor(options: SimulationOptions = {}) {
    const nodes = options.nodes ?? 5;
    if (!Number.isInteger(nodes) || nodes < 1 || nodes > 64) throw new RangeError('nodes must be in 1..64');
    const zones = options.zones ?? 0;
    if (!Number.isInteger(zones) || zones < 0 || zones > nodes)
      throw new RangeError('zones must be in 0..nodes');
    const n = options.quorum?.n ?? Math.min(3, nodes);
    const quorum: QuorumOptions = {
      n,
      r: options.quorum?.r ?? Math.min(2, n),
      w: options.quorum?.w ?? Math.min(2, n),
    };
    if (n > nodes) throw new RangeError(`quorum.n (${n}) exceeds the node count (${nodes})`);
    const workload = options.workload ?? 'sets';
    if (
      !SET_WORKLOADS.includes(workload) &&
      workload !== 'counter' &&
      workload !== 'orset' &&
      workload !== 'map' &&
      workload !== 'ttl'
    ) {
      throw new RangeError(`unknown workload ${JSON.stringify(workload)}`);
    }
    const union = UNION_WORKLOADS.has(workload);
    if (union && options.resolver === 'siblings') {
      throw new RangeError(`the ${workload} workload resolves reads: resolver 'siblings' does not apply`);
    }
    const resolver = options.resolver ?? (union ? 'union' : 'siblings');
    this.resolver =
      resolver === 'siblings'
        ? undefined
        : resolver === 'lww'
          ? resolvers.lastWriteWins<SimValue>()
          : resolver === 'union'
            ? unionResolver
            : resolver;
    // Registers need reads that show every sibling: a resolver's write-backs would supersede
    // register siblings without a write the causal checker could see.
    const registers = SET_WORKLOADS.includes(workload) && !union;
    if (!registers && (options.registerKeys ?? 0) > 0) {
      throw new RangeError(`the ${workload} workload has no register keys`);
    }
    const nemesis = options.nemesis ?? {};
    const clients = options.clients ?? 5;
    this.options = {
      seed: options.seed ?? 1,
      nodes,
      zones,
      quorum,
      sloppyQuorum: options.sloppyQuorum ?? true,
      operations: options.operations ?? 1000,
      clients,
      workload,
      keys: options.keys ?? 5,
      registerKeys: registers ? (options.registerKeys ?? 3) : 0,
      registerShare: options.registerShare ?? 0.25,
      ttlMs: options.ttlMs ?? { min: 50, max: 2000 },
      ttlShare: options.ttlShare ?? 0.8,
      retries: options.retries ?? 0,
      resolver: typeof resolver === 'function' ? 'custom' : resolver,
      faults: nemesis === false ? false : [...(nemesis.faults ?? FAULT_KINDS)],
      clockSkewMs: options.clockSkewMs ?? 250,
      latencyMs: options.latencyMs ?? { min: 0.5, max: 3 },
      // The ttl workload thinks longer: its run then spans several faults and many expiries.
      thinkTimeMs: options.thinkTimeMs ?? { min: 0, max: workload === 'ttl' ? 60 : 20 },
    };
    if (this.options.keys < 1 && this.options.registerKeys < 1) throw new RangeError('no keys to work on');
    this.nemesisOptions = nemesis;
    this.settleOptions = {
      initialMs: options.settle?.initialMs ?? 12_000,
      roundMs: options.settle?.roundMs ?? 2_000,
      maxRounds: options.settle?.maxRounds ?? 6,
    };
    this.checkOptions = {
      registerSiblingBound: clients + 2,
      clockSkewMs: this.options.clockSkewMs,
      ...options.check,
    };
    this.nodeOptions = options.nodeOptions ?? {};
    // Expired values are purged like tombstones: a grace period short enough for purges to happen
    // during a run (while still outlasting every outage the nemesis causes, as it must).
    if (workload === 'ttl' && this.nodeOptions.tombstoneGraceMs === undefined) {
      this.nodeOptions = { ...this.nodeOptions, tombstoneGraceMs: TTL_TOMBSTONE_GRACE_MS };
    }
    this.random = seededRandom(this.options.seed);
    this.deleteRandom = this.random.fork('delete-found');
    this.zoneRandom = this.random.fork('zone-modes');
    this.ids = Array.from({ length: nodes }, (_, i) => `n${i + 1}`);
  }

  /** Runs the simulation once (a Simulation object is single-use). */
  async run(): Promise<SimulationResult> {
    if (this.used) throw new Error('a Simulation runs once: create a new one');
    this.used = true;
    await loadHasher();
    await this.startCluster();

    const nemesis =
      this.nemesisOptions === false
        ? undefined
        : new Nemesis(this.nemesisTarget(), this.random.fork('nemesis'), this.nemesisOptions);
    let nemesisDone = nemesis === undefined;
    const nemesisRun = (nemesis?.run() ?? Promise.resolve()).finally(() => {
      nemesisDone = true;
    });
    let clientsDone = false;
    const clients = Promise.all(
      Array.from({ length: this.options.clients }, (_, i) => this.client(i)),
    ).finally(() => {
      clientsDone = true;
    });
    await this.driveUntil(() => clientsDone, 'workload');
    await clients;
    const workloadMs = this.clock.now() - EPOCH_MS;
    nemesis?.stop();
    await this.driveUntil(() => nemesisDone, 'nemesis shutdown');
    await nemesisRun;

    const settleRounds = await this.settle();
    const final = await this.finalState();
    const history = this.recorder.events;
    const report = checkAll(history, final, this.checkOptions);
    if (this.clientErrors.length > 0) {
      const errors: CheckResult = {
        checker: 'client-errors',
        ok: false,
        problems: this.clientErrors.slice(0, 50).map((e) => ({ message: `${e.process}: ${e.message}` })),
        stats: { errors: this.clientErrors.length },
      };
      report.results.push(errors);
      report.ok = false;
    }
    const virtualMs = this.clock.now() - EPOCH_MS;
    const network = this.network.counters;
    await this.stopAll();
    return {
      seed: this.options.seed,
      options: this.options,
      history,
      final,
      report,
      ok: report.ok,
      stats: {
        operations: this.opStats,
        virtualMs,
        workloadMs,
        settleRounds,
        faults: { ...(nemesis?.counts ?? {}) },
        network,
        backgroundErrors: this.backgroundErrors,
        readRepairs: this.readRepairs,
        siblingsRead: { ...this.siblingsRead },
      },
    };
  }

  // --- cluster ---------------------------------------------------------------------------------

  private async startCluster(): Promise<void> {
    // Start on a zero-latency network (joins complete on microtasks), then switch latency on.
    this.network = new MemoryNetwork({ seed: `${this.options.seed}/network`, clock: this.clock });
    const skew = this.random.fork('clock-skew');
    for (const id of this.ids) {
      const offset = Math.round((skew.next() * 2 - 1) * this.options.clockSkewMs);
      this.clocks.set(id, new SkewedClock(this.clock, offset));
      this.storages.set(id, new MemoryStorage());
    }
    for (const id of this.ids) {
      const seeds = id === this.ids[0] ? [] : [this.ids[0]!];
      await this.drive(this.startNode(id, seeds), `starting ${id}`);
    }
    // Let the claimant's broadcast and some gossip reach everyone before the first request.
    await this.clock.advance(this.gossipMs() * 5);
    if (CLIENT_WORKLOADS.has(this.options.workload)) {
      for (let i = 0; i < this.options.clients; i++) {
        const id = `client${i}`;
        const client = await this.drive(
          DynamoClient.start<SimValue>({
            requestTimeoutMs: 200,
            gossipIntervalMs: 200,
            partitions: SIM_PARTITIONS,
            ...clientOptionsOf(this.nodeOptions),
            quorum: this.options.quorum,
            sloppyQuorum: this.options.sloppyQuorum,
            resolver: this.resolver,
            id,
            transport: this.network.connect(id),
            seeds: this.ids,
            clock: this.clock,
            random: this.random.fork(`dynamo-client:${i}`),
            codec,
            ...(this.options.zones > 0 ? { zone: `zone-${(i % this.options.zones) + 1}` } : {}),
          }),
          `starting ${id}`,
        );
        client.on('error', () => {
          this.backgroundErrors++;
        });
        this.clients.push(client);
      }
    }
    this.network.setLatency(this.options.latencyMs);
  }

  private gossipMs(): number {
    return this.nodeOptions.gossipIntervalMs ?? 200;
  }

  private async startNode(id: string, seeds: string[]): Promise<DynamoNode<SimValue>> {
    const generation = (this.generations.get(id) ?? 0) + 1;
    this.generations.set(id, generation);
    const o = this.nodeOptions;
    const node = await DynamoNode.start<SimValue>({
      requestTimeoutMs: 200,
      gossipIntervalMs: 200,
      partitions: SIM_PARTITIONS,
      ...o,
      hintedHandoff: { intervalMs: 200, ...o.hintedHandoff },
      antiEntropy: { intervalMs: 5_000, ...o.antiEntropy },
      quorum: this.options.quorum,
      sloppyQuorum: this.options.sloppyQuorum,
      resolver: this.resolver,
      id,
      transport: this.network.connect(id),
      storage: this.storages.get(id)!,
      seeds,
      ...(this.options.zones > 0 ? { zone: this.zoneOf(id) } : {}),
      clock: this.clocks.get(id)!,
      // A new stream per start: a wiped node must not draw the incarnation it had before.
      random: this.random.fork(`node:${id}:${generation}`),
      codec,
    });
    node.on('repair:read', () => {
      this.readRepairs++;
    });
    node.on('error', () => {
      this.backgroundErrors++;
    });
    this.nodes.set(id, node);
    return node;
  }

  private running(): DynamoNode<SimValue>[] {
    return this.ids.map((id) => this.nodes.get(id)!).filter((n) => n.status === 'running');
  }

  /** Zone of node `id` (nodes dealt round robin over `zones`). */
  private zoneOf(id: string): string {
    return `zone-${(this.ids.indexOf(id) % this.options.zones) + 1}`;
  }

  /** The running nodes a client can reach (not in a zone the nemesis cut off). */
  private reachable(): DynamoNode<SimValue>[] {
    return this.running().filter((n) => !this.unreachable.has(n.id));
  }

  private nemesisTarget() {
    return {
      network: this.network,
      ids: this.ids,
      baseLatency: this.options.latencyMs,
      clockSkewMs: this.options.clockSkewMs,
      running: () => this.running().map((n) => n.id),
      crash: async (id: string) => {
        await this.nodes.get(id)!.stop();
      },
      restart: async (id: string, wipe: boolean) => {
        if (wipe) this.storages.set(id, new MemoryStorage());
        await this.startNode(
          id,
          this.ids.filter((x) => x !== id),
        );
      },
      setClockOffset: (id: string, offsetMs: number) => {
        this.clocks.get(id)!.offsetMs = offsetMs;
      },
      zones:
        this.options.zones > 0
          ? Array.from({ length: this.options.zones }, (_, z) =>
              this.ids.filter((id) => this.zoneOf(id) === `zone-${z + 1}`),
            )
          : undefined,
      setUnreachable: (ids: readonly string[]) => {
        this.unreachable = new Set(ids);
      },
      sleep: (ms: number) => this.sleep(ms),
      record: (phase: 'start' | 'stop', f: string, value: string) => this.recorder.nemesis(phase, f, value),
    };
  }

  private async stopAll(): Promise<void> {
    const stopping = Promise.all([...this.clients, ...this.nodes.values()].map((n) => n.stop()));
    await this.drive(stopping, 'stopping');
  }

  // --- driving time ----------------------------------------------------------------------------

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.clock.setTimeout(resolve, ms);
    });
  }

  /** Advances virtual time until `done()`; a phase that never ends is a bug worth a clear error. */
  private async driveUntil(done: () => boolean, phase: string): Promise<void> {
    const deadline = this.clock.now() + MAX_PHASE_MS;
    while (!done()) {
      if (this.clock.now() >= deadline) {
        throw new Error(
          `simulation seed ${this.options.seed}: ${phase} still running after ${MAX_PHASE_MS} ms of virtual time`,
        );
      }
      await this.clock.advance(STEP_MS);
    }
  }

  private async drive<T>(work: Promise<T>, phase: string): Promise<T> {
    let done = false;
    const settled = work.finally(() => {
      done = true;
    });
    settled.catch(() => {});
    await this.driveUntil(() => done, phase);
    return settled;
  }

  // --- workload --------------------------------------------------------------------------------

  private between(random: Random, r: LatencyRange): number {
    return r.min + random.next() * (r.max - r.min);
  }

  private count(f: OperationFunction, outcome: 'ok' | 'fail'): void {
    const s = this.opStats[f] ?? { ok: 0, fail: 0 };
    this.opStats[f] = s;
    s[outcome]++;
  }

  private async client(index: number): Promise<void> {
    const random = this.random.fork(`client:${index}`);
    // Whether to list the keys after an operation: a stream of its own, so that the operations
    // themselves are those the seed always made.
    const listing = this.random.fork(`list:${index}`);
    const process = `c${index}`;
    // The context this client last got back for each register key, with what its holder had been
    // shown: "stale" writes reuse it without reading first (the pattern that makes plain version
    // vectors explode, and that a context covering more than its holder saw turns into lost writes).
    const held = new Map<string, Held>();
    // Per set key, the chain of puts this client is on (`chain` paths).
    const chains = new Map<string, Chain>();
    let seq = 0;
    const { keys, registerKeys, registerShare } = this.options;
    while (this.issued < this.options.operations) {
      const running = this.reachable();
      if (running.length === 0) {
        await this.sleep(this.between(random, this.options.thinkTimeMs) + STEP_MS);
        continue;
      }
      this.issued++;
      const node = running[random.int(running.length)]!;
      if (this.options.workload === 'ttl') {
        await this.ttlOperation(process, node, random, held, `${process}:${seq++}`);
        if (listing.next() < LIST_SHARE) await this.list(process, node, listing);
        await this.sleep(this.between(random, this.options.thinkTimeMs));
        continue;
      }
      if (TYPED_WORKLOADS.has(this.options.workload)) {
        await this.typedOperation(process, node, random);
        if (listing.next() < LIST_SHARE) await this.list(process, node, listing);
        await this.sleep(this.between(random, this.options.thinkTimeMs));
        continue;
      }
      const dynamoClient = this.clients[index];
      const onRegister = registerKeys > 0 && (keys === 0 || random.next() < registerShare);
      if (!onRegister) {
        const path = this.addPath(random);
        const target = path.startsWith('client') ? dynamoClient! : node;
        const key = `set:${random.int(keys)}`;
        await this.add(process, target, key, this.nextElement++, path, chains, random);
      } else {
        const target = dynamoClient ?? node;
        const key = `reg:${random.int(registerKeys)}`;
        const roll = random.next();
        if (roll < 0.15) await this.remove(process, target, key, held);
        else {
          const stale = roll < 0.4 ? held.get(key) : undefined;
          await this.write(process, target, key, `${process}:${seq++}`, stale, held);
        }
      }
      if (listing.next() < LIST_SHARE) await this.list(process, dynamoClient ?? node, listing);
      await this.sleep(this.between(random, this.options.thinkTimeMs));
    }
  }

  /**
   * Lists every key through `target`, in pages of 1–4 keys (so cursors carry most of the
   * listing), recorded as one `list` operation.
   */
  private async list(process: string, target: SimTarget, random: Random): Promise<void> {
    this.recorder.invoke(process, 'list', '*', target.id);
    const limit = 1 + random.int(4);
    const keys: string[] = [];
    try {
      let cursor: string | undefined;
      do {
        const page: KeysPage<string> = await target.keys({
          limit,
          ...(cursor === undefined ? {} : { cursor }),
        });
        keys.push(...page.keys);
        cursor = page.cursor;
      } while (cursor !== undefined);
      this.succeeded(process, 'list', '*', target, { value: keys });
    } catch (err) {
      this.failed(process, 'list', '*', target, err, true, undefined);
    }
  }

  /** The path of the next add, per the workload. */
  private addPath(random: Random): AddPath {
    switch (this.options.workload) {
      case 'chain':
        return 'chain';
      case 'client':
        return random.next() < 0.5 ? 'client-get-put' : 'client-update';
      case 'update':
        return 'update';
      case 'mixed': {
        const paths: AddPath[] = ['get-put', 'update', 'chain', 'client-get-put', 'client-update'];
        return paths[random.int(paths.length)]!;
      }
      default:
        return 'get-put';
    }
  }

  /**
   * One add of `element` to a set key, by `path`: read, merge what was read (set union: the
   * siblings, or the resolver's one value), add the element, write with the read's context —
   * through get + put, or through `update()` — or, on a chain, put straight away with the context
   * the client's previous put returned.
   */
  private async add(
    process: string,
    target: SimTarget,
    key: string,
    element: number,
    path: AddPath,
    chains: Map<string, Chain>,
    random: Random,
  ): Promise<void> {
    this.recorder.invoke(process, 'add', key, target.id, element);
    let context: string | undefined;
    let wrote = false;
    try {
      if (path === 'update' || path === 'client-update') {
        let siblings = 0;
        wrote = true;
        const result = await target.update(key, (current, all) => {
          siblings = all.length;
          return withElement(current === undefined ? all : [current], element);
        });
        this.siblingsRead[siblings] = (this.siblingsRead[siblings] ?? 0) + 1;
        this.succeeded(process, 'add', key, target, { siblings, resultContext: result.context });
        return;
      }
      const chain = path === 'chain' ? chains.get(key) : undefined;
      // A chain now and then starts afresh from a read, as an application's session would.
      if (chain && random.next() < 0.2) chains.delete(key);
      let value: number[];
      let siblings: number | undefined;
      const link = chains.get(key);
      if (path === 'chain' && link) {
        value = withElement([link.value], element);
        context = link.context;
      } else {
        const read = await this.read(target, key);
        siblings = read.values.length;
        value = withElement(read.values, element);
        context = read.context;
      }
      wrote = true;
      const result = await target.put(key, value, { context });
      if (path === 'chain') chains.set(key, { context: result.context, value });
      this.succeeded(process, 'add', key, target, { siblings, context, resultContext: result.context });
    } catch (err) {
      chains.delete(key);
      this.failed(process, 'add', key, target, err, !wrote, context);
    }
  }

  /** One operation of the `counter` or `orset` workload. */
  /**
   * One operation of the `ttl` workload on a random `ttl:` key: a read (20 %), a delete after a
   * read (10 %), or a write of `value` (with a fresh or a stale context), most with a `ttlMs`.
   */
  private async ttlOperation(
    process: string,
    node: DynamoNode<SimValue>,
    random: Random,
    held: Map<string, Held>,
    value: string,
  ): Promise<void> {
    const key = `ttl:${random.int(this.options.keys)}`;
    const roll = random.next();
    if (roll < 0.2) {
      this.recorder.invoke(process, 'read', key, node.id);
      try {
        const read = await this.read(node, key);
        this.succeeded(process, 'read', key, node, { value: read.values, siblings: read.values.length });
      } catch (err) {
        this.failed(process, 'read', key, node, err, true, undefined);
      }
      return;
    }
    if (roll < 0.3) {
      await this.remove(process, node, key, held);
      return;
    }
    const { min, max } = this.options.ttlMs;
    const ttlMs =
      random.next() < this.options.ttlShare
        ? Math.max(1, Math.round(min + random.next() * (max - min)))
        : undefined;
    const stale = random.next() < 0.3 ? held.get(key) : undefined;
    await this.write(process, node, key, value, stale, held, ttlMs);
  }

  private async typedOperation(process: string, node: DynamoNode<SimValue>, random: Random): Promise<void> {
    const i = random.int(this.options.keys);
    if (this.options.workload === 'counter') {
      const key = `counter:${i}`;
      const by = 1 + random.int(5);
      this.recorder.invoke(process, 'increment', key, node.id, by);
      await this.typed(process, 'increment', key, node, () => node.counter(key).increment(by));
      return;
    }
    if (this.options.workload === 'map') return this.mapOperation(process, node, random, `map:${i}`);
    const key = `orset:${i}`;
    if (random.next() < 0.7) {
      const element = `e${this.nextElement++}`;
      this.recorder.invoke(process, 'sadd', key, node.id, element);
      await this.typed(process, 'sadd', key, node, () => node.set(key).add(element));
      return;
    }
    // A remove is based on a read: the element is one the read saw, removed with its context.
    this.recorder.invoke(process, 'srem', key, node.id);
    let seen: { value: string[]; context: string };
    try {
      seen = await node.set(key).read();
    } catch (err) {
      this.failed(process, 'srem', key, node, err, true, undefined);
      return;
    }
    const element = seen.value.length ? seen.value[random.int(seen.value.length)] : undefined;
    if (element === undefined) {
      this.succeeded(process, 'srem', key, node, { value: null });
      return;
    }
    await this.typed(
      process,
      'srem',
      key,
      node,
      () => node.set(key).remove(element, { context: seen.context }),
      element,
    );
  }

  /**
   * One change to map `key` through `node.map(key).update()`, recorded under the field's own key:
   * `key/n` and `key/m/n` (counters), `key/s` (OR-set), `key/f` (flag), `key/r` (multi-value
   * register).
   */
  private async mapOperation(
    process: string,
    node: DynamoNode<SimValue>,
    random: Random,
    key: string,
  ): Promise<void> {
    const map = node.map(key);
    const roll = random.next();
    if (roll >= 0.7) return this.mapFlagOrRegister(process, node, map, key, roll);
    if (roll < 0.35) {
      const nested = roll < 0.1;
      const field = nested ? `${key}/m/n` : `${key}/n`;
      const by = 1 + random.int(5);
      this.recorder.invoke(process, 'increment', field, node.id, by);
      await this.typed(process, 'increment', field, node, () =>
        map.update((m) => (nested ? m.map('m') : m).counter('n').increment(by)),
      );
      return;
    }
    const field = `${key}/s`;
    if (roll < 0.6) {
      const element = `e${this.nextElement++}`;
      this.recorder.invoke(process, 'sadd', field, node.id, element);
      await this.typed(process, 'sadd', field, node, () => map.update((m) => m.set('s').add(element)));
      return;
    }
    this.recorder.invoke(process, 'srem', field, node.id);
    let seen: { value: MapValue; context: string };
    try {
      seen = await map.read();
    } catch (err) {
      this.failed(process, 'srem', field, node, err, true, undefined);
      return;
    }
    const elements = seen.value.sets.s ?? [];
    const element = elements.length ? elements[random.int(elements.length)] : undefined;
    if (element === undefined) {
      this.succeeded(process, 'srem', field, node, { value: null });
      return;
    }
    await this.typed(
      process,
      'srem',
      field,
      node,
      () => map.update((m) => m.set('s').remove(element), { context: seen.context }),
      element,
    );
  }

  /** A map's flag `f` enabled or disabled, or a unique value assigned to its multi-value register `r`. */
  private async mapFlagOrRegister(
    process: string,
    node: DynamoNode<SimValue>,
    map: MapHandle,
    key: string,
    roll: number,
  ): Promise<void> {
    if (roll < 0.85) {
      const f: OperationFunction = roll < 0.8 ? 'enable' : 'disable';
      this.recorder.invoke(process, f, `${key}/f`, node.id);
      await this.typed(process, f, `${key}/f`, node, () =>
        map.update((m) => (f === 'enable' ? m.flag('f').enable() : m.flag('f').disable())),
      );
      return;
    }
    const value = `v${this.nextElement++}`;
    this.recorder.invoke(process, 'assign', `${key}/r`, node.id, value);
    await this.typed(process, 'assign', `${key}/r`, node, () =>
      map.update((m) => m.mvRegister('r').assign(value)),
    );
  }

  /** Runs a data-type operation and records its outcome (`value`: what it acted on, for srem). */
  private async typed(
    process: string,
    f: OperationFunction,
    key: string,
    node: DynamoNode<SimValue>,
    run: () => Promise<unknown>,
    value?: string,
  ): Promise<void> {
    try {
      await run();
      this.succeeded(process, f, key, node, value === undefined ? {} : { value });
    } catch (err) {
      const code = err instanceof DynamoError ? err.code : undefined;
      this.failed(process, f, key, node, err, code === 'DYNAMO_NOT_RUNNING', undefined, value);
    }
  }

  /** A register write: with `stale`, straight from the context this client last got; else read first. */
  private async write(
    process: string,
    target: SimTarget,
    key: string,
    value: string,
    stale: Held | undefined,
    held: Map<string, Held>,
    ttlMs?: number,
  ): Promise<void> {
    this.recorder.invoke(process, 'write', key, target.id, value, ttlMs);
    let base = stale;
    let wrote = false;
    try {
      if (base === undefined) {
        const read = await this.read(target, key);
        base = { context: read.context, observed: read.values.filter((v) => typeof v === 'string') };
      }
      wrote = true;
      const result = await this.putWithRetries(
        target,
        key,
        value,
        base.context,
        `${process}/${value}`,
        ttlMs,
      );
      held.set(key, { context: result.context, observed: [...base.observed, value] });
      this.succeeded(process, 'write', key, target, {
        context: base.context,
        resultContext: result.context,
        observed: base.observed,
      });
    } catch (err) {
      held.delete(key);
      this.failed(
        process,
        'write',
        key,
        target,
        err,
        !wrote,
        wrote ? base?.context : undefined,
        undefined,
        wrote ? base?.observed : undefined,
      );
    }
  }

  /** A client read, counted in the sibling histogram. */
  private async read(target: SimTarget, key: string): Promise<{ values: SimValue[]; context: string }> {
    // On a zoned cluster half the reads prefer the caller's zone.
    const local = this.options.zones > 0 && this.zoneRandom.next() < 0.5;
    const read = await target.get(key, local ? { preferLocalZone: true } : {});
    const n = read.values.length;
    this.siblingsRead[n] = (this.siblingsRead[n] ?? 0) + 1;
    return read;
  }

  /**
   * A put retried up to `retries` times after a failure, each time through a running node picked
   * afresh (or the same DynamoClient), with the same `requestId`: however many attempts reached
   * replicas, one write.
   */
  private async putWithRetries(
    first: SimTarget,
    key: string,
    value: SimValue,
    context: string | undefined,
    requestId: string,
    ttlMs?: number,
  ): Promise<{ context: string }> {
    const random = this.random.fork(`retry:${requestId}`);
    // On a cluster of two zones or more, a third of the register writes need acknowledgements from two.
    const minZones = this.options.zones >= 2 && this.zoneRandom.next() < 1 / 3;
    let target = first;
    for (let attempt = 0; ; attempt++) {
      try {
        const options: PutOptions = this.options.retries > 0 ? { context, requestId } : { context };
        if (ttlMs !== undefined) options.ttlMs = ttlMs;
        if (minZones) options.minZones = 2;
        return await target.put(key, value, options);
      } catch (err) {
        const code = err instanceof DynamoError ? err.code : undefined;
        const retriable =
          code === 'DYNAMO_QUORUM' || code === 'DYNAMO_TIMEOUT' || code === 'DYNAMO_NOT_RUNNING';
        if (attempt >= this.options.retries || !retriable) throw err;
        await this.sleep(this.between(random, this.options.thinkTimeMs) + STEP_MS);
        const running = this.reachable();
        if (!(target instanceof DynamoClient) && running.length > 0)
          target = running[random.int(running.length)]!;
      }
    }
  }

  /**
   * Delete with the context of a fresh read: the tombstone covers everything that read saw. One
   * delete in three passes no context and lets the coordinator read and delete what it finds.
   */
  private async remove(
    process: string,
    target: SimTarget,
    key: string,
    held: Map<string, Held>,
  ): Promise<void> {
    if (this.deleteRandom.next() < 1 / 3) return this.removeFound(process, target, key, held);
    this.recorder.invoke(process, 'delete', key, target.id);
    let base: Held | undefined;
    try {
      const read = await this.read(target, key);
      base = { context: read.context, observed: read.values.filter((v) => typeof v === 'string') };
      const result = await target.delete(key, { context: base.context });
      held.set(key, { context: result.context, observed: base.observed });
      this.succeeded(process, 'delete', key, target, {
        context: base.context,
        resultContext: result.context,
        observed: base.observed,
      });
    } catch (err) {
      held.delete(key);
      this.failed(
        process,
        'delete',
        key,
        target,
        err,
        base === undefined,
        base?.context,
        undefined,
        base?.observed,
      );
    }
  }

  /**
   * `delete(key)` without a context. The caller holds no context afterwards: it never saw what
   * was deleted, so what it writes next is a new sibling unless it reads first.
   */
  private async removeFound(
    process: string,
    target: SimTarget,
    key: string,
    held: Map<string, Held>,
  ): Promise<void> {
    this.recorder.invoke(process, 'delete-found', key, target.id);
    held.delete(key);
    try {
      const result = await target.delete(key);
      this.succeeded(process, 'delete-found', key, target, { resultContext: result.context });
    } catch (err) {
      this.failed(process, 'delete-found', key, target, err, false, undefined);
    }
  }

  private succeeded(
    process: string,
    f: OperationFunction,
    key: string,
    node: SimTarget,
    completion: Completion,
  ): void {
    this.recorder.ok(process, f, key, node.id, completion);
    if (process.startsWith('c')) this.count(f, 'ok');
  }

  private failed(
    process: string,
    f: OperationFunction,
    key: string,
    node: SimTarget,
    err: unknown,
    beforeWrite: boolean,
    context: string | undefined,
    value?: unknown,
    observed?: unknown[],
  ): void {
    const code = err instanceof DynamoError ? err.code : undefined;
    if (code === undefined || !EXPECTED_ERRORS.has(code)) {
      this.clientErrors.push({
        process,
        message: `${f} ${key} @${node.id}: unexpected ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`,
      });
    }
    this.recorder.fail(process, f, key, node.id, {
      value,
      context,
      observed,
      error: code ?? (err instanceof Error ? err.name : String(err)),
      definite: beforeWrite || code === 'DYNAMO_LIMIT',
    });
    if (process.startsWith('c')) this.count(f, 'fail');
  }

  // --- settling and the final state ------------------------------------------------------------

  private allKeys(): { key: string; kind: FinalKeyState['kind'] }[] {
    const typed = this.options.workload;
    if (typed === 'ttl') {
      return Array.from({ length: this.options.keys }, (_, i) => ({
        key: `ttl:${i}`,
        kind: 'register' as const,
      }));
    }
    if (typed === 'counter' || typed === 'orset') {
      return Array.from({ length: this.options.keys }, (_, i) => ({ key: `${typed}:${i}`, kind: typed }));
    }
    if (typed === 'map') {
      // The map's embedded fields, each checked as a key of its own (see `mapFields`).
      return Array.from({ length: this.options.keys }, (_, i) => ({
        key: `map:${i}`,
        kind: 'counter' as const,
      }));
    }
    return [
      ...Array.from({ length: this.options.keys }, (_, i) => ({ key: `set:${i}`, kind: 'set' as const })),
      ...Array.from({ length: this.options.registerKeys }, (_, i) => ({
        key: `reg:${i}`,
        kind: 'register' as const,
      })),
    ];
  }

  private hintsPending(): number {
    return this.running().reduce((sum, n) => sum + n.stats().hints.pending, 0);
  }

  /** Removes every fault and restarts stopped nodes (the nemesis normally did already). */
  private async healAll(): Promise<void> {
    this.network.heal();
    this.network.setDropRate(0);
    this.network.setDuplicateRate(0);
    this.network.setLatency(this.options.latencyMs);
    for (const id of this.ids) {
      if (this.nodes.get(id)!.status === 'stopped') {
        await this.drive(
          this.startNode(
            id,
            this.ids.filter((x) => x !== id),
          ),
          `restarting ${id}`,
        );
      }
    }
  }

  /** Reads `key` at r = n from `node`, recorded as an operation of `process`. */
  private async readAll(process: string, node: DynamoNode<SimValue>, key: string): Promise<unknown[]> {
    this.recorder.invoke(process, 'read', key, node.id);
    try {
      const r = this.options.quorum.n;
      const workload = this.options.workload;
      if (TYPED_WORKLOADS.has(workload)) {
        const value = await (workload === 'counter'
          ? node.counter(key).value({ r })
          : workload === 'orset'
            ? node.set(key).value({ r })
            : node.map(key).value({ r }));
        this.recorder.ok(process, 'read', key, node.id, { value: [value], siblings: 1 });
        return [value];
      }
      const read = await node.get(key, { r });
      this.recorder.ok(process, 'read', key, node.id, { value: read.values, siblings: read.values.length });
      return read.values;
    } catch (err) {
      this.failed(process, 'read', key, node, err, true, undefined);
      return [];
    }
  }

  /** Heals, then reads every key from every node until nothing is left to repair. Returns the rounds run. */
  private async settle(): Promise<number> {
    await this.healAll();
    await this.clock.advance(this.settleOptions.initialMs);
    const keys = this.allKeys();
    let rounds = 0;
    while (rounds < this.settleOptions.maxRounds) {
      rounds++;
      const before = this.readRepairs;
      const nodes = this.running();
      // One read per (node, key), in sequence per node: each node is one `settle` process.
      const reads = nodes.map(async (node) => {
        for (const { key } of keys) await this.readAll(`settle:${node.id}`, node, key);
      });
      await this.drive(Promise.all(reads), 'settle reads');
      await this.clock.advance(this.settleOptions.roundMs);
      if (this.readRepairs === before && this.hintsPending() === 0) break;
    }
    return rounds;
  }

  private async finalState(): Promise<FinalState> {
    const keys: FinalKeyState[] = [];
    const reader = this.running()[0]!;
    const values = new Map<string, unknown[]>();
    for (const { key } of this.allKeys()) {
      values.set(key, await this.drive(this.readAll('final', reader, key), 'final reads'));
    }
    // Read repair triggered by the final reads (if any) lands before the snapshot.
    await this.clock.advance(this.settleOptions.roundMs);
    const listed = await this.drive(this.listAll(reader), 'final listing');
    for (const { key, kind } of this.allKeys()) {
      const replicas = await this.snapshot(key);
      if (this.options.workload === 'map') keys.push(...mapFields(key, values.get(key)?.[0], replicas));
      else keys.push({ key, kind, values: values.get(key) ?? [], replicas });
    }
    const limits = this.nodeOptions.limits;
    return {
      n: this.options.quorum.n,
      resolver: this.options.resolver,
      maxSiblings: limits?.maxSiblings ?? 100,
      hintsPending: this.hintsPending(),
      keys,
      ...(listed === undefined ? {} : { listed }),
    };
  }

  /** Every key `node.allKeys()` lists after settling, recorded as a `final` list (undefined: it failed). */
  private async listAll(node: DynamoNode<SimValue>): Promise<string[] | undefined> {
    this.recorder.invoke('final', 'list', '*', node.id);
    try {
      const keys: string[] = [];
      // Pages of 2: the cursor carries the listing from partition to partition.
      for await (const key of node.allKeys({ pageSize: 2 })) keys.push(key);
      this.recorder.ok('final', 'list', '*', node.id, { value: keys });
      return keys;
    } catch (err) {
      this.failed('final', 'list', '*', node, err, true, undefined);
      return undefined;
    }
  }

  /** The key's primaries, from the first node that sees all N of them up. */
  private primaries(key: string): string[] {
    let best: string[] = [];
    for (const node of this.running()) {
      const list = node.preferenceList(key);
      const primaries = list.filter((e) => e.kind === 'primary').map((e) => e.id);
      if (primaries.length === this.options.quorum.n) return primaries;
      if (primaries.length > best.length) best = primaries;
    }
    return best;
  }

  /** Reads each primary's own stored object for `key` (data region only, hints excluded). */
  private async snapshot(key: string): Promise<ReplicaSnapshot[]> {
    const bytes = utf8.encode(key);
    const partitions = this.nodeOptions.partitions ?? SIM_PARTITIONS;
    const storageKey = dataKey(partitionOf(bytes, partitions), bytes);
    const out: ReplicaSnapshot[] = [];
    for (const id of this.primaries(key)) {
      const stored = await this.storages.get(id)!.get(storageKey);
      if (!stored) {
        out.push({ node: id, encoded: null, ctx: [], siblings: [] });
        continue;
      }
      const object = decodeObject(stored);
      out.push({
        node: id,
        encoded: Buffer.from(stored).toString('base64'),
        ctx: [...object.ctx].map(([a, c]) => [a, c] as [string, number]),
        siblings: object.siblings.map((s) =>
          // An expired value is dead as a tombstone is (judged by this replica's clock).
          s.value === null || (s.expiresAt !== undefined && s.expiresAt <= this.clocks.get(id)!.now())
            ? {
                dot: [s.dot[0], s.dot[1]],
                timestamp: s.timestamp,
                tombstone: true,
                ...(s.expiresAt === undefined ? {} : { expiresAt: s.expiresAt }),
              }
            : {
                dot: [s.dot[0], s.dot[1]],
                timestamp: s.timestamp,
                tombstone: false,
                value: isTypedValue(s.value) ? typeValue(decodeState(s.value).store) : codec.decode(s.value),
              },
        ),
      });
    }
    return out;
  }
}

/** Runs one simulation: `new Simulation(options).run()`. */
export function runSimulation(options: SimulationOptions = {}): Promise<SimulationResult> {
  return new Simulation(options).run();
}

/**
 * A readable report of a run: the seed and settings, each checker's verdict, the problems, and
 * for each key with a problem the history excerpt that touches it. `replay` is printed as the
 * command that reproduces the run (e.g. `SEED=17 npm run sim`).
 */
export function formatSimulationReport(
  result: SimulationResult,
  options: { replay?: string; excerptKeys?: number; excerptLines?: number } = {},
): string {
  const o = result.options;
  const ops = Object.values(result.stats.operations);
  const ok = ops.reduce((s, x) => s + x.ok, 0);
  const failed = ops.reduce((s, x) => s + x.fail, 0);
  const lines = [
    `seed ${JSON.stringify(result.seed)}: ${result.ok ? 'ok' : 'FAILED'} — ${o.nodes} nodes${o.zones > 0 ? ` in ${o.zones} zones` : ''}, n=${o.quorum.n} r=${o.quorum.r} w=${o.quorum.w}${o.sloppyQuorum ? ' sloppy' : ' strict'}, resolver ${o.resolver}, ${o.operations} ops (${ok} ok, ${failed} failed), ${Math.round(result.stats.virtualMs)} virtual ms`,
    `  faults: ${
      Object.entries(result.stats.faults)
        .map(([k, v]) => `${k}×${v}`)
        .join(' ') || 'none'
    }`,
  ];
  for (const r of result.report.results) {
    const stats = Object.entries(r.stats)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    lines.push(
      `  ${r.ok ? 'ok    ' : 'FAILED'} ${r.checker}${stats ? ` (${stats})` : ''}${r.note ? ` — ${r.note}` : ''}`,
    );
    for (const p of r.problems) lines.push(`         ${p.key ? `${p.key}: ` : ''}${p.message}`);
  }
  const histogram = Object.entries(result.stats.siblingsRead)
    .map(([n, count]) => `${n}×${count}`)
    .join(' ');
  if (histogram) lines.push(`  values per client read: ${histogram}`);
  if (options.replay) lines.push(`  replay: ${options.replay}`);
  if (!result.ok) {
    // Per key with a problem: the operations around the first problem's operations, then the
    // final read.
    const shown = new Set<string>();
    for (const r of result.report.results) {
      for (const p of r.problems) {
        if (p.key === undefined || shown.has(p.key) || shown.size >= (options.excerptKeys ?? 2)) continue;
        shown.add(p.key);
        const at = p.at ?? [];
        const window =
          at.length > 0
            ? { from: Math.min(...at) - EXCERPT_MARGIN_MS, to: Math.max(...at) + EXCERPT_MARGIN_MS }
            : { from: undefined, to: undefined };
        lines.push(
          `  history of ${p.key}${window.from !== undefined ? ` from t=${window.from} to t=${window.to}` : ''} (${r.checker}):`,
        );
        for (const l of historyExcerpt(result.history, p.key, {
          ...window,
          maxLines: options.excerptLines ?? 40,
        }))
          lines.push(`  ${l}`);
      }
    }
  }
  return lines.join('\n');
}
