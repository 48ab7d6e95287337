import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { StorageError } from '../../src/errors.js';
import { LevelStorage, type LevelStorageOptions } from '../../src/level/index.js';
import type { StorageOperation } from '../../src/storage/types.js';

const b = (...bytes: number[]) => Uint8Array.from(bytes);
const put = (key: Uint8Array, value: Uint8Array): StorageOperation => ({ type: 'put', key, value });
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

const dirs: string[] = [];
const storages: LevelStorage[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
  for (const s of storages.splice(0)) await s.close().catch(() => {});
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'dynamo-level-unit-'));
  dirs.push(d);
  return d;
}

async function opened(options: Partial<LevelStorageOptions> = {}): Promise<LevelStorage> {
  const s = new LevelStorage({ path: await tempDir(), ...options });
  storages.push(s);
  await s.open();
  return s;
}

/** Records, per LevelDB write, the first byte of every key put into it, and the write options. */
function recordWrites(s: LevelStorage) {
  const writes: { keys: number[]; options: unknown }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const db = s.db;
  const original = db.batch.bind(db) as () => ReturnType<typeof db.batch>;
  vi.spyOn(db, 'batch').mockImplementation(((...args: unknown[]) => {
    if (args.length > 0) throw new Error('test: array batch not expected with group commit');
    const chained = original();
    const keys: number[] = [];
    const put = chained.put.bind(chained);
    chained.put = (key: Uint8Array, value: Uint8Array) => {
      keys.push(key[0]!);
      return put(key, value);
    };
    const write = chained.write.bind(chained);
    chained.write = (async (options?: unknown) => {
      writes.push({ keys, options });
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      try {
        return await write(options as never);
      } finally {
        inFlight--;
      }
    }) as typeof chained.write;
    return chained;
  }) as never);
  return { writes, maxInFlight: () => maxInFlight };
}

describe('LevelStorage group commit', () => {
  test('batch() calls made in one turn become one LevelDB write', async () => {
    const s = await opened();
    const before = s.stats;
    await Promise.all(Array.from({ length: 100 }, (_, i) => s.batch([put(b(i), b(i)), put(b(i, 1), b(i))])));
    const after = s.stats;
    expect(after.batches - before.batches).toBe(100);
    expect(after.groups - before.groups).toBe(1);
    expect(after.operations - before.operations).toBe(200);
    expect(await s.get(b(99, 1))).toEqual(b(99));
  });

  test('without group commit every batch() is its own write', async () => {
    const s = await opened({ groupCommit: false });
    await Promise.all(Array.from({ length: 10 }, (_, i) => s.batch([put(b(i), b(i))])));
    expect(s.stats).toMatchObject({ batches: 10, groups: 10, operations: 10 });
  });

  test('groups close at maxBatchOps; one caller is never split, even beyond it', async () => {
    const s = await opened({ maxBatchOps: 10 });
    const rec = recordWrites(s);
    const sizes = [4, 4, 4, 25, 3, 9, 1];
    await Promise.all(
      sizes.map((n, caller) => s.batch(Array.from({ length: n }, (_, j) => put(b(caller, j), b(caller))))),
    );
    // Every caller's keys are in exactly one write.
    for (let caller = 0; caller < sizes.length; caller++) {
      const holding = rec.writes.filter((w) => w.keys.includes(caller));
      expect(holding, `caller ${caller}`).toHaveLength(1);
      expect(holding[0]!.keys.filter((k) => k === caller)).toHaveLength(sizes[caller]!);
    }
    expect(rec.writes.map((w) => w.keys.length)).toEqual([8, 4, 25, 3, 10]);
    for (const w of rec.writes) expect(w.keys.length <= 10 || new Set(w.keys).size === 1).toBe(true);
    expect(s.stats.groups).toBe(rec.writes.length);
  });

  test('one write in flight at a time; batches land in call order', async () => {
    const s = await opened();
    const rec = recordWrites(s);
    const key = b(42);
    const calls: Promise<void>[] = [];
    for (let round = 0; round < 20; round++) {
      calls.push(s.batch([put(key, b(round))]));
      if (round % 3 === 0) await turn();
    }
    await Promise.all(calls);
    expect(rec.maxInFlight()).toBe(1);
    expect(await s.get(key)).toEqual(b(19));
  });

  test('sync: the option, or one sync caller, makes the whole group sync', async () => {
    const s = await opened();
    const rec = recordWrites(s);
    await Promise.all([s.batch([put(b(1), b(1))]), s.batch([put(b(2), b(2))])]);
    await Promise.all([s.batch([put(b(1), b(1))]), s.batch([put(b(2), b(2))], { sync: true })]);
    expect(rec.writes.map((w) => w.options)).toEqual([{ sync: false }, { sync: true }]);

    const always = await opened({ sync: true });
    const rec2 = recordWrites(always);
    await always.batch([put(b(1), b(1))]);
    expect(rec2.writes.map((w) => w.options)).toEqual([{ sync: true }]);
  });

  test('a failed LevelDB write rejects every caller of the group with StorageError; nothing lands', async () => {
    const s = await opened();
    const boom = new Error('disk on fire');
    const db = s.db;
    const original = db.batch.bind(db) as () => ReturnType<typeof db.batch>;
    const spy = vi.spyOn(db, 'batch').mockImplementation((() => {
      const chained = original();
      chained.write = (() => Promise.reject(boom)) as typeof chained.write;
      return chained;
    }) as never);
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => s.batch([put(b(i), b(i))])),
    );
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const reason = (r as PromiseRejectedResult).reason;
      expect(reason).toBeInstanceOf(StorageError);
      expect(reason.code).toBe('DYNAMO_STORAGE');
      expect(reason.cause).toBe(boom);
    }
    expect(s.stats.failedGroups).toBe(1);
    spy.mockRestore();
    expect(await s.get(b(3))).toBeUndefined();
    // The storage keeps working after a failed group.
    await s.batch([put(b(3), b(3))]);
    expect(await s.get(b(3))).toEqual(b(3));
  });

  test('closing the underlying database under pending groups rejects their callers with StorageError', async () => {
    const s = await opened();
    const calls = Promise.allSettled(Array.from({ length: 5 }, (_, i) => s.batch([put(b(i), b(i))])));
    await s.db.close();
    for (const r of await calls) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(StorageError);
    }
  });

  test('close() waits for pending groups, and later calls reject', async () => {
    const path = await tempDir();
    const s = new LevelStorage({ path });
    await s.open();
    const calls = Array.from({ length: 50 }, (_, i) => s.batch([put(b(i), b(i))]));
    const closing = s.close();
    await expect(s.batch([put(b(200), b(1))])).rejects.toBeInstanceOf(StorageError);
    await Promise.all(calls);
    await closing;
    await expect(s.get(b(1))).rejects.toBeInstanceOf(StorageError);
    const again = new LevelStorage({ path });
    storages.push(again);
    await again.open();
    const keys: number[] = [];
    for await (const [k] of again.iterate({})) keys.push(k[0]!);
    expect(keys).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  test.each([true, false])(
    'buffers passed to batch() may be reused as soon as it returns (groupCommit %s)',
    async (groupCommit) => {
      const s = await opened({ groupCommit });
      for (const size of [1, 3]) {
        const ops = Array.from({ length: size }, (_, i) => put(b(size, i), b(2)));
        const done = s.batch(ops);
        for (const op of ops) {
          op.key[0] = 9;
          if (op.type === 'put') op.value[0] = 9;
        }
        await done;
        for (let i = 0; i < size; i++) expect(await s.get(b(size, i))).toEqual(b(2));
        expect(await s.get(b(9, 0))).toBeUndefined();
      }
    },
  );
});

describe('LevelStorage read coalescing', () => {
  /** Records the number of keys of every LevelDB getMany. */
  function recordReads(s: LevelStorage) {
    const sizes: number[] = [];
    const db = s.db;
    const original = db.getMany.bind(db);
    vi.spyOn(db, 'getMany').mockImplementation(((keys: Uint8Array[]) => {
      sizes.push(keys.length);
      return original(keys);
    }) as never);
    return sizes;
  }

  test('get() and getMany() calls made in one turn become one LevelDB getMany', async () => {
    const s = await opened();
    await s.batch([put(b(1), b(10)), put(b(3), b(30))]);
    const sizes = recordReads(s);
    const [one, many, missing] = await Promise.all([s.get(b(1)), s.getMany([b(2), b(3), b(1)]), s.get(b(4))]);
    expect(one).toEqual(b(10));
    expect(many).toEqual([undefined, b(30), b(10)]);
    expect(missing).toBeUndefined();
    expect(sizes).toEqual([5]);
    expect(s.stats).toMatchObject({ reads: 5, readBatches: 1 });
  });

  test('reads close at maxBatchOps; one getMany() is never split, even beyond it', async () => {
    const s = await opened({ maxBatchOps: 4 });
    await s.batch(Array.from({ length: 8 }, (_, i) => put(b(i), b(i, i))));
    const sizes = recordReads(s);
    const keys = (n: number, from: number) => Array.from({ length: n }, (_, i) => b(from + i));
    const results = await Promise.all([
      s.get(b(0)),
      s.getMany(keys(3, 1)),
      s.get(b(4)),
      s.getMany(keys(6, 2)),
      s.get(b(9)),
    ]);
    expect(sizes).toEqual([4, 1, 6, 1]);
    expect(results).toEqual([
      b(0, 0),
      [b(1, 1), b(2, 2), b(3, 3)],
      b(4, 4),
      [b(2, 2), b(3, 3), b(4, 4), b(5, 5), b(6, 6), b(7, 7)],
      undefined,
    ]);
  });

  test('keys passed to get() and getMany() may be reused as soon as they return', async () => {
    const s = await opened();
    await s.batch([put(b(1), b(10)), put(b(2), b(20))]);
    const key = b(1);
    const keys = [b(2)];
    const reads = Promise.all([s.get(key), s.getMany(keys)]);
    key[0] = 7;
    keys[0]![0] = 7;
    expect(await reads).toEqual([b(10), [b(20)]]);
  });

  test('a failed LevelDB read rejects every read of it with StorageError', async () => {
    const s = await opened();
    const boom = new Error('disk on fire');
    vi.spyOn(s.db, 'getMany').mockImplementation((() => Promise.reject(boom)) as never);
    const results = await Promise.allSettled([s.get(b(1)), s.getMany([b(2), b(3)])]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const reason = (r as PromiseRejectedResult).reason;
      expect(reason).toBeInstanceOf(StorageError);
      expect(reason.cause).toBe(boom);
    }
  });

  test('without read coalescing every call is its own read', async () => {
    const s = await opened({ readCoalescing: false });
    await s.batch([put(b(1), b(10))]);
    expect(await Promise.all([s.get(b(1)), s.getMany([b(1), b(2)])])).toEqual([b(10), [b(10), undefined]]);
    expect(s.stats).toMatchObject({ reads: 0, readBatches: 0 });
  });
});

describe('LevelStorage copies', () => {
  test('keys and values on either side of 64 bytes, alike or not in length, round-trip in one group', async () => {
    const s = await opened();
    const bytes = (n: number, seed: number) =>
      Uint8Array.from({ length: n }, (_, i) => (seed + i * 7) & 0xff);
    const lengths = [0, 1, 2, 63, 64, 65, 100];
    const ops = lengths.flatMap((k) =>
      lengths.map((v) => put(bytes(k + 1, k * 131 + v), bytes(v, v * 17 + k))),
    );
    await s.batch(ops);
    const values = await s.getMany(ops.map((op) => op.key));
    expect(values).toEqual(ops.map((op) => (op.type === 'put' ? op.value : undefined)));
  });
});

describe('LevelStorage lifecycle', () => {
  test('open() creates a missing directory, parents included', async () => {
    const path = join(await tempDir(), 'a', 'b', 'db');
    const s = new LevelStorage({ path, cacheSizeBytes: 1 << 20, compression: false });
    storages.push(s);
    await s.open();
    await s.open(); // harmless when already open
    expect((await stat(path)).isDirectory()).toBe(true);
    expect(s.supports.permanence).toBe(true);
  });

  test('a database locked by another LevelStorage fails to open with StorageError', async () => {
    const first = await opened();
    const second = new LevelStorage({ path: first.path });
    await expect(second.open()).rejects.toBeInstanceOf(StorageError);
    await expect(second.get(b(1))).rejects.toBeInstanceOf(StorageError);
  });

  test('open/close/open on one instance keeps the data', async () => {
    const s = await opened();
    await s.batch([put(b(1), b(1))]);
    await Promise.all([s.close(), s.close()]);
    await s.open();
    expect(await s.get(b(1))).toEqual(b(1));
  });

  test('an iteration interrupted by close() rejects with StorageError', async () => {
    const s = await opened();
    await s.batch(Array.from({ length: 3000 }, (_, i) => put(Uint8Array.of(i >> 8, i & 0xff), b(1))));
    const it = s.iterate({})[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(false);
    await s.close();
    // Entries already fetched may still come out; then the closed database shows.
    await expect(
      (async () => {
        for (;;) if ((await it.next()).done) return;
      })(),
    ).rejects.toBeInstanceOf(StorageError);
  });

  test('options are validated', () => {
    expect(() => new LevelStorage({ path: '' })).toThrow(TypeError);
    expect(() => new LevelStorage({ path: '/tmp/x', maxBatchOps: 0 })).toThrow(RangeError);
  });
});
