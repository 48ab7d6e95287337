/** One write of a `Storage.batch`: set `key` to `value`, or delete it. */
export type StorageOperation =
  | { type: 'put'; key: Uint8Array; value: Uint8Array }
  | { type: 'del'; key: Uint8Array };

/** A key range of `Storage.iterate`. */
export interface StorageRange {
  /** Inclusive lower bound. */
  gte?: Uint8Array;
  /** Exclusive upper bound. */
  lt?: Uint8Array;
  /** At most this many entries. */
  limit?: number;
}

/**
 * Local persistence, bytes in and bytes out: the engine owns encoding and key layout.
 * Implementations: `MemoryStorage` (here) and `LevelStorage` (`dynamo-engine/level`). Third
 * parties prove theirs with `storageComplianceSuite` from `dynamo-engine/testing`.
 *
 * Concurrency contract: calls may overlap; a `batch` is atomic and, once its promise resolves,
 * visible to every later `get`/`iterate`. Keys are compared as unsigned bytes.
 */
export interface Storage {
  /** What this storage can do. */
  readonly supports: {
    /** Data survives `close()` + `open()` (and a process restart). */
    permanence: boolean;
  };
  /** Opens the store; the node calls it once, in `DynamoNode.start`. */
  open(): Promise<void>;
  /** Releases the store; the node calls it once, in `stop`. */
  close(): Promise<void>;
  /** The value of `key`, or undefined when absent. */
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  /** The values of `keys`, in the same order (undefined where absent). */
  getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]>;
  /** Atomic: all operations apply or none. `sync: true` waits for the disk (fsync). */
  batch(operations: StorageOperation[], options?: { sync?: boolean }): Promise<void>;
  /** Ascending byte order of keys. */
  iterate(range: StorageRange): AsyncIterable<[Uint8Array, Uint8Array]>;
}
