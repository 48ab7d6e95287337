/**
 * The client operations, shared by DynamoNode and DynamoClient: checking what the caller passed,
 * turning keys and values into bytes and back, the read path (fan-out to the replicas, sibling
 * decoding, the resolver and its write-back) and the write path up to the coordination, which is
 * where the two differ (a node coordinates a put or forwards it; a client always sends it to a
 * replica).
 */
import type { Coordinator, PutRequest, Routing } from './coordinator/coordinator.js';
import { type HedgePlan, planLocalRead } from './coordinator/latency.js';
import type { LatencyRouting } from './coordinator/latency-routing.js';
import type { Router } from './coordinator/router.js';
import { QuorumError, TypeMismatchError } from './errors.js';
import type { Key } from './events.js';
import type {
  GetOptions,
  GetResult,
  PutOptions,
  PutResult,
  UpdateFunction,
  UpdateResult,
} from './operation-types.js';
import { type Codec, type ResolvedOptions, validateMinZones, validateQuorumPart } from './options.js';
import { equalBytes } from './replica/replica.js';
import { hash64, type PreferenceEntry, partitionOf } from './ring/index.js';
import type { OperationRecorder } from './stats.js';
import { isTypedValue, typeOfValue } from './types/codec.js';
import { throwIfAborted } from './util/abort.js';
import type { Clock } from './util/clock.js';
import type { Random } from './util/random.js';
import { encodeValue, keyBytes, nodeOfActor } from './values.js';
import {
  type Context,
  contextOf,
  decodeContext,
  emptyContext,
  encodeContext,
  MAX_OP_ENTRIES,
  MAX_TTL_MS,
  type Sibling,
  type VersionedObject,
} from './versioning/index.js';

/** What `Operations.read` resolves to but for a plain get. */
export interface FullRead<V> {
  values: V[];
  siblings: V[];
  context: string;
  object: VersionedObject | undefined;
}

export interface OperationsDeps<V> {
  options: Pick<
    ResolvedOptions<V>,
    | 'id'
    | 'quorum'
    | 'limits'
    | 'partitions'
    | 'resolver'
    | 'requestTimeoutMs'
    | 'minZones'
    | 'preferLocalZone'
    | 'zone'
  >;
  codec: Codec<V>;
  clock: Clock;
  router: Router;
  coordinator: Coordinator;
  latency: LatencyRouting | undefined;
  recorders: Record<'get' | 'put' | 'delete', OperationRecorder>;
  /** Throws NotRunningError unless operations are accepted. */
  ensureRunning(): void;
  /** Counts one operation in progress (stop() waits for them); `leave` ends it. */
  enter(): void;
  leave(): void;
  recordSiblings(key: Key, count: number): void;
  /** QuorumError saying why, before anything is sent, when too few nodes own partitions. */
  checkOwners(operation: 'get' | 'put' | 'delete', required: number): void;
  /** Zones among the ring's owners (1 without zones): a put with a larger `minZones` cannot succeed. */
  zoneCount(): number;
  /** Members' zones (undefined: no member has one), for reads that prefer the caller's zone. */
  zoneOf(): ((id: string) => string | undefined) | undefined;
  /** Has the put coordinated (here or by a replica); resolves to the new context. */
  coordinatePut(put: PutRequest): Promise<PutResult>;
  onBackgroundError(error: Error, context: string): void;
}

export class Operations<V> {
  constructor(private readonly deps: OperationsDeps<V>) {}

  get(key: Key, options: GetOptions = {}): Promise<GetResult<V>> {
    return this.read(key, options, 'get');
  }

  put(key: Key, value: V, options: PutOptions = {}): Promise<PutResult> {
    let encoded: Uint8Array;
    try {
      encoded = encodeValue(this.deps.codec, value, this.deps.options.limits.maxValueBytes);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.write('put', key, encoded, options);
  }

  /**
   * Without a context, deletes what a read finds (as Riak's delete without a vector clock): one
   * read at the node's R, then a tombstone with the read's context; `timeoutMs` bounds each. A
   * data-type key is refused (TypeMismatchError, nothing written): it is emptied by its operations.
   */
  delete(key: Key, options: PutOptions = {}): Promise<PutResult> {
    if (options.context !== undefined) return this.write('delete', key, null, options);
    const { timeoutMs, signal } = options;
    const d = this.deps;
    try {
      // A delete that cannot succeed fails as one, before its read is sent.
      const w =
        options.w === undefined ? d.options.quorum.w : validateQuorumPart('w', options.w, d.options.quorum.n);
      d.checkOwners('delete', w);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.read(key, { timeoutMs, signal }, 'raw').then(({ context, object }) => {
      const typed = object?.siblings.find((s) => s.value !== null && isTypedValue(s.value));
      if (typed) {
        throw new TypeMismatchError(
          'plain',
          typeOfValue(typed.value!),
          'the key holds a data type: empty it with its own operations (a delete without a context is refused)',
          context,
        );
      }
      return this.write('delete', key, null, { ...options, context });
    });
  }

  async update(
    key: Key,
    fn: UpdateFunction<V>,
    options: GetOptions & Omit<PutOptions, 'context'> = {},
  ): Promise<UpdateResult<V>> {
    const read = await this.read(key, options);
    const current = this.deps.options.resolver
      ? read.values[0]
      : read.siblings.length === 1
        ? read.siblings[0]
        : undefined;
    const value = await fn(current, read.siblings);
    const { context } = await this.put(key, value, { ...options, context: read.context });
    return { value, context };
  }

  keyBytes(key: Key): Uint8Array {
    return keyBytes(key, this.deps.options.limits.maxKeyBytes);
  }

  /**
   * The read path. `shape`: 'get' answers `get` itself (its result made here, not by a layer
   * around this one: every get comes through), 'full' adds the siblings before resolving and the
   * merged object, 'raw' is the object and its context only (the data types decode and merge it
   * themselves).
   */
  read(key: Key, options: GetOptions, shape: 'get'): Promise<GetResult<V>>;
  read(key: Key, options: GetOptions, shape?: 'full' | 'raw'): Promise<FullRead<V>>;
  async read(
    key: Key,
    options: GetOptions,
    shape: 'get' | 'full' | 'raw' = 'full',
  ): Promise<FullRead<V> | GetResult<V>> {
    const d = this.deps;
    d.ensureRunning();
    const bytes = this.keyBytes(key);
    const r =
      options.r === undefined ? d.options.quorum.r : validateQuorumPart('r', options.r, d.options.quorum.n);
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs();
    throwIfAborted(options.signal);
    d.checkOwners('get', r);
    const started = d.clock.now();
    let ok = false;
    d.enter();
    try {
      const partition = partitionOf(bytes, d.options.partitions);
      const routing = d.router.route(partition);
      const isLocal = this.localZone(options.preferLocalZone);
      const plan = d.latency
        ? d.latency.planRead(routing, r, isLocal)
        : isLocal
          ? localPlan(
              routing,
              planLocalRead(routing.list, r, d.options.id, isLocal, d.options.requestTimeoutMs),
            )
          : undefined;
      const { object, first } = await d.coordinator.get(
        bytes,
        partition,
        plan?.routing ?? routing,
        r,
        timeoutMs,
        options.signal,
        plan?.hedge,
      );
      const live = object ? distinctLiveSiblings(object.siblings) : [];
      let context = encodeContext(object ? contextOf(object) : emptyContext());
      if (first !== undefined) d.latency?.remember(bytes, context, first);
      if (shape === 'raw') {
        ok = true;
        return { values: [], siblings: [], context, object };
      }
      const typed = live.find((s) => isTypedValue(s.value));
      if (typed) {
        const type = typeOfValue(typed.value!);
        const method = type === 'mvregister' ? 'mvRegister' : type;
        throw new TypeMismatchError(
          'plain',
          type,
          type === 'unknown'
            ? 'the key holds a data type this engine does not know'
            : `the key holds a ${type}: read it with node.${method}(key)`,
          context,
        );
      }
      const siblings = live.map((s) => d.codec.decode(s.value!));
      d.recordSiblings(key, siblings.length);
      let values = siblings;
      const resolver = d.options.resolver;
      if (resolver && siblings.length > 1) {
        const merged = resolver(siblings, {
          key,
          versions: live.map((s) => ({ timestamp: s.timestamp, nodeId: nodeOfActor(s.dot[0]) })),
        });
        values = [merged];
        // Write the merge back so the siblings collapse; the caller gets the merge's context.
        try {
          const encoded = encodeValue(d.codec, merged, d.options.limits.maxValueBytes);
          const ttlMs = remainingTtl(live, d.clock.now());
          context = (await this.write('put', key, encoded, { context, timeoutMs, ttlMs })).context;
        } catch (err) {
          d.onBackgroundError(err as Error, 'writing back a resolved value');
        }
      }
      ok = true;
      return shape === 'get' ? { values, context } : { values, siblings, context, object };
    } finally {
      d.leave();
      d.recorders.get.record(d.clock.now() - started, ok);
    }
  }

  async write(
    operation: 'put' | 'delete',
    key: Key,
    value: Uint8Array | null,
    options: PutOptions,
  ): Promise<PutResult> {
    const d = this.deps;
    d.ensureRunning();
    const bytes = this.keyBytes(key);
    const w =
      options.w === undefined ? d.options.quorum.w : validateQuorumPart('w', options.w, d.options.quorum.n);
    d.checkOwners(operation, w);
    const minZones =
      options.minZones === undefined
        ? d.options.minZones
        : validateMinZones(options.minZones, d.options.quorum.n);
    if (minZones > 1) {
      const zones = d.zoneCount();
      if (minZones > zones) {
        throw new QuorumError(operation, w, 0, [], {
          requiredZones: minZones,
          zones: [],
          reason: `the ring's owners are in ${zones} zone${zones === 1 ? '' : 's'}`,
        });
      }
    }
    const context: Context =
      options.context === undefined
        ? emptyContext()
        : decodeContext(options.context, maxContextEntries(d.options.limits));
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs();
    const op = options.requestId === undefined ? undefined : opOfRequest(bytes, options.requestId);
    const ttlMs = checkTtl(operation, options.ttlMs);
    throwIfAborted(options.signal);
    const started = d.clock.now();
    let ok = false;
    d.enter();
    try {
      const partition = partitionOf(bytes, d.options.partitions);
      const result = await d.coordinatePut({
        key: bytes,
        partition,
        value,
        context,
        w,
        timeoutMs,
        signal: options.signal,
        op,
        ...(minZones > 1 ? { minZones } : {}),
        ttlMs,
      });
      ok = true;
      return result;
    } finally {
      d.leave();
      d.recorders[operation].record(d.clock.now() - started, ok);
    }
  }

  /**
   * Whether a replica is in the caller's zone, when this read prefers it (the option or `prefer`)
   * and zones are known; undefined otherwise.
   */
  private localZone(prefer: boolean | undefined): ((id: string) => boolean) | undefined {
    const d = this.deps;
    if (prefer !== undefined && typeof prefer !== 'boolean')
      throw new TypeError('preferLocalZone must be a boolean');
    if (!(prefer ?? d.options.preferLocalZone)) return undefined;
    const own = d.options.zone;
    if (own === undefined)
      throw new TypeError('preferLocalZone needs the zone option (the zone this process runs in)');
    const zoneOf = d.zoneOf();
    if (zoneOf === undefined) return undefined;
    return (id) => zoneOf(id) === own;
  }

  /** Whole-operation default: room for one round of fallbacks after a replica times out. */
  private defaultTimeoutMs(): number {
    return this.deps.options.requestTimeoutMs * 2;
  }
}

function localPlan(
  routing: Routing,
  plan: { list: PreferenceEntry[]; hedge: HedgePlan | undefined },
): { routing: Routing; hedge: HedgePlan | undefined } {
  return { routing: { ...routing, list: plan.list }, hedge: plan.hedge };
}

/**
 * The live siblings, each value once: siblings with byte-equal values (a put retried after it
 * failed at another coordinator, two writers of the same value) are one value to the reader. The
 * read's context still covers every dot, so the next put supersedes them all.
 */
function distinctLiveSiblings(siblings: readonly Sibling[]): Sibling[] {
  const live: Sibling[] = [];
  for (const s of siblings) {
    if (s.value !== null && !live.some((l) => equalBytes(l.value!, s.value!))) live.push(s);
  }
  return live;
}

/**
 * The `ttlMs` a write merging `siblings` (live ones) carries, so a merge written back expires when
 * the last of them would have: undefined (never) when one of them never expires.
 */
export function remainingTtl(siblings: readonly Sibling[], now: number): number | undefined {
  let latest = 0;
  for (const s of siblings) {
    if (s.expiresAt === undefined) return undefined;
    if (s.expiresAt > latest) latest = s.expiresAt;
  }
  if (siblings.length === 0) return undefined;
  return Math.min(MAX_TTL_MS, Math.max(1, Math.ceil(latest - now)));
}

/** A put's `ttlMs`, checked: an integer in 1..MAX_TTL_MS (RangeError), never on a delete (TypeError). */
export function checkTtl(operation: 'put' | 'delete', ttlMs: unknown): number | undefined {
  if (ttlMs === undefined) return undefined;
  if (operation === 'delete') throw new TypeError('ttlMs applies to put, not delete');
  if (typeof ttlMs !== 'number')
    throw new TypeError(`ttlMs must be a number of milliseconds, got ${typeof ttlMs}`);
  if (!Number.isInteger(ttlMs) || ttlMs < 1 || ttlMs > MAX_TTL_MS) {
    throw new RangeError(`ttlMs must be an integer in 1..${MAX_TTL_MS} (20 years), got ${ttlMs}`);
  }
  return ttlMs;
}

/** Most characters of a `requestId`. */
const MAX_REQUEST_ID_CHARS = 1024;

/**
 * The operation id of a caller's `requestId` for `key`: a 64-bit hash, so ids of any length cost
 * the same few bytes in every version vector that remembers them. The key is hashed in so that a
 * context carried over from another key (a client bug) cannot make a put with the same
 * `requestId` look applied already.
 */
function opOfRequest(key: Uint8Array, requestId: string): string {
  if (typeof requestId !== 'string' || requestId.length === 0 || requestId.length > MAX_REQUEST_ID_CHARS) {
    throw new TypeError(`requestId must be a string of 1..${MAX_REQUEST_ID_CHARS} characters`);
  }
  const input = Buffer.allocUnsafe(4 + key.byteLength + Buffer.byteLength(requestId, 'utf8'));
  input.writeUInt32BE(key.byteLength, 0);
  input.set(key, 4);
  input.write(requestId, 4 + key.byteLength, 'utf8');
  const hash = Buffer.allocUnsafe(8);
  hash.writeBigUInt64BE(hash64(input));
  return `r${hash.toString('base64url')}`;
}

/**
 * A fresh operation id: 48 bits, 8 characters (it is kept in version vectors). Hashed with `salt`
 * (a node's actor, a client's id), so two processes given the same seeded `random` still never
 * make the same id: a shared id would make one write look like a retry of another.
 */
export function newOpId(salt: string, random: Random): string {
  const bytes = Buffer.from(`${salt}\u0000${random.uint32()}:${random.uint32()}`, 'utf8');
  const hash = Buffer.allocUnsafe(8);
  hash.writeBigUInt64BE(hash64(bytes));
  return hash.subarray(0, 6).toString('base64url');
}

/**
 * Most entries of a client context: actors (pruned to maxClockEntries, with room for the actors of
 * siblings), plus op entries, which are pruned on their own: one per sibling that carries one
 * (up to maxSiblings) and MAX_OP_ENTRIES superseded ones.
 */
export function maxContextEntries(limits: { maxClockEntries: number; maxSiblings: number }): number {
  return limits.maxClockEntries * 4 + limits.maxSiblings + MAX_OP_ENTRIES;
}
