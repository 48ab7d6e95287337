import { type DynamoNodeEvents, EVENT_NAMES } from './events.js';
import type { ReadyOptions } from './membership/ready.js';
import type { Storage } from './storage/types.js';
import type { Transport } from './transport/types.js';
import { DATA_TYPE_DEFAULTS, type DataTypeOptions } from './types/store.js';
import type { Clock } from './util/clock.js';
import { checkOptionNames, names } from './util/option-names.js';
import type { Random } from './util/random.js';

/** How divergent versions become one value. Receives every concurrent sibling (never tombstones). */
export type Resolver<V> = (siblings: V[], info: ResolverInfo) => V;

/** What a resolver is told besides the siblings. */
export interface ResolverInfo {
  /** The key being read. */
  key: string | Uint8Array;
  /** One entry per sibling, same order: the coordinator's clock at write time and its node id. */
  versions: {
    /** The coordinator's clock when the sibling was written, ms. */
    timestamp: number;
    /** The node that coordinated the write. */
    nodeId: string;
  }[];
}

/** How values become bytes and back (default: MessagePack through msgpackr). */
export interface Codec<V> {
  /** The bytes stored for `value`; throw to refuse a value (the put rejects, nothing written). */
  encode(value: V): Uint8Array;
  /** The value of bytes `encode` made (on any node, of any version of your code still writing). */
  decode(bytes: Uint8Array): V;
}

/** pino-compatible subset: `logger.warn({ err }, 'message')`. Silent by default. */
export interface Logger {
  /** Detail for debugging (gossip rounds, probes). */
  debug(obj: object, msg?: string): void;
  /** Lifecycle: started, joined, stopped. */
  info(obj: object, msg?: string): void;
  /** Something degraded that the node works around (a peer down, a hint refused). */
  warn(obj: object, msg?: string): void;
  /** A background task failed (also emitted as the `error` event). */
  error(obj: object, msg?: string): void;
}

/** Replication and quorums (`quorum` option): 1 ≤ r, w ≤ n. */
export interface QuorumOptions {
  /** Replicas per key (N). */
  n: number;
  /** Replies a get waits for (R). */
  r: number;
  /** Durable stores a put waits for (W). */
  w: number;
}

/** Size bounds (`limits` option); violations throw LimitError with nothing written. */
export interface LimitOptions {
  /** Largest key, in bytes (UTF-8 for string keys). */
  maxKeyBytes: number;
  /** Largest encoded value, in bytes. */
  maxValueBytes: number;
  /** Most concurrent siblings a key may hold; a put that would exceed it fails with LimitError. */
  maxSiblings: number;
  /** Most entries in a key's version vector; older entries are pruned deterministically beyond it. */
  maxClockEntries: number;
}

/** Hinted handoff (`hintedHandoff` option). */
export interface HintedHandoffOptions {
  /** How often stored hints are offered to their owners. */
  intervalMs: number;
  /** Most hints stored on this node; beyond it new hints are refused (logged, counted). */
  maxHints: number;
}

/** Merkle-tree anti-entropy (`antiEntropy` option). */
export interface AntiEntropyOptions {
  /** How often each partition is compared with another replica, ms (±25 % jitter). */
  intervalMs: number;
  /** False: no anti-entropy (hints and read repair only). */
  enabled: boolean;
}

/** `DynamoNode.start` options (docs/api/options.md has them in one table). Unknown names are errors. */
export interface DynamoNodeOptions<V> {
  /** Stable identity; survives restarts (with the same storage). */
  id: string;
  /** How this node reaches its peers: `MemoryNetwork.connect(id)`, `TcpTransport`. */
  transport: Transport;
  /** Where this node keeps its data, ring and hints: `MemoryStorage`, `LevelStorage`; one node per instance. */
  storage: Storage;
  /**
   * Addresses contacted on start / join. Empty, or only this node's own address: a new cluster.
   * Or a function asked before every round of join attempts (`dnsSeeds` from
   * `dynamo-engine/discovery`): a failure or an empty answer is retried with backoff, an answer
   * listing only this node's own address forms a new cluster.
   */
  seeds?: string[] | (() => Promise<readonly string[]>);
  /** N, R and W. Default { n: 3, r: 2, w: 2 }. */
  quorum?: Partial<QuorumOptions>;
  /** `false`: only the top-N primaries count towards quorums (strict quorum). */
  sloppyQuorum?: boolean;
  /** Q: fixed number of partitions, a power of two, fixed for the cluster's life. */
  partitions?: number;
  /** Relative capacity: this node's share of partitions. Positive integer. */
  weight?: number;
  /**
   * Failure domain (availability zone, rack, data centre): 1..256 characters. With members in two
   * or more zones every key's N replicas span min(N, zones) zones (docs/operating/zones.md).
   * Default none: the whole cluster is one zone. On a DynamoClient: the zone it runs in, for
   * `preferLocalZone`.
   */
  zone?: string;
  /**
   * Reads ask the replicas in this node's own `zone` first, and the other zones' only when those
   * are not enough for R, fail, or are slower than usual (the hedge of latency-aware routing).
   * Overridden per get. Default false.
   */
  preferLocalZone?: boolean;
  /**
   * Puts (and deletes) wait for acknowledgements from at least this many distinct zones, on top
   * of W (`QuorumError` otherwise, naming the zones that answered). Overridden per put. Default 1.
   */
  minZones?: number;
  /** Merges siblings into one value on read (and writes the merge back). Default: none, every sibling returned. */
  resolver?: Resolver<V>;
  /** Timeout of one request to one replica, ms. */
  requestTimeoutMs?: number;
  /** Send the merged object to replicas a get found stale. Default true. */
  readRepair?: boolean;
  /** Membership gossip period, ms (±25 % jitter). Default 1000. */
  gossipIntervalMs?: number;
  /**
   * Longest spacing of the liveness probes sent to a peer believed down, ms: a healed peer is seen
   * up within about this long (plus a round trip). Probes start 200 ms (or this, if smaller) after
   * the peer went down and their spacing doubles up to it.
   */
  probeIntervalMs?: number;
  /** Hint delivery period and hint store bound. */
  hintedHandoff?: Partial<HintedHandoffOptions>;
  /** Merkle-tree exchange period, or off. */
  antiEntropy?: Partial<AntiEntropyOptions>;
  /** Tombstones are purged only after this long, and only when all N primaries hold them. */
  tombstoneGraceMs?: number;
  /**
   * Rank replicas by measured round trip: reads with r < n ask the r fastest first (the others on
   * a failure or after a hedge delay), forwarded puts go to the fastest primary, or to the one
   * that answered the read of the put's context first. Default false on a node, true on a client.
   */
  latencyAware?: boolean;
  /** Most timed hedges per latency-aware read, as a fraction of reads (a token bucket). */
  maxHedgeRatio?: number;
  /** Key, value, sibling and clock bounds. */
  limits?: Partial<LimitOptions>;
  /**
   * `DynamoNode.start` also waits for `node.ready()` (the ring settled with this node in it), and
   * fails (the node stopped) if that times out. `true`: with the default timeout. Default false.
   */
  waitUntilReady?: boolean | ReadyOptions;
  /** Bounds of the data types (`node.counter(key)`, `node.set(key)`, ...); see DATA_TYPE_DEFAULTS. */
  dataTypes?: Partial<DataTypeOptions>;
  /**
   * Event listeners attached before anything starts, so that the events of the start itself
   * (`join:attempt`, `status`, `error`, `member:join`, ...) reach them: `{ 'join:attempt': (e) => … }`.
   */
  on?: NodeListeners;
  /** Time source (default `systemClock`); a `VirtualClock` makes a test deterministic. */
  clock?: Clock;
  /** Randomness source (default crypto-seeded); `seededRandom(seed)` for reproducible runs. */
  random?: Random;
  /** pino-compatible logger; silent by default. */
  logger?: Logger;
  /** Value encoding (default MessagePack). */
  codec?: Codec<V>;
}

/** Listeners by event name (the `on` option). */
export type NodeListeners = { [E in keyof DynamoNodeEvents]?: DynamoNodeEvents[E] };

/** `DynamoNode.start(options, { timeoutMs?, signal? })`. */
export interface StartOptions {
  /**
   * Bound on the whole start, ms: opening storage, joining (every round of asking the seeds), and
   * with `waitUntilReady` the wait for ready. Default: `waitUntilReady.timeoutMs` when waiting for
   * ready, else `DEFAULTS.startTimeoutMs`. With both, the earlier deadline applies.
   */
  timeoutMs?: number;
  /** Aborting stops the start (and the node); it rejects with NotRunningError, the reason as `cause`. */
  signal?: AbortSignal;
}

/** The defaults of `DynamoNodeOptions` (each documented there). */
export const DEFAULTS = {
  /** No seeds: a new cluster. */
  seeds: [] as string[],
  /** N = 3, R = 2, W = 2. */
  quorum: { n: 3, r: 2, w: 2 } satisfies QuorumOptions,
  /** Fallbacks and hints on. */
  sloppyQuorum: true,
  /** Q = 256. */
  partitions: 256,
  /** One share. */
  weight: 1,
  /** One second per replica request. */
  requestTimeoutMs: 1000,
  /** Read repair on. */
  readRepair: true,
  /** Gossip every second. */
  gossipIntervalMs: 1000,
  /** Probes of a down peer at most every half second. */
  probeIntervalMs: 500,
  /** Hints offered every second; at most a million held. */
  hintedHandoff: { intervalMs: 1000, maxHints: 1_000_000 } satisfies HintedHandoffOptions,
  /** An exchange per partition every minute. */
  antiEntropy: { intervalMs: 60_000, enabled: true } satisfies AntiEntropyOptions,
  /** A day. */
  tombstoneGraceMs: 86_400_000,
  /** Off on a node (a client's default is on). */
  latencyAware: false,
  /** No zone preference: reads ask the replicas in ring order. */
  preferLocalZone: false,
  /** Writes need no zone spread beyond W. */
  minZones: 1,
  /** One read in ten may hedge. */
  maxHedgeRatio: 0.1,
  /** `node.ready()` and `waitUntilReady` give up after this long, ms. */
  readyTimeoutMs: 60_000,
  /** `DynamoNode.start` without `waitUntilReady` gives up after this long, ms (see StartOptions). */
  startTimeoutMs: 60_000,
  /** 1 KiB keys, 1 MiB values, 100 siblings, 50 clock entries. */
  limits: {
    maxKeyBytes: 1024,
    maxValueBytes: 1_048_576,
    maxSiblings: 100,
    maxClockEntries: 50,
  } satisfies LimitOptions,
} as const;

/** Options after defaults, validated. */
export interface ResolvedOptions<V> {
  id: string;
  transport: Transport;
  storage: Storage;
  seeds: string[] | (() => Promise<readonly string[]>);
  quorum: QuorumOptions;
  sloppyQuorum: boolean;
  partitions: number;
  weight: number;
  zone: string | undefined;
  preferLocalZone: boolean;
  minZones: number;
  resolver: Resolver<V> | undefined;
  requestTimeoutMs: number;
  readRepair: boolean;
  gossipIntervalMs: number;
  probeIntervalMs: number;
  hintedHandoff: HintedHandoffOptions;
  antiEntropy: AntiEntropyOptions;
  tombstoneGraceMs: number;
  latencyAware: boolean;
  maxHedgeRatio: number;
  limits: LimitOptions;
  /** Undefined: start does not wait for ready. */
  waitUntilReady: { timeoutMs: number; signal: AbortSignal | undefined } | undefined;
  on: NodeListeners;
}

/** Every option name (the compiler keeps the listing complete): anything else is a typo. */
export const NODE_OPTION_NAMES = names<keyof DynamoNodeOptions<unknown>>({
  id: true,
  transport: true,
  storage: true,
  seeds: true,
  quorum: true,
  sloppyQuorum: true,
  partitions: true,
  weight: true,
  zone: true,
  preferLocalZone: true,
  minZones: true,
  resolver: true,
  requestTimeoutMs: true,
  readRepair: true,
  gossipIntervalMs: true,
  probeIntervalMs: true,
  hintedHandoff: true,
  antiEntropy: true,
  tombstoneGraceMs: true,
  latencyAware: true,
  maxHedgeRatio: true,
  limits: true,
  waitUntilReady: true,
  dataTypes: true,
  on: true,
  clock: true,
  random: true,
  logger: true,
  codec: true,
});
const QUORUM_NAMES = names<keyof QuorumOptions>({ n: true, r: true, w: true });
const HANDOFF_NAMES = names<keyof HintedHandoffOptions>({ intervalMs: true, maxHints: true });
const ANTI_ENTROPY_NAMES = names<keyof AntiEntropyOptions>({ intervalMs: true, enabled: true });
const LIMIT_NAMES = names<keyof LimitOptions>({
  maxKeyBytes: true,
  maxValueBytes: true,
  maxSiblings: true,
  maxClockEntries: true,
});
const READY_NAMES = names<keyof ReadyOptions>({ timeoutMs: true, signal: true });
const START_NAMES = names<keyof StartOptions>({ timeoutMs: true, signal: true });

/** An optional nested options object: undefined, or an object with known names only. */
function nested(value: unknown, allowed: readonly string[], where: string): void {
  if (value === undefined) return;
  if (value === null || typeof value !== 'object') throw new TypeError(`${where} must be an object`);
  checkOptionNames(value, allowed, where);
}

function positiveInt(name: string, value: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer, got ${String(value)}`);
  }
  if (value < 1 || value > max) throw new RangeError(`${name} must be in 1..${max}, got ${value}`);
  return value;
}

function nonNegative(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new TypeError(`${name} must be a finite number, got ${String(value)}`);
  }
  if (value < 0) throw new RangeError(`${name} must be >= 0, got ${value}`);
  return value;
}

/** Longest `zone`, in characters (as gossiped member records allow). */
export const MAX_ZONE_CHARS = 256;

/** Validates `minZones` (option or per put): 1 ≤ minZones ≤ n. */
export function validateMinZones(value: unknown, n: number): number {
  return positiveInt('minZones', value, n);
}

/** Validates r/w overrides against n (programmer mistakes throw at once). */
export function validateQuorumPart(name: 'r' | 'w', value: number, n: number): number {
  return positiveInt(`quorum.${name}`, value, n);
}

export function resolveOptions<V>(options: DynamoNodeOptions<V>): ResolvedOptions<V> {
  if (options !== null && typeof options === 'object') {
    checkOptionNames(options, NODE_OPTION_NAMES, 'DynamoNode options');
  }
  const resolved = resolveOptionsWithoutStorage(options);
  if (!options.storage || typeof options.storage.batch !== 'function') {
    throw new TypeError('storage must implement the Storage interface');
  }
  return { ...resolved, storage: options.storage };
}

/** Every option but `storage` (a DynamoClient has none). */
export function resolveOptionsWithoutStorage<V>(
  options: Omit<DynamoNodeOptions<V>, 'storage'>,
): Omit<ResolvedOptions<V>, 'storage'> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  if (typeof options.id !== 'string' || options.id.length === 0 || options.id.length > 256) {
    throw new TypeError('id must be a non-empty string of at most 256 characters');
  }
  // Version vectors keep operation ids under keys that start with U+0000 (versioning/object.ts).
  if (options.id.charCodeAt(0) === 0) {
    throw new TypeError('id must not start with U+0000');
  }
  if (!options.transport || typeof options.transport.request !== 'function') {
    throw new TypeError('transport must implement the Transport interface');
  }
  nested(options.quorum, QUORUM_NAMES, 'quorum');
  nested(options.hintedHandoff, HANDOFF_NAMES, 'hintedHandoff');
  nested(options.antiEntropy, ANTI_ENTROPY_NAMES, 'antiEntropy');
  nested(options.limits, LIMIT_NAMES, 'limits');
  nested(options.dataTypes, Object.keys(DATA_TYPE_DEFAULTS), 'dataTypes');
  if (typeof options.waitUntilReady === 'object')
    nested(options.waitUntilReady, READY_NAMES, 'waitUntilReady');
  const on = options.on ?? {};
  nested(on, names(EVENT_NAMES), 'on');
  for (const [event, listener] of Object.entries(on)) {
    if (typeof listener !== 'function')
      throw new TypeError(`on[${JSON.stringify(event)}] must be a function`);
  }
  const seeds = options.seeds ?? DEFAULTS.seeds;
  if (typeof seeds !== 'function' && (!Array.isArray(seeds) || seeds.some((s) => typeof s !== 'string'))) {
    throw new TypeError('seeds must be an array of address strings or a function returning a promise of one');
  }
  const n = positiveInt('quorum.n', options.quorum?.n ?? DEFAULTS.quorum.n, 64);
  const quorum: QuorumOptions = {
    n,
    r: validateQuorumPart('r', options.quorum?.r ?? Math.min(DEFAULTS.quorum.r, n), n),
    w: validateQuorumPart('w', options.quorum?.w ?? Math.min(DEFAULTS.quorum.w, n), n),
  };
  const partitions = positiveInt('partitions', options.partitions ?? DEFAULTS.partitions, 65536);
  if ((partitions & (partitions - 1)) !== 0) {
    throw new RangeError(`partitions must be a power of two, got ${partitions}`);
  }
  if (n > partitions) throw new RangeError(`quorum.n (${n}) must not exceed partitions (${partitions})`);
  const limits = { ...DEFAULTS.limits, ...options.limits };
  for (const [k, v] of Object.entries(limits)) positiveInt(`limits.${k}`, v);
  const hintedHandoff = { ...DEFAULTS.hintedHandoff, ...options.hintedHandoff };
  positiveInt('hintedHandoff.intervalMs', hintedHandoff.intervalMs);
  nonNegative('hintedHandoff.maxHints', hintedHandoff.maxHints);
  const antiEntropy = { ...DEFAULTS.antiEntropy, ...options.antiEntropy };
  positiveInt('antiEntropy.intervalMs', antiEntropy.intervalMs);
  const ready = options.waitUntilReady ?? false;
  if (typeof ready !== 'boolean' && (ready === null || typeof ready !== 'object')) {
    throw new TypeError('waitUntilReady must be a boolean or { timeoutMs?, signal? }');
  }
  if (options.resolver !== undefined && typeof options.resolver !== 'function') {
    throw new TypeError('resolver must be a function');
  }
  const zone = options.zone;
  if (zone !== undefined && (typeof zone !== 'string' || zone.length === 0 || zone.length > MAX_ZONE_CHARS)) {
    throw new TypeError(`zone must be a string of 1..${MAX_ZONE_CHARS} characters`);
  }
  const preferLocalZone = options.preferLocalZone ?? DEFAULTS.preferLocalZone;
  if (typeof preferLocalZone !== 'boolean') throw new TypeError('preferLocalZone must be a boolean');
  if (preferLocalZone && zone === undefined) {
    throw new TypeError('preferLocalZone needs the zone option (the zone this process runs in)');
  }
  const minZones = validateMinZones(options.minZones ?? DEFAULTS.minZones, n);
  const maxHedgeRatio = nonNegative('maxHedgeRatio', options.maxHedgeRatio ?? DEFAULTS.maxHedgeRatio);
  if (maxHedgeRatio > 1) throw new RangeError(`maxHedgeRatio must be in [0, 1], got ${maxHedgeRatio}`);
  return {
    id: options.id,
    transport: options.transport,
    seeds: typeof seeds === 'function' ? seeds : [...seeds],
    quorum,
    sloppyQuorum: options.sloppyQuorum ?? DEFAULTS.sloppyQuorum,
    partitions,
    weight: positiveInt('weight', options.weight ?? DEFAULTS.weight, 1024),
    zone,
    preferLocalZone,
    minZones,
    resolver: options.resolver,
    requestTimeoutMs: positiveInt('requestTimeoutMs', options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs),
    readRepair: options.readRepair ?? DEFAULTS.readRepair,
    gossipIntervalMs: positiveInt('gossipIntervalMs', options.gossipIntervalMs ?? DEFAULTS.gossipIntervalMs),
    probeIntervalMs: positiveInt('probeIntervalMs', options.probeIntervalMs ?? DEFAULTS.probeIntervalMs),
    hintedHandoff,
    antiEntropy,
    tombstoneGraceMs: nonNegative('tombstoneGraceMs', options.tombstoneGraceMs ?? DEFAULTS.tombstoneGraceMs),
    latencyAware: options.latencyAware ?? DEFAULTS.latencyAware,
    maxHedgeRatio,
    limits,
    on,
    waitUntilReady:
      ready === false
        ? undefined
        : {
            timeoutMs: readyTimeout(ready === true ? undefined : ready.timeoutMs),
            signal: ready === true ? undefined : ready.signal,
          },
  };
}

/** The bound and signals of one `DynamoNode.start` (see StartOptions). */
export function resolveStartOptions(
  options: StartOptions,
  ready: ResolvedOptions<unknown>['waitUntilReady'],
): { timeoutMs: number; signals: AbortSignal[] } {
  if (options === null || typeof options !== 'object') throw new TypeError('start options must be an object');
  checkOptionNames(options, START_NAMES, 'DynamoNode.start options');
  const own = options.timeoutMs === undefined ? undefined : positiveInt('timeoutMs', options.timeoutMs);
  const timeoutMs = Math.min(own ?? Number.POSITIVE_INFINITY, ready?.timeoutMs ?? Number.POSITIVE_INFINITY);
  const signals = [options.signal, ready?.signal].filter((s): s is AbortSignal => s !== undefined);
  return { timeoutMs: Number.isFinite(timeoutMs) ? timeoutMs : DEFAULTS.startTimeoutMs, signals };
}

/** `ready()`'s timeout, validated (default `DEFAULTS.readyTimeoutMs`). */
export function readyTimeout(timeoutMs: number | undefined): number {
  return positiveInt('timeoutMs', timeoutMs ?? DEFAULTS.readyTimeoutMs);
}
