/**
 * The public option and result types of the data operations (get, put, delete, update) and of
 * `preferenceList`, shared by DynamoNode, DynamoClient and the operations they both run (in a
 * module of their own, so that none of those imports another for its types).
 */

export interface GetOptions {
  /** Replies to wait for (default: the node's quorum.r). */
  r?: number;
  /** Whole-operation timeout, ms (default: 2 × requestTimeoutMs, room for one round of fallbacks). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface PutOptions {
  /** The context of the read this write is based on; without one the write becomes a sibling. */
  context?: string;
  /** Durable stores to wait for (default: the node's quorum.w). */
  w?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * Idempotency key (any string of 1..1024 characters, unique per intended write): a put retried
   * with the same `requestId`, through any node, is stored once, under one dot, as long as the key
   * still remembers it (its last `MAX_OP_ENTRIES` = 64 such writes; see "Retrying safely"). A put
   * whose id the key remembers is acknowledged without being applied, whatever its value; a purged
   * tombstone takes the key's memory with it.
   */
  requestId?: string;
}

export interface GetResult<V> {
  /** Every concurrent sibling, or with a resolver at most one merged value; [] when absent or deleted. */
  values: V[];
  /** Opaque; pass it to the put that follows this read. */
  context: string;
}

export interface PutResult {
  context: string;
}

export interface UpdateResult<V> {
  value: V;
  context: string;
}

export type UpdateFunction<V> = (current: V | undefined, siblings: V[]) => V | Promise<V>;

export interface PreferenceListEntry {
  id: string;
  address: string;
  kind: 'primary' | 'fallback';
}
