/**
 * Import: each exported object is merged into its key's replicas with the replica merge (the one
 * replication, read repair, hints and anti-entropy use), through the same routing as a put —
 * sloppy quorum, hints for replicas that are down, the gaining nodes of a rebalance — and counts
 * once W replicas stored it. The merge is idempotent and keeps every sibling a replica has that
 * the object has not seen, so importing twice, or into a cluster that has newer writes, loses
 * nothing and adds no sibling.
 */
import type { Coordinator } from '../coordinator/coordinator.js';
import type { Router } from '../coordinator/router.js';
import { CorruptValueError, LimitError } from '../errors.js';
import type { ExportRecord } from '../listing/listing.js';
import { validateQuorumPart } from '../options.js';
import { partitionOf } from '../ring/index.js';
import { throwIfAborted } from '../util/abort.js';
import { type CheckedObject, CorruptObjectError, checkObject } from '../versioning/index.js';

/** Options of `importObjects()`. */
export interface ImportOptions {
  /** Replicas that must store each object (default: the node's quorum.w). */
  w?: number;
  /** Bound on each object's stores, ms. Default 2 × requestTimeoutMs. */
  timeoutMs?: number;
  /** Objects being stored at once. Default 16. */
  concurrency?: number;
  /** Aborting stops the import (what was stored stays stored) with the signal's reason. */
  signal?: AbortSignal;
  /** Told the number of objects imported so far, after each one. */
  onProgress?: (imported: number) => void;
}

/** What `importObjects()` resolves with. */
export interface ImportResult {
  /** Objects stored on at least W replicas. */
  imported: number;
}

export interface ImporterDeps {
  coordinator: Pick<Coordinator, 'store'>;
  router: Pick<Router, 'route'>;
  partitions: number;
  quorum: { n: number; w: number };
  maxKeyBytes: number;
  maxObjectBytes: number;
  requestTimeoutMs: number;
  ensureRunning(): void;
  enter(): void;
  leave(): void;
  /** QuorumError before anything is sent when too few nodes own partitions. */
  checkOwners(required: number): void;
}

const DEFAULT_CONCURRENCY = 16;
const MAX_CONCURRENCY = 256;
const KNOWN = ['w', 'timeoutMs', 'concurrency', 'signal', 'onProgress'];

export class Importer {
  constructor(private readonly deps: ImporterDeps) {}

  /**
   * Stores every record; resolves with the count once all are stored, or rejects with the first
   * failure (`QuorumError`, `LimitError`, `CorruptValueError`) after the stores in flight settled.
   * Records already stored stay stored: importing again from the start is safe.
   */
  async importObjects(
    records: AsyncIterable<ExportRecord> | Iterable<ExportRecord>,
    options: ImportOptions = {},
  ): Promise<ImportResult> {
    const d = this.deps;
    for (const name of Object.keys(options)) {
      if (!KNOWN.includes(name)) throw new TypeError(`importObjects: unknown option ${JSON.stringify(name)}`);
    }
    d.ensureRunning();
    const w = options.w === undefined ? d.quorum.w : validateQuorumPart('w', options.w, d.quorum.n);
    const timeoutMs = options.timeoutMs ?? d.requestTimeoutMs * 2;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
      throw new RangeError('timeoutMs must be a positive number');
    const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
      throw new RangeError(`concurrency must be an integer in 1..${MAX_CONCURRENCY}`);
    }
    d.checkOwners(w);
    let imported = 0;
    let failure: { error: unknown } | undefined;
    const inFlight = new Set<Promise<void>>();
    d.enter();
    try {
      for await (const record of records) {
        throwIfAborted(options.signal);
        if (failure) break;
        const { key, object } = this.check(record);
        const partition = partitionOf(key, d.partitions);
        const store: Promise<void> = d.coordinator
          .store(key, partition, d.router.route(partition), object, w, timeoutMs, options.signal)
          .then(
            () => {
              imported++;
              options.onProgress?.(imported);
            },
            (error: unknown) => {
              failure ??= { error };
            },
          )
          .finally(() => inFlight.delete(store));
        inFlight.add(store);
        if (inFlight.size >= concurrency) await Promise.race(inFlight);
      }
    } finally {
      await Promise.all(inFlight);
      d.leave();
    }
    if (failure) throw failure.error;
    throwIfAborted(options.signal);
    return { imported };
  }

  private check(record: ExportRecord): { key: Uint8Array; object: CheckedObject } {
    const d = this.deps;
    if (record === null || typeof record !== 'object')
      throw new TypeError('a record must be { key, object }');
    const { key, object } = record;
    if (!(key instanceof Uint8Array) || !(object instanceof Uint8Array)) {
      throw new TypeError('a record must be { key: Uint8Array, object: Uint8Array }');
    }
    if (key.byteLength > d.maxKeyBytes) throw new LimitError('maxKeyBytes', key.byteLength, d.maxKeyBytes);
    if (object.byteLength > d.maxObjectBytes) {
      throw new LimitError('maxObjectBytes', object.byteLength, d.maxObjectBytes);
    }
    try {
      return { key, object: checkObject(object) };
    } catch (err) {
      if (err instanceof CorruptObjectError) {
        throw new CorruptValueError(
          `imported object of key ${Buffer.from(key).toString('base64')} is corrupt`,
          {
            cause: err,
          },
        );
      }
      throw err;
    }
  }
}
