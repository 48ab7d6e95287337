import { type ChainedBatch, ClassicLevel, type Iterator } from 'classic-level';
import { StorageError } from '../errors.js';
import type { Storage, StorageOperation, StorageRange } from '../storage/types.js';
import { checkBytes, checkOperations, checkRange } from '../storage/validate.js';
import { nextTurn } from '../util/clock.js';

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
   * Default `true`. `get()` calls made in the same event-loop turn are read with one LevelDB
   * `getMany` (one thread-pool job instead of one per key: about 30 % less CPU per cluster
   * request, measured in the TCP bench). At most `maxBatchOps` keys per read.
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
   * LevelDB memtable size in bytes (default 4 MiB). Larger absorbs write bursts better at the cost
   * of memory and a longer log replay on open.
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
}

type Db = ClassicLevel<Uint8Array, Uint8Array>;
type Chained = ChainedBatch<Db, Uint8Array, Uint8Array>;
type LevelIterator = Iterator<Db, Uint8Array, Uint8Array>;

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

/**
 * `Storage` on LevelDB through `classic-level`; data survives restarts (`supports.permanence`).
 *
 * Keys and values go to LevelDB as bytes (`view` encoding); returned buffers are fresh copies. Calls
 * are accepted only between `open()` resolving and `close()` being called; otherwise they reject
 * with `StorageError`, as do LevelDB failures (the original error is the `cause`). Malformed
 * arguments reject with `TypeError`/`RangeError`. The buffers passed to `batch()` are copied before
 * it returns, so callers may reuse them at once.
 *
 * `iterate()` reads LevelDB's implicit snapshot taken when iteration starts (the first `next()`).
 * With group commit, batches are applied to LevelDB in the order `batch()` was called.
 */
export class LevelStorage implements Storage {
  readonly supports: { readonly permanence: boolean } = Object.freeze({ permanence: true });
  readonly path: string;

  readonly #sync: boolean;
  readonly #groupCommit: boolean;
  readonly #readCoalescing: boolean;
  #reads: { key: Uint8Array; resolve: (v: Uint8Array | undefined) => void; reject: (e: unknown) => void }[] =
    [];
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

  readonly #stats: LevelStorageStats = { batches: 0, groups: 0, operations: 0, failedGroups: 0 };

  constructor(options: LevelStorageOptions) {
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
    if (options.writeBufferSizeBytes !== undefined)
      this.#levelOptions.writeBufferSize = options.writeBufferSizeBytes;
    if (options.compression !== undefined) this.#levelOptions.compression = options.compression;
    if (options.maxOpenFiles !== undefined) this.#levelOptions.maxOpenFiles = options.maxOpenFiles;
  }

  /** A snapshot of the counters. */
  get stats(): LevelStorageStats {
    return { ...this.#stats };
  }

  /**
   * The underlying `classic-level` database while open (for compaction, properties, tests).
   * Writing through it bypasses group commit and its ordering.
   */
  get db(): Db {
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
        throw new StorageError(`LevelStorage: cannot open ${this.path}: ${message(error)}`, { cause: error });
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

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    checkBytes(key, 'get(key): key');
    const db = this.#openDb('get');
    if (this.#readCoalescing) {
      return new Promise<Uint8Array | undefined>((resolve, reject) => {
        // classic-level copies the key when the read is issued (next turn); keep our own copy.
        this.#reads.push({ key: key.slice(), resolve, reject });
        if (this.#reads.length === 1) nextTurn(() => this.#flushReads(db));
      });
    }
    try {
      const value = await db.get(key);
      return value === undefined ? undefined : plain(value);
    } catch (error) {
      throw this.#wrap('get', error);
    }
  }

  /** One `getMany` for the gets of a turn (split at maxBatchOps keys). */
  #flushReads(db: Db): void {
    const reads = this.#reads;
    this.#reads = [];
    for (let i = 0; i < reads.length; i += this.#maxBatchOps) {
      const chunk = reads.slice(i, i + this.#maxBatchOps);
      db.getMany(chunk.map((r) => r.key)).then(
        (values) => {
          for (let j = 0; j < chunk.length; j++) {
            const v = values[j];
            chunk[j]!.resolve(v === undefined ? undefined : plain(v));
          }
        },
        (error) => {
          const wrapped = this.#wrap('get', error);
          for (const r of chunk) r.reject(wrapped);
        },
      );
    }
  }

  async getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    if (!Array.isArray(keys)) throw new TypeError('getMany(keys): keys must be an array of Uint8Array');
    for (let i = 0; i < keys.length; i++) checkBytes(keys[i], `getMany(keys): keys[${i}]`);
    const db = this.#openDb('getMany');
    if (keys.length === 0) return [];
    try {
      const values = await db.getMany(keys);
      for (let i = 0; i < values.length; i++) {
        const value = values[i];
        if (value !== undefined) values[i] = plain(value);
      }
      return values;
    } catch (error) {
      throw this.#wrap('getMany', error);
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
    try {
      // The chained batch copies each key and value into LevelDB's native WriteBatch right away.
      for (const op of operations) {
        if (op.type === 'put') chained.put(op.key, op.value);
        else chained.del(op.key);
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

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
