/**
 * The contract every `Storage` must meet, as a test suite with an injected runner (the way Level's
 * abstract-level suite works), so third-party storages prove themselves with the same tests as the
 * built-in ones:
 *
 * ```ts
 * import { test } from 'vitest';
 * import { storageComplianceSuite } from 'dynamo-engine/testing';
 * storageComplianceSuite({ test, factory: () => new MyStorage() });
 * ```
 *
 * Assertions throw plain `Error`s, so any runner works (vitest, node:test, mocha...).
 */
import type { Storage, StorageOperation, StorageRange } from '../storage/types.js';
import { seededRandom } from '../util/random.js';

/** How `storageComplianceSuite` gets storages and registers its tests. */
export interface StorageComplianceOptions {
  /** Registers one test, e.g. vitest's or node:test's `test`. */
  test: (name: string, fn: () => Promise<void>) => void;
  /** A fresh, unopened, empty storage on each call. */
  factory: () => Promise<Storage> | Storage;
  /**
   * Given a closed storage, a storage over the same data (LevelStorage: the same path). Omit to
   * reopen the same instance. Only used when `supports.permanence` is true.
   */
  reopen?: (closed: Storage) => Promise<Storage> | Storage;
  /** Called once for every storage the suite got from `factory` or `reopen`, closed or not. */
  teardown?: (storage: Storage) => Promise<void> | void;
}

type Entry = [Uint8Array, Uint8Array];

/**
 * Registers the Storage contract's tests with `options.test`; every storage implementation runs
 * it. Assertions throw plain `Error`s, so any runner works:
 *
 * ```ts
 * import { test } from 'vitest';
 * import { storageComplianceSuite } from 'dynamo-engine/testing';
 * storageComplianceSuite({ test, factory: () => new MyStorage() });
 * ```
 */
export function storageComplianceSuite(options: StorageComplianceOptions): void {
  const { test } = options;

  /** Runs `fn` on a fresh opened storage; always closes it and tears it down. */
  const withStorage = (name: string, fn: (s: Storage, track: (s: Storage) => void) => Promise<void>) => {
    test(name, async () => {
      const used: Storage[] = [];
      const track = (s: Storage) => {
        if (!used.includes(s)) used.push(s);
      };
      const storage = await options.factory();
      track(storage);
      try {
        await storage.open();
        await fn(storage, track);
      } finally {
        for (const s of used) await s.close().catch(() => {});
        for (const s of used) await options.teardown?.(s);
      }
    });
  };

  // --- lifecycle ---

  withStorage('storage: open() then close() resolve, and close() twice is harmless', async (s) => {
    await s.close();
    await s.close();
  });

  withStorage('storage: supports.permanence is a boolean', async (s) => {
    check(typeof s.supports?.permanence === 'boolean', 'supports.permanence must be a boolean');
  });

  // --- get / put / del ---

  withStorage('storage: get() of a missing key resolves undefined', async (s) => {
    eqValue(await s.get(b(1, 2, 3)), undefined, 'get(missing)');
  });

  withStorage('storage: a put is readable with get()', async (s) => {
    await s.batch([put(b(1), b(10, 11, 12))]);
    eqValue(await s.get(b(1)), b(10, 11, 12), 'get after put');
    eqValue(await s.get(b(1, 0)), undefined, 'get(longer key) is a different key');
  });

  withStorage('storage: a second put replaces the value', async (s) => {
    await s.batch([put(b(1), b(1))]);
    await s.batch([put(b(1), b(2, 2))]);
    eqValue(await s.get(b(1)), b(2, 2), 'get after overwrite');
  });

  withStorage('storage: del removes a key; del of a missing key is harmless', async (s) => {
    await s.batch([put(b(1), b(1)), put(b(2), b(2))]);
    await s.batch([del(b(1))]);
    eqValue(await s.get(b(1)), undefined, 'get after del');
    eqValue(await s.get(b(2)), b(2), 'other key untouched');
    await s.batch([del(b(9, 9))]);
    eqEntries(await collect(s, {}), [[b(2), b(2)]], 'iterate after del');
  });

  withStorage('storage: an empty batch resolves and writes nothing', async (s) => {
    await s.batch([]);
    eqEntries(await collect(s, {}), [], 'iterate after empty batch');
  });

  withStorage('storage: batch({ sync: true }) writes like any batch', async (s) => {
    await s.batch([put(b(5), b(5))], { sync: true });
    eqValue(await s.get(b(5)), b(5), 'get after sync batch');
  });

  withStorage(
    'storage: getMany() returns hits and misses in the order asked, duplicates included',
    async (s) => {
      await s.batch([put(b(1), b(11)), put(b(3), b(33)), put(b(5), b(55))]);
      const got = await s.getMany([b(5), b(2), b(1), b(3), b(4), b(1)]);
      check(Array.isArray(got) && got.length === 6, `getMany: expected 6 results, got ${show(got)}`);
      const expected = [b(55), undefined, b(11), b(33), undefined, b(11)];
      expected.forEach((e, i) => {
        eqValue(got[i], e, `getMany result [${i}]`);
      });
      const none = await s.getMany([]);
      check(Array.isArray(none) && none.length === 0, `getMany([]) must resolve [], got ${show(none)}`);
    },
  );

  withStorage('storage: empty values are stored and returned as empty, not as missing', async (s) => {
    await s.batch([put(b(1), new Uint8Array(0))]);
    eqValue(await s.get(b(1)), new Uint8Array(0), 'get of empty value');
    eqValue((await s.getMany([b(1)]))[0], new Uint8Array(0), 'getMany of empty value');
    eqEntries(await collect(s, {}), [[b(1), new Uint8Array(0)]], 'iterate over empty value');
  });

  withStorage('storage: large values (1 MiB) and long keys (1 KiB) round-trip exactly', async (s) => {
    const random = seededRandom('storage-compliance:large');
    const value = new Uint8Array(1024 * 1024);
    for (let i = 0; i < value.length; i++) value[i] = random.int(256);
    const key = new Uint8Array(1024);
    for (let i = 0; i < key.length; i++) key[i] = random.int(256);
    await s.batch([put(key, value), put(b(1), value.subarray(0, 10))]);
    eqValue(await s.get(key), value, 'get of 1 MiB value');
    const entries = await collect(s, { gte: key, limit: 1 });
    check(entries.length === 1, `iterate from the long key: expected 1 entry, got ${entries.length}`);
    eqValue(entries[0]![0], key, 'iterated long key');
    eqValue(entries[0]![1], value, 'iterated 1 MiB value');
  });

  withStorage('storage: keys and values that are views into larger buffers use only the view', async (s) => {
    const backing = new Uint8Array([9, 9, 1, 2, 9, 9, 7, 8, 7, 9]);
    await s.batch([put(backing.subarray(2, 4), backing.subarray(6, 9))]);
    eqValue(await s.get(b(1, 2)), b(7, 8, 7), 'get with a plain key');
    eqValue(await s.get(new Uint8Array([5, 1, 2, 5]).subarray(1, 3)), b(7, 8, 7), 'get with a view key');
    eqEntries(await collect(s, {}), [[b(1, 2), b(7, 8, 7)]], 'iterate');
  });

  // --- batches ---

  withStorage('storage: a batch with an invalid operation rejects and writes nothing', async (s) => {
    await s.batch([put(b(0), b(0))]);
    const bad: unknown[][] = [
      [put(b(1), b(1)), { type: 'put', key: 'not bytes', value: b(2) }, put(b(3), b(3))],
      [put(b(1), b(1)), { type: 'put', key: b(2) }],
      [put(b(1), b(1)), { type: 'nope', key: b(2), value: b(2) }],
      [del(b(0)), null],
      [put(b(1), b(1)), { type: 'put', key: b(2), value: 'not bytes' }],
    ];
    for (const ops of bad) {
      await rejects(() => s.batch(ops as StorageOperation[]), `batch(${show(ops)})`);
    }
    eqEntries(await collect(s, {}), [[b(0), b(0)]], 'store after rejected batches');
  });

  withStorage('storage: operations in one batch apply in order (the last one on a key wins)', async (s) => {
    await s.batch([put(b(1), b(1)), del(b(1)), put(b(2), b(2)), put(b(2), b(3)), del(b(3)), put(b(3), b(4))]);
    eqEntries(
      await collect(s, {}),
      [
        [b(2), b(3)],
        [b(3), b(4)],
      ],
      'iterate',
    );
  });

  withStorage('storage: a batch becomes visible all at once, never half', async (s) => {
    const keys = Array.from({ length: 50 }, (_, i) => b(7, i));
    for (let round = 1; round <= 30; round++) {
      const write = s.batch(keys.map((k) => put(k, b(round))));
      // Reads overlapping the write must see all of the old round or all of the new one.
      const [during] = await Promise.all([s.getMany(keys), write]);
      const seen = new Set(during.map((v) => (v === undefined ? 'none' : hex(v))));
      check(seen.size === 1, `round ${round}: a concurrent getMany saw a half-applied batch: ${[...seen]}`);
      const after = await s.getMany(keys);
      check(
        after.every((v) => v !== undefined && v.length === 1 && v[0] === round),
        `round ${round}: after batch() resolved, not every key holds the new value`,
      );
    }
  });

  withStorage('storage: many concurrent batches started in one turn all land', async (s) => {
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 500; i++)
      writes.push(s.batch([put(u32(i), u32(i * 3)), put(b(0xff, i & 0xff), b(1))]));
    await Promise.all(writes);
    const entries = await collect(s, { lt: b(0xff) });
    check(entries.length === 500, `expected 500 keys, iterate found ${entries.length}`);
    entries.forEach(([k, v], i) => {
      eqValue(k, u32(i), `key #${i}`);
      eqValue(v, u32(i * 3), `value #${i}`);
    });
    const many = await s.getMany(Array.from({ length: 500 }, (_, i) => u32(i)));
    many.forEach((v, i) => {
      eqValue(v, u32(i * 3), `getMany #${i}`);
    });
  });

  // --- iteration ---

  const binaryKeys = [
    b(0x00),
    b(0x00, 0x00),
    b(0x00, 0xff),
    b(0x01),
    b(0x01, 0x00),
    b(0x01, 0x00, 0x00),
    b(0x01, 0x01),
    b(0x01, 0xff),
    b(0x02),
    b(0x7f),
    b(0x7f, 0xff, 0xff),
    b(0x80),
    b(0x80, 0x00),
    b(0xc3, 0xa9),
    b(0xfe, 0xff),
    b(0xff),
    b(0xff, 0x00),
    b(0xff, 0xff),
    b(0xff, 0xff, 0xff),
  ];

  /** Stores `binaryKeys` in a shuffled order (value = index in sorted order). */
  const fillBinary = async (s: Storage) => {
    const random = seededRandom('storage-compliance:shuffle');
    const order = binaryKeys.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = random.int(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (const i of order) await s.batch([put(binaryKeys[i]!, b(i))]);
  };
  const model = (range: StorageRange): Entry[] => {
    const all: Entry[] = binaryKeys.map((k, i) => [k, b(i)]);
    const inRange = all.filter(
      ([k]) =>
        (range.gte === undefined || compare(k, range.gte) >= 0) &&
        (range.lt === undefined || compare(k, range.lt) < 0),
    );
    return inRange.slice(0, range.limit ?? Infinity);
  };

  withStorage('storage: iterate() on an empty store yields nothing', async (s) => {
    eqEntries(await collect(s, {}), [], 'iterate({})');
    eqEntries(await collect(s, { gte: b(0), lt: b(0xff), limit: 10 }), [], 'iterate(range)');
  });

  withStorage(
    'storage: iterate() orders keys by unsigned bytes ([1] < [1,0] < [2], 0x7f < 0x80 < 0xff)',
    async (s) => {
      for (let i = 1; i < binaryKeys.length; i++) {
        check(compare(binaryKeys[i - 1]!, binaryKeys[i]!) < 0, 'suite bug: binaryKeys not sorted');
      }
      await fillBinary(s);
      eqEntries(await collect(s, {}), model({}), 'iterate({})');
    },
  );

  withStorage(
    'storage: iterate() honours gte (inclusive), lt (exclusive) and limit in every combination',
    async (s) => {
      await fillBinary(s);
      const bounds = [
        undefined,
        b(0x00),
        b(0x00, 0x00),
        b(0x01),
        b(0x01, 0x00, 0x00, 0x00),
        b(0x80),
        b(0xff),
        b(0xff, 0xff, 0xff, 0x00),
      ];
      const limits = [undefined, 0, 1, 3, 100];
      for (const gte of bounds) {
        for (const lt of bounds) {
          for (const limit of limits) {
            const range: StorageRange = {};
            if (gte !== undefined) range.gte = gte;
            if (lt !== undefined) range.lt = lt;
            if (limit !== undefined) range.limit = limit;
            eqEntries(await collect(s, range), model(range), `iterate(${showRange(range)})`);
          }
        }
      }
    },
  );

  withStorage('storage: iterate() with gte >= lt, or a range past the data, yields nothing', async (s) => {
    await fillBinary(s);
    eqEntries(await collect(s, { gte: b(0x01), lt: b(0x01) }), [], 'gte == lt');
    eqEntries(await collect(s, { gte: b(0x02), lt: b(0x01) }), [], 'gte > lt');
    eqEntries(await collect(s, { gte: b(0xff, 0xff, 0xff, 0x00) }), [], 'gte after the last key');
    eqEntries(await collect(s, { lt: b(0x00) }), [], 'lt at the first key');
    eqEntries(await collect(s, { limit: 0 }), [], 'limit 0');
  });

  withStorage('storage: iterate() over thousands of keys, with and without limit', async (s) => {
    const n = 3000;
    for (let i = 0; i < n; i += 500) {
      await s.batch(Array.from({ length: 500 }, (_, j) => put(u32(i + j), u32(n - i - j))));
    }
    const all = await collect(s, {});
    check(all.length === n, `expected ${n} entries, got ${all.length}`);
    all.forEach(([k, v], i) => {
      eqValue(k, u32(i), `key #${i}`);
      eqValue(v, u32(n - i), `value #${i}`);
    });
    const some = await collect(s, { gte: u32(100), lt: u32(2900), limit: 1500 });
    check(some.length === 1500, `limit 1500: got ${some.length}`);
    eqValue(some[1499]![0], u32(1599), 'last key under limit');
  });

  withStorage(
    'storage: writes during an iteration keep it ascending and lose no untouched key',
    async (s) => {
      await s.batch(Array.from({ length: 200 }, (_, i) => put(u32(i * 10), b(1))));
      const seen: Uint8Array[] = [];
      let wrote = false;
      for await (const [key] of s.iterate({})) {
        seen.push(key);
        if (!wrote && seen.length === 20) {
          wrote = true;
          // New keys on both sides of the cursor, an overwrite and deletions of keys not yet visited.
          await s.batch([
            put(u32(5), b(2)),
            put(u32(1005), b(2)),
            put(u32(1500), b(3)),
            del(u32(1000)),
            del(u32(1990)),
          ]);
        }
      }
      for (let i = 1; i < seen.length; i++) {
        check(
          compare(seen[i - 1]!, seen[i]!) < 0,
          `keys not strictly ascending at #${i}: ${hex(seen[i - 1]!)} then ${hex(seen[i]!)}`,
        );
      }
      const seenHex = new Set(seen.map(hex));
      for (let i = 0; i < 200; i++) {
        if (i === 100 || i === 199) continue;
        check(
          seenHex.has(hex(u32(i * 10))),
          `key ${i * 10} (untouched during the iteration) was not yielded`,
        );
      }
    },
  );

  withStorage('storage: breaking out of an iteration early releases it (close() still works)', async (s) => {
    await s.batch(Array.from({ length: 100 }, (_, i) => put(u32(i), b(1))));
    let n = 0;
    for await (const _ of s.iterate({})) {
      if (++n === 3) break;
    }
    check(n === 3, `expected to stop after 3 entries, got ${n}`);
    const iterator = s.iterate({ gte: u32(50) })[Symbol.asyncIterator]();
    const first = await iterator.next();
    check(!first.done, 'iterator.next() on a non-empty range must yield');
    eqValue(first.value?.[0], u32(50), 'first key from gte');
    await iterator.return?.();
    await s.close();
  });

  // --- buffers are not shared ---

  withStorage('storage: mutating buffers passed in or handed out does not change stored data', async (s) => {
    const key = b(1, 2, 3);
    const value = b(4, 5, 6);
    await s.batch([put(key, value)]);
    key[0] = 99;
    value[0] = 99;
    eqValue(await s.get(b(1, 2, 3)), b(4, 5, 6), 'after mutating the buffers passed to batch()');
    eqValue(await s.get(b(99, 2, 3)), undefined, 'the mutated key is not stored');

    const got = (await s.get(b(1, 2, 3)))!;
    got.fill(0);
    eqValue(await s.get(b(1, 2, 3)), b(4, 5, 6), 'after mutating the value get() returned');

    const [many] = await s.getMany([b(1, 2, 3)]);
    many!.fill(0);
    for await (const [k, v] of s.iterate({})) {
      k.fill(0);
      v.fill(0);
    }
    eqEntries(await collect(s, {}), [[b(1, 2, 3), b(4, 5, 6)]], 'after mutating getMany/iterate results');
  });

  // --- permanence ---

  withStorage('storage: reopening keeps the data (only when supports.permanence)', async (s, track) => {
    if (!s.supports.permanence) return;
    await s.batch([put(b(1), b(1)), put(b(2), new Uint8Array(0)), put(b(3), b(3))]);
    await s.batch([del(b(3))]);
    await s.close();
    const again = options.reopen ? await options.reopen(s) : s;
    track(again);
    await again.open();
    eqEntries(
      await collect(again, {}),
      [
        [b(1), b(1)],
        [b(2), new Uint8Array(0)],
      ],
      'iterate after reopen',
    );
    await again.batch([put(b(4), b(4))]);
    eqValue(await again.get(b(4)), b(4), 'write after reopen');
  });

  // --- closed ---

  withStorage('storage: every operation rejects after close()', async (s) => {
    await s.batch([put(b(1), b(1))]);
    await s.close();
    await rejects(() => s.get(b(1)), 'get() after close()');
    await rejects(() => s.getMany([b(1)]), 'getMany() after close()');
    await rejects(() => s.batch([put(b(2), b(2))]), 'batch() after close()');
    await rejects(() => collect(s, {}), 'iterate() after close()');
  });

  withStorage('storage: close() waits for batches already started', async (s, track) => {
    const writes = Array.from({ length: 20 }, (_, i) => s.batch([put(u32(i), b(i))]));
    const closing = s.close();
    await Promise.all(writes);
    await closing;
    if (!s.supports.permanence) return;
    const again = options.reopen ? await options.reopen(s) : s;
    track(again);
    await again.open();
    const entries = await collect(again, {});
    check(entries.length === 20, `expected the 20 batches started before close(), found ${entries.length}`);
    await again.close();
  });
}

// --- helpers (no test-runner dependency) ---

function b(...bytes: number[]): Uint8Array {
  return Uint8Array.from(bytes);
}

function u32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

function put(key: Uint8Array, value: Uint8Array): StorageOperation {
  return { type: 'put', key, value };
}

function del(key: Uint8Array): StorageOperation {
  return { type: 'del', key };
}

async function collect(s: Storage, range: StorageRange): Promise<Entry[]> {
  const out: Entry[] = [];
  for await (const entry of s.iterate(range)) out.push(entry);
  return out;
}

function compare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function hex(bytes: Uint8Array): string {
  let s = '';
  const shown = Math.min(bytes.length, 32);
  for (let i = 0; i < shown; i++) s += bytes[i]!.toString(16).padStart(2, '0');
  return bytes.length > shown ? `${s}…(${bytes.length} bytes)` : s || '(empty)';
}

function show(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value instanceof Uint8Array) return `<${hex(value)}>`;
  if (Array.isArray(value)) return `[${value.map(show).join(', ')}]`;
  if (value && typeof value === 'object') {
    return `{ ${Object.entries(value)
      .map(([k, v]) => `${k}: ${show(v)}`)
      .join(', ')} }`;
  }
  return JSON.stringify(value) ?? String(value);
}

function showRange(range: StorageRange): string {
  return show(range);
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compare(a, b) === 0;
}

function eqValue(actual: unknown, expected: Uint8Array | undefined, what: string): void {
  if (expected === undefined) {
    check(actual === undefined, `${what}: expected undefined, got ${show(actual)}`);
    return;
  }
  check(
    actual instanceof Uint8Array,
    `${what}: expected a Uint8Array ${show(expected)}, got ${show(actual)}`,
  );
  check(sameBytes(actual, expected), `${what}: expected ${show(expected)}, got ${show(actual)}`);
}

function eqEntries(actual: Entry[], expected: Entry[], what: string): void {
  const fmt = (entries: Entry[]) => entries.map(([k, v]) => `${hex(k)}=${hex(v)}`).join(' ');
  const ok =
    actual.length === expected.length &&
    actual.every(
      (e, i) =>
        e[0] instanceof Uint8Array &&
        e[1] instanceof Uint8Array &&
        sameBytes(e[0], expected[i]![0]) &&
        sameBytes(e[1], expected[i]![1]),
    );
  check(ok, `${what}:\n  expected [${fmt(expected)}]\n  got      [${fmt(actual)}]`);
}

async function rejects(fn: () => Promise<unknown>, what: string): Promise<void> {
  let result: unknown;
  try {
    result = await fn();
  } catch (error) {
    check(error instanceof Error, `${what}: rejected with a non-Error ${show(error)}`);
    return;
  }
  throw new Error(`${what}: expected a rejection, resolved with ${show(result)}`);
}
