/**
 * TypedStore against a scripted key-value layer (reads that miss, writes that land or not), to
 * reach session states a cluster reaches only under rare timing.
 */
import { describe, expect, it } from 'vitest';
import { TypeMismatchError } from '../../../src/errors.js';
import { MemoryStorage } from '../../../src/storage/index.js';
import { TypedStore, type TypedStoreDeps } from '../../../src/types/store.js';
import { VirtualClock } from '../../../src/util/clock.js';

/** One replica's siblings: a write with a context replaces them all; `miss` makes reads see nothing. */
async function fakeKv() {
  const storage = new MemoryStorage();
  await storage.open();
  const kv = { values: [] as Uint8Array[], miss: false };
  const deps: TypedStoreDeps = {
    read: async () => ({ values: kv.miss ? [] : [...kv.values], context: '' }),
    write: async (_key, value) => {
      // A read that missed wrote with an empty context: its write is a sibling of what it missed.
      if (kv.miss) kv.values.push(value);
      else kv.values = [value];
      return {};
    },
    actor: () => 'n1@inc',
    storage,
    clock: new VirtualClock(1000),
    maxValueBytes: 1 << 20,
    onBackgroundError: (e) => {
      throw e;
    },
  };
  return { kv, deps };
}

describe('TypedStore sessions', () => {
  it('an operation of another type than the session knows the key holds is a TypeMismatchError, nothing written', async () => {
    const { kv, deps } = await fakeKv();
    const store = new TypedStore(deps);
    await store.update('k', 'counter', (c) => (c as { increment(n: number): void }).increment(5));
    // The next read misses the counter (a sloppy quorum, a partition): the node still knows the key.
    kv.miss = true;
    await expect(
      store.update('k', 'set', (s) => (s as { add(e: string): void }).add('x')),
    ).rejects.toBeInstanceOf(TypeMismatchError);
    await expect(store.read('k', 'set')).rejects.toBeInstanceOf(TypeMismatchError);
    kv.miss = false;
    expect(kv.values).toHaveLength(1);
    expect((await store.read('k', 'counter')).value).toBe(5);
  });
});
