/**
 * DynamoNode: wiring and lifecycle. The algorithms live in their folders (ring, versioning,
 * coordinator, replica, membership, handoff); this class connects them to the transport and the
 * storage, validates what callers pass in, and turns bytes into the application's values.
 */
import { EventEmitter } from 'eventemitter3';
import { DataAdminService } from './admin/data.js';
import { AdminService } from './admin/server.js';
import { AntiEntropy } from './anti-entropy/anti-entropy.js';
import { Coordinator, type PutRequest, type Routing } from './coordinator/coordinator.js';
import { LatencyRouting } from './coordinator/latency-routing.js';
import { Router } from './coordinator/router.js';
import {
  DynamoError,
  NotRunningError,
  QuorumError,
  StorageError,
  TimeoutError,
  TransportError,
} from './errors.js';
import type { DynamoNodeEvents, Key } from './events.js';
import { Importer, type ImportOptions, type ImportResult } from './export/import.js';
import { HintedHandoff } from './handoff/hints.js';
import { StrayData } from './handoff/strays.js';
import { PartitionTransfer } from './handoff/transfer.js';
import {
  type EntriesOptions,
  type Entry,
  type ExportPage,
  type ExportPageOptions,
  type ExportRecord,
  KeyListing,
  type KeysPage,
  type ListKeysOptions,
  type ScanOptions,
} from './listing/listing.js';
import { ListingService } from './listing/service.js';
import { FailureDetector } from './membership/failure-detector.js';
import { Membership, type SeedSource, seedSource } from './membership/membership.js';
import { heldPartitions } from './membership/plan.js';
import { type ReadyOptions, waitUntilReady, whyNotReady } from './membership/ready.js';
import {
  memberViews,
  type RingStatus,
  ringStatus,
  tooFewOwners,
  zoneLookup,
  zoneStatus,
} from './membership/status.js';
import type { ClusterState, MemberView, NodeStatus } from './membership/types.js';
import type {
  GetOptions,
  GetResult,
  PreferenceListEntry,
  PutOptions,
  PutResult,
  UpdateFunction,
  UpdateResult,
} from './operation-types.js';
import { maxContextEntries, newOpId, Operations, remainingTtl } from './operations.js';
import {
  type Codec,
  type DynamoNodeOptions,
  type Logger,
  type ResolvedOptions,
  readyTimeout,
  resolveOptions,
  resolveStartOptions,
  type StartOptions,
} from './options.js';
import { PeerServer } from './peer-server.js';
import { dataRange, metaKey } from './replica/layout.js';
import { Replica } from './replica/replica.js';
import { loadHasher, partitionOf } from './ring/index.js';
import { type NodeStats, OperationRecorder } from './stats.js';
import { Rpc } from './transport/rpc.js';
import type { Transport, TransportByteStats } from './transport/types.js';
import { asString, MessageType, RemoteError, rebuildRemoteError } from './transport/wire.js';
import {
  CounterHandle,
  FlagHandle,
  MapHandle,
  MvRegisterHandle,
  RegisterHandle,
  SetHandle,
} from './types/handles.js';
import { TypedStore } from './types/store.js';
import { onAbort } from './util/abort.js';
import { type Clock, systemClock } from './util/clock.js';
import { cryptoSeededRandom, type Random } from './util/random.js';
import { defaultCodec, silentLogger } from './values.js';
import { encodeContext, type Sibling } from './versioning/index.js';

const INCARNATION_KEY = metaKey('incarnation');
/**
 * Storage instances held by a node that is starting or running, with its id: one storage serves
 * one node (two nodes writing one store would corrupt each other's data, ring and hints).
 */
const storageOwners = new WeakMap<object, string>();
const utf8 = new TextEncoder();
/** First failure-detector probe of a peer after it went down, ms (then doubling to probeIntervalMs). */
const PROBE_INITIAL_MS = 200;
/** Most bytes accepted for one replica object on the wire. */
const OBJECT_OVERHEAD_BYTES = 64 * 1024;

/**
 * One member of a cluster: stores a share of the data, coordinates requests, gossips. Start one
 * with `DynamoNode.start(options)` (docs/api/node.md); `V` is the type of the values.
 */
export class DynamoNode<V = unknown> extends EventEmitter<DynamoNodeEvents> {
  /** The node's stable id (`options.id`). */
  readonly id: string;
  private readonly options: ResolvedOptions<V>;
  private readonly transport: Transport;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly logger: Logger;
  private readonly codec: Codec<V>;
  private readonly detector: FailureDetector;
  private readonly membership: Membership;
  private readonly replica: Replica;
  private readonly rpc: Rpc;
  private readonly coordinator: Coordinator;
  private readonly handoff: HintedHandoff;
  private readonly transfer: PartitionTransfer;
  /** Partitions whose data this node is dropping after a rebalance took them away. */
  private dropping: Promise<void> = Promise.resolve();
  private readonly antiEntropy: AntiEntropy;
  private currentStatus: NodeStatus = 'starting';
  private actorId = '';
  private incarnation = '';
  /** Peers are served once the node has loaded its state (before, a merge could clobber it). */
  private loaded = false;
  private readonly strays: StrayData;
  private readonly router: Router;
  private readonly latency: LatencyRouting | undefined;
  private readonly server: PeerServer;
  private readonly operations: Operations<V>;
  private readonly admin: AdminService;
  private readonly types: TypedStore;
  private readonly listingService: ListingService;
  private readonly listing: KeyListing<V>;
  private readonly importer: Importer;
  private lastRingVersion = 0;
  private lastZoneReport = '';
  /** Requests inside the node (client operations and peer requests): stop() waits for them. */
  private active = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly recorders = {
    get: new OperationRecorder((ms, ok) => this.requestComplete('get', ms, ok)),
    put: new OperationRecorder((ms, ok) => this.requestComplete('put', ms, ok)),
    delete: new OperationRecorder((ms, ok) => this.requestComplete('delete', ms, ok)),
  };
  private readonly counters = {
    conflictedReads: 0,
    maxSiblings: 0,
    siblingHistogram: {} as Record<number, number>,
    readRepairs: 0,
    forwarded: 0,
  };

  /**
   * Starts the transport, opens storage, joins the cluster; resolves when it can serve requests
   * (with `waitUntilReady`, once the ring is settled with it in it). Bounded: rejects with
   * `TimeoutError` after `timeoutMs` (default: `waitUntilReady.timeoutMs` when waiting for ready,
   * else `DEFAULTS.startTimeoutMs`) and with `NotRunningError` (`cause`: the reason) when `signal`
   * or `waitUntilReady.signal` aborts; both messages name every seed asked and what it answered.
   * Rejects with `IdInUseError` when a live member holds this id with another incarnation. A
   * failed start leaves the node stopped, its storage closed and its transport stopped.
   */
  static async start<V = unknown>(
    options: DynamoNodeOptions<V>,
    startOptions: StartOptions = {},
  ): Promise<DynamoNode<V>> {
    const node = new DynamoNode<V>(options);
    await node.boot(startOptions);
    return node;
  }

  private constructor(options: DynamoNodeOptions<V>) {
    super();
    this.options = resolveOptions(options);
    this.id = this.options.id;
    for (const [event, listener] of Object.entries(this.options.on)) {
      this.on(event as keyof DynamoNodeEvents, listener as (...args: unknown[]) => void);
    }
    this.transport = this.options.transport;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? cryptoSeededRandom();
    this.logger = options.logger ?? silentLogger;
    this.codec = options.codec ?? (defaultCodec as Codec<V>);
    const maxObjectBytes = this.maxObjectBytes();
    this.detector = new FailureDetector({
      clock: this.clock,
      probe: async (id) => {
        await this.rpc.call(id, [MessageType.Ping], this.options.requestTimeoutMs);
      },
      initialProbeMs: PROBE_INITIAL_MS,
      maxProbeMs: this.options.probeIntervalMs,
      onDown: (id, reason) => {
        this.logger.info({ peer: id, reason }, 'peer marked down');
        this.emit('member:down', { id, address: this.membership.addressOf(id) ?? '', reason });
      },
      onUp: (id) => {
        this.logger.info({ peer: id }, 'peer marked up');
        this.emit('member:up', { id, address: this.membership.addressOf(id) ?? '' });
        this.handoff.deliverSoon(id);
        this.transfer.wake();
      },
    });
    if (this.options.latencyAware)
      this.latency = new LatencyRouting(this.id, this.clock, this.options, (id) => this.detector.isUp(id));
    this.rpc = new Rpc(this.transport, (id) => this.membership.addressOf(id), this.detector, {
      roundTrips: this.latency?.roundTrips,
    });
    this.replica = new Replica(this.options.storage, {
      maxSiblings: this.options.limits.maxSiblings,
      maxClockEntries: this.options.limits.maxClockEntries,
      now: () => this.clock.now(),
    });
    this.membership = new Membership({
      id: this.id,
      incarnation: () => this.incarnation,
      address: () => this.transport.address,
      weight: this.options.weight,
      zone: this.options.zone,
      n: this.options.quorum.n,
      partitions: this.options.partitions,
      gossipIntervalMs: this.options.gossipIntervalMs,
      requestTimeoutMs: this.options.requestTimeoutMs,
      clock: this.clock,
      random: this.random.fork('gossip'),
      storage: this.options.storage,
      rpc: this.rpc,
      detector: this.detector,
      onChange: (before, after) => this.onMembershipChange(before, after),
      onError: (error, context) => this.backgroundError(error, context),
      onJoinAttempt: (attempt) => {
        this.logger.info({ attempt }, `join attempt ${attempt.attempt}: ${this.membership.joinReport()}`);
        this.emit('join:attempt', attempt);
      },
    });
    this.router = new Router({
      self: this.id,
      n: this.options.quorum.n,
      sloppyQuorum: this.options.sloppyQuorum,
      ring: () => this.membership.state.ring,
      detector: this.detector,
      zoneOf: () => zoneLookup(this.membership.state.members),
    });
    this.coordinator = new Coordinator({
      self: this.id,
      actor: () => this.actorId,
      clock: this.clock,
      replica: this.replica,
      rpc: this.rpc,
      requestTimeoutMs: this.options.requestTimeoutMs,
      readRepair: this.options.readRepair,
      maxObjectBytes,
      onReadRepair: (key, replicas) => {
        this.counters.readRepairs++;
        this.emit('repair:read', { key, replicas });
      },
      onBackgroundError: (error, context) => this.backgroundError(error, context),
      zoneOf: () => zoneLookup(this.membership.state.members),
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
      checkOwners: (operation, required) => this.checkOwners(operation, required),
      zoneCount: () => zoneStatus(this.membership.state, this.options.quorum.n)?.required ?? 1,
      zoneOf: () => zoneLookup(this.membership.state.members),
      coordinatePut: (put) => this.coordinatePut(put),
      onBackgroundError: (error, context) => this.backgroundError(error, context),
    });
    this.handoff = new HintedHandoff({
      storage: this.options.storage,
      replica: this.replica,
      rpc: this.rpc,
      clock: this.clock,
      isUp: (id) => this.detector.isUp(id),
      isMember: (id) => this.membership.addressOf(id) !== undefined,
      intervalMs: this.options.hintedHandoff.intervalMs,
      maxHints: this.options.hintedHandoff.maxHints,
      requestTimeoutMs: this.options.requestTimeoutMs,
      maxObjectBytes,
      onDelivered: (target, count) => this.emit('hint:delivered', { target, count }),
      onError: (error, context) => this.backgroundError(error, context),
      logger: this.logger,
    });
    this.transfer = new PartitionTransfer({
      storage: this.options.storage,
      rpc: this.rpc,
      clock: this.clock,
      requestTimeoutMs: this.options.requestTimeoutMs,
      isUp: (id) => this.detector.isUp(id),
      onProgress: (partition, to, keysSent, total) => {
        this.membership.recordProgress(partition, to, keysSent, total);
        this.emit('handoff:progress', { partition, to, keysSent, total });
      },
      onDone: (task) => this.membership.markDone([task]),
      onError: (error, context) => this.backgroundError(error, context),
      logger: this.logger,
    });
    this.antiEntropy = new AntiEntropy({
      self: this.id,
      storage: this.options.storage,
      replica: this.replica,
      rpc: this.rpc,
      clock: this.clock,
      random: this.random.fork('anti-entropy'),
      partitions: this.options.partitions,
      n: this.options.quorum.n,
      owners: () => this.membership.owners,
      isUp: (id) => this.detector.isUp(id),
      intervalMs: this.options.antiEntropy.intervalMs,
      enabled: this.options.antiEntropy.enabled,
      tombstoneGraceMs: this.options.tombstoneGraceMs,
      requestTimeoutMs: this.options.requestTimeoutMs,
      maxKeyBytes: this.options.limits.maxKeyBytes,
      maxObjectBytes,
      maxClockEntries: this.options.limits.maxClockEntries,
      inFlight: () => this.active,
      onSync: (e) => this.emit('sync:complete', e),
      onError: (error, context) => this.backgroundError(error, context),
      logger: this.logger,
    });
    this.listingService = new ListingService({
      self: this.id,
      partitions: this.options.partitions,
      clock: this.clock,
      rpc: this.rpc,
      owners: () => this.membership.owners,
      primaries: (owners, p) => this.router.primaries(owners, p),
      isUp: (id) => this.detector.isUp(id),
      requestTimeoutMs: this.options.requestTimeoutMs,
      maxKeyBytes: this.options.limits.maxKeyBytes,
      maxObjectBytes,
      local: {
        storage: this.options.storage,
        holds: (p) => this.router.primaries(this.membership.owners, p).includes(this.id),
      },
    });
    this.listing = new KeyListing<V>({
      lister: this.listingService.lister,
      partitions: this.options.partitions,
      maxKeyBytes: this.options.limits.maxKeyBytes,
      requestTimeoutMs: this.options.requestTimeoutMs,
      ensureRunning: () => this.ensureRunning(),
      enter: () => {
        this.active++;
      },
      leave: this.untrack,
      get: (key, options) => this.get(key, options),
    });
    this.importer = new Importer({
      coordinator: this.coordinator,
      router: this.router,
      partitions: this.options.partitions,
      quorum: this.options.quorum,
      maxKeyBytes: this.options.limits.maxKeyBytes,
      maxObjectBytes,
      requestTimeoutMs: this.options.requestTimeoutMs,
      ensureRunning: () => this.ensureRunning(),
      enter: () => {
        this.active++;
      },
      leave: this.untrack,
      checkOwners: (required) => this.checkOwners('import', required),
    });
    this.strays = new StrayData({
      self: this.id,
      partitions: this.options.partitions,
      storage: this.options.storage,
      clock: this.clock,
      holds: (partition) => this.router.holds(partition),
      owners: (partition) => {
        const { owners, pending } = this.membership.state.ring;
        const current = this.router.primaries(owners, partition);
        return pending
          ? [...new Set([...current, ...this.router.primaries(pending.owners, partition)])]
          : current;
      },
      hint: (target, partition, key, object) => this.handoff.store(target, partition, key, object),
      retryMs: this.options.hintedHandoff.intervalMs,
      onMoved: (partition, keys) =>
        this.logger.info(
          { partition, keys },
          'data of a partition this node no longer holds handed to its owners',
        ),
      onError: (error, context) => this.backgroundError(error, context),
    });
    this.admin = new AdminService({
      self: () => ({ id: this.id, address: this.address, status: this.currentStatus }),
      partitions: this.options.partitions,
      n: this.options.quorum.n,
      ringStatus: () => this.ringStatus(),
      stats: () => this.stats(),
      leave: () => this.leave(),
      remove: (id) => this.removeMember(id),
      authenticated: () => this.transport.authenticated === true,
      now: () => this.clock.now(),
      onError: (error, context) => this.backgroundError(error, context),
      data: new DataAdminService({
        partitions: this.options.partitions,
        maxKeyBytes: this.options.limits.maxKeyBytes,
        maxObjectBytes,
        keys: (cursor, limit) => this.keys({ cursor, limit, keyEncoding: 'bytes' }),
        exportPage: (cursor, limit, maxBytes) => this.exportPage({ cursor, limit, maxBytes }),
        importObjects: (records, w) => this.importObjects(records, w === undefined ? {} : { w }),
        authenticated: () => this.transport.authenticated === true,
        self: () => this.id,
      }),
    });
    const limits = this.options.limits;
    this.server = new PeerServer({
      self: this.id,
      partitions: this.options.partitions,
      n: this.options.quorum.n,
      maxKeyBytes: limits.maxKeyBytes,
      maxValueBytes: limits.maxValueBytes,
      maxContextEntries: maxContextEntries(limits),
      maxObjectBytes,
      replica: this.replica,
      handoff: this.handoff,
      router: this.router,
      membership: this.membership,
      antiEntropy: this.antiEntropy,
      incarnation: () => this.incarnation,
      serving: () => this.loaded && this.currentStatus !== 'stopped',
      ensureRunning: () => this.ensureRunning(),
      coordinatePut: (key, partition, value, context, w, timeoutMs, op, ttlMs, minZones) =>
        this.coordinatePut(
          { key, partition, value, context, w, timeoutMs, signal: undefined, op, ttlMs, minZones },
          true,
        ),
      onHintStored: (key, target) => this.emit('hint:stored', { key, target }),
      admin: (message) => this.admin.handle(message),
      list: (message) => this.listingService.handle(message),
    });
    this.types = new TypedStore(
      {
        read: async (key, options) => {
          const { object, context } = await this.operations.read(key, options, 'raw');
          const values: Uint8Array[] = [];
          const live: Sibling[] = [];
          for (const s of object?.siblings ?? []) {
            if (s.value === null) continue;
            values.push(s.value);
            live.push(s);
          }
          return { values, context, ttlMs: remainingTtl(live, this.clock.now()) };
        },
        write: (key, value, options) => this.operations.write('put', key, value, options),
        actor: () => this.actorId,
        storage: this.options.storage,
        clock: this.clock,
        maxValueBytes: limits.maxValueBytes,
        onBackgroundError: (error, context) => this.backgroundError(error, context),
      },
      options.dataTypes,
    );
  }

  // --- data types (src/types): values that merge themselves; no sibling reaches the caller ---

  /** A PN-counter under `key`: `increment(n)`, `decrement(n)`, `value()`. */
  counter(key: Key): CounterHandle {
    return new CounterHandle(this.types, key, 'counter');
  }

  /** An observed-remove set of strings under `key` (add wins): `add(x)`, `remove(x)`, `value()`. */
  set(key: Key): SetHandle {
    return new SetHandle(this.types, key, 'set');
  }

  /** A map of embedded data types under `key`: `update((m) => m.counter('visits').increment())`. */
  map(key: Key): MapHandle {
    return new MapHandle(this.types, key, 'map');
  }

  /** A last-writer-wins register under `key`: `assign(v)`, `value()`. */
  register<T = unknown>(key: Key): RegisterHandle<T> {
    return new RegisterHandle<T>(this.types, key, 'register');
  }

  /** A multi-value register under `key`: concurrent assignments are all kept. */
  mvRegister<T = unknown>(key: Key): MvRegisterHandle<T> {
    return new MvRegisterHandle<T>(this.types, key, 'mvregister');
  }

  /** An enable-wins flag under `key`: `enable()`, `disable()`, `value()`. */
  flag(key: Key): FlagHandle {
    return new FlagHandle(this.types, key, 'flag');
  }

  /** Where peers reach this node (its transport's address). */
  get address(): string {
    return this.transport.address;
  }

  /** `starting`, `running`, `stopping` or `stopped`. */
  get status(): NodeStatus {
    return this.currentStatus;
  }

  /** This node's view of the cluster, itself included. */
  members(): MemberView[] {
    return memberViews(this.membership.state, this.id, (id) => this.detector.isUp(id));
  }

  /** This node's view of the ring: version, settled, claimant, transfers left, members. */
  ringStatus(): RingStatus {
    return ringStatus(
      this.membership.state,
      this.id,
      (id) => this.detector.isUp(id),
      this.membership.openTasks(),
      (task) => this.membership.progressOf(task),
      this.options.quorum.n,
    );
  }

  /**
   * Resolves once this node's ring is settled with this node in it and reachable members have
   * that ring; rejects with TimeoutError after `timeoutMs`, or with the signal's reason.
   */
  async ready(options: ReadyOptions = {}): Promise<void> {
    this.ensureRunning();
    return waitUntilReady(
      this.membership,
      this.id,
      this.clock,
      readyTimeout(options.timeoutMs),
      options.signal,
    );
  }

  /** The nodes a request for `key` goes to, in order. */
  preferenceList(key: Key): PreferenceListEntry[] {
    const bytes = this.operations.keyBytes(key);
    return this.router.route(partitionOf(bytes, this.options.partitions)).list.map((e) => ({
      id: e.id,
      address: this.membership.addressOf(e.id) ?? '',
      kind: e.kind,
    }));
  }

  /** What this node did since it started: requests, siblings, repairs, hints, anti-entropy, bytes. */
  stats(): NodeStats {
    return {
      get: this.recorders.get.snapshot(),
      put: this.recorders.put.snapshot(),
      delete: this.recorders.delete.snapshot(),
      siblings: {
        conflictedReads: this.counters.conflictedReads,
        maxSeen: this.counters.maxSiblings,
        histogram: { ...this.counters.siblingHistogram },
      },
      readRepairs: this.counters.readRepairs,
      forwarded: this.counters.forwarded,
      hints: this.handoff.stats(),
      served: { ...this.server.served },
      antiEntropy: this.antiEntropy.stats(),
      ...(this.transport.stats ? { transport: transportBytes(this.transport.stats()) } : {}),
    };
  }

  /**
   * Every concurrent value of `key` (or the resolver's merge) and a context for the next write;
   * waits for `r` replies.
   */
  get(key: Key, options: GetOptions = {}): Promise<GetResult<V>> {
    return this.operations.get(key, options);
  }

  /**
   * Writes `value`: with `context`, superseding exactly what that context has seen; without, as a
   * sibling of whatever exists. Resolves after `w` durable stores with the caller's context plus
   * this write.
   */
  put(key: Key, value: V, options: PutOptions = {}): Promise<PutResult> {
    return this.operations.put(key, value, options);
  }

  /** Writes a tombstone covering what `context` has seen; without a context, what a read finds. */
  delete(key: Key, options: PutOptions = {}): Promise<PutResult> {
    return this.operations.delete(key, options);
  }

  /** Read, resolve, write back with the read's context: the everyday read-modify-write. */
  update(
    key: Key,
    fn: UpdateFunction<V>,
    options: GetOptions & Omit<PutOptions, 'context'> = {},
  ): Promise<UpdateResult<V>> {
    return this.operations.update(key, fn, options);
  }

  // --- listing and export (src/listing): the whole key space, one replica per partition ---

  /**
   * One page of the cluster's live keys (tombstones and expired values left out), `limit` at most;
   * pass the returned `cursor` to get the next page (undefined: done). See docs/api/listing.md.
   */
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

  /** Every live key with what `get` answers for it (a get per key, `concurrency` at a time). */
  allEntries(options?: EntriesOptions & { keyEncoding?: 'utf8' }): AsyncGenerator<Entry<V, string>>;
  allEntries(options: EntriesOptions & { keyEncoding: 'bytes' }): AsyncGenerator<Entry<V, Uint8Array>>;
  allEntries(options: EntriesOptions = {}): AsyncGenerator<Entry<V, Key>> {
    return this.listing.allEntries(options);
  }

  /** One page of stored objects (tombstones included), for a backup. See docs/operating/backup-and-restore.md. */
  exportPage(options: ExportPageOptions = {}): Promise<ExportPage> {
    return this.listing.exportPage(options);
  }

  /** Every key's stored object, page after page: what `importObjects` restores. */
  exportObjects(
    options: Omit<ExportPageOptions, 'limit'> & { pageSize?: number } = {},
  ): AsyncGenerator<ExportRecord> {
    return this.listing.exportObjects(options);
  }

  /**
   * Merges exported objects into their keys' replicas (the replica merge: idempotent, loses
   * nothing the cluster has, adds no sibling it has seen). See docs/operating/backup-and-restore.md.
   */
  importObjects(
    records: AsyncIterable<ExportRecord> | Iterable<ExportRecord>,
    options: ImportOptions = {},
  ): Promise<ImportResult> {
    return this.importer.importObjects(records, options);
  }

  /** Joins the cluster through `seeds` (a node started without seeds can join one later). */
  async join(seeds: string[] | SeedSource): Promise<void> {
    this.ensureRunning();
    await this.membership.join(seedSource(seeds));
  }

  /**
   * Leaves the cluster: every partition this node holds is streamed to its new owner, the ring
   * switches, and the node stops. The cluster then forgets it.
   */
  async leave(): Promise<void> {
    this.ensureRunning();
    await this.membership.leave();
    await this.transfer.idle();
    await this.stop();
  }

  /**
   * Admin action for a member that is gone for good (dead disk, decommissioned machine): its
   * partitions are reassigned and refilled from the surviving replicas. Down is not removed: a
   * node that is merely unreachable keeps its partitions.
   */
  removeMember(id: string): void {
    this.ensureRunning();
    if (id === this.id) throw new RangeError('a node cannot remove itself: use leave()');
    this.membership.remove(id);
  }

  /** Clean shutdown without leaving: data and membership stay; restart with the same id and storage. */
  async stop(): Promise<void> {
    if (this.currentStatus === 'stopped' || this.currentStatus === 'stopping') return;
    this.setStatus('stopping');
    this.detector.stop();
    this.handoff.stop();
    this.antiEntropy.stop();
    this.transfer.stop();
    this.strays.stop();
    await this.membership.stop();
    await this.transport.stop().catch((err) => this.backgroundError(err, 'stopping transport'));
    // Requests already inside the node finish before storage closes under them.
    while (this.active > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await this.handoff.idle();
    await this.antiEntropy.idle();
    await this.transfer.idle();
    await this.strays.idle();
    await this.dropping;
    this.loaded = false;
    await this.options.storage.close().catch((err) => this.backgroundError(err, 'closing storage'));
    this.releaseStorage();
    this.setStatus('stopped');
  }

  // ---------------------------------------------------------------------------------------------

  /** `start` after construction: `open`, then `ready` if asked, within the start's bound. */
  private async boot(startOptions: StartOptions): Promise<void> {
    const ready = this.options.waitUntilReady;
    const { timeoutMs, signals } = resolveStartOptions(startOptions, ready);
    this.claimStorage();
    // One signal for every phase: the deadline and the callers' signals abort it with the error
    // the start rejects with.
    const bound = new AbortController();
    const timer = this.clock.setTimeout(() => {
      if (!bound.signal.aborted)
        bound.abort(
          new TimeoutError(`node ${this.id} not started after ${timeoutMs} ms: ${this.startProgress()}`),
        );
    }, timeoutMs);
    const removers = signals.map((signal) =>
      onAbort(signal, (reason) => {
        if (!bound.signal.aborted) {
          bound.abort(
            new NotRunningError(`start of node ${this.id} aborted: ${this.startProgress()}`, {
              cause: reason,
            }),
          );
        }
      }),
    );
    try {
      await this.open(bound.signal);
      if (ready) await this.ready({ timeoutMs, signal: bound.signal });
    } catch (err) {
      // Decided before stopping: the deadline may pass while the node stops.
      const failure = bound.signal.aborted ? bound.signal.reason : err;
      await this.stop();
      throw failure;
    } finally {
      timer.cancel();
      for (const remove of removers) remove();
    }
  }

  /** Where a start is, for its timeout's message: the seeds' answers, or what the ring waits for. */
  private startProgress(): string {
    if (!this.loaded) return 'still opening its storage';
    if (!this.membership.inRing) return `not in a cluster yet; seeds: ${this.membership.joinReport()}`;
    return `in the ring but not ready: ${whyNotReady(this.membership)}`;
  }

  private async open(signal: AbortSignal): Promise<void> {
    this.setStatus('starting');
    await loadHasher();
    // The transport first: a port in use fails the start before the storage creates anything
    // on disk. Peers are refused until the state is loaded.
    await this.transport.start((from, payload) => {
      if (this.detector.downCount > 0) this.heardFrom(from);
      return this.track(this.server.handle(from, payload));
    });
    try {
      await this.options.storage.open();
      await this.loadIncarnation();
      const known = await this.membership.load();
      this.loaded = true;
      const seeds = this.options.seeds;
      const alone = Array.isArray(seeds) && seeds.every((s) => s === this.transport.address);
      if (!known) {
        if (alone) this.membership.bootstrap();
        else await this.membership.join(seedSource(seeds), signal);
      } else {
        // A restarted node catches up with changes it missed (best effort; gossip continues).
        await this.membership.refresh(seedSource(seeds), signal);
        // It left or was removed while away: it comes back as a new member, with what its disk
        // holds (StrayData hands what it no longer owns to the owners).
        if (this.membership.member(this.id)?.state !== 'valid' && !this.membership.inRing) {
          // Without seeds it asks the members it knew, or (it never knew any) forms a cluster.
          const others = this.membership.knownAddresses();
          if (!alone) await this.membership.join(seedSource(seeds), signal);
          else if (others.length > 0) await this.membership.join(seedSource(others), signal);
          else this.membership.bootstrap();
        }
      }
      await this.handoff.open();
      if (this.currentStatus !== 'starting') throw new NotRunningError('stopped while starting');
      if (signal.aborted) throw signal.reason;
      this.membership.startGossip();
      this.handoff.start();
      this.antiEntropy.start();
      this.setStatus('running');
      this.strays.start();
    } catch (err) {
      this.loaded = false;
      await this.transport.stop().catch(() => {});
      await this.options.storage.close().catch(() => {});
      this.releaseStorage();
      this.setStatus('stopped');
      throw err;
    }
  }

  /** One storage serves one node: a second node given the same instance is refused at once. */
  private claimStorage(): void {
    const storage = this.options.storage;
    const owner = storageOwners.get(storage);
    if (owner !== undefined) {
      throw new StorageError(
        `node ${this.id}: this storage instance is in use by node ${owner}; give each node its own`,
      );
    }
    storageOwners.set(storage, this.id);
  }

  private releaseStorage(): void {
    if (storageOwners.get(this.options.storage) === this.id) storageOwners.delete(this.options.storage);
  }

  /**
   * The actor in version vectors is the node id plus an incarnation kept in this node's storage
   * and renewed when the storage is empty: a node whose disk was wiped never reuses a dot that
   * other replicas already saw (Riak's kv679 data loss).
   */
  private async loadIncarnation(): Promise<void> {
    const stored = await this.options.storage.get(INCARNATION_KEY);
    let incarnation = stored ? new TextDecoder().decode(stored) : '';
    if (!incarnation) {
      incarnation = `${this.clock.now().toString(36)}${this.random.fork('incarnation').uint32().toString(36)}`;
      await this.options.storage.batch(
        [{ type: 'put', key: INCARNATION_KEY, value: utf8.encode(incarnation) }],
        {
          sync: true,
        },
      );
    }
    this.incarnation = incarnation;
    this.actorId = `${this.id}@${incarnation}`;
  }

  /**
   * Coordinates here when this node is a primary replica of the key, else forwards to the first
   * primary that answers. Only when no primary can be reached does a fallback coordinate (its
   * hint object then writes as an actor of its own; see Replica.coordinate). `forwarded`: another
   * node forwarded the put here, so this node coordinates or refuses.
   */
  private coordinatePut(put: PutRequest, forwarded = false): Promise<PutResult> {
    const routing = this.router.route(put.partition);
    const mine = routing.list.find((e) => e.id === this.id);
    if (mine?.kind === 'primary' || (mine && forwarded)) return this.putHere(put, routing);
    if (forwarded) return Promise.reject(new TransportError(`${this.id} is not a replica of this key`));
    // A forward that times out may still be applied, and the next coordinator asked then makes a
    // second copy under its own dot; one operation id makes the copies one write (object.ts opKey).
    const op = put.op ?? this.newOp();
    return this.forwardPut({ ...put, op }, routing);
  }

  private putHere(put: PutRequest, routing: Routing): Promise<PutResult> {
    return this.coordinator
      .put(put, routing)
      .then((version): PutResult => ({ context: encodeContext(version.context) }));
  }

  /**
   * Asks the key's replicas in turn to coordinate: primaries, then fallbacks (sloppy quorum), this
   * node too when its turn comes. After a failure the routing is computed afresh, so a peer that
   * just failed (now believed down) is replaced by its stand-in.
   */
  private async forwardPut(put: PutRequest & { op: string }, first: Routing): Promise<PutResult> {
    this.counters.forwarded++;
    const { key, value, context, w, timeoutMs, signal, op, ttlMs } = put;
    const failures: { node: string; reason: string }[] = [];
    const asked = new Set<string>();
    let routing = first;
    for (let entry = this.nextCoordinator(routing, put, asked); entry; ) {
      if (entry.id === this.id) return this.putHere(put, routing);
      asked.add(entry.id);
      try {
        const reply = await this.rpc.call(
          entry.id,
          [
            MessageType.CoordinatePut,
            key,
            value,
            encodeContext(context),
            w,
            timeoutMs,
            op,
            ttlMs ?? null,
            ...(put.minZones === undefined ? [] : [put.minZones]),
          ],
          timeoutMs,
          signal,
        );
        return { context: asString(reply[0], 'context') };
      } catch (err) {
        if (
          err instanceof RemoteError &&
          err.code !== 'DYNAMO_TRANSPORT' &&
          err.code !== 'DYNAMO_NOT_RUNNING'
        ) {
          throw rebuildRemoteError(err, value === null ? 'delete' : 'put');
        }
        failures.push({ node: entry.id, reason: err instanceof DynamoError ? err.code : String(err) });
        if (signal?.aborted) throw signal.reason;
        // A coordinator that timed out may still apply the write; asking the next one keeps the
        // put available, and the shared op id keeps the two copies one write.
        routing = this.router.route(put.partition);
        entry = this.nextCoordinator(routing, put, asked);
      }
    }
    throw new QuorumError(value === null ? 'delete' : 'put', w, 0, failures);
  }

  /**
   * The next replica to ask to coordinate a forwarded put, not in `asked`: primaries before
   * fallbacks (or latency-aware order), and never a peer the failure detector believes down while
   * a healthy candidate is left (the routing lists such peers only when too few healthy nodes are).
   */
  private nextCoordinator(
    routing: Routing,
    put: PutRequest,
    asked: ReadonlySet<string>,
  ): Routing['list'][number] | undefined {
    const list = routing.list;
    const ordered = this.latency
      ? this.latency.coordinators(list, put.key, put.context)
      : [...list.filter((e) => e.kind === 'primary'), ...list.filter((e) => e.kind !== 'primary')];
    let down: Routing['list'][number] | undefined;
    for (const e of ordered) {
      if (asked.has(e.id)) continue;
      if (e.id === this.id || this.detector.isUp(e.id)) return e;
      down ??= e;
    }
    return down;
  }

  /** A request came from `address`: a member believed down is probed at once (see FailureDetector). */
  private heardFrom(address: string): void {
    const state = this.membership.state;
    if (this.addressIndex.state !== state) {
      this.addressIndex = { state, ids: new Map(state.members.map((m) => [m.address, m.id])) };
    }
    const id = this.addressIndex.ids.get(address);
    if (id !== undefined && id !== this.id) this.detector.heardFrom(id);
  }
  /** Member ids by address, for the cluster state they were read from. */
  private addressIndex: { state: ClusterState | undefined; ids: Map<string, string> } = {
    state: undefined,
    ids: new Map(),
  };

  /** A fresh operation id: 48 bits, 8 characters (it is kept in version vectors). */
  private newOp(): string {
    return newOpId(this.actorId, this.random);
  }

  private onMembershipChange(before: ClusterState, after: ClusterState): void {
    const was = new Map(before.members.map((m) => [m.id, m.state]));
    if (before.members !== after.members) {
      // A member that moved (restarted elsewhere, or replaced) is tried at its new address at once:
      // being down at the old one says nothing about the new one.
      const addresses = new Map(before.members.map((m) => [m.id, m.address]));
      for (const m of after.members) {
        const old = addresses.get(m.id);
        if (old !== undefined && old !== m.address) this.detector.forget(m.id);
      }
    }
    for (const m of after.members) {
      if (m.state === 'valid' && was.get(m.id) !== 'valid' && m.id !== this.id) {
        this.emit('member:join', { id: m.id, address: m.address });
      }
      if (m.state === 'removed' && was.get(m.id) !== 'removed') this.emit('member:leave', { id: m.id });
    }
    if (after.ring.version !== this.lastRingVersion) {
      this.lastRingVersion = after.ring.version;
      this.emit('ring:change', { version: after.ring.version, owners: after.ring.owners });
    }
    this.checkZones(after);
    // Streams this node owes the rebalance in progress.
    this.transfer.assign(this.membership.openTasks().filter((t) => t.source === this.id));
    // A finished rebalance took partitions away: drop their data (the new owners have it).
    if (
      before.ring.owners !== after.ring.owners &&
      before.ring.owners.length > 0 &&
      after.ring.pending === null &&
      this.currentStatus !== 'starting'
    ) {
      const kept = heldPartitions(after.ring.owners, this.options.quorum.n, this.id);
      const lost = [...heldPartitions(before.ring.owners, this.options.quorum.n, this.id)].filter(
        (k) => !kept.has(k),
      );
      if (lost.length > 0) this.dropping = this.dropping.then(() => this.dropPartitions(lost));
    }
  }

  /** Reports (event and log) a ring that leaves keys without enough zones; quiet while nothing changes. */
  private checkZones(state: ClusterState): void {
    if (state.ring.owners.length === 0) return;
    const zones = zoneStatus(state, this.options.quorum.n);
    const key = zones ? `${state.ring.version}:${zones.violations}:${zones.list.length}` : '';
    if (key === this.lastZoneReport) return;
    this.lastZoneReport = key;
    if (!zones || zones.violations === 0) return;
    const e = {
      version: state.ring.version,
      violations: zones.violations,
      required: zones.required,
      zones: zones.list.length,
    };
    this.logger.warn(e, 'zone guarantee not met: some keys have replicas in fewer zones than required');
    this.emit('zone:violation', e);
  }

  private async dropPartitions(partitions: number[]): Promise<void> {
    try {
      for (const k of partitions) {
        if (this.currentStatus === 'stopped') return;
        for (;;) {
          const keys: Uint8Array[] = [];
          for await (const [key] of this.options.storage.iterate({ ...dataRange(k), limit: 512 }))
            keys.push(key);
          if (keys.length === 0) break;
          await this.options.storage.batch(keys.map((key) => ({ type: 'del' as const, key })));
        }
      }
    } catch (err) {
      this.backgroundError(err as Error, 'dropping partitions handed to new owners');
    }
  }

  private recordSiblings(key: Key, count: number): void {
    const h = this.counters.siblingHistogram;
    h[count] = (h[count] ?? 0) + 1;
    if (count > this.counters.maxSiblings) this.counters.maxSiblings = count;
    if (count > 1) {
      this.counters.conflictedReads++;
      this.emit('conflict', { key, siblings: count });
    }
  }

  private maxObjectBytes(): number {
    const l = this.options.limits;
    return l.maxSiblings * (l.maxValueBytes + 1024) + OBJECT_OVERHEAD_BYTES;
  }

  /** QuorumError saying why, before anything is sent, when too few nodes own partitions. */
  private checkOwners(operation: 'get' | 'put' | 'delete' | 'import', required: number): void {
    const reason = tooFewOwners(this.membership.state, this.options.quorum.n, required);
    if (reason !== undefined) throw new QuorumError(operation, required, 0, [], { reason });
  }

  private ensureRunning(): void {
    if (this.currentStatus !== 'running')
      throw new NotRunningError(`node ${this.id} is ${this.currentStatus}`);
  }

  private setStatus(status: NodeStatus): void {
    this.currentStatus = status;
    this.emit('status', { status });
  }

  /** Keeps a handle on work in progress so stop() can wait for it. */
  private track<T>(promise: Promise<T>): Promise<T> {
    this.active++;
    promise.then(this.untrack, this.untrack);
    return promise;
  }

  private readonly untrack = (): void => {
    if (--this.active > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  };

  /** The event costs nothing (no payload object) while nobody listens. */
  private requestComplete(op: 'get' | 'put' | 'delete', durationMs: number, ok: boolean): void {
    if (this.listenerCount('request:complete') > 0) this.emit('request:complete', { op, durationMs, ok });
  }

  private backgroundError(error: Error, context: string): void {
    this.logger.warn({ err: error, context }, context);
    // eventemitter3 does not throw on an unhandled 'error' event, so emitting is always safe.
    this.emit('error', { error, context });
  }
}

/** Only the byte counters: a transport's stats may carry much more (see TcpTransportStats). */
function transportBytes({ bytesSent, bytesReceived }: TransportByteStats): TransportByteStats {
  return { bytesSent, bytesReceived };
}
