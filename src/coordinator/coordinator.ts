/**
 * Request coordination (Dynamo § 4.5, 5): a get asks every replica of the preference list and
 * answers after R replies, merging what it got; a put makes the new dotted version locally,
 * replicates it and answers after W durable stores. Read repair runs after the answer, once every
 * replica has replied or timed out.
 */
import { QuorumError, TimeoutError } from '../errors.js';
import type { ReadHandler, Replica, WrittenVersion } from '../replica/replica.js';
import { equalBytes } from '../replica/replica.js';
import type { PreferenceEntry } from '../ring/index.js';
import { type Rpc, type RpcReplyHandler, reasonOf } from '../transport/rpc.js';
import { asBytesOrNull, MessageType } from '../transport/wire.js';
import { onAbort } from '../util/abort.js';
import type { Clock } from '../util/clock.js';
import { RequestTimeouts, type TimeoutBatch, type TimeoutLinks } from '../util/timeouts.js';
import {
  type CheckedObject,
  type Context,
  decodeObject,
  encodeObject,
  expire,
  sync,
  type VersionedObject,
} from '../versioning/index.js';
import type { HedgePlan } from './latency.js';
import { QuorumTracker } from './quorum.js';

export interface CoordinatorDeps {
  self: string;
  actor: () => string;
  clock: Clock;
  /** This node's replica (a DynamoClient has none: it is never in a routing list). */
  replica: Pick<Replica, 'readWith' | 'merge' | 'coordinate'>;
  rpc: Rpc;
  requestTimeoutMs: number;
  readRepair: boolean;
  maxObjectBytes: number;
  onReadRepair: (key: Uint8Array, replicas: string[]) => void;
  onBackgroundError: (error: Error, context: string) => void;
  /** Members' zones (undefined: no member has one), for puts with `minZones`. */
  zoneOf?: () => ((id: string) => string | undefined) | undefined;
}

/** Where a request for one partition goes. */
export interface Routing {
  /** Replicas to ask, in order (primaries, or fallbacks standing in for down primaries). */
  list: readonly PreferenceEntry[];
  /** Primaries known down for which no fallback was found: they count as failed from the start. */
  unavailable: readonly string[];
  /**
   * Sloppy quorum only: the next healthy node on the ring not in `exclude`, to stand in for a
   * replica that failed during this request.
   */
  nextFallback?: (exclude: ReadonlySet<string>, failed?: ReadonlySet<string>) => string | undefined;
  /** Writes also go here, without counting towards W (nodes gaining the partition in a rebalance). */
  extra?: readonly PreferenceEntry[];
}

export interface ReadResult {
  /** Merge of the replies received (undefined: no replica has the key). */
  object: VersionedObject | undefined;
  /** The replica that answered first (the preferred coordinator of a put that follows). */
  first: string | undefined;
}

interface Reply {
  entry: PreferenceEntry;
  bytes: Uint8Array | undefined;
}

/** A put this node coordinates, between `Coordinator.put` and `replicate`. */
interface LocalPut {
  key: Uint8Array;
  partition: number;
  routing: Routing;
  /** This node's entry in the routing list. */
  mine: PreferenceEntry;
  value: Uint8Array | null;
  w: number;
  /** Acknowledgements must come from at least this many distinct zones (1: no zone condition). */
  minZones: number;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  /** The local store: settles once the version is durable here. */
  stored?: Promise<unknown>;
  /** Its fan-out, once the version is made and replicated. */
  run?: FanOutRun;
  resolve(version: WrittenVersion): void;
  reject(error: unknown): void;
}

/**
 * A put's `timeoutMs`, counted from the put's start: the fan-out's own timeout starts only once
 * the version is made, after the key's lock and the local storage read, which can take long (a
 * queue of writes to one key, a storage that stopped answering).
 */
class PutDeadline implements TimeoutLinks<PutDeadline> {
  timeoutBatch: TimeoutBatch<PutDeadline> | undefined = undefined;
  timeoutPrev: PutDeadline | undefined = undefined;
  timeoutNext: PutDeadline | undefined = undefined;
  constructor(
    readonly put: LocalPut,
    readonly self: string,
  ) {}

  expired(): void {
    const { put } = this;
    // Replicating: the fan-out's error says which replicas answered.
    if (put.run) {
      put.run.timedOut();
      return;
    }
    const operation = put.value === null ? 'delete' : 'put';
    put.reject(
      new QuorumError(operation, put.w, 0, [{ node: this.self, reason: 'DYNAMO_TIMEOUT' }], {
        cause: new TimeoutError(`${operation} timed out before its version was made`),
      }),
    );
  }
}

interface FanOut<R> {
  operation: 'get' | 'put' | 'delete' | 'import';
  routing: Routing;
  required: number;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  /** Replicas that already acknowledged (a doomed put's own store, see `put`). */
  acked?: readonly string[];
  /**
   * Asks one replica and tells `ask` how it went: the local replica's promise through `ask.await`,
   * a peer through `rpc.callWith(..., ask)` (no promise of its own per replica).
   */
  send: (entry: PreferenceEntry, ask: Ask) => void;
  /** A peer's reply fields as R (throws on a malformed reply: the replica counts as failed). */
  decode?: (fields: unknown[]) => R;
  onReply: (entry: PreferenceEntry, reply: R) => void;
  /** Keep replacing failed replicas with fallbacks after the quorum is met (writes: N copies). */
  fallbackAfterQuorum: boolean;
  /** Runs once every replica asked has answered or failed. */
  onAllSettled?: () => void;
  /** Latency-aware reads: ask only the first replicas at once, the others later (see HedgePlan). */
  hedge?: HedgePlan;
  /** Puts: the acknowledgements must also span this many zones (counted like W). */
  minZones?: number;
  zoneOf?: (id: string) => string | undefined;
}

/** A put as a coordinator runs it: the key's bytes and partition, the encoded value and the rest. */
export interface PutRequest {
  /** The key, as bytes. */
  key: Uint8Array;
  /** The key's partition. */
  partition: number;
  /** The encoded value; null for a delete's tombstone. */
  value: Uint8Array | null;
  /** What the caller's context covers (empty without one). */
  context: Context;
  /** Durable stores to wait for. */
  w: number;
  /** Whole-operation timeout, ms. */
  timeoutMs: number;
  /** Aborts the put. */
  signal: AbortSignal | undefined;
  /** Operation id: the caller's `requestId`, or made for a forwarded put (which may reach several coordinators). */
  op: string | undefined;
  /** The value expires this long after the coordinator's clock at write time (a put's `ttlMs`). */
  ttlMs: number | undefined;
  /** Acknowledgements must span this many zones (absent: 1, no zone condition). */
  minZones?: number;
}

export class Coordinator {
  /** Operation timeouts: one shared timer per turn, not one per request (see RequestTimeouts). */
  private readonly timeouts: RequestTimeouts<FanOutRun>;
  /** Hedge delays of latency-aware reads, the same way: a shared timer per turn and delay. */
  private readonly hedges: RequestTimeouts<HedgeWait>;
  /** Puts coordinated here, from their start (see PutDeadline). */
  private readonly deadlines: RequestTimeouts<PutDeadline>;

  constructor(private readonly deps: CoordinatorDeps) {
    this.timeouts = new RequestTimeouts<FanOutRun>(deps.clock, (run) => run.timedOut());
    this.hedges = new RequestTimeouts<HedgeWait>(deps.clock, (wait) => wait.run.hedgeNow());
    this.deadlines = new RequestTimeouts<PutDeadline>(deps.clock, (deadline) => deadline.expired());
  }

  get(
    key: Uint8Array,
    partition: number,
    routing: Routing,
    r: number,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    hedge?: HedgePlan,
  ): Promise<ReadResult> {
    const read = new ReadFanOut(this.deps, this, key, partition, routing, r, timeoutMs, signal, hedge);
    return this.fanOut(read, () => read.answer());
  }

  /**
   * Coordinates a put on this node, which must be in the routing list. The new version depends on
   * the local object, so it is made here first; it goes to the other replicas as soon as it exists,
   * while the local write is under way, and the local store counts towards W once durable like
   * any other. `request.op` is the write's operation id when it may reach other coordinators too
   * (see `Replica.coordinate`).
   */
  put(request: PutRequest, routing: Routing): Promise<WrittenVersion> {
    const { key, partition, value, context, w, timeoutMs, signal, op, ttlMs, minZones = 1 } = request;
    const mine = routing.list.find((e) => e.id === this.deps.self);
    if (!mine) return Promise.reject(new RangeError('put: the coordinator must be in the preference list'));
    // One promise for the whole put, settled by the fan-out (callbacks, not an async function).
    return new Promise<WrittenVersion>((resolve, reject) => {
      let made = false;
      const put: LocalPut = {
        key,
        partition,
        routing,
        mine,
        value,
        w,
        minZones,
        timeoutMs,
        signal,
        resolve: (version) => {
          this.deadlines.remove(deadline);
          resolve(version);
        },
        reject: (error) => {
          this.deadlines.remove(deadline);
          reject(error);
        },
      };
      const deadline = new PutDeadline(put, this.deps.self);
      this.deadlines.add(deadline, timeoutMs);
      put.stored = this.deps.replica.coordinate(
        partition,
        key,
        context,
        this.deps.actor(),
        value,
        this.deps.clock.now(),
        mine.hintFor ?? null,
        // Replicated a microtask after it is made (as an `await` would), outside the replica's step.
        (version) => {
          made = true;
          queueMicrotask(() => {
            try {
              this.replicate(put, version);
            } catch (err) {
              put.reject(err);
            }
          });
        },
        op,
        ttlMs,
      );
      // Until the version is made its failure is the put's (maxSiblings, a storage read); after, it
      // is the local replica's, which the fan-out counts.
      put.stored.catch((err: unknown) => {
        if (!made) put.reject(err);
      });
    });
  }

  /** The second half of `put`: the version made goes to every replica; W acknowledgements awaited. */
  private replicate(put: LocalPut, version: WrittenVersion): void {
    const self = this.deps.self;
    const { key, partition, routing, mine, w, timeoutMs } = put;
    const stored = put.stored!;
    const entries = [[key, version.bytes]];
    const perRequestMs = Math.min(this.deps.requestTimeoutMs, timeoutMs);
    for (const entry of routing.extra ?? []) {
      if (entry.id === self) continue;
      this.deps.rpc
        .call(entry.id, [MessageType.Store, partition, null, entries], perRequestMs)
        .catch((err) => this.deps.onBackgroundError(err as Error, `write to gaining node ${entry.id}`));
    }
    const fanOut = (doomed: boolean) => {
      put.run = this.startFanOut<unknown, WrittenVersion>(
        {
          operation: put.value === null ? 'delete' : 'put',
          routing: doomed ? { ...routing, list: routing.list.filter((e) => e !== mine) } : routing,
          required: w,
          timeoutMs,
          signal: put.signal,
          acked: doomed ? [self] : [],
          send: (entry, ask) => {
            if (entry === mine) ask.await(stored);
            else
              this.deps.rpc.callWith(
                entry.id,
                [MessageType.Store, partition, entry.hintFor ?? null, entries],
                perRequestMs,
                ask,
              );
          },
          onReply: () => {},
          fallbackAfterQuorum: true,
          ...(put.minZones > 1 ? { minZones: put.minZones, zoneOf: this.deps.zoneOf?.() ?? noZone } : {}),
        },
        () => version,
        put.resolve,
        put.reject,
      );
    };
    // When the listed replicas cannot make W (the others known down, strict quorum), the put fails
    // at once; its own store is awaited first so that the QuorumError counts it.
    if (routing.list.length < w) stored.then(() => fanOut(true), put.reject);
    else fanOut(false);
  }

  /**
   * Merges an existing version (an imported object, bytes checked) into the key's replicas with
   * the replica merge, as read repair and hints do, and resolves once `w` of them stored it. No
   * new version is made: the merge keeps what each replica has that the object has not seen, and
   * adds nothing the replica has seen already, so storing the same object twice changes nothing.
   */
  store(
    key: Uint8Array,
    partition: number,
    routing: Routing,
    object: CheckedObject,
    w: number,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const { self, replica, rpc, requestTimeoutMs } = this.deps;
    const perRequestMs = Math.min(requestTimeoutMs, timeoutMs);
    const entries = [[key, object.bytes]];
    for (const entry of routing.extra ?? []) {
      if (entry.id === self) continue;
      rpc
        .call(entry.id, [MessageType.Store, partition, null, entries], perRequestMs)
        .catch((err) => this.deps.onBackgroundError(err as Error, `import to gaining node ${entry.id}`));
    }
    return this.fanOut<unknown, void>(
      {
        operation: 'import',
        routing,
        required: w,
        timeoutMs,
        signal,
        send: (entry, ask) => {
          const hintFor = entry.hintFor ?? null;
          if (entry.id === self) ask.await(replica.merge(partition, key, object, hintFor));
          else rpc.callWith(entry.id, [MessageType.Store, partition, hintFor, entries], perRequestMs, ask);
        },
        onReply: () => {},
        fallbackAfterQuorum: true,
      },
      () => undefined,
    );
  }

  /**
   * Sends to every replica of the routing, counts acknowledgements, replaces a replica that
   * fails with the next healthy node (sloppy quorum), and settles as soon as the outcome is
   * known: met, impossible, timed out or aborted. Resolves to what `answer` makes of the replies
   * once the quorum is met (one promise per operation: no async layer around it).
   */
  private fanOut<R, T>(f: FanOut<R>, answer: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => this.startFanOut(f, answer, resolve, reject));
  }

  /** `fanOut` settling the caller's own promise. */
  private startFanOut<R, T>(
    f: FanOut<R>,
    answer: () => T,
    resolve: (answer: T) => void,
    reject: (error: unknown) => void,
  ): FanOutRun {
    // The answer is made a microtask after the quorum is met, as an `await` of the fan-out
    // would: replies that arrive in the same turn (a batch of replies from one peer, the
    // deliveries of one network drain) are folded in too.
    const make = () => {
      try {
        resolve(answer());
      } catch (err) {
        reject(err);
      }
    };
    const met = () => queueMicrotask(make);
    // FanOutRun only hands what `f.send` resolved to back to `f.onReply`, so R need not be kept.
    const run = new FanOutRun(f as FanOut<unknown>, this.timeouts, this.hedges, met, reject);
    run.start();
    return run;
  }

  /** Sends the merged object to every replica that answered with something older or nothing. */
  repair(key: Uint8Array, partition: number, replies: Reply[], merge: RepliesMerge): void {
    let merged: MergedReplies | undefined;
    try {
      merged = merge.fold(replies, this.deps.clock.now());
    } catch (err) {
      this.deps.onBackgroundError(err as Error, 'read repair: corrupt replica object');
      return;
    }
    if (!merged) return;
    const { object, bytes } = merged;
    const isStale = (r: Reply) => !r.bytes || !equalBytes(r.bytes, bytes);
    if (!replies.some(isStale)) return;
    const stale = replies.filter(isStale).map((r) => r.entry);
    this.deps.onReadRepair(
      key,
      stale.map((e) => e.id),
    );
    for (const entry of stale) {
      // Merge, not overwrite, at the replica: a repair can never replace a newer version.
      const work =
        entry.id === this.deps.self
          ? this.deps.replica.merge(partition, key, object, entry.hintFor ?? null)
          : this.deps.rpc.call(
              entry.id,
              [MessageType.Store, partition, entry.hintFor ?? null, [[key, bytes]]],
              this.deps.requestTimeoutMs,
            );
      work.catch((err) => this.deps.onBackgroundError(err as Error, `read repair of ${entry.id}`));
    }
  }
}

/** Without zones the whole cluster is one zone. */
const noZone = (): string | undefined => undefined;

/**
 * A get's side of its fan-out: one object per get holding what its callbacks share, rather than a
 * closure for each (every get makes one).
 */
class ReadFanOut implements FanOut<Uint8Array | undefined> {
  readonly operation = 'get';
  readonly fallbackAfterQuorum = false;
  readonly acked = undefined;
  private readonly replies: Reply[] = [];
  private readonly merged = new RepliesMerge();
  private readonly perRequestMs: number;

  constructor(
    private readonly deps: CoordinatorDeps,
    private readonly coordinator: Coordinator,
    private readonly key: Uint8Array,
    private readonly partition: number,
    readonly routing: Routing,
    readonly required: number,
    readonly timeoutMs: number,
    readonly signal: AbortSignal | undefined,
    readonly hedge: HedgePlan | undefined,
  ) {
    this.perRequestMs = Math.min(deps.requestTimeoutMs, timeoutMs);
  }

  send(entry: PreferenceEntry, ask: Ask): void {
    const hintFor = entry.hintFor ?? null;
    if (entry.id === this.deps.self) this.deps.replica.readWith(this.partition, this.key, hintFor, ask);
    else
      this.deps.rpc.callWith(
        entry.id,
        [MessageType.Read, this.key, this.partition, hintFor],
        this.perRequestMs,
        ask,
        this.signal,
      );
  }

  decode(reply: unknown[]): Uint8Array | undefined {
    return asBytesOrNull(reply[0], 'object', this.deps.maxObjectBytes) ?? undefined;
  }

  onReply(entry: PreferenceEntry, bytes: Uint8Array | undefined): void {
    this.replies.push({ entry, bytes });
  }

  onAllSettled(): void {
    if (this.deps.readRepair) this.coordinator.repair(this.key, this.partition, this.replies, this.merged);
  }

  /** Once R replied: a corrupt reply throws here, and the get rejects with it. */
  answer(): ReadResult {
    return {
      object: this.merged.fold(this.replies, this.deps.clock.now())?.object,
      first: this.replies[0]?.entry.id,
    };
  }
}

/**
 * One fan-out in progress (see `Coordinator.fanOut`): one object holding what its callbacks
 * share, rather than a closure for each, as every get and put makes one.
 */
class FanOutRun implements TimeoutLinks<FanOutRun> {
  timeoutBatch: TimeoutBatch<FanOutRun> | undefined = undefined;
  timeoutPrev: FanOutRun | undefined = undefined;
  timeoutNext: FanOutRun | undefined = undefined;
  private readonly tracker: QuorumTracker;
  private settled = false;
  private outstanding = 0;
  /** Replicas asked that have not answered: who a timeout blames. */
  private readonly waiting: string[] = [];
  /** Who was asked already: needed only to pick a fallback, so built on the first failure. */
  private tried: Set<string> | undefined;
  private removeAbort: (() => void) | undefined;
  /** Hedged reads: the next entry of the routing list not asked yet, and the hedge wait. */
  private held: number;
  private hedgeWait: HedgeWait | undefined;

  constructor(
    private readonly f: FanOut<unknown>,
    private readonly timeouts: RequestTimeouts<FanOutRun>,
    private readonly hedges: RequestTimeouts<HedgeWait>,
    private readonly resolve: () => void,
    private readonly reject: (error: unknown) => void,
  ) {
    const { list, unavailable } = f.routing;
    const acked = f.acked ?? [];
    this.tracker = new QuorumTracker(f.required, acked.length + list.length + unavailable.length);
    for (const id of acked) this.tracker.ack(id);
    for (const id of unavailable) this.tracker.fail(id, 'down');
    this.held = f.hedge ? Math.min(f.hedge.first, list.length) : list.length;
  }

  start(): void {
    if (this.f.signal) this.removeAbort = onAbort(this.f.signal, (reason) => this.finish(reason));
    const list = this.f.routing.list;
    for (let i = 0; i < this.held; i++) this.launch(list[i]!);
    const hedge = this.f.hedge;
    if (hedge && this.held < list.length) {
      // Whole ms, so that reads of one turn with one delay share a timer.
      this.hedgeWait = new HedgeWait(this);
      this.hedges.add(this.hedgeWait, Math.max(1, Math.ceil(hedge.delayMs)));
    }
    this.check();
    if (this.outstanding === 0) this.f.onAllSettled?.();
    if (!this.settled) this.timeouts.add(this, this.f.timeoutMs);
  }

  /** The hedge delay passed: ask the held-back replicas, if the budget allows. */
  hedgeNow(): void {
    const list = this.f.routing.list;
    if (!this.settled && this.f.hedge!.allow())
      while (this.held < list.length) this.launch(list[this.held++]!);
  }

  timedOut(): void {
    const t = this.tracker;
    const failures = [...t.failures, ...this.waiting.map((node) => ({ node, reason: 'DYNAMO_TIMEOUT' }))];
    const operation = this.f.operation;
    this.finish(
      new QuorumError(operation, t.required, t.acked.length, failures, {
        cause: new TimeoutError(`${operation} timed out`),
        ...this.zoneDetail(),
      }),
    );
  }

  /**
   * With `minZones`: whether the zones of the replicas that acknowledged are enough ('met'), can
   * still become enough with those still asked ('pending'), or cannot ('failed').
   */
  private zoneOutcome(): 'met' | 'pending' | 'failed' {
    const { minZones, zoneOf } = this.f;
    const acked = new Set(this.tracker.acked.map((id) => zoneOf!(id)));
    if (acked.size >= minZones!) return 'met';
    for (const id of this.waiting) acked.add(zoneOf!(id));
    return acked.size >= minZones! ? 'pending' : 'failed';
  }

  /** The QuorumError fields of a minZones put: zones needed, zones that acknowledged. */
  private zoneDetail(): { requiredZones?: number; zones?: string[] } {
    const { minZones, zoneOf } = this.f;
    if (minZones === undefined) return {};
    const zones = [...new Set(this.tracker.acked.map((id) => zoneOf!(id) ?? ''))].sort();
    return { requiredZones: minZones, zones };
  }

  private launch(entry: PreferenceEntry): void {
    this.outstanding++;
    this.waiting.push(entry.id);
    this.f.send(entry, new Ask(this, entry));
  }

  /** A peer's reply fields, decoded as the fan-out's replies are. */
  repliedFields(entry: PreferenceEntry, fields: unknown[]): void {
    if (!this.f.decode) {
      this.replied(entry, fields);
      return;
    }
    let reply: unknown;
    try {
      reply = this.f.decode(fields);
    } catch (err) {
      this.failed(entry, err);
      return;
    }
    this.replied(entry, reply);
  }

  replied(entry: PreferenceEntry, reply: unknown): void {
    this.f.onReply(entry, reply);
    this.tracker.ack(entry.id);
    this.done(entry);
  }

  failed(entry: PreferenceEntry, err: unknown): void {
    const { list, unavailable, nextFallback } = this.f.routing;
    let fallback: string | undefined;
    if (this.held < list.length && !this.settled) {
      // A replica held back by a hedged read replaces the failed one before any fallback.
      this.tracker.fail(entry.id, reasonOf(err));
      this.launch(list[this.held++]!);
      this.done(entry);
      return;
    }
    if (nextFallback && (!this.settled || this.f.fallbackAfterQuorum)) {
      this.tried ??= new Set([...(this.f.acked ?? []), ...list.map((e) => e.id), ...unavailable]);
      // The replicas that failed: with zones, a fallback is chosen from a zone the others lack.
      const failed = new Set(this.tracker.failures.map((f) => f.node)).add(entry.id);
      fallback = nextFallback(this.tried, failed);
      if (fallback !== undefined) this.tried.add(fallback);
    }
    if (fallback !== undefined) {
      this.tracker.extend();
      this.launch({ id: fallback, kind: 'fallback', hintFor: entry.hintFor ?? entry.id });
    }
    this.tracker.fail(entry.id, reasonOf(err));
    this.done(entry);
  }

  private done(entry: PreferenceEntry): void {
    // In place (splice would allocate an array of the removed element on every reply).
    const w = this.waiting;
    const at = w.indexOf(entry.id);
    if (at >= 0) {
      for (let i = at; i < w.length - 1; i++) w[i] = w[i + 1]!;
      w.pop();
    }
    this.check();
    if (--this.outstanding === 0) this.f.onAllSettled?.();
  }

  private check(): void {
    const t = this.tracker;
    let outcome = t.outcome;
    if (this.f.minZones !== undefined && outcome !== 'failed') {
      // minZones counts like W: the put waits for both, and fails once either is out of reach.
      const zones = this.zoneOutcome();
      if (zones === 'failed') outcome = 'failed';
      else if (zones === 'pending') outcome = 'pending';
    }
    if (outcome === 'met') this.finish(undefined);
    else if (outcome === 'failed')
      this.finish(
        new QuorumError(this.f.operation, t.required, t.acked.length, t.failures, this.zoneDetail()),
      );
  }

  private finish(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.timeouts.remove(this);
    if (this.hedgeWait) this.hedges.remove(this.hedgeWait);
    this.removeAbort?.();
    if (error) this.reject(error);
    else this.resolve();
  }
}

/** One replica asked by a fan-out: hears its answer (an RpcReplyHandler for peers, a ReadHandler for the local replica). */
class Ask implements RpcReplyHandler, ReadHandler {
  constructor(
    private readonly run: FanOutRun,
    private readonly entry: PreferenceEntry,
  ) {}

  /** The local replica's answer, as a promise. */
  await(answer: Promise<unknown>): void {
    answer.then(
      (reply) => this.run.replied(this.entry, reply),
      (err: unknown) => this.run.failed(this.entry, err),
    );
  }

  replied(fields: unknown[]): void {
    this.run.repliedFields(this.entry, fields);
  }

  read(bytes: Uint8Array | undefined): void {
    this.run.replied(this.entry, bytes);
  }

  failed(error: unknown): void {
    this.run.failed(this.entry, error);
  }
}

/** A hedged read waiting for its hedge delay (tracked by RequestTimeouts, which links it). */
class HedgeWait implements TimeoutLinks<HedgeWait> {
  timeoutBatch: TimeoutBatch<HedgeWait> | undefined = undefined;
  timeoutPrev: HedgeWait | undefined = undefined;
  timeoutNext: HedgeWait | undefined = undefined;
  constructor(readonly run: FanOutRun) {}
}

type MergedReplies = { object: VersionedObject; bytes: Uint8Array };

/**
 * Merge of the objects replicas returned, with its canonical encoding, folded in as replies
 * arrive: a get merges its first R replies for its answer, read repair folds in the rest. Replicas
 * usually agree, so a reply byte-equal to the merge so far is neither decoded nor merged, and the
 * merge is encoded only when it differs from every reply (once, when first asked for). Values that
 * expired by the coordinator's clock are turned into tombstones in the merge (`expire`), so the
 * answer leaves them out and read repair carries the tombstones to the replicas.
 */
class RepliesMerge {
  private object: VersionedObject | undefined;
  /** Encoding of `object`: a reply's bytes, or undefined until asked for after a sync. */
  private bytes: Uint8Array | undefined;
  private folded = 0;

  fold(replies: readonly Reply[], now: number): MergedReplies | undefined {
    for (; this.folded < replies.length; this.folded++) {
      const bytes = replies[this.folded]!.bytes;
      if (!bytes || (this.bytes && equalBytes(bytes, this.bytes))) continue;
      const object = decodeObject(bytes);
      if (this.object) {
        this.object = sync(this.object, object);
        this.bytes = undefined;
      } else {
        this.object = object;
        this.bytes = bytes;
      }
    }
    if (!this.object) return undefined;
    const expired = expire(this.object, now);
    if (expired !== this.object) {
      this.object = expired;
      this.bytes = undefined;
    }
    this.bytes ??= encodeObject(this.object);
    return { object: this.object, bytes: this.bytes };
  }
}
