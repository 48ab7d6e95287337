/** Anti-entropy: Merkle trees per partition (pure) and the background exchange that uses them. */
export type { AntiEntropyDeps, AntiEntropyStats, SyncCompleteEvent } from './anti-entropy.js';
export { AntiEntropy, BUSY_IN_FLIGHT, BUSY_LAG_MS, MAX_TREES, PURGE_BATCH } from './anti-entropy.js';
export type {
  ExchangeLimits,
  ExchangeResult,
  KeyHash,
  KeyList,
  PartitionData,
  SyncPeer,
} from './exchange.js';
export {
  DEFAULT_EXCHANGE_LIMITS,
  diffLists,
  exchange,
  findDifferences,
  LocalPeer,
  repair,
} from './exchange.js';
export { itemHash, itemHashOf, keyHash32, objectHash } from './hash.js';
export { RemotePeer, serveSync } from './protocol.js';
export type { BucketHashes } from './tree.js';
export {
  BucketAccumulator,
  bucketOf,
  bucketsAt,
  childOf,
  differingHashes,
  diffSegments,
  FANOUT,
  LEAF_LEVEL,
  MAX_LEVEL,
  MerkleTree,
  parentOf,
  SEGMENTS,
} from './tree.js';
