/**
 * DynamoClient: client-driven coordination (Dynamo § 6.4). A process that reads and writes the
 * cluster without being part of it: it holds the ring (pulled from members, see ClusterView),
 * owns no partitions, stores nothing, never receives hints, and coordinates requests itself —
 * gets fan out from here to the preference list (R counting, sibling merge, read repair, sloppy
 * quorum fallbacks, hedged reads), so a read costs no hop through a coordinator node.
 *
 * A put is different: the new dotted version depends on a replica's local object, and a client is
 * not a replica, so it must not be the actor of a dot. It sends the put with CoordinatePut to a
 * replica of the key — the one that answered the read of its context first, else the fastest
 * primary — and fails over to the next replica when that one cannot be reached: one hop, where a
 * non-replica node forwarding the put costs the same hop after its own.
 */
import { EventEmitter } from 'eventemitter3';
import { Coordinator, type PutRequest } from '../coordinator/coordinator.js';
import { coordinatorOrder } from '../coordinator/latency.js';
import { LatencyRouting, type LatencyStats } from '../coordinator/latency-routing.js';
import { putThroughReplicas } from '../coordinator/remote-put.js';
import { Router } from '../coordinator/router.js';
import { NotRunningError, QuorumError, TimeoutError, TransportError } from '../errors.js';
import type { DynamoNodeEvents, Key } from '../events.js';
import {
  type EntriesOptions,
  type Entry,
  KeyListing,
  type KeysPage,
  type ListKeysOptions,
  type ScanOptions,
} from '../listing/listing.js';
import { ListingService } from '../listing/service.js';
import { FailureDetector } from '../membership/failure-detector.js';
import { type SeedSource, seedSource } from '../membership/membership.js';
import { memberViews, tooFewOwners, zoneLookup, zoneStatus } from '../membership/status.js';
import type { ClusterState, MemberView, NodeStatus } from '../membership/types.js';
import type {
  GetOptions,
  GetResult,
  PreferenceListEntry,
  PutOptions,
  PutResult,
  UpdateFunction,
  UpdateResult,
} from '../operation-types.js';
import { newOpId, Operations } from '../operations.js';
import {
  type Codec,
  type DynamoNodeOptions,
  type Logger,
  NODE_OPTION_NAMES,
  resolveOptionsWithoutStorage,
  resolveStartOptions,
  type StartOptions,
} from '../options.js';
import { loadHasher, partitionOf } from '../ring/index.js';
import { OperationRecorder, type OperationStats } from '../stats.js';
import { Rpc } from '../transport/rpc.js';
import type { Transport } from '../transport/types.js';
import { encodeReply, failureOf, MessageType, RemoteError } from '../transport/wire.js';
import { onAbort } from '../util/abort.js';
import { type Clock, systemClock } from '../util/clock.js';
import { checkOptionNames, names } from '../util/option-names.js';
import { cryptoSeededRandom, type Random } from '../util/random.js';
import { defaultCodec, silentLogger } from '../values.js';
import { encodeContext } from '../versioning/index.js';
import { ClusterView, membershipEvents } from './cluster-view.js';

/** DynamoNode options that mean nothing without storage or ring membership. */
const NODE_ONLY = [
  'storage',
  'weight',
  'hintedHandoff',
  'antiEntropy',
  'tombstoneGraceMs',
  'waitUntilReady',
  'dataTypes',
] as const;
const CLIENT_OPTION_NAMES = NODE_OPTION_NAMES.filter(
  (name) => !(NODE_ONLY as readonly string[]).includes(name),
);

/**
 * The options of a DynamoNode that mean something without storage. `seeds` (members' addresses, or
 * a function resolving to them, as for a node) is required; `quorum.n` and `partitions` must be the
 * cluster's (start fails with RangeError otherwise). `latencyAware` defaults to true.
 */
export type DynamoClientOptions<V> = Omit<
  DynamoNodeOptions<V>,
  | 'storage'
  | 'weight'
  | 'hintedHandoff'
  | 'antiEntropy'
  | 'tombstoneGraceMs'
  | 'waitUntilReady'
  | 'dataTypes'
  | 'seeds'
  | 'on'
> & {
  /** Members' addresses, or a function resolving to them (asked before every round of the start). */
  seeds: string[] | SeedSource;
  /** Listeners attached before the client starts (see the node's `on`). */
  on?: { [E in keyof DynamoClientEvents]?: DynamoClientEvents[E] };
};

/** The DynamoNode events that apply to a client (no hints, transfers or anti-entropy here). */
export type DynamoClientEvents = Pick<
  DynamoNodeEvents,
  | 'member:up'
  | 'member:down'
  | 'member:join'
  | 'member:leave'
  | 'ring:change'
  | 'repair:read'
  | 'conflict'
  | 'status'
  | 'error'
>;

/** `client.stats()`: what the client did since it started. */
export interface ClientStats {
  /** `get` calls. */
  get: OperationStats;
  /** `put` calls (and `update` writes). */
  put: OperationStats;
  /** `delete` calls. */
  delete: OperationStats;
  /** Sibling counts seen by reads. */
  siblings: {
    /** Reads that found more than one concurrent sibling. */
    conflictedReads: number;
    /** The most siblings seen on one read. */
    maxSeen: number;
  };
  /** Replicas sent the merged object after a read found them stale or missing it. */
  readRepairs: number;
  /** Puts whose first chosen coordinator could not take them (unreachable, or not a replica). */
  coordinatorFailovers: number;
  /** Puts retried after a member's reply showed the client's ring stale. */
  staleRingRetries: number;
  /** Latency-aware routing (undefined when `latencyAware` is false). */
  latency: LatencyStats | undefined;
}

/** The client's event names (the compiler keeps the listing complete): what its `on` accepts. */
const CLIENT_EVENT_NAMES = names<keyof DynamoClientEvents>({
  'member:up': true,
  'member:down': true,
  'member:join': true,
  'member:leave': true,
  'ring:change': true,
  'repair:read': true,
  conflict: true,
  status: true,
  error: true,
});

/** First failure-detector probe of a peer after it went down, ms (as on a node). */
const PROBE_INITIAL_MS = 200;
/** Most bytes accepted for one replica object on the wire, beyond the siblings' values. */
const OBJECT_OVERHEAD_BYTES = 64 * 1024;

/**
 * Reads and writes a cluster without being part of it: holds the ring, stores nothing, sends
 * each request straight to the key's replicas (docs/api/client.md). `DynamoClient.start(options)`.
 */
export class DynamoClient<V = unknown> extends EventEmitter<DynamoClientEvents> {
  /** The client's id, for logs (not a member id). */
  readonly id: string;
  private readonly options: ReturnType<typeof resolveOptionsWithoutStorage<V>>;
  private readonly transport: Transport;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly logger: Logger;
  private readonly codec: Codec<V>;
  private readonly detector: FailureDetector;
  private readonly rpc: Rpc;
  private readonly view: ClusterView;
  private readonly router: Router;
  private readonly coordinator: Coordinator;
  private readonly latency: LatencyRouting | undefined;
  private readonly operations: Operations<V>;
  private readonly listing: KeyListing<V>;
  private currentStatus: NodeStatus = 'starting';
  /** Operations in progress: stop() waits for them. */
  private active = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly recorders = {
    get: new OperationRecorder(),
    put: new OperationRecorder(),
    delete: new OperationRecorder(),
  };
  private readonly counters = {
    conflictedReads: 0,
    maxSiblings: 0,
    readRepairs: 0,
    coordinatorFailovers: 0,
    staleRingRetries: 0,
  };

  /**
   * Starts the transport and pulls the cluster state from the seeds; resolves once it knows a ring.
   * Bounded as `DynamoNode.start`: `TimeoutError` after `timeoutMs` (default
   * `DEFAULTS.startTimeoutMs`), `NotRunningError` (reason as `cause`) on abort, both naming the
   * seeds and what they answered.
   */
  static async start<V = unknown>(
    options: DynamoClientOptions<V>,
    startOptions: StartOptions = {},
  ): Promise<DynamoClient<V>> {
    const client = new DynamoClient<V>(options);
    const { timeoutMs, signals } = resolveStartOptions(startOptions, undefined);
    const bound = new AbortController();
    const timer = client.clock.setTimeout(() => {
      bound.abort(
        new TimeoutError(`client ${client.id} not started after ${timeoutMs} ms: ${client.view.report()}`),
      );
    }, timeoutMs);
    const removers = signals.map((signal) =>
      onAbort(signal, (reason) => {
        if (!bound.signal.aborted) {
          bound.abort(
            new NotRunningError(`start of client ${client.id} aborted: ${client.view.report()}`, {
              cause: reason,
            }),
          );
        }
      }),
    );
    try {
      await client.open(bound.signal);
    } finally {
      timer.cancel();
      for (const remove of removers) remove();
    }
    return client;
  }

  private constructor(options: DynamoClientOptions<V>) {
    super();
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    checkOptionNames(options, CLIENT_OPTION_NAMES, 'DynamoClient options');
    const seeds = options.seeds;
    if (typeof seeds !== 'function' && (!Array.isArray(seeds) || seeds.length === 0)) {
      throw new TypeError(
        'DynamoClient: seeds must name at least one member address, or be a function resolving to addresses',
      );
    }
    this.options = resolveOptionsWithoutStorage({
      ...options,
      on: undefined,
      latencyAware: options.latencyAware ?? true,
    });
    checkOptionNames(options.on ?? {}, CLIENT_EVENT_NAMES, 'DynamoClient on');
    for (const [event, listener] of Object.entries(options.on ?? {})) {
      if (typeof listener !== 'function')
        throw new TypeError(`on[${JSON.stringify(event)}] must be a function`);
      this.on(event as keyof DynamoClientEvents, listener as (...args: unknown[]) => void);
    }
    this.id = this.options.id;
    this.transport = this.options.transport;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? cryptoSeededRandom();
    this.logger = options.logger ?? silentLogger;
    this.codec = options.codec ?? (defaultCodec as Codec<V>);
    const limits = this.options.limits;
    this.detector = new FailureDetector({
      clock: this.clock,
      probe: async (id) => {
        await this.rpc.call(id, [MessageType.Ping], this.options.requestTimeoutMs);
      },
      initialProbeMs: PROBE_INITIAL_MS,
      maxProbeMs: this.options.probeIntervalMs,
      onDown: (id, reason) =>
        this.emit('member:down', { id, address: this.view.addressOf(id) ?? '', reason }),
      onUp: (id) => this.emit('member:up', { id, address: this.view.addressOf(id) ?? '' }),
    });
    if (this.options.latencyAware)
      this.latency = new LatencyRouting(this.id, this.clock, this.options, (id) => this.detector.isUp(id));
    this.rpc = new Rpc(this.transport, (id) => this.view.addressOf(id), this.detector, {
      roundTrips: this.latency?.roundTrips,
    });
    this.view = new ClusterView({
      seeds: seedSource(seeds),
      partitions: this.options.partitions,
      n: this.options.quorum.n,
      gossipIntervalMs: this.options.gossipIntervalMs,
      requestTimeoutMs: this.options.requestTimeoutMs,
      clock: this.clock,
      random: this.random.fork('gossip'),
      rpc: this.rpc,
      isUp: (id) => this.detector.isUp(id),
      onChange: (before, after) => this.onClusterChange(before, after),
      onError: (error, context) => this.backgroundError(error, context),
    });
    this.router = new Router({
      self: this.id,
      n: this.options.quorum.n,
      sloppyQuorum: this.options.sloppyQuorum,
      ring: () => this.view.state.ring,
      detector: this.detector,
      zoneOf: () => zoneLookup(this.view.state.members),
    });
    this.coordinator = new Coordinator({
      self: this.id,
      actor: () => {
        throw new RangeError('a DynamoClient is never the actor of a version');
      },
      clock: this.clock,
      replica: noReplica,
      rpc: this.rpc,
      requestTimeoutMs: this.options.requestTimeoutMs,
      readRepair: this.options.readRepair,
      maxObjectBytes: limits.maxSiblings * (limits.maxValueBytes + 1024) + OBJECT_OVERHEAD_BYTES,
      onReadRepair: (key, replicas) => {
        this.counters.readRepairs++;
        this.emit('repair:read', { key, replicas });
      },
      onBackgroundError: (error, context) => this.backgroundError(error, context),
    });
    this.operations = new Operations<V>({
      options: this.options,
      codec: this.codec,
      clock: this.clock,
      router: this.router,
      coordinator: this.coordinator,
      latency: this.latency,
      recorders: this.recorders,
      ensureRunning: () => this.ensureRunning(),
      enter: () => {
        this.active++;
      },
      leave: this.untrack,
      recordSiblings: (key, count) => this.recordSiblings(key, count),
      zoneCount: () => zoneStatus(this.view.state, this.options.quorum.n)?.required ?? 1,
      zoneOf: () => zoneLookup(this.view.state.members),
      checkOwners: (operation, required) => {
        const reason = tooFewOwners(this.view.state, this.options.quorum.n, required);
        if (reason !== undefined) throw new QuorumError(operation, required, 0, [], { reason });
      },
      coordinatePut: (put) => this.coordinatePut(put),
      onBackgroundError: (error, context) => this.backgroundError(error, context),
    });
    const listingService = new ListingService({
      self: this.id,
      partitions: this.options.partitions,
      clock: this.clock,
      rpc: this.rpc,
      owners: () => this.view.state.ring.owners,
      primaries: (owners, p) => this.router.primaries(owners, p),
      isUp: (id) => this.detector.isUp(id),
      requestTimeoutMs: this.options.requestTimeoutMs,
      maxKeyBytes: limits.maxKeyBytes,
      maxObjectBytes: limits.maxSiblings * (limits.maxValueBytes + 1024) + OBJECT_OVERHEAD_BYTES,
    });
    this.listing = new KeyListing<V>({
      lister: listingService.lister,
      partitions: this.options.partitions,
      maxKeyBytes: limits.maxKeyBytes,
      requestTimeoutMs: this.options.requestTimeoutMs,
      ensureRunning: () => this.ensureRunning(),
      enter: () => {
        this.active++;
      },
      leave: this.untrack,
      get: (key, options) => this.get(key, options),
    });
  }

  /** The client's own transport address (members never dial it: it answers no requests). */
  get address(): string {
    return this.transport.address;
  }

  /** `starting`, `running`, `stopping` or `stopped`. */
  get status(): NodeStatus {
    return this.currentStatus;
  }

  /** The members as this client knows them (it is not one of them). */
  members(): MemberView[] {
    return memberViews(this.view.state, this.id, (id) => this.detector.isUp(id));
  }

  /** The replicas a get for `key` asks, in ring order (a put's coordinator is one of them). */
  preferenceList(key: Key): PreferenceListEntry[] {
    const bytes = this.operations.keyBytes(key);
    return this.router.route(partitionOf(bytes, this.options.partitions)).list.map((e) => ({
      id: e.id,
      address: this.view.addressOf(e.id) ?? '',
      kind: e.kind,
    }));
  }

  /** What this client did since it started. */
  stats(): ClientStats {
    const c = this.counters;
    return {
      get: this.recorders.get.snapshot(),
      put: this.recorders.put.snapshot(),
      delete: this.recorders.delete.snapshot(),
      siblings: { conflictedReads: c.conflictedReads, maxSeen: c.maxSiblings },
      readRepairs: c.readRepairs,
      coordinatorFailovers: c.coordinatorFailovers,
      staleRingRetries: c.staleRingRetries,
      latency: this.latency?.stats(),
    };
  }

  /** As `DynamoNode.get`: fans out from here to the key's replicas. */
  get(key: Key, options: GetOptions = {}): Promise<GetResult<V>> {
    return this.operations.get(key, options);
  }

  /** As `DynamoNode.put`: sent to a replica of the key, which coordinates it. */
  put(key: Key, value: V, options: PutOptions = {}): Promise<PutResult> {
    return this.operations.put(key, value, options);
  }

  /** Writes a tombstone covering what `context` has seen; without a context, what a read finds. */
  delete(key: Key, options: PutOptions = {}): Promise<PutResult> {
    return this.operations.delete(key, options);
  }

  /** Read, resolve, write back with the read's context (as DynamoNode.update). */
  update(
    key: Key,
    fn: UpdateFunction<V>,
    options: GetOptions & Omit<PutOptions, 'context'> = {},
  ): Promise<UpdateResult<V>> {
    return this.operations.update(key, fn, options);
  }

  /** One page of the cluster's live keys, as `DynamoNode.keys` (the client asks the replicas). */
  keys(options?: ListKeysOptions & { keyEncoding?: 'utf8' }): Promise<KeysPage<string>>;
  keys(options: ListKeysOptions & { keyEncoding: 'bytes' }): Promise<KeysPage<Uint8Array>>;
  keys(options: ListKeysOptions = {}): Promise<KeysPage<Key>> {
    return this.listing.keys(options);
  }

  /** Every live key of the cluster, page after page. */
  allKeys(options?: ScanOptions & { keyEncoding?: 'utf8' }): AsyncGenerator<string>;
  allKeys(options: ScanOptions & { keyEncoding: 'bytes' }): AsyncGenerator<Uint8Array>;
  allKeys(options: ScanOptions = {}): AsyncGenerator<Key> {
    return this.listing.allKeys(options);
  }

  /** Every live key with what `get` answers for it. */
  allEntries(options?: EntriesOptions & { keyEncoding?: 'utf8' }): AsyncGenerator<Entry<V, string>>;
  allEntries(options: EntriesOptions & { keyEncoding: 'bytes' }): AsyncGenerator<Entry<V, Uint8Array>>;
  allEntries(options: EntriesOptions = {}): AsyncGenerator<Entry<V, Key>> {
    return this.listing.allEntries(options);
  }

  /** Stops pulling state and probing, waits for operations in progress, stops the transport. */
  async stop(): Promise<void> {
    if (this.currentStatus === 'stopped' || this.currentStatus === 'stopping') return;
    this.setStatus('stopping');
    this.view.stop();
    this.detector.stop();
    while (this.active > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await this.transport.stop().catch((err) => this.backgroundError(err, 'stopping transport'));
    this.setStatus('stopped');
  }

  // ---------------------------------------------------------------------------------------------

  private async open(signal: AbortSignal): Promise<void> {
    this.setStatus('starting');
    await loadHasher();
    // Members never send to a client; anything that arrives (a misdirected peer) is refused.
    const refusal = encodeReply(
      failureOf(new TransportError(`${this.id} is a client: it serves no requests`)),
    );
    await this.transport.start(async () => refusal);
    try {
      await this.view.start(signal);
      if (signal.aborted) throw signal.reason;
      if (this.currentStatus !== 'starting') throw new NotRunningError('stopped while starting');
      this.setStatus('running');
    } catch (err) {
      this.view.stop();
      this.detector.stop();
      await this.transport.stop().catch(() => {});
      this.setStatus('stopped');
      throw err;
    }
  }

  /**
   * Sends the put to a replica to coordinate, failing over along the candidates. When they all
   * failed and one of them answered (so it is up, but refused: not a replica in its ring, or
   * stopping), the client's ring may be stale: it pulls the state from that member and, if the
   * ring changed, tries once more with the new routing within what is left of `timeoutMs`.
   */
  private async coordinatePut(put: PutRequest): Promise<PutResult> {
    const { key, partition, value, w, timeoutMs, signal } = put;
    const context = encodeContext(put.context);
    const deadline = this.clock.now() + timeoutMs;
    // One operation id for every attempt: copies stored by two coordinators are one write.
    const op = put.op ?? newOpId(this.id, this.random);
    for (let attempt = 0; ; attempt++) {
      const ringVersion = this.view.state.ring.version;
      const list = this.router.route(partition).list;
      const candidates = this.latency
        ? this.latency.coordinators(list, key, context)
        : coordinatorOrder(list, undefined, undefined);
      let refusedBy: string | undefined;
      try {
        const { context: next, coordinator } = await putThroughReplicas(
          this.rpc,
          candidates,
          {
            key,
            value,
            context,
            w,
            timeoutMs: Math.max(1, deadline - this.clock.now()),
            signal,
            op,
            ttlMs: put.ttlMs,
            ...(put.minZones === undefined ? {} : { minZones: put.minZones }),
          },
          (id, err) => {
            this.counters.coordinatorFailovers++;
            if (err instanceof RemoteError) refusedBy ??= id;
          },
        );
        this.latency?.remember(key, next, coordinator);
        return { context: next };
      } catch (err) {
        if (attempt > 0 || refusedBy === undefined || !(err instanceof QuorumError)) throw err;
        await this.view.refreshSoon(refusedBy);
        if (this.view.state.ring.version === ringVersion) throw err;
        if (this.clock.now() >= deadline) throw err;
        this.counters.staleRingRetries++;
      }
    }
  }

  private onClusterChange(before: ClusterState, after: ClusterState): void {
    for (const e of membershipEvents(before, after, this.id)) {
      if (e.name === 'member:join') this.emit('member:join', { id: e.id, address: e.address });
      else if (e.name === 'member:leave') {
        this.detector.forget(e.id);
        this.latency?.estimator.forget(e.id);
        this.emit('member:leave', { id: e.id });
      } else this.emit('ring:change', { version: e.version, owners: e.owners });
    }
  }

  private recordSiblings(key: Key, count: number): void {
    if (count > this.counters.maxSiblings) this.counters.maxSiblings = count;
    if (count > 1) {
      this.counters.conflictedReads++;
      this.emit('conflict', { key, siblings: count });
    }
  }

  private ensureRunning(): void {
    if (this.currentStatus !== 'running')
      throw new NotRunningError(`client ${this.id} is ${this.currentStatus}`);
  }

  private setStatus(status: NodeStatus): void {
    this.currentStatus = status;
    this.emit('status', { status });
  }

  private readonly untrack = (): void => {
    if (--this.active > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  };

  private backgroundError(error: Error, context: string): void {
    this.logger.warn({ err: error, context }, context);
    this.emit('error', { error, context });
  }
}

/**
 * A client holds no replica. The coordinator touches its replica only for entries naming the
 * client itself, and the client is never a member, so never in a routing list: reaching this is a
 * bug, reported as one.
 */
const noReplica: ConstructorParameters<typeof Coordinator>[0]['replica'] = {
  readWith: (_partition, _key, _hintFor, handler) =>
    queueMicrotask(() => handler.failed(new RangeError('a DynamoClient holds no replica'))),
  merge: () => Promise.reject(new RangeError('a DynamoClient holds no replica')),
  coordinate: () => Promise.reject(new RangeError('a DynamoClient holds no replica')),
};
