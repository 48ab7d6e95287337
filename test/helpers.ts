/** Test helpers shared by integration and simulation tests. */
import type { DynamoNode } from '../src/index.js';
import { dataKey } from '../src/replica/layout.js';
import { partitionOf } from '../src/ring/index.js';
import type { Storage } from '../src/storage/types.js';
import { defaultCodec } from '../src/values.js';
import { decodeObject, type VersionedObject } from '../src/versioning/index.js';

/** Moves virtual time until `work` settles (the same helper `dynamo-engine/testing` ships). */
export { drive } from '../src/testing/cluster.js';

/** The object `node`'s own storage holds for `key` (data region only, no hints). */
export async function localObject(
  storage: Storage,
  key: string,
  partitions = 256,
): Promise<VersionedObject | undefined> {
  const bytes = new TextEncoder().encode(key);
  const stored = await storage.get(dataKey(partitionOf(bytes, partitions), bytes));
  return stored ? decodeObject(stored) : undefined;
}

/** Ids of the key's N primaries (as `node` sees the ring). */
export function primariesOf(node: DynamoNode<unknown>, key: string): string[] {
  return node.preferenceList(key).map((e) => e.id);
}

/** A stored value's bytes decoded as a node with the default codec decodes them. */
export function decode(bytes: Uint8Array): unknown {
  return defaultCodec.decode(bytes);
}
