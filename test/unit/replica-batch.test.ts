import { describe, expect, it } from 'vitest';
import { LimitError, StorageError } from '../../src/errors.js';
import { dataKey, hintKey } from '../../src/replica/layout.js';
import { type HintPolicy, Replica } from '../../src/replica/replica.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import type { StorageOperation } from '../../src/storage/types.js';
import {
  CheckedObject,
  checkObject,
  decodeObject,
  encodeObject,
  sync,
  update,
} from '../../src/versioning/index.js';

/** MemoryStorage that counts calls and can be told to fail its next batch. */
class CountingStorage extends MemoryStorage {
  gets = 0;
  getManys: number[] = [];
  batches: number[] = [];
  failNextBatch = false;
  override get(key: Uint8Array) {
    this.gets++;
    return super.get(key);
  }
  override getMany(keys: Uint8Array[]) {
    this.getManys.push(keys.length);
    return super.getMany(keys);
  }
  override batch(operations: StorageOperation[], options?: { sync?: boolean }) {
    this.batches.push(operations.length);
    if (this.failNextBatch) {
      this.failNextBatch = false;
      return Promise.reject(new Error('disk full'));
    }
    return super.batch(operations, options);
  }
}

const bytes = (s: string) => new TextEncoder().encode(s);
const version = (actor: string, value: string) => update(undefined, new Map(), actor, bytes(value), 1, 1);

async function setup() {
  const storage = new CountingStorage();
  await storage.open();
  const replica = new Replica(storage, { maxSiblings: 2, maxClockEntries: 50 });
  return { storage, replica };
}

const valuesAt = async (storage: MemoryStorage, storageKey: Uint8Array) => {
  const raw = await storage.get(storageKey);
  return raw ? decodeObject(raw).siblings.map((s) => new TextDecoder().decode(s.value!)) : [];
};

describe('Replica batching', () => {
  it('applies the merges of one cascade with one getMany and one batch', async () => {
    const { storage, replica } = await setup();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => replica.merge(3, bytes(`k${i}`), version('a@1', `v${i}`), null)),
    );
    expect(results.every((r) => r === 'created')).toBe(true);
    expect(storage.getManys).toEqual([50]);
    expect(storage.batches).toEqual([50]);
    expect(await valuesAt(storage, dataKey(3, bytes('k7')))).toEqual(['v7']);
  });

  it('applies two steps of one key in one cascade in order, the second seeing the first', async () => {
    const { storage, replica } = await setup();
    const [first, second, third] = await Promise.all([
      replica.merge(1, bytes('k'), version('a@1', 'from a'), null),
      replica.merge(1, bytes('k'), version('b@1', 'from b'), null),
      replica.merge(1, bytes('k'), version('a@1', 'from a'), null),
    ]);
    expect([first, second, third]).toEqual(['created', 'changed', 'unchanged']);
    expect((await valuesAt(storage, dataKey(1, bytes('k')))).sort()).toEqual(['from a', 'from b']);
  });

  it('waits for a key still being written by an earlier batch', async () => {
    const { storage, replica } = await setup();
    const first = replica.merge(1, bytes('k'), version('a@1', 'one'), null);
    // Let the first batch start (its lock is held while its storage write is in flight).
    await new Promise((resolve) => process.nextTick(resolve));
    const second = replica.coordinate(1, bytes('k'), new Map(), 'c@1', bytes('two'), 1, null);
    expect(await first).toBe('created');
    const { object } = await second;
    expect(object.siblings.length).toBe(2); // no context: a sibling of the first, not lost
    expect((await valuesAt(storage, dataKey(1, bytes('k')))).sort()).toEqual(['one', 'two']);
  });

  it('refuses one coordinate over maxSiblings without failing the others of its batch', async () => {
    const { storage, replica } = await setup();
    const k = bytes('full');
    await replica.merge(0, k, version('a@1', 'x'), null);
    await replica.merge(0, k, version('b@1', 'y'), null);
    const outcomes = await Promise.allSettled([
      replica.coordinate(0, k, new Map(), 'c@1', bytes('z'), 5, null),
      replica.coordinate(0, bytes('other'), new Map(), 'c@1', bytes('ok'), 5, null),
    ]);
    expect((outcomes[0] as PromiseRejectedResult).reason).toBeInstanceOf(LimitError);
    expect(outcomes[1]!.status).toBe('fulfilled');
    expect((await valuesAt(storage, dataKey(0, k))).sort()).toEqual(['x', 'y']);
    expect(await valuesAt(storage, dataKey(0, bytes('other')))).toEqual(['ok']);
  });

  it('rejects every write of a batch whose storage write failed, and gives back their hint slots', async () => {
    const { storage, replica } = await setup();
    const log: string[] = [];
    const hints: HintPolicy = {
      admit: (t) => log.push(`admit ${t}`),
      created: (t) => log.push(`created ${t}`),
      deleted: (t) => log.push(`deleted ${t}`),
    };
    replica.hints = hints;
    const before = encodeObject(version('a@1', 'kept'));
    await storage.batch([{ type: 'put', key: dataKey(2, bytes('same')), value: before }]);
    storage.failNextBatch = true;
    const outcomes = await Promise.allSettled([
      replica.merge(2, bytes('h'), version('a@1', 'hinted'), 'n9'),
      replica.merge(2, bytes('d'), version('a@1', 'data'), null),
      replica.merge(2, bytes('same'), decodeObject(before), null), // nothing to write: unaffected
    ]);
    expect((outcomes[0] as PromiseRejectedResult).reason).toBeInstanceOf(StorageError);
    expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(StorageError);
    expect(outcomes[2]).toEqual({ status: 'fulfilled', value: 'unchanged' });
    expect(log).toEqual(['admit n9', 'created n9', 'deleted n9']);
    expect(await storage.get(hintKey('n9', 2, bytes('h')))).toBeUndefined();
    expect(await storage.get(dataKey(2, bytes('d')))).toBeUndefined();
  });

  it('tells change listeners only after the write is durable', async () => {
    const { storage, replica } = await setup();
    const seen: string[] = [];
    replica.onChange((partition, key) => seen.push(`${partition}/${new TextDecoder().decode(key)}`));
    storage.failNextBatch = true;
    await expect(replica.merge(4, bytes('lost'), version('a@1', 'v'), null)).rejects.toBeInstanceOf(
      StorageError,
    );
    await replica.merge(4, bytes('kept'), version('a@1', 'v'), null);
    expect(seen).toEqual(['4/kept']);
  });
});

describe('Replica: writes coordinated into hint objects', () => {
  it('never reuse an actor found in the object: two hint objects writing as one actor would drop each other’s dots', async () => {
    const { replica } = await setup();
    const k = bytes('k');
    // A delivered hint merged into data elsewhere brings a hint actor of this node back in a
    // replicated object; both hint objects below start from it.
    const old = update(undefined, new Map(), 'n4@inc~old', bytes('old'), 1, 1);
    await replica.merge(0, k, old, 'n2');
    await replica.merge(0, k, old, 'n5');
    const forN5 = await replica.coordinate(0, k, old.ctx, 'n4@inc', bytes('650'), 10, 'n5');
    const forN2 = await replica.coordinate(0, k, old.ctx, 'n4@inc', bytes('652'), 20, 'n2');
    const a5 = forN5.object.siblings.find((s) => s.value && new TextDecoder().decode(s.value) === '650')!.dot;
    const a2 = forN2.object.siblings.find((s) => s.value && new TextDecoder().decode(s.value) === '652')!.dot;
    expect(a5[0]).not.toBe('n4@inc~old');
    expect(a2[0]).not.toBe('n4@inc~old');
    expect(a5[0]).not.toBe(a2[0]);
    // So neither object's ctx covers the other's write: merging them keeps both.
    expect(forN2.object.ctx.get(a5[0]) ?? 0).toBeLessThan(a5[1]);
  });

  it('stores checked bytes as they came under a new key, and decodes them only to merge with a stored object', async () => {
    const { storage, replica } = await setup();
    const changes: [Uint8Array | undefined, Uint8Array][] = [];
    replica.onChange((_p, _k, before, after) => changes.push([before, after]));
    let decodes = 0;
    const counted = (b: Uint8Array) => {
      const checked = checkObject(b);
      return new (class extends CheckedObject {
        override get object() {
          decodes++;
          return checked.object;
        }
      })(checked.bytes, checked.ctxEntries);
    };
    const first = encodeObject(version('a', 'one'));
    expect(await replica.merge(3, bytes('k'), counted(first), null)).toBe('created');
    expect(decodes).toBe(0);
    expect(await storage.get(dataKey(3, bytes('k')))).toEqual(first);
    const second = version('b', 'two');
    expect(await replica.merge(3, bytes('k'), counted(encodeObject(second)), null)).toBe('changed');
    expect(decodes).toBe(1);
    const merged = encodeObject(sync(version('a', 'one'), second));
    expect(await storage.get(dataKey(3, bytes('k')))).toEqual(merged);
    expect(await replica.merge(3, bytes('k'), counted(first), null)).toBe('unchanged');
    expect(changes).toEqual([
      [undefined, first],
      [first, merged],
    ]);
    expect(decodeObject(merged).siblings).toHaveLength(2);
  });
});
