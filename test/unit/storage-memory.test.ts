import { describe, expect, test } from 'vitest';
import { StorageError } from '../../src/errors.js';
import { MemoryStorage } from '../../src/storage/index.js';

const b = (...bytes: number[]) => Uint8Array.from(bytes);

async function collect(iterable: AsyncIterable<[Uint8Array, Uint8Array]>) {
  const out: [number[], number[]][] = [];
  for await (const [k, v] of iterable) out.push([[...k], [...v]]);
  return out;
}

async function opened() {
  const s = new MemoryStorage();
  await s.open();
  return s;
}

describe('MemoryStorage', () => {
  test('close() then open() on the same instance keeps the data', async () => {
    const s = await opened();
    await s.batch([{ type: 'put', key: b(1), value: b(2) }]);
    await s.close();
    expect(s.size).toBe(1);
    await s.open();
    expect(await s.get(b(1))).toEqual(b(2));
    expect(s.supports.permanence).toBe(false);
  });

  test('calls while closed reject with StorageError (DYNAMO_STORAGE)', async () => {
    const s = new MemoryStorage();
    await expect(s.get(b(1))).rejects.toBeInstanceOf(StorageError);
    await s.open();
    await s.close();
    await expect(s.batch([{ type: 'del', key: b(1) }])).rejects.toMatchObject({ code: 'DYNAMO_STORAGE' });
    await expect(s.getMany([b(1)])).rejects.toBeInstanceOf(StorageError);
    await expect(collect(s.iterate({}))).rejects.toBeInstanceOf(StorageError);
  });

  test('malformed arguments reject with TypeError / RangeError and write nothing', async () => {
    const s = await opened();
    await expect(s.get('k' as unknown as Uint8Array)).rejects.toBeInstanceOf(TypeError);
    await expect(s.getMany([b(1), 2 as unknown as Uint8Array])).rejects.toBeInstanceOf(TypeError);
    await expect(
      s.batch([
        { type: 'put', key: b(1), value: b(1) },
        { type: 'put', key: b(2), value: [1] as unknown as Uint8Array },
      ]),
    ).rejects.toThrow(/operations\[1\]\.value must be a Uint8Array/);
    expect(s.size).toBe(0);
    expect(() => s.iterate({ limit: -1 })).toThrow(RangeError);
    expect(() => s.iterate({ limit: 1.5 })).toThrow(RangeError);
    expect(() => s.iterate({ gte: 'a' as unknown as Uint8Array })).toThrow(TypeError);
  });

  test('buffers passed to batch() may be reused as soon as it returns', async () => {
    const s = await opened();
    const key = b(1);
    const value = b(2);
    const done = s.batch([{ type: 'put', key, value }]);
    key[0] = 7;
    value[0] = 7;
    await done;
    expect(await collect(s.iterate({}))).toEqual([[[1], [2]]]);
  });

  test('iterate() reads a snapshot taken at its first next(): later writes are not seen', async () => {
    const s = await opened();
    await s.batch([1, 2, 3, 4].map((i) => ({ type: 'put' as const, key: b(i), value: b(i) })));
    const iterable = s.iterate({});
    // Writes before iteration starts are seen...
    await s.batch([{ type: 'put', key: b(5), value: b(5) }]);
    const seen: number[] = [];
    for await (const [k] of iterable) {
      seen.push(k[0]!);
      // ...writes after it started are not.
      if (k[0] === 1) {
        await s.batch([
          { type: 'del', key: b(3) },
          { type: 'put', key: b(2, 0), value: b(0) },
          { type: 'put', key: b(9), value: b(9) },
        ]);
      }
    }
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect((await collect(s.iterate({}))).map(([k]) => k)).toEqual([[1], [2], [2, 0], [4], [5], [9]]);
  });

  test('an iteration interrupted by close() rejects with StorageError', async () => {
    const s = await opened();
    await s.batch([1, 2, 3].map((i) => ({ type: 'put' as const, key: b(i), value: b(i) })));
    const it = s.iterate({})[Symbol.asyncIterator]();
    expect((await it.next()).value?.[0]).toEqual(b(1));
    await s.close();
    await s.open();
    await expect(it.next()).rejects.toBeInstanceOf(StorageError);
  });

  test('every byte value, and lengths on either side of 64, round-trip through get, getMany and iterate', async () => {
    const s = await opened();
    const every = Uint8Array.from({ length: 256 }, (_, i) => 255 - i);
    const values = [0, 1, 63, 64, 65, 256, 5000].map((n) =>
      Uint8Array.from({ length: n }, (_, i) => every[i % 256]!),
    );
    const keys = values.map((_, i) => Uint8Array.of(0xff, i, 0x00, 0x80));
    await s.batch(keys.map((key, i) => ({ type: 'put' as const, key, value: values[i]! })));
    for (let i = 0; i < keys.length; i++) expect(await s.get(keys[i]!)).toEqual(values[i]);
    expect(await s.getMany(keys)).toEqual(values);
    const entries: [Uint8Array, Uint8Array][] = [];
    for await (const entry of s.iterate({})) entries.push(entry);
    expect(entries).toEqual(keys.map((k, i) => [k, values[i]]));
    for (const [, v] of entries) expect(v.constructor).toBe(Uint8Array);
  });

  test('long keys (20 KB) keep byte order', async () => {
    const s = await opened();
    const long = new Uint8Array(20_000).fill(0xff);
    const longer = new Uint8Array(20_001).fill(0xff);
    const lower = new Uint8Array(20_000).fill(0xff);
    lower[19_999] = 0xfe;
    await s.batch(
      [longer, long, lower].map((key) => ({ type: 'put' as const, key, value: b(key.length & 0xff) })),
    );
    const keys: Uint8Array[] = [];
    for await (const [k] of s.iterate({})) keys.push(k);
    expect(keys).toEqual([lower, long, longer]);
  });
});
