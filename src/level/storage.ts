import { type ChainedBatch, ClassicLevel, type Iterator } from 'classic-level';
import { StorageError } from '../errors.js';
import type { Storage, StorageOperation, StorageRange } from '../storage/types.js';
import { checkBytes, checkOperations, checkRange } from '../storage/validate.js';
import { nextTurn } from '../util/clock.js';
import { checkOptionNames, names } from '../util/option-names.js';
import { CopyArena, Scratch } from './copies.js';

/** `new LevelStorage(options)`. Unknown names are errors. */
export interface LevelStorageOptions {
  /** Directory of the LevelDB database; created (with its parents) on `open()` when missing. */
  path: string;
  /**
   * Default `false`. `true`: every LevelDB write is fsync'ed before its `batch()` resolves, so an
   * acknowledged write survives a power loss, not just a process crash. With group commit one fsync
   * covers every batch of the turn, which is what makes this affordable. A per-call
   * `batch(ops, { sync: true })` forces it for that call (and its whole group).
   */
  sync?: boolean;
  /**
   * Default `true`. `batch()` calls made in the same event-loop turn go to LevelDB as one write, and
   * at most one write is in flight at a time (the next group gathers meanwhile). Each caller's
   * operations stay in one LevelDB batch, so per-call atomicity holds. `false`: one LevelDB write
   * per call, in parallel.
   */
  groupCommit?: boolean;
  /**
   * Default `true`. `get()` and `getMany()` calls made in the same event-loop turn are read with one
   * LevelDB `getMany`: one thread-pool job instead of one per call, which is about 30 % less CPU per
   * cluster request (TCP bench), and for `getMany()` calls too about 10 % less per put (3-node
   * in-process cluster). At most `maxBatchOps` keys per read, but one `getMany()` call's keys are
   * never split: they are read together, from one snapshot.
   */
  readCoalescing?: boolean;
  /**
   * Default `10_000`. A group reaching this many operations is closed and the next call starts a
   * new one, bounding the size of one LevelDB write. A single call larger than this is written
   * alone, never split.
   */
  maxBatchOps?: number;
  /** LevelDB block cache in bytes (default 8 MiB): uncompressed blocks kept for reads. */
  cacheSizeBytes?: number;
  /**
   * LevelDB memtable size in bytes (default 32 MiB, as Riak's eleveldb; LevelDB's own is 4 MiB).
   * Up to two memtables are in memory at once. Larger means fewer level-0 files and less
   * compaction per write: in the 3-process TCP benchmark, 32 MiB took 25 % less CPU per put than
   * 4 MiB and halved the p99.9 put latency at half peak. Smaller saves memory and makes the log
   * replay on open shorter.
   */
  writeBufferSizeBytes?: number;
  /** Snappy compression of table blocks (default `true`). */
  compression?: boolean;
  /** Open table files LevelDB may keep (default 1000). */
  maxOpenFiles?: number;
}

/** Counters since construction; `groups` < `batches` shows group commit at work. */
export interface LevelStorageStats {
  /** Non-empty `batch()` calls accepted. */
  batches: number;
  /** Writes issued to LevelDB (one per group, or one per batch without group commit). */
  groups: number;
  /** Operations written (puts + dels). */
  operations: number;
  /** LevelDB writes that failed. */
  failedGroups: number;
  /** Keys read through read coalescing (one per `get()`, n per `getMany()` of n keys). */
  reads: number;
  /** LevelDB `getMany` reads issued for them; `reads / readBatches` is the coalescing achieved. */
  readBatches: number;
}

type Db = ClassicLevel<Uint8Array, Uint8Array>;
type Chained = ChainedBatch<Db, Uint8Array, Uint8Array>;
type LevelIterator = Iterator<Db, Uint8Array, Uint8Array>;
type Value = Uint8Array | undefined;

/** In `#readSizes`: a `get()`, which reads one key and settles with the value itself. */
const SINGLE = -1;

/** Batches gathered in one turn (or while the previous write was in flight), written as one. */
interface Group {
  chained: Chained;
  ops: number;
  sync: boolean;
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

type State = 'closed' | 'opening' | 'open' | 'closing';

const ITERATE_CHUNK = 1000;
const DEFAULT_WRITE_BUFFER_BYTES = 32 * 1024 * 1024;

/**
 * `Storage` on LevelDB through `classic-level`; data survives restarts (`supports.permanence`).
 *
 * Keys and values go to LevelDB as bytes (`view` encoding); returned buffers are fresh copies. Calls
 * are accepted only between `open()` resolving and `close()` being called; otherwise they reject
 * with `StorageError`, as do LevelDB failures (the original error is the `cause`). Malformed
 * arguments reject with `TypeError`/`RangeError`. The buffers passed to `batch()`, `get()` and
 * `getMany()` are copied before the call returns, so callers may reuse them at once.
 *
 * `iterate()` reads LevelDB's implicit snapshot taken when iteration starts (the first `next()`).
 * With group commit, batches are applied to LevelDB in the order `batch()` was called.
 */
export class LevelStorage implements Storage {
  /** Data survives a restart: `permanence` is true. */
  readonly supports: { readonly permanence: boolean } = Object.freeze({ permanence: true });
  /** The database directory. */
  readonly path: string;

  readonly #sync: boolean;
  readonly #groupCommit: boolean;
  readonly #readCoalescing: boolean;
  // Read coalescing: the reads requested this turn, as parallel arrays (no object per get).
  // Request i takes the next `#readSizes[i]` keys of `#readKeys` (one for SINGLE).
  #readKeys: Uint8Array[] = [];
  #readSizes: number[] = [];
  #readResolves: ((result: Value | Value[]) => void)[] = [];
  #readRejects: ((error: unknown) => void)[] = [];
  readonly #readKeyCopies = new CopyArena();
  readonly #maxBatchOps: number;
  readonly #levelOptions: Record<string, unknown>;
  #db: Db | undefined;
  #state: State = 'closed';
  #closeRequested = false;
  // open() and close() run one after the other, whatever the callers' interleaving.
  #lifecycle: Promise<void> = Promise.resolve();

  // Group commit: `#current` gathers calls; full groups wait in `#queue`; `#writing` is the one
  // write in flight (its promise never rejects: failures go to the group's callers).
  #current: Group | undefined;
  readonly #queue: Group[] = [];
  #writing: Promise<void> | undefined;
  #flushScheduled = false;
  // Separate for keys and values: one put stages both at once.
  readonly #keyScratch = new Scratch();
  readonly #valueScratch = new Scratch();

  readonly #stats: LevelStorageStats = {
    batches: 0,
    groups: 0,
    operations: 0,
    failedGroups: 0,
    reads: 0,
    readBatches: 0,
  };

  constructor(options: LevelStorageOptions) {
    if (options !== null && typeof options === 'object') {
      checkOptionNames(options, LEVEL_OPTION_NAMES, 'LevelStorage options');
    }
    if (typeof options?.path !== 'string' || options.path === '') {
      throw new TypeError('LevelStorage: options.path must be a non-empty string');
    }
    const maxBatchOps = options.maxBatchOps ?? 10_000;
    if (!Number.isInteger(maxBatchOps) || maxBatchOps < 1) {
      throw new RangeError(`LevelStorage: options.maxBatchOps must be an integer >= 1, got ${maxBatchOps}`);
    }
    this.path = options.path;
    this.#sync = options.sync ?? false;
    this.#groupCommit = options.groupCommit ?? true;
    this.#readCoalescing = options.readCoalescing ?? true;
    this.#maxBatchOps = maxBatchOps;
    this.#levelOptions = {};
    if (options.cacheSizeBytes !== undefined) this.#levelOptions.cacheSize = options.cacheSizeBytes;
    this.#levelOptions.writeBufferSize = options.writeBufferSizeBytes ?? DEFAULT_WRITE_BUFFER_BYTES;
    if (options.compression !== undefined) this.#levelOptions.compression = options.compression;
    if (options.maxOpenFiles !== undefined) this.#levelOptions.maxOpenFiles = options.maxOpenFiles;
  }

  /** A snapshot of the counters. */
  get stats(): LevelStorageStats {
    return { ...this.#stats };
  }

  /**
   * The underlying `classic-level` database while open (for compaction, properties, tests).
   * Writing through it bypasses group commit and its ordering. Its `write` events and prewrite hooks
   * may see keys and values of 64 bytes or less in buffers that LevelStorage reuses at once.
   */
  get db(): ClassicLevel<Uint8Array, Uint8Array> {
    if (!this.#db || this.#state !== 'open' || this.#closeRequested)
      throw new StorageError(`LevelStorage is not open (${this.path})`);
    return this.#db;
  }

  open(): Promise<void> {
    return this.#serialize(async () => {
      if (this.#state === 'open') return;
      this.#state = 'opening';
      const db: Db = new ClassicLevel<Uint8Array, Uint8Array>(this.path, {
        ...this.#levelOptions,
        keyEncoding: 'view',
        valueEncoding: 'view',
        createIfMissing: true,
        errorIfExists: false,
      });
      try {
        await db.open();
      } catch (error) {
        this.#state = 'closed';
        throw new StorageError(`LevelStorage: cannot open ${this.path}: ${openFailure(error)}`, {
          cause: error,
        });
      }
      this.#db = db;
      this.#state = 'open';
    });
  }

  /** Waits for every accepted `batch()` to be written, then closes LevelDB. Calls made meanwhile reject. */
  close(): Promise<void> {
    // Refuse new calls from now on, not from when the queued close actually starts.
    if (this.#state === 'open') this.#closeRequested = true;
    return this.#serialize(async () => {
      if (this.#state !== 'open') return;
      this.#state = 'closing';
      this.#closeRequested = false;
      await this.#drain();
      const db = this.#db!;
      this.#db = undefined;
      try {
        await db.close();
      } catch (error) {
        throw new StorageError(`LevelStorage: cannot close ${this.path}: ${message(error)}`, {
          cause: error,
        });
      } finally {
        this.#state = 'closed';
      }
    });
  }

  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    let db: Db;
    try {
      checkBytes(key, 'get(key): key');
      db = this.#openDb('get');
    } catch (error) {
      return Promise.reject(error);
    }
    if (!this.#readCoalescing) return this.#getAlone(db, key);
    return new Promise<Value>((resolve, reject) => {
      this.#readKeys.push(this.#readKeyCopies.copy(key));
      this.#request(db, SINGLE, resolve as (result: Value | Value[]) => void, reject);
    });
  }

  async #getAlone(db: Db, key: Uint8Array): Promise<Value> {
    try {
      return plainOrUndefined(await db.get(key));
    } catch (error) {
      throw this.#wrap('get', error);
    }
  }

  async getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    if (!Array.isArray(keys)) throw new TypeError('getMany(keys): keys must be an array of Uint8Array');
    for (let i = 0; i < keys.length; i++) checkBytes(keys[i], `getMany(keys): keys[${i}]`);
    const db = this.#openDb('getMany');
    if (keys.length === 0) return [];
    if (this.#readCoalescing) {
      return new Promise<Value[]>((resolve, reject) => {
        for (const key of keys) this.#readKeys.push(this.#readKeyCopies.copy(key));
        this.#request(db, keys.length, resolve as (result: Value | Value[]) => void, reject);
      });
    }
    try {
      const values = await db.getMany(keys);
      for (let i = 0; i < values.length; i++) values[i] = plainOrUndefined(values[i]);
      return values;
    } catch (error) {
      throw this.#wrap('getMany', error);
    }
  }

  // --- read coalescing ---

  /** Queues a read whose keys were just pushed; the first one of a turn schedules the flush. */
  #request(db: Db, size: number, resolve: (result: Value | Value[]) => void, reject: (e: unknown) => void) {
    this.#stats.reads += size === SINGLE ? 1 : size;
    const pending = this.#readSizes.push(size);
    this.#readResolves.push(resolve);
    this.#readRejects.push(reject);
    // The keys are our copies: classic-level copies them only when the read is issued, next turn,
    // and the caller may reuse its buffers as soon as get()/getMany() returns.
    if (pending === 1) nextTurn(() => this.#flushReads(db));
  }

  /** The reads of a turn as LevelDB `getMany`s of at most maxBatchOps keys, never splitting one. */
  #flushReads(db: Db): void {
    const keys = this.#readKeys;
    const sizes = this.#readSizes;
    const resolves = this.#readResolves;
    const rejects = this.#readRejects;
    this.#readKeys = [];
    this.#readSizes = [];
    this.#readResolves = [];
    this.#readRejects = [];
    const width = (i: number) => (sizes[i] === SINGLE ? 1 : sizes[i]!);
    let first = 0;
    let keyStart = 0;
    while (first < sizes.length) {
      let end = first + 1;
      let keyEnd = keyStart + width(first);
      while (end < sizes.length && keyEnd + width(end) - keyStart <= this.#maxBatchOps) {
        keyEnd += width(end);
        end++;
      }
      const chunk = keyStart === 0 && keyEnd === keys.length ? keys : keys.slice(keyStart, keyEnd);
      this.#stats.readBatches++;
      const from = first;
      db.getMany(chunk).then(
        (values) => {
          let k = 0;
          for (let i = from; i < end; i++) {
            const size = sizes[i]!;
            if (size === SINGLE) {
              resolves[i]!(plainOrUndefined(values[k++]));
              continue;
            }
            const out = new Array<Value>(size);
            for (let j = 0; j < size; j++) out[j] = plainOrUndefined(values[k++]);
            resolves[i]!(out);
          }
        },
        (error) => {
          for (let i = from; i < end; i++) {
            rejects[i]!(this.#wrap(sizes[i] === SINGLE ? 'get' : 'getMany', error));
          }
        },
      );
      first = end;
      keyStart = keyEnd;
    }
  }

  batch(operations: StorageOperation[], options?: { sync?: boolean }): Promise<void> {
    try {
      checkOperations(operations);
      this.#openDb('batch');
    } catch (error) {
      return Promise.reject(error);
    }
    if (operations.length === 0) return Promise.resolve();
    this.#stats.batches++;
    const sync = this.#sync || options?.sync === true;
    return this.#groupCommit ? this.#enqueue(operations, sync) : this.#writeAlone(operations, sync);
  }

  iterate(range: StorageRange): AsyncIterable<[Uint8Array, Uint8Array]> {
    const checked = checkRange(range);
    return this.#iterate(checked.gte, checked.lt, checked.limit);
  }

  async *#iterate(
    gte: Uint8Array | undefined,
    lt: Uint8Array | undefined,
    limit: number,
  ): AsyncGenerator<[Uint8Array, Uint8Array]> {
    const db = this.#openDb('iterate');
    if (limit === 0) return;
    // Only defined bounds are passed: abstract-level treats a present-but-undefined bound as a bound.
    const options: { gte?: Uint8Array; lt?: Uint8Array; limit: number } = {
      limit: limit === Infinity ? -1 : limit,
    };
    if (gte !== undefined) options.gte = gte;
    if (lt !== undefined) options.lt = lt;
    let iterator: LevelIterator;
    try {
      iterator = db.iterator<Uint8Array, Uint8Array>(options);
    } catch (error) {
      throw this.#wrap('iterate', error);
    }
    try {
      for (;;) {
        let entries: [Uint8Array, Uint8Array][];
        try {
          entries = await iterator.nextv(ITERATE_CHUNK);
        } catch (error) {
          throw this.#wrap('iterate', error);
        }
        if (entries.length === 0) return;
        for (const entry of entries) yield [plain(entry[0]), plain(entry[1])];
      }
    } finally {
      // Closing an iterator of a closed database is a no-op; never mask the loop's own error.
      await iterator.close().catch(() => {});
    }
  }

  // --- group commit ---

  #enqueue(operations: StorageOperation[], sync: boolean): Promise<void> {
    let group = this.#current;
    if (group && group.ops + operations.length > this.#maxBatchOps) {
      this.#queue.push(group);
      group = undefined;
    }
    if (!group) {
      group = this.#newGroup();
      this.#current = group;
    }
    const chained = group.chained;
    const keys = this.#keyScratch;
    const values = this.#valueScratch;
    try {
      // The chained batch copies each key and value into LevelDB's native WriteBatch right away,
      // which is also what lets short ones go through the reusable scratch buffers (copies.ts).
      for (const op of operations) {
        if (op.type === 'put') chained.put(keys.stage(op.key), values.stage(op.value));
        else chained.del(keys.stage(op.key));
      }
    } catch (error) {
      // Cannot happen after validation and the open check; if it does, this group holds part of
      // one caller's operations, so none of it may be written: fail the whole group.
      if (this.#current === group) this.#current = undefined;
      this.#fail(group, error);
      chained.close().catch(() => {});
      return group.promise;
    }
    group.ops += operations.length;
    if (sync) group.sync = true;
    this.#scheduleFlush();
    return group.promise;
  }

  #newGroup(): Group {
    let resolve!: () => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { chained: this.#db!.batch(), ops: 0, sync: false, promise, resolve, reject };
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    nextTurn(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  // Starts the next write unless one is in flight (its completion calls back here).
  #flush(): void {
    if (this.#writing) return;
    let group = this.#queue.shift();
    if (!group) {
      group = this.#current;
      this.#current = undefined;
    }
    if (!group) return;
    const g = group;
    this.#stats.groups++;
    this.#stats.operations += g.ops;
    this.#writing = g.chained.write({ sync: g.sync }).then(
      () => {
        this.#writing = undefined;
        g.resolve();
        this.#afterWrite();
      },
      (error: unknown) => {
        this.#writing = undefined;
        this.#fail(g, error);
        this.#afterWrite();
      },
    );
  }

  #afterWrite(): void {
    // Full groups go at once; a partial one waits a turn so the callers just resolved can join it.
    if (this.#queue.length > 0) this.#flush();
    else if (this.#current) this.#scheduleFlush();
  }

  #fail(group: Group, error: unknown): void {
    this.#stats.failedGroups++;
    group.reject(this.#wrap('batch', error));
  }

  async #drain(): Promise<void> {
    while (this.#writing || this.#current || this.#queue.length > 0) {
      if (!this.#writing) this.#flush();
      await this.#writing;
    }
  }

  async #writeAlone(operations: StorageOperation[], sync: boolean): Promise<void> {
    this.#stats.groups++;
    this.#stats.operations += operations.length;
    const db = this.#db!;
    try {
      // A lone operation is atomic anyway, and put/del skip abstract-level's batch bookkeeping.
      if (operations.length === 1) {
        const op = operations[0]!;
        if (op.type === 'put') await db.put(op.key, op.value, { sync });
        else await db.del(op.key, { sync });
      } else {
        await db.batch(operations, { sync });
      }
    } catch (error) {
      this.#stats.failedGroups++;
      throw this.#wrap('batch', error);
    }
  }

  // --- helpers ---

  #openDb(method: string): Db {
    if (this.#state !== 'open' || this.#closeRequested || !this.#db) {
      const state = this.#closeRequested ? 'closing' : this.#state;
      throw new StorageError(`LevelStorage is ${state}: cannot call ${method}() (${this.path})`);
    }
    return this.#db;
  }

  #wrap(method: string, error: unknown): StorageError {
    if (error instanceof StorageError) return error;
    return new StorageError(`LevelStorage ${method}() failed (${this.path}): ${message(error)}`, {
      cause: error,
    });
  }

  #serialize(fn: () => Promise<void>): Promise<void> {
    const run = this.#lifecycle.then(fn);
    this.#lifecycle = run.catch(() => {});
    return run;
  }
}

/**
 * classic-level hands out Buffers, each over its own fresh ArrayBuffer. A plain Uint8Array view of
 * the same memory (no copy) makes results identical to MemoryStorage's, e.g. for deep equality.
 */
function plain(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function plainOrUndefined(bytes: Uint8Array | undefined): Value {
  return bytes === undefined ? undefined : plain(bytes);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Why LevelDB did not open, from every error in the `cause` chain (classic-level says only
 * "Database failed to open"; the reason is its cause), with the likely fix for a held lock.
 */
function openFailure(error: unknown): string {
  const messages: string[] = [];
  let locked = false;
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    messages.push(message(e));
    const code = (e as { code?: unknown }).code;
    if (code === 'LEVEL_LOCKED' || /\block\b/i.test(message(e))) locked = true;
    e = (e as { cause?: unknown }).cause;
  }
  const text = messages.join(': ');
  return locked
    ? `${text} (locked by another process? A LevelDB directory serves one LevelStorage, in one process, at a time)`
    : text;
}

/** Every option name (the compiler keeps the listing complete). */
const LEVEL_OPTION_NAMES = names<keyof LevelStorageOptions>({
  path: true,
  sync: true,
  groupCommit: true,
  readCoalescing: true,
  maxBatchOps: true,
  cacheSizeBytes: true,
  writeBufferSizeBytes: true,
  compression: true,
  maxOpenFiles: true,
});
