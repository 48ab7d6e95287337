/** Test helpers shared by integration and simulation tests. */
import type { DynamoNode, VirtualClock } from '../src/index.js';
import { dataKey } from '../src/replica/layout.js';
import { partitionOf } from '../src/ring/index.js';
import type { Storage } from '../src/storage/types.js';
import { decodeObject, type VersionedObject } from '../src/versioning/index.js';

/**
 * Awaits `work` while moving virtual time forward in `stepMs` steps, so requests that wait on
 * timeouts (partitions, drops) complete. Gives up after `maxMs` of virtual time.
 */
export async function drive<T>(
  clock: VirtualClock,
  work: Promise<T>,
  stepMs = 10,
  maxMs = 600_000,
): Promise<T> {
  let done = false;
  const settled = work.finally(() => {
    done = true;
  });
  settled.catch(() => {});
  for (let t = 0; !done && t < maxMs; t += stepMs) await clock.advance(stepMs);
  return settled;
}

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
