/**
 * The local replica: applies versions to this node's storage. Every path that brings a version
 * in (replication, read repair, hints, anti-entropy, transfer) goes through `merge`, one function
 * (DVV sync) that is commutative, associative and idempotent, so redelivery is harmless and a
 * stale version can never overwrite a newer one.
 */
import { LimitError, StorageError } from '../errors.js';
import type { Storage, StorageOperation } from '../storage/types.js';
import {
  decodeObject,
  encodeObject,
  prune,
  sync,
  update,
  type VersionedObject,
  type VersionVector,
} from '../versioning/index.js';
import { dataKey, hintKey } from './layout.js';
import { KeyLocks } from './lock.js';

export interface ReplicaOptions {
  maxSiblings: number;
  maxClockEntries: number;
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

export class Replica {
  private readonly locks = new KeyLocks();
  private readonly listeners: ChangeListener[] = [];
  /** Highest dot counter this node issued since it started (see `coordinate`). */
  private lastCounter = 0;
  hints: HintPolicy | undefined;

  constructor(
    private readonly storage: Storage,
    private readonly options: ReplicaOptions,
  ) {}

  onChange(listener: ChangeListener): void {
    this.listeners.push(listener);
  }

  /** The stored object bytes of `key` (data, plus the hint held for `hintFor` when standing in). */
  async read(partition: number, key: Uint8Array, hintFor: string | null): Promise<Uint8Array | undefined> {
    const own = await this.get(dataKey(partition, key));
    if (hintFor === null) return own;
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
  async merge(
    partition: number,
    key: Uint8Array,
    incoming: VersionedObject,
    hintFor: string | null,
    /** `incoming` as encoded by the sender, when at hand: stored as is when the key is new here. */
    incomingBytes?: Uint8Array,
  ): Promise<'created' | 'changed' | 'unchanged'> {
    const storageKey = hintFor === null ? dataKey(partition, key) : hintKey(hintFor, partition, key);
    return this.locks.run(lockId(storageKey), async () => {
      const before = await this.get(storageKey);
      if (!before && hintFor !== null) this.hints?.admit(hintFor);
      let after: Uint8Array;
      if (!before && incomingBytes && incoming.ctx.size <= this.options.maxClockEntries) {
        // Fast path (most replication): nothing to merge with, nothing to prune.
        after = incomingBytes;
      } else {
        const merged = before
          ? prune(sync(decodeObject(before), incoming), this.options.maxClockEntries)
          : prune(incoming, this.options.maxClockEntries);
        after = encodeObject(merged);
      }
      if (before && equalBytes(before, after)) return 'unchanged';
      await this.write([{ type: 'put', key: storageKey, value: after }]);
      if (hintFor === null) this.notify(partition, key, before, after);
      else if (!before) this.hints?.created(hintFor);
      return before ? 'changed' : 'created';
    });
  }

  /**
   * The coordinator's step of a put: a new dotted version at `actor` superseding what `context`
   * has seen. Refuses (LimitError, nothing written) when the key would hold too many siblings.
   */
  async coordinate(
    partition: number,
    key: Uint8Array,
    context: VersionVector,
    baseActor: string,
    value: Uint8Array | null,
    timestamp: number,
    hintFor: string | null,
  ): Promise<{ object: VersionedObject; bytes: Uint8Array }> {
    const storageKey = hintFor === null ? dataKey(partition, key) : hintKey(hintFor, partition, key);
    return this.locks.run(lockId(storageKey), async () => {
      const before = await this.get(storageKey);
      if (!before && hintFor !== null) this.hints?.admit(hintFor);
      const local = before ? decodeObject(before) : undefined;
      // A dot must never be reissued for a key whose local object forgot it: after a tombstone
      // purge (a stale copy elsewhere still covers the old dot and would drop the new write), or
      // in a fresh hint object when coordinating as a fallback. So each new counter is above every
      // counter this node issued since it started, and above the clock (in µs: room for 1,000
      // writes per ms before counters run ahead of it), which carries that across restarts.
      const clockFloor = Number.isFinite(timestamp) ? Math.floor(Math.max(0, timestamp) * 1000) : 0;
      const minCounter = Math.max(this.lastCounter + 1, clockFloor);
      const actor = hintFor === null ? baseActor : hintActor(baseActor, local, minCounter);
      const next = prune(
        update(local, context, actor, value, timestamp, minCounter),
        this.options.maxClockEntries,
      );
      this.lastCounter = Math.max(this.lastCounter, next.ctx.get(actor) ?? 0);
      const live = next.siblings.length;
      if (live > this.options.maxSiblings) {
        throw new LimitError(
          'maxSiblings',
          live,
          this.options.maxSiblings,
          `key would hold ${live} siblings (maxSiblings ${this.options.maxSiblings}): read it and write with its context to merge them`,
        );
      }
      const after = encodeObject(next);
      await this.write([{ type: 'put', key: storageKey, value: after }]);
      if (hintFor === null) this.notify(partition, key, before, after);
      else if (!before) this.hints?.created(hintFor);
      return { object: next, bytes: after };
    });
  }

  /**
   * Anti-entropy's tombstone purge: physically deletes the key's data only if it still holds
   * `expected` (a key written meanwhile stays). Listeners are not told; the caller updates its
   * tree itself.
   */
  async purgeIfUnchanged(partition: number, key: Uint8Array, expected: Uint8Array): Promise<boolean> {
    const storageKey = dataKey(partition, key);
    return this.locks.run(lockId(storageKey), async () => {
      const current = await this.get(storageKey);
      if (!current || !equalBytes(current, expected)) return false;
      await this.write([{ type: 'del', key: storageKey }]);
      return true;
    });
  }

  /** Deletes the hint only if it still holds `expected` (a hint that changed meanwhile stays). */
  async deleteHintIfUnchanged(
    target: string,
    storageKey: Uint8Array,
    expected: Uint8Array,
  ): Promise<boolean> {
    return this.locks.run(lockId(storageKey), async () => {
      const current = await this.get(storageKey);
      if (!current || !equalBytes(current, expected)) return false;
      await this.write([{ type: 'del', key: storageKey }]);
      this.hints?.deleted(target);
      return true;
    });
  }

  private notify(
    partition: number,
    key: Uint8Array,
    before: Uint8Array | undefined,
    after: Uint8Array,
  ): void {
    for (const l of this.listeners) l(partition, key, before, after);
  }

  private async get(storageKey: Uint8Array): Promise<Uint8Array | undefined> {
    try {
      return await this.storage.get(storageKey);
    } catch (err) {
      throw err instanceof StorageError ? err : new StorageError('storage read failed', { cause: err });
    }
  }

  private async write(ops: StorageOperation[]): Promise<void> {
    try {
      await this.storage.batch(ops);
    } catch (err) {
      throw err instanceof StorageError ? err : new StorageError('storage write failed', { cause: err });
    }
  }
}

/**
 * The actor for a write coordinated into a hint object. A version vector entry implies its actor's
 * earlier dots were seen, which holds only if every write of that actor to the key went through
 * the object. A node's data object and its hint objects are separate histories, so each hint
 * object writes as its own actor (`${actor}~${unique}`), reused for as long as the hint lives.
 */
function hintActor(baseActor: string, local: VersionedObject | undefined, unique: number): string {
  const prefix = `${baseActor}~`;
  if (local) for (const a of local.ctx.keys()) if (a.startsWith(prefix)) return a;
  return prefix + unique.toString(36);
}

function lockId(storageKey: Uint8Array): string {
  return Buffer.from(storageKey.buffer, storageKey.byteOffset, storageKey.byteLength).toString('latin1');
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}
