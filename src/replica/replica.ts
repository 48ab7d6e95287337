/**
 * The local replica: applies versions to this node's storage. Every path that brings a version
 * in (replication, read repair, hints, anti-entropy, transfer) goes through `merge`, one function
 * (DVV sync) that is commutative, associative and idempotent, so redelivery is harmless and a
 * stale version can never overwrite a newer one.
 */
import { LimitError, StorageError } from '../errors.js';
import { toLatin1 } from '../storage/latin1.js';
import type { Storage, StorageOperation } from '../storage/types.js';
import { afterMicrotasks } from '../util/clock.js';
import {
  applied,
  CheckedObject,
  type Context,
  decodeObject,
  encodeObject,
  expire,
  prune,
  sync,
  update,
  type VersionedObject,
  type VersionVector,
  writtenContext,
} from '../versioning/index.js';
import { dataKey, hintKey } from './layout.js';
import { KeyLocks } from './lock.js';

export interface ReplicaOptions {
  maxSiblings: number;
  maxClockEntries: number;
  /**
   * This node's clock, ms: values that expired by then become tombstones when the replica rewrites
   * a key (`expire`). Absent: never here (reads still leave expired values out).
   */
  now?: () => number;
}

/** Called after every local change of a data key (anti-entropy keeps its trees current with it). */
export type ChangeListener = (
  partition: number,
  key: Uint8Array,
  before: Uint8Array | undefined,
  after: Uint8Array,
) => void;

/**
 * Decides whether a new hint may be created and hears when one is created or deleted, so the
 * hint store's size is known without scanning and bounded (`maxHints`).
 */
export interface HintPolicy {
  /** Throws (LimitError) when no new hint for `target` may be created. */
  admit(target: string): void;
  created(target: string): void;
  deleted(target: string): void;
}

/** One read-modify-write step's outcome: what to store (`null`: delete; absent: nothing). */
interface Step<T> {
  write?: Uint8Array | null;
  result: T;
  /** After the write is durable. */
  written?: () => void;
  /** When the write failed (undo bookkeeping done in the step). */
  failed?: () => void;
}

/** Who hears the answer of a replica read made with `Replica.readWith` (no promise per read). */
export interface ReadHandler {
  read(bytes: Uint8Array | undefined): void;
  /** A StorageError (or, for a DynamoClient, which holds no replica, a RangeError). */
  failed(error: unknown): void;
}

interface Job<T> {
  storageKey: Uint8Array;
  lock: string;
  step: (before: Uint8Array | undefined) => Step<T>;
  resolve(result: T): void;
  reject(error: unknown): void;
}

/** A version a coordinator made: the object, its encoding, and the context its writer gets back. */
export interface WrittenVersion {
  object: VersionedObject;
  bytes: Uint8Array;
  context: Context;
}

export class Replica {
  private readonly locks = new KeyLocks();
  private queued: Job<unknown>[] = [];
  private readonly listeners: ChangeListener[] = [];
  /** Highest dot counter this node issued since it started (see `coordinate`). */
  private lastCounter = 0;
  hints: HintPolicy | undefined;

  constructor(
    private readonly storage: Storage,
    private readonly options: ReplicaOptions,
  ) {}

  private now(): number {
    return this.options.now?.() ?? Number.NEGATIVE_INFINITY;
  }

  onChange(listener: ChangeListener): void {
    this.listeners.push(listener);
  }

  /**
   * The stored object bytes of `key` (data, plus the hint held for `hintFor` when standing in),
   * told to `handler` (always later, never from within this call): a get makes one
   * replica read on each of N nodes, and a callback per read costs one promise where a promise
   * chain through the peer server and the coordinator cost three or four. (Reads are not batched
   * per turn as writes are: storages coalesce reads themselves — LevelStorage does — and a read
   * deferred to the end of the turn would answer after reads it used to answer before.)
   */
  readWith(partition: number, key: Uint8Array, hintFor: string | null, handler: ReadHandler): void {
    let read: Promise<Uint8Array | undefined>;
    try {
      read =
        hintFor === null
          ? this.storage.get(dataKey(partition, key))
          : this.readWithHint(partition, key, hintFor);
    } catch (err) {
      const error = storageError('read', err);
      queueMicrotask(() => handler.failed(error));
      return;
    }
    read.then(
      (bytes) => handler.read(bytes),
      (err: unknown) => handler.failed(storageError('read', err)),
    );
  }

  private async readWithHint(
    partition: number,
    key: Uint8Array,
    hintFor: string,
  ): Promise<Uint8Array | undefined> {
    const own = await this.get(dataKey(partition, key));
    const hinted = await this.get(hintKey(hintFor, partition, key));
    if (!hinted) return own;
    if (!own) return hinted;
    return encodeObject(sync(decodeObject(own), decodeObject(hinted)));
  }

  /**
   * Merges `incoming` into the key's data (or, with `hintFor`, into the hint kept for that owner).
   * Says whether the key was created, changed or already held everything `incoming` brings.
   * Resolves only after the write is durable per the storage.
   */
  merge(
    partition: number,
    key: Uint8Array,
    /**
     * A decoded version, or checked bytes (a replicated one as it came off the wire), decoded
     * only if there is something here to merge it with.
     */
    incoming: VersionedObject | CheckedObject,
    hintFor: string | null,
    /** A decoded `incoming` as encoded by the sender, when at hand: stored as is when the key is new here. */
    incomingBytes?: Uint8Array,
  ): Promise<'created' | 'changed' | 'unchanged'> {
    const storageKey = hintFor === null ? dataKey(partition, key) : hintKey(hintFor, partition, key);
    return this.schedule(storageKey, (before) => {
      if (!before && hintFor !== null) this.admitHint(hintFor);
      const checked = incoming instanceof CheckedObject;
      const bytes = checked ? incoming.bytes : incomingBytes;
      let after: Uint8Array;
      if (
        !before &&
        bytes &&
        (checked ? incoming.ctxEntries : incoming.ctx.size) <= this.options.maxClockEntries
      ) {
        // Fast path (most replication): nothing to merge with, nothing to prune, nothing to decode.
        after = bytes;
      } else {
        const object = checked ? incoming.object : incoming;
        const merged = expire(
          before
            ? prune(sync(decodeObject(before), object), this.options.maxClockEntries)
            : prune(object, this.options.maxClockEntries),
          this.now(),
        );
        after = encodeObject(merged);
      }
      if (before && equalBytes(before, after)) return { result: 'unchanged' };
      return {
        write: after,
        result: before ? 'changed' : 'created',
        written: () => this.changed(partition, key, hintFor, before, after),
        failed: () => this.unadmitHint(hintFor, before),
      };
    });
  }

  /**
   * The coordinator's step of a put: a new dotted version at `actor` superseding what `context`
   * has seen. Refuses (LimitError, nothing written) when the key would hold too many siblings.
   * A write with an operation id `op` that this replica has seen already (another coordinator
   * applied it and replicated it here, or this one did and the caller retried) changes nothing:
   * the version is the stored object, which the coordinator then replicates as usual.
   * The version carries the context to hand back to the caller (see `writtenContext`).
   */
  coordinate(
    partition: number,
    key: Uint8Array,
    context: Context | VersionVector,
    baseActor: string,
    value: Uint8Array | null,
    timestamp: number,
    hintFor: string | null,
    /**
     * Called with the new version as soon as it is made, before it is written: the coordinator
     * replicates it while the local write is under way.
     */
    onVersion?: (version: WrittenVersion) => void,
    op?: string,
    /** The value expires this long after `timestamp` (see `Sibling.expiresAt`). */
    ttlMs?: number,
  ): Promise<WrittenVersion> {
    const storageKey = hintFor === null ? dataKey(partition, key) : hintKey(hintFor, partition, key);
    return this.schedule(storageKey, (before) => {
      const stored = before ? decodeObject(before) : undefined;
      if (before && applied(stored, op)) {
        const own = stored!.siblings.find((s) => s.op === op);
        const version = {
          object: stored!,
          bytes: before,
          context: writtenContext(context, stored!, own?.dot, op, timestamp),
        };
        onVersion?.(version);
        return { result: version };
      }
      // Values that expired here become tombstones in the version this write makes.
      const local = stored ? expire(stored, this.now()) : undefined;
      // A dot must never be reissued for a key whose local object forgot it: after a tombstone
      // purge (a stale copy elsewhere still covers the old dot and would drop the new write), or
      // in a fresh hint object when coordinating as a fallback. So each new counter is above every
      // counter this node issued since it started, and above the clock (in µs: room for 1,000
      // writes per ms before counters run ahead of it), which carries that across restarts.
      const clockFloor = Number.isFinite(timestamp) ? Math.floor(Math.max(0, timestamp) * 1000) : 0;
      const minCounter = Math.max(this.lastCounter + 1, clockFloor);
      const actor = hintFor === null ? baseActor : hintActor(baseActor, minCounter);
      const next = prune(
        update(
          local,
          context,
          actor,
          value,
          timestamp,
          minCounter,
          op,
          ttlMs === undefined ? undefined : Math.max(1, Math.floor(timestamp)) + ttlMs,
        ),
        this.options.maxClockEntries,
      );
      const live = next.siblings.length;
      if (live > this.options.maxSiblings) {
        throw new LimitError(
          'maxSiblings',
          live,
          this.options.maxSiblings,
          `key would hold ${live} siblings (maxSiblings ${this.options.maxSiblings}): read it and write with its context to merge them`,
        );
      }
      if (!before && hintFor !== null) this.admitHint(hintFor);
      this.lastCounter = Math.max(this.lastCounter, next.ctx.get(actor) ?? 0);
      const after = encodeObject(next);
      const dot: [string, number] = [actor, next.ctx.get(actor)!];
      const version = {
        object: next,
        bytes: after,
        context: writtenContext(context, next, dot, op, timestamp),
      };
      onVersion?.(version);
      return {
        write: after,
        result: version,
        written: () => this.changed(partition, key, hintFor, before, after),
        failed: () => this.unadmitHint(hintFor, before),
      };
    });
  }

  /**
   * Anti-entropy's tombstone purge: physically deletes the key's data only if it still holds
   * `expected` (a key written meanwhile stays). Listeners are not told; the caller updates its
   * tree itself.
   */
  purgeIfUnchanged(partition: number, key: Uint8Array, expected: Uint8Array): Promise<boolean> {
    return this.schedule(dataKey(partition, key), (current) =>
      current && equalBytes(current, expected) ? { write: null, result: true } : { result: false },
    );
  }

  /** Deletes the hint only if it still holds `expected` (a hint that changed meanwhile stays). */
  deleteHintIfUnchanged(target: string, storageKey: Uint8Array, expected: Uint8Array): Promise<boolean> {
    return this.schedule(storageKey, (current) =>
      current && equalBytes(current, expected)
        ? { write: null, result: true, written: () => this.hints?.deleted(target) }
        : { result: false },
    );
  }

  /**
   * Queues a read-modify-write of one storage key. The steps queued during one cascade of promise
   * continuations run together: one `getMany` for their keys, each step in queue order, one
   * `batch` for what they write. Under load that is one storage round trip for a hundred writes
   * instead of two each, and no per-key promise chain. A key whose lock is held (a step of an
   * earlier batch still writing it, or queued twice in this one) waits for the lock and runs alone.
   */
  private schedule<T>(storageKey: Uint8Array, step: (before: Uint8Array | undefined) => Step<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.queued.length === 0) afterMicrotasks(() => this.runQueued());
      this.queued.push({ storageKey, lock: lockId(storageKey), step, resolve, reject } as Job<unknown>);
    });
  }

  private runQueued(): void {
    const jobs = this.queued;
    this.queued = [];
    const ready: Job<unknown>[] = [];
    const locks: string[] = [];
    let waiting: Job<unknown>[] | undefined;
    // A job's lock is taken as it is looked at, so a second job of the same key in this batch
    // finds it held and waits like one whose lock an earlier batch holds.
    for (const job of jobs) {
      if (this.locks.tryHold(job.lock)) {
        ready.push(job);
        locks.push(job.lock);
      } else if (waiting) waiting.push(job);
      else waiting = [job];
    }
    if (ready.length > 0) this.apply(ready, locks);
    if (waiting) for (const job of waiting) this.locks.acquire(job.lock, () => this.apply([job], [job.lock]));
  }

  /**
   * Runs steps whose keys' locks this caller holds (`locks`); settles every job, then releases the
   * locks. Promise callbacks rather than an async function: this runs for every batch of writes.
   */
  private apply(jobs: Job<unknown>[], locks: Iterable<string>): void {
    const fail = (err: unknown) => {
      const error = storageError('read', err);
      for (const job of jobs) job.reject(error);
      this.locks.releaseAll(locks);
    };
    try {
      if (jobs.length === 1)
        this.storage.get(jobs[0]!.storageKey).then((before) => this.write(jobs, [before], locks), fail);
      else
        this.storage
          .getMany(jobs.map((j) => j.storageKey))
          .then((befores) => this.write(jobs, befores, locks), fail);
    } catch (err) {
      fail(err);
    }
  }

  /** The second half of `apply`: the steps, given what storage held, and one batch for their writes. */
  private write(jobs: Job<unknown>[], befores: (Uint8Array | undefined)[], locks: Iterable<string>): void {
    const ops: StorageOperation[] = [];
    const steps: (Step<unknown> | undefined)[] = new Array(jobs.length);
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i]!;
      try {
        const step = job.step(befores[i]);
        steps[i] = step;
        if (step.write === null) ops.push({ type: 'del', key: job.storageKey });
        else if (step.write !== undefined) ops.push({ type: 'put', key: job.storageKey, value: step.write });
      } catch (err) {
        job.reject(err);
      }
    }
    const written = () => {
      try {
        for (let i = 0; i < jobs.length; i++) {
          const step = steps[i];
          if (!step) continue;
          if (step.write !== undefined) step.written?.();
          jobs[i]!.resolve(step.result);
        }
      } finally {
        this.locks.releaseAll(locks);
      }
    };
    if (ops.length === 0) {
      written();
      return;
    }
    const failed = (err: unknown) => {
      const error = storageError('write', err);
      for (let i = 0; i < jobs.length; i++) {
        const step = steps[i];
        if (!step) continue;
        if (step.write !== undefined) {
          step.failed?.();
          jobs[i]!.reject(error);
        } else jobs[i]!.resolve(step.result);
      }
      this.locks.releaseAll(locks);
    };
    let batch: Promise<void>;
    try {
      batch = this.storage.batch(ops);
    } catch (err) {
      failed(err);
      return;
    }
    batch.then(written, failed);
  }

  private get(storageKey: Uint8Array): Promise<Uint8Array | undefined> {
    let read: Promise<Uint8Array | undefined>;
    try {
      read = this.storage.get(storageKey);
    } catch (err) {
      return Promise.reject(storageError('read', err));
    }
    return read.then(undefined, rethrowReadError);
  }

  /** A new hint object counts against `maxHints` from the moment it is decided on. */
  private admitHint(target: string): void {
    this.hints?.admit(target);
    this.hints?.created(target);
  }

  private unadmitHint(hintFor: string | null, before: Uint8Array | undefined): void {
    if (hintFor !== null && !before) this.hints?.deleted(hintFor);
  }

  private changed(
    partition: number,
    key: Uint8Array,
    hintFor: string | null,
    before: Uint8Array | undefined,
    after: Uint8Array,
  ): void {
    if (hintFor === null) this.notify(partition, key, before, after);
  }

  private notify(
    partition: number,
    key: Uint8Array,
    before: Uint8Array | undefined,
    after: Uint8Array,
  ): void {
    for (const l of this.listeners) l(partition, key, before, after);
  }
}

/**
 * The actor for a write coordinated into a hint object. A version vector entry implies its actor's
 * earlier dots were seen, which holds only if every write of that actor to the key went through
 * one object. A node's data object and its hint objects are separate histories, and a hint
 * object's ctx can hold another hint object's actor (delivered hints merge into the owner's data,
 * which comes back in later replication), so no actor found there may be reused: two hint objects
 * writing as one actor would each cover the other's dots and drop them (the simulator lost
 * acknowledged adds that way). Each such write is its own actor, `${actor}~${unique}`: one dot
 * per actor, pruned with the rest. Fallback coordination is rare (no primary reachable).
 */
function hintActor(baseActor: string, unique: number): string {
  return `${baseActor}~${unique.toString(36)}`;
}

function storageError(what: 'read' | 'write', err: unknown): StorageError {
  return err instanceof StorageError ? err : new StorageError(`storage ${what} failed`, { cause: err });
}

function rethrowReadError(err: unknown): never {
  throw storageError('read', err);
}

function lockId(storageKey: Uint8Array): string {
  return toLatin1(storageKey);
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  // Buffer.compare takes plain Uint8Arrays: no Buffer view allocated per comparison.
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}
