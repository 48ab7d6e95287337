/**
 * The public option and result types of the data operations (get, put, delete, update) and of
 * `preferenceList`, shared by DynamoNode, DynamoClient and the operations they both run (in a
 * module of their own, so that none of those imports another for its types).
 */

/** Options of `get`. */
export interface GetOptions {
  /** Replies to wait for (default: the node's quorum.r). */
  r?: number;
  /** Whole-operation timeout, ms (default: 2 × requestTimeoutMs, room for one round of fallbacks). */
  timeoutMs?: number;
  /** Aborting rejects the operation with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Ask the replicas in the caller's own `zone` first (default: the `preferLocalZone` option); the
   * others only when those are not enough for R, fail, or (latency-aware) are slower than usual.
   */
  preferLocalZone?: boolean;
}

/** Options of `put` and `delete`. */
export interface PutOptions {
  /** The context of the read this write is based on; without one the write becomes a sibling. */
  context?: string;
  /** Durable stores to wait for (default: the node's quorum.w). */
  w?: number;
  /**
   * Stores must come from at least this many distinct zones, on top of W (default: the node's
   * `minZones`, 1). `QuorumError` otherwise, with `zones`: the zones that acknowledged.
   */
  minZones?: number;
  /** Whole-operation timeout, ms (default: 2 × requestTimeoutMs). */
  timeoutMs?: number;
  /** Aborting rejects the operation with the signal's reason (it may still have been stored). */
  signal?: AbortSignal;
  /**
   * Idempotency key (any string of 1..1024 characters, unique per intended write): a put retried
   * with the same `requestId`, through any node, is stored once, under one dot, as long as the key
   * still remembers it (its last `MAX_OP_ENTRIES` = 64 such writes; see docs/api/errors.md, "Retrying safely"). A put
   * whose id the key remembers is acknowledged without being applied, whatever its value; a purged
   * tombstone takes the key's memory with it.
   */
  requestId?: string;
  /**
   * Put only: the value expires this long after it is written (an integer, 1 ms .. 20 years; beyond:
   * RangeError). The coordinator turns it into an absolute expiry on its own clock; from then on the
   * value reads as absent and behaves as a tombstone everywhere (see docs/api/expiry.md).
   */
  ttlMs?: number;
}

/** What `get` resolves with. */
export interface GetResult<V> {
  /** Every concurrent sibling, or with a resolver at most one merged value; [] when absent or deleted. */
  values: V[];
  /** Opaque; pass it to the put that follows this read. */
  context: string;
}

/** What `put` and `delete` resolve with. */
export interface PutResult {
  /** The caller's context plus this write, nothing else: pass it to the next write of the key. */
  context: string;
}

/** What `update` resolves with. */
export interface UpdateResult<V> {
  /** The value written. */
  value: V;
  /** The read's context plus this write. */
  context: string;
}

/**
 * `update`'s function: `current` is the resolver's merge or the only value (undefined when absent,
 * or when siblings exist and no resolver is set); `siblings` is every concurrent value read.
 */
export type UpdateFunction<V> = (current: V | undefined, siblings: V[]) => V | Promise<V>;

/** One node a request for a key goes to (`preferenceList(key)`), in request order. */
export interface PreferenceListEntry {
  /** The node's id. */
  id: string;
  /** Where it is reached. */
  address: string;
  /** `primary`: one of the key's top N; `fallback`: standing in for a primary believed down. */
  kind: 'primary' | 'fallback';
}
