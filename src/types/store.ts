/**
 * Data types on top of the key-value path: an operation reads the key (all siblings), merges
 * them by the type, applies the operation as this node's actor and puts the result with the
 * read's context, so it supersedes exactly the siblings it merged. A read with several siblings
 * writes their merge back. No sibling of a typed key ever reaches the caller.
 *
 * Why sessions. A data type's actor must never issue two different states under one dot, and each
 * of its writes must include its previous ones (riak_dt gets that by applying operations at the
 * coordinating vnode, whose local state always has its own writes). Here the operation runs on a
 * quorum read, which may miss this node's last write (sloppy quorum, a partition), so the node keeps
 * per key a *session*: an actor of its own and the last state it wrote, joined into the next
 * operation's read. Operations on one key from one node run one at a time. A new session starts a
 * new actor, `${node actor}/${epoch}.${n}`, where the epoch is a counter kept in the node's storage
 * and bumped once per start, and the node actor's incarnation changes when the storage is wiped. So
 * no dot is ever issued twice (Riak's kv679), and every state's context stays a plain version vector.
 *
 * Why retired sessions. A node cycling through more keys than `maxSessions` would otherwise start
 * a new actor on every operation, and a key refuses every operation once its context names
 * `maxActors`. An evicted session leaves a record (actor, its highest dot, type) and the next
 * operation resumes that actor when its read has seen exactly that dot as the actor's highest: each
 * write of an actor contains all its earlier ones, so such a read contains everything the actor
 * wrote to the key and is what the session would have joined into anyway; the actor's next dot is
 * then above all it ever issued. The record is set before every write is sent, acknowledged or
 * not, so a write that may have landed but that the read missed makes the read fall short and the
 * operation starts a new actor instead. A last write that issued no dot (a removal) has nothing a
 * read could show it by: such a session is not resumed. Restarts still start new actors: records
 * live in memory, and a new epoch could not tell what the last one sent.
 */
import { createHash } from 'node:crypto';
import {
  CorruptValueError,
  InvalidContextError,
  LimitError,
  NotRunningError,
  TypeMismatchError,
} from '../errors.js';
import type { Key } from '../events.js';
import { checkTtl } from '../operations.js';
import { metaKey } from '../replica/layout.js';
import type { Storage } from '../storage/types.js';
import type { Clock } from '../util/clock.js';
import { type CausalContext, cloudSize, contextActors, nextDot } from './causal.js';
import {
  decodeState,
  decodeTypeContext,
  encodeState,
  encodeTypeContext,
  isTypedValue,
  MAX_DECODED_DEPTH,
  typeOfValue,
} from './codec.js';
import { Mutation, opsFor, prune, type TypeValues, typeValue } from './ops.js';
import { cloneState, emptyState, join, measure, type TypedState, type TypeName } from './state.js';

/** Bounds of the data types (every violation is a `LimitError`, nothing written). */
export interface DataTypeOptions {
  /** Most set elements plus map fields in one object, counted at every depth. Default 10,000. */
  maxElements: number;
  /** Deepest map nesting (a map in a map is depth 2); at most 64. Default 8. */
  maxDepth: number;
  /** Longest set element or map field name, UTF-8 bytes. Default 1024. */
  maxElementBytes: number;
  /** Most actors in one object's causal context (one per node session that wrote it). Default 1,000. */
  maxActors: number;
  /** Most out-of-order dots in one object's causal context. Default 1,000. */
  maxCloudDots: number;
  /** Keys whose session (actor and last written state) a node keeps; beyond: least recently used forgotten. Default 10,000. */
  maxSessions: number;
  /** Bytes of session states a node keeps (encoded size). Default 64 MiB. */
  maxSessionBytes: number;
  /**
   * Keys whose evicted session a node still remembers (actor, last dot and type under a digest of
   * the key, about 200 bytes) so that it can resume the actor; beyond: the longest retired
   * forgotten. Default 100,000.
   */
  maxRetiredSessions: number;
  /** Operations waiting for one key on one node (they run one at a time). Default 1,000. */
  maxQueuedPerKey: number;
}

/** The defaults of `DataTypeOptions` (the `dataTypes` node option). */
export const DATA_TYPE_DEFAULTS: Readonly<DataTypeOptions> = {
  maxElements: 10_000,
  maxDepth: 8,
  maxElementBytes: 1024,
  maxActors: 1_000,
  maxCloudDots: 1_000,
  maxSessions: 10_000,
  maxSessionBytes: 64 * 1024 * 1024,
  maxRetiredSessions: 100_000,
  maxQueuedPerKey: 1_000,
};

/** Per-operation options: the read's, the write's, and for removals the context they are based on. */
export interface TypeOperationOptions {
  /** Replies the operation's read waits for (default: quorum.r). */
  r?: number;
  /** Durable stores the write waits for (default: quorum.w). */
  w?: number;
  /** Each of the read and the write (default: 2 × requestTimeoutMs). */
  timeoutMs?: number;
  /** Aborting rejects the operation with the signal's reason. */
  signal?: AbortSignal;
  /**
   * The context of an earlier `read()`: removals then remove only what that read saw (an element
   * added since survives). Default: what the operation's own read saw.
   */
  context?: string;
  /**
   * The whole key (this type's state) expires this long after this operation's write, ms (see
   * docs/api/expiry.md): each operation that passes it sets the key's expiry anew, one that does not makes
   * the key permanent again.
   */
  ttlMs?: number;
}

/** Options of a data type's `read()` and `value()`. */
export type TypeReadOptions = Pick<TypeOperationOptions, 'r' | 'timeoutMs' | 'signal'>;

/** A data type's value and the context of the read or write that produced it. */
export interface TypeResult<T> {
  /** The merged value (see `TypeValues`). */
  value: T;
  /** Opaque: pass it to a later operation's `context` to remove only what this read saw. */
  context: string;
}

/** What the node gives the data types: its raw read and write paths and its identity. */
export interface TypedStoreDeps {
  /**
   * Live siblings' bytes (tombstones and expired values left out), the key's version context, and
   * the time the last of those values expires in (undefined: one never does).
   */
  read(
    key: Key,
    options: TypeReadOptions,
  ): Promise<{ values: Uint8Array[]; context: string; ttlMs?: number }>;
  write(
    key: Key,
    value: Uint8Array,
    options: { context: string; w?: number; timeoutMs?: number; signal?: AbortSignal; ttlMs?: number },
  ): Promise<unknown>;
  /** The node's actor, `${id}@${incarnation}`. */
  actor(): string;
  storage: Storage;
  clock: Clock;
  maxValueBytes: number;
  onBackgroundError(error: Error, context: string): void;
}

interface Session {
  readonly actor: string;
  last: TypedState | undefined;
  lastType: TypeName | undefined;
  /**
   * The dot the last write sent issued last, set before the write is sent; 0 when it issued none
   * (or nothing was sent yet): the actor is then not resumed once the session is evicted.
   */
  lastDot: number;
  bytes: number;
  /** When the last write's value expires by this node's clock (its `ttlMs`); undefined: never. */
  expiresAt?: number;
}

/** What an evicted session leaves behind: enough to resume its actor, not its state. */
interface RetiredSession {
  readonly actor: string;
  readonly lastDot: number;
  readonly lastType: TypeName | undefined;
}

const EPOCH_KEY = metaKey('types-epoch');
const noop = () => {};

export function resolveDataTypeOptions(options: Partial<DataTypeOptions> = {}): DataTypeOptions {
  const out = { ...DATA_TYPE_DEFAULTS, ...options };
  for (const [k, v] of Object.entries(out)) {
    if (!Number.isSafeInteger(v) || v < 1)
      throw new RangeError(`dataTypes.${k} must be a positive integer, got ${v}`);
  }
  if (out.maxDepth > MAX_DECODED_DEPTH)
    throw new RangeError(`dataTypes.maxDepth must be at most ${MAX_DECODED_DEPTH}, got ${out.maxDepth}`);
  return out;
}

export class TypedStore {
  readonly limits: DataTypeOptions;
  private prefix: Promise<string> | undefined;
  private sessionCount = 0;
  private sessionBytes = 0;
  private readonly sessions = new Map<string, Session>();
  private readonly retired = new Map<string, RetiredSession>();
  private readonly queues = new Map<string, { tail: Promise<void>; length: number }>();

  constructor(
    private readonly deps: TypedStoreDeps,
    options?: Partial<DataTypeOptions>,
  ) {
    this.limits = resolveDataTypeOptions(options);
  }

  /** Reads `key` as a `type`, merging its siblings (and writing the merge back when there were several). */
  async read<T extends TypeName>(
    key: Key,
    type: T,
    options: TypeReadOptions = {},
  ): Promise<TypeResult<TypeValues[T]>> {
    const id = keyId(key);
    const read = await this.deps.read(key, options);
    const merged = this.merge(type, read.values);
    if (read.values.length > 1) {
      try {
        // The merge keeps the expiry of what it merges (the latest of them).
        await this.deps.write(key, encodeState(merged), {
          context: read.context,
          timeoutMs: options.timeoutMs,
          ttlMs: read.ttlMs,
        });
      } catch (err) {
        this.deps.onBackgroundError(err as Error, 'writing back a merged data type');
      }
    }
    const session = this.sessions.get(id);
    if (session) this.forgetExpired(session);
    const known = session ? session.lastType : this.retired.get(retiredKey(id))?.lastType;
    if (known !== undefined) knownType(known, type);
    const state = session?.last ? join(merged, session.last) : merged;
    return { value: typeValue(state.store) as TypeValues[T], context: encodeTypeContext(state.ctx) };
  }

  /** Read → merge → `apply` as this node's session actor → put with the read's context. */
  update<T extends TypeName>(
    key: Key,
    type: T,
    apply: (ops: ReturnType<typeof opsFor>) => void,
    options: TypeOperationOptions = {},
  ): Promise<TypeResult<TypeValues[T]>> {
    let id: string;
    let observed: TypedState['ctx'] | undefined;
    try {
      id = keyId(key);
      checkTtl('put', options.ttlMs);
      if (options.context !== undefined) {
        observed = decodeTypeContext(options.context, this.deps.maxValueBytes * 2);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return this.serialize(id, async () => {
      const prefix = await this.actorPrefix();
      const read = await this.deps.read(key, options);
      const merged = this.merge(type, read.values);
      const session = this.session(id, prefix, type, merged.ctx);
      this.forgetExpired(session);
      const base = session.last ? join(merged, session.last) : merged;
      const next = cloneState(base);
      const m = new Mutation(
        next,
        session.actor,
        observed ?? base.ctx,
        Math.floor(this.deps.clock.now() * 1000),
        this.limits,
      );
      apply(opsFor(next.store, m));
      prune(next.store);
      if (!m.changed)
        return { value: typeValue(base.store) as TypeValues[T], context: encodeTypeContext(base.ctx) };
      const bytes = this.encodeChecked(next);
      // Before sending: a write that fails may still land. One that issued no dot (a removal) could
      // be missed by a read that has the actor's highest dot: resuming over it would undo it.
      const highest = highestDot(next.ctx, session.actor);
      session.lastDot = highest > highestDot(base.ctx, session.actor) ? highest : 0;
      // Taken before the write: the coordinator's expiry comes later, so the session stops
      // standing in for the key no later than the key expires (give or take clock skew).
      session.expiresAt = options.ttlMs === undefined ? undefined : this.deps.clock.now() + options.ttlMs;
      try {
        await this.deps.write(key, bytes, {
          context: read.context,
          w: options.w,
          timeoutMs: options.timeoutMs,
          signal: options.signal,
          ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }),
        });
      } catch (err) {
        // A write that may have reached a replica is part of this actor's history: the next
        // operation builds on it (so its dots are never issued again for something else).
        if (!definite(err)) this.remember(id, session, type, next, bytes.length);
        throw err;
      }
      this.remember(id, session, type, next, bytes.length);
      return { value: typeValue(next.store) as TypeValues[T], context: encodeTypeContext(next.ctx) };
    });
  }

  /**
   * A session whose last write expired by now no longer stands in for the key: its state is
   * dropped (a read must not bring an expired value back), and so is its type, which the key no
   * longer has. Its actor stays (its dots were issued).
   */
  private forgetExpired(s: Session): void {
    if (s.expiresAt === undefined || s.expiresAt > this.deps.clock.now()) return;
    s.last = undefined;
    s.lastType = undefined;
    s.expiresAt = undefined;
  }

  /** Sessions, retired sessions and queued operations currently held (for tests and stats). */
  held(): { sessions: number; sessionBytes: number; retiredSessions: number; queuedKeys: number } {
    return {
      sessions: this.sessions.size,
      sessionBytes: this.sessionBytes,
      retiredSessions: this.retired.size,
      queuedKeys: this.queues.size,
    };
  }

  // ---------------------------------------------------------------------------------------------

  private merge(type: TypeName, values: Uint8Array[]): TypedState {
    let state = emptyState(type);
    for (const v of values) {
      if (!isTypedValue(v)) {
        throw new TypeMismatchError(
          type,
          'plain',
          `the key holds a plain value (written with put), not a ${type}: use get/put for it, or another key`,
        );
      }
      const actual = typeOfValue(v);
      if (actual !== type) {
        if (actual === 'unknown') decodeState(v); // throws CorruptValueError with the reason
        throw new TypeMismatchError(type, actual, `the key holds a ${actual}, not a ${type}`);
      }
      const s = decodeState(v);
      if (s.store.type !== type) throw new CorruptValueError('data-type tag and body disagree');
      state = join(state, s);
    }
    return state;
  }

  private encodeChecked(state: TypedState): Uint8Array {
    const l = this.limits;
    const { elements, depth } = measure(state.store);
    if (elements > l.maxElements) throw new LimitError('maxElements', elements, l.maxElements);
    if (depth > l.maxDepth) throw new LimitError('maxDepth', depth, l.maxDepth);
    const actors = contextActors(state.ctx).size;
    if (actors > l.maxActors) throw new LimitError('maxActors', actors, l.maxActors);
    const cloud = cloudSize(state.ctx);
    if (cloud > l.maxCloudDots) throw new LimitError('maxCloudDots', cloud, l.maxCloudDots);
    const bytes = encodeState(state);
    if (bytes.length > this.deps.maxValueBytes) {
      throw new LimitError('maxValueBytes', bytes.length, this.deps.maxValueBytes);
    }
    return bytes;
  }

  /** `${node actor}/${epoch}`: the epoch is bumped in storage once per node start (lazily). */
  private actorPrefix(): Promise<string> {
    this.prefix ??= (async () => {
      const stored = await this.deps.storage.get(EPOCH_KEY);
      const epoch = (stored ? Number(new TextDecoder().decode(stored)) || 0 : 0) + 1;
      await this.deps.storage.batch(
        [{ type: 'put', key: EPOCH_KEY, value: new TextEncoder().encode(String(epoch)) }],
        {
          sync: true,
        },
      );
      return `${this.deps.actor()}/${epoch.toString(36)}`;
    })();
    this.prefix.catch(() => {
      this.prefix = undefined;
    });
    return this.prefix;
  }

  /** This key's session: the live one, the retired one if `read` has all it wrote, or a new actor. */
  private session(id: string, prefix: string, type: TypeName, read: CausalContext): Session {
    let s = this.sessions.get(id);
    if (s?.lastType !== undefined) knownType(s.lastType, type);
    if (s)
      this.sessions.delete(id); // most recently used goes last
    else s = this.resume(id, type, read);
    s ??= {
      actor: `${prefix}.${(this.sessionCount++).toString(36)}`,
      last: undefined,
      lastType: undefined,
      lastDot: 0,
      bytes: 0,
    };
    this.sessions.set(id, s);
    return s;
  }

  /** The retired session of `id` if `read` has everything its actor wrote (the record is used up). */
  private resume(id: string, type: TypeName, read: CausalContext): Session | undefined {
    const digest = retiredKey(id);
    const r = this.retired.get(digest);
    if (!r) return undefined;
    if (r.lastType !== undefined) knownType(r.lastType, type);
    this.retired.delete(digest);
    // All its dots up to exactly the last one: a read naming more of it than this node sent (or
    // naming it only out of order) did not come from its writes alone, and is not trusted.
    if (read.vv.get(r.actor) !== r.lastDot || read.cloud.has(r.actor)) return undefined;
    return { actor: r.actor, last: undefined, lastType: r.lastType, lastDot: r.lastDot, bytes: 0 };
  }

  private retire(id: string, s: Session): void {
    // Not resumable (see `lastDot`): the next operation takes a new actor.
    if (s.lastDot === 0) return;
    const digest = retiredKey(id);
    this.retired.delete(digest);
    this.retired.set(digest, { actor: s.actor, lastDot: s.lastDot, lastType: s.lastType });
    if (this.retired.size > this.limits.maxRetiredSessions) {
      const oldest = this.retired.keys().next();
      if (!oldest.done) this.retired.delete(oldest.value);
    }
  }

  private remember(id: string, s: Session, type: TypeName, state: TypedState, bytes: number): void {
    // Re-inserted even if evicted meanwhile: no other operation on this key ran in between.
    if (this.sessions.get(id) === s) this.sessionBytes -= s.bytes;
    else {
      this.sessions.delete(id);
      this.retired.delete(retiredKey(id));
    }
    s.last = state;
    s.lastType = type;
    s.bytes = bytes;
    this.sessions.set(id, s);
    this.sessionBytes += bytes;
    for (const [k, old] of this.sessions) {
      if (this.sessions.size <= this.limits.maxSessions && this.sessionBytes <= this.limits.maxSessionBytes)
        break;
      if (k === id) continue;
      this.sessions.delete(k);
      this.sessionBytes -= old.bytes;
      this.retire(k, old);
    }
  }

  private serialize<T>(id: string, fn: () => Promise<T>): Promise<T> {
    let q = this.queues.get(id);
    if (!q) {
      q = { tail: Promise.resolve(), length: 0 };
      this.queues.set(id, q);
    }
    if (q.length >= this.limits.maxQueuedPerKey) {
      return Promise.reject(new LimitError('maxQueuedPerKey', q.length + 1, this.limits.maxQueuedPerKey));
    }
    q.length++;
    const queue = q;
    const run = queue.tail.then(fn);
    queue.tail = run.then(noop, noop).then(() => {
      if (--queue.length === 0 && this.queues.get(id) === queue) this.queues.delete(id);
    });
    return run;
  }
}

/**
 * A key this node wrote as one type stays that type (typed keys are never deleted): an operation
 * of another type is misuse even when its read missed the state, and writing it would leave the
 * key with siblings of two types, which no typed or plain read accepts again.
 */
function knownType(known: TypeName, type: TypeName): void {
  if (known !== type) throw new TypeMismatchError(type, known, `the key holds a ${known}, not a ${type}`);
}

/** Errors after which the write certainly did not happen. */
function definite(err: unknown): boolean {
  return (
    err instanceof LimitError ||
    err instanceof TypeError ||
    err instanceof RangeError ||
    err instanceof InvalidContextError ||
    err instanceof NotRunningError
  );
}

/** The highest counter of `actor` that `ctx` has seen (0: none). */
function highestDot(ctx: CausalContext, actor: string): number {
  return nextDot(ctx, actor)[1] - 1;
}

/**
 * Retired sessions are keyed by a digest, so a record stays small whatever the key's size. Two
 * keys with one digest (2^-128) would only share a record: its actor wrote only one of them, so the
 * other's read never names it and that key takes a new actor.
 */
function retiredKey(id: string): string {
  return createHash('sha256').update(id).digest('base64url').slice(0, 22);
}

function keyId(key: Key): string {
  if (typeof key === 'string') return `s${key}`;
  if (key instanceof Uint8Array)
    return `b${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1')}`;
  throw new TypeError('key must be a string or a Uint8Array');
}
