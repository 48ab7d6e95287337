/**
 * Key listing and export as callers see them, shared by DynamoNode and DynamoClient: options
 * checked, cursors encoded, keys decoded, and the async iterators built on pages.
 *
 * Guarantee (docs/api/listing.md): a listing visits partitions in order, each from one replica,
 * and resumes strictly after the last key it visited. So every key that is live on the replica
 * asked for its partition, from the start of the listing to its end, is returned at least once; a
 * key written, deleted or expiring during the listing may or may not be. There is no snapshot.
 */
import type { Key } from '../events.js';
import type { GetOptions, GetResult } from '../operation-types.js';
import { throwIfAborted } from '../util/abort.js';
import { checkOptionNames } from '../util/option-names.js';
import { decodeCursor, encodeCursor, type ListPosition } from './cursor.js';
import type { Lister, ListPage } from './lister.js';
import { MAX_LIST_BYTES, MAX_LIST_KEYS } from './scan.js';

/** How listed keys come out: `utf8` as strings, `bytes` as `Uint8Array`s. */
export type KeyEncoding = 'utf8' | 'bytes';

/** Options of `keys()`: one page of the cluster's live keys. */
export interface ListKeysOptions {
  /** Keys per page, 1..10,000. Default 1000. */
  limit?: number;
  /** Where to continue: the `cursor` of the previous page (omit for the first page). */
  cursor?: string;
  /** Bound on the page, failovers included, ms. Default 10 × requestTimeoutMs. */
  timeoutMs?: number;
  /** Aborting rejects the page with the signal's reason. */
  signal?: AbortSignal;
  /** `utf8` (default): keys as strings (keys written as bytes that are not UTF-8 come out with U+FFFD); `bytes`: as Uint8Array. */
  keyEncoding?: KeyEncoding;
}

/** One page of live keys, and where the next one starts. */
export interface KeysPage<K extends Key = string> {
  /** At most `limit` keys, in partition order (not key order). */
  keys: K[];
  /** Pass it to the next call; undefined once the listing is complete. */
  cursor: string | undefined;
}

/** Options of `allKeys()`: every live key, page after page. */
export interface ScanOptions {
  /** Keys fetched per page. Default 1000. */
  pageSize?: number;
  /** Start from a cursor some `keys()` page returned. */
  cursor?: string;
  /** Bound on each page, ms. Default 10 × requestTimeoutMs. */
  timeoutMs?: number;
  /** Aborting ends the iteration with the signal's reason. */
  signal?: AbortSignal;
  /** As for `keys()`: `utf8` (default) or `bytes`. */
  keyEncoding?: KeyEncoding;
}

/** Options of `allEntries()`: `allKeys()`'s, and those of the get made for each key. */
export interface EntriesOptions extends ScanOptions {
  /** Read quorum of each key's get (default: the node's quorum.r). */
  r?: number;
  /** Gets in flight at once. Default 16. */
  concurrency?: number;
}

/** One key of `allEntries()` and what a get of it answered. */
export interface Entry<V, K extends Key = string> {
  /** The key. */
  key: K;
  /** As `get` answers: siblings, or the resolver's merge. */
  values: V[];
  /** The get's context: pass it to a put that follows. */
  context: string;
}

/** Options of `exportPage()`: one page of stored objects for a backup. */
export interface ExportPageOptions {
  /** Objects per page, 1..10,000. Default 1000. */
  limit?: number;
  /** Bytes of keys and objects per page (one larger object comes alone). Default 4 MiB. */
  maxBytes?: number;
  /** Where to continue: the `cursor` of the previous page (omit for the first page). */
  cursor?: string;
  /** Bound on the page, failovers included, ms. Default 10 × requestTimeoutMs. */
  timeoutMs?: number;
  /** Aborting rejects the page with the signal's reason. */
  signal?: AbortSignal;
}

/** One key's stored object: the bytes `encodeObject` makes (values, siblings, causal context). */
export interface ExportRecord {
  /** The key, as bytes. */
  key: Uint8Array;
  /** The stored object, tombstones and expiries included. */
  object: Uint8Array;
}

/** One page of stored objects, and where the next one starts. */
export interface ExportPage {
  /** At most `limit` records of at most `maxBytes` together, in partition order. */
  records: ExportRecord[];
  /** Pass it to the next call; undefined once the export is complete. */
  cursor: string | undefined;
}

const DEFAULT_LIMIT = 1000;
const DEFAULT_EXPORT_BYTES = 4 * 1024 * 1024;
const DEFAULT_CONCURRENCY = 16;
const MAX_CONCURRENCY = 256;
const PAGE_TIMEOUT_FACTOR = 10;

export interface KeyListingDeps<V> {
  lister: Lister;
  partitions: number;
  maxKeyBytes: number;
  requestTimeoutMs: number;
  ensureRunning(): void;
  /** Counts an operation in progress (stop() waits for it); `leave` ends it. */
  enter(): void;
  leave(): void;
  get(key: Key, options: GetOptions): Promise<GetResult<V>>;
}

const utf8 = new TextDecoder();

export class KeyListing<V> {
  constructor(private readonly deps: KeyListingDeps<V>) {}

  async keys(options: ListKeysOptions = {}): Promise<KeysPage<Key>> {
    checkOptions(options, ['limit', 'cursor', 'timeoutMs', 'signal', 'keyEncoding'], 'keys');
    const limit = count('limit', options.limit, DEFAULT_LIMIT, MAX_LIST_KEYS);
    const decode = keyDecoder(options.keyEncoding);
    const page = await this.page('keys', options.cursor, limit, MAX_LIST_BYTES, options);
    return { keys: page.entries.map((e) => decode(e.key)), cursor: this.cursorOf(page) };
  }

  async *allKeys(options: ScanOptions = {}): AsyncGenerator<Key> {
    checkOptions(options, ['pageSize', 'cursor', 'timeoutMs', 'signal', 'keyEncoding'], 'allKeys');
    const limit = count('pageSize', options.pageSize, DEFAULT_LIMIT, MAX_LIST_KEYS);
    const decode = keyDecoder(options.keyEncoding);
    let cursor = options.cursor;
    do {
      const page = await this.page('keys', cursor, limit, MAX_LIST_BYTES, options);
      for (const e of page.entries) yield decode(e.key);
      cursor = this.cursorOf(page);
    } while (cursor !== undefined);
  }

  /**
   * Every key with what `get` answers for it now (keys that read as absent by then are skipped).
   * A get per key, `concurrency` at a time, in listing order.
   */
  async *allEntries(options: EntriesOptions = {}): AsyncGenerator<Entry<V, Key>> {
    checkOptions(
      options,
      ['pageSize', 'cursor', 'timeoutMs', 'signal', 'keyEncoding', 'r', 'concurrency'],
      'allEntries',
    );
    const concurrency = count('concurrency', options.concurrency, DEFAULT_CONCURRENCY, MAX_CONCURRENCY);
    const decode = keyDecoder(options.keyEncoding);
    const getOptions: GetOptions = {};
    if (options.r !== undefined) getOptions.r = options.r;
    if (options.signal !== undefined) getOptions.signal = options.signal;
    const { concurrency: _c, r: _r, ...scan } = options;
    const keys = this.allKeys({ ...scan, keyEncoding: 'bytes' }) as AsyncGenerator<Uint8Array>;
    const pending: Promise<{ key: Uint8Array; read: GetResult<V> }>[] = [];
    const fetch = (key: Uint8Array) => this.deps.get(key, getOptions).then((read) => ({ key, read }));
    try {
      for await (const key of keys) {
        pending.push(fetch(key));
        if (pending.length >= concurrency) {
          const { key: k, read } = await pending.shift()!;
          if (read.values.length > 0) yield { key: decode(k), values: read.values, context: read.context };
        }
      }
      while (pending.length > 0) {
        const { key: k, read } = await pending.shift()!;
        if (read.values.length > 0) yield { key: decode(k), values: read.values, context: read.context };
      }
    } finally {
      // An abandoned iteration leaves no rejection unhandled.
      for (const p of pending) p.catch(() => {});
    }
  }

  async exportPage(options: ExportPageOptions = {}): Promise<ExportPage> {
    checkOptions(options, ['limit', 'maxBytes', 'cursor', 'timeoutMs', 'signal'], 'exportPage');
    const limit = count('limit', options.limit, DEFAULT_LIMIT, MAX_LIST_KEYS);
    const maxBytes = count('maxBytes', options.maxBytes, DEFAULT_EXPORT_BYTES, MAX_LIST_BYTES);
    const page = await this.page('objects', options.cursor, limit, maxBytes, options);
    return {
      records: page.entries.map((e) => ({ key: e.key, object: e.object! })),
      cursor: this.cursorOf(page),
    };
  }

  async *exportObjects(
    options: Omit<ExportPageOptions, 'limit'> & { pageSize?: number } = {},
  ): AsyncGenerator<ExportRecord> {
    checkOptions(options, ['pageSize', 'maxBytes', 'cursor', 'timeoutMs', 'signal'], 'exportObjects');
    const { pageSize, ...rest } = options;
    let cursor = options.cursor;
    do {
      const page = await this.exportPage({ ...rest, limit: pageSize, cursor });
      yield* page.records;
      cursor = page.cursor;
    } while (cursor !== undefined);
  }

  private async page(
    mode: 'keys' | 'objects',
    cursor: string | undefined,
    limit: number,
    maxBytes: number,
    options: { timeoutMs?: number; signal?: AbortSignal },
  ): Promise<ListPage> {
    const d = this.deps;
    d.ensureRunning();
    const from: ListPosition =
      cursor === undefined
        ? { partition: 0, after: null }
        : decodeCursor(cursor, d.partitions, d.maxKeyBytes);
    const timeoutMs = options.timeoutMs ?? d.requestTimeoutMs * PAGE_TIMEOUT_FACTOR;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new RangeError(`timeoutMs must be a positive number, got ${timeoutMs}`);
    }
    throwIfAborted(options.signal);
    d.enter();
    try {
      return await d.lister.page(mode, from, limit, maxBytes, timeoutMs, options.signal);
    } finally {
      d.leave();
    }
  }

  private cursorOf(page: ListPage): string | undefined {
    return page.next === null ? undefined : encodeCursor(page.next, this.deps.partitions);
  }
}

function keyDecoder(encoding: KeyEncoding | undefined): (key: Uint8Array) => Key {
  if (encoding === undefined || encoding === 'utf8') return (key) => utf8.decode(key);
  if (encoding === 'bytes') return (key) => key;
  throw new RangeError(`keyEncoding must be 'utf8' or 'bytes', got ${JSON.stringify(encoding)}`);
}

function count(name: string, value: number | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(`${name} must be an integer in 1..${max}, got ${value}`);
  }
  return value;
}

function checkOptions(options: object, known: readonly string[], method: string): void {
  if (options === null || typeof options !== 'object')
    throw new TypeError(`${method}: options must be an object`);
  checkOptionNames(options, known, method);
}
