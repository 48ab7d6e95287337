/**
 * The compliance suite must fail broken storages: each mutant below has one classic bug, and the
 * suite, run with a collecting runner, has to report at least the named test as failing.
 */
import { describe, expect, test } from 'vitest';
import type { Storage, StorageOperation, StorageRange } from '../../src/storage/types.js';
import { storageComplianceSuite } from '../../src/testing/storage-compliance.js';

type Bug =
  | 'none'
  | 'aliased-values'
  | 'non-atomic-batch'
  | 'signed-order'
  | 'open-after-close'
  | 'ignores-limit'
  | 'exclusive-gte'
  | 'empty-value-missing'
  | 'drops-concurrent';

const hex = (k: Uint8Array) => Array.from(k, (x) => x.toString(16).padStart(2, '0')).join('');
const unhex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => Number.parseInt(h, 16));

/** A deliberately simple storage (Map + sort on iterate) with an optional bug. */
class NaiveStorage implements Storage {
  readonly supports = { permanence: false };
  private data = new Map<string, Uint8Array>();
  private open_ = false;
  private pending = 0;
  constructor(private readonly bug: Bug) {}

  async open() {
    this.open_ = true;
  }
  async close() {
    this.open_ = false;
  }
  private assertOpen() {
    if (!this.open_ && this.bug !== 'open-after-close') throw new Error('closed');
  }
  private out(v: Uint8Array | undefined) {
    if (v === undefined) return undefined;
    if (this.bug === 'empty-value-missing' && v.length === 0) return undefined;
    return this.bug === 'aliased-values' ? v : v.slice();
  }
  async get(key: Uint8Array) {
    this.assertOpen();
    return this.out(this.data.get(hex(key)));
  }
  async getMany(keys: Uint8Array[]) {
    this.assertOpen();
    return keys.map((k) => this.out(this.data.get(hex(k))));
  }
  async batch(ops: StorageOperation[]) {
    this.assertOpen();
    if (this.bug === 'drops-concurrent' && this.pending++ > 0) {
      await Promise.resolve();
      this.pending--;
      return;
    }
    const check = (op: StorageOperation) => {
      if (!(op?.key instanceof Uint8Array)) throw new TypeError('key');
      if (op.type === 'put' && !(op.value instanceof Uint8Array)) throw new TypeError('value');
      if (op.type !== 'put' && op.type !== 'del') throw new TypeError('type');
    };
    if (this.bug !== 'non-atomic-batch') ops.forEach(check);
    for (const op of ops) {
      if (this.bug === 'non-atomic-batch') check(op);
      if (op.type === 'put') this.data.set(hex(op.key), op.value.slice());
      else this.data.delete(hex(op.key));
    }
    await Promise.resolve();
    this.pending = 0;
  }
  async *iterate(range: StorageRange): AsyncGenerator<[Uint8Array, Uint8Array]> {
    this.assertOpen();
    const signed = this.bug === 'signed-order';
    const cmp = (a: Uint8Array, b: Uint8Array) => {
      for (let i = 0; i < Math.min(a.length, b.length); i++) {
        const x = signed ? (a[i]! << 24) >> 24 : a[i]!;
        const y = signed ? (b[i]! << 24) >> 24 : b[i]!;
        if (x !== y) return x - y;
      }
      return a.length - b.length;
    };
    const keys = [...this.data.keys()].map(unhex).sort(cmp);
    let n = 0;
    const limit = this.bug === 'ignores-limit' ? Infinity : (range.limit ?? Infinity);
    for (const k of keys) {
      if (range.gte && (this.bug === 'exclusive-gte' ? cmp(k, range.gte) <= 0 : cmp(k, range.gte) < 0))
        continue;
      if (range.lt && cmp(k, range.lt) >= 0) break;
      if (n++ >= limit) break;
      const v = this.data.get(hex(k));
      if (v) yield [k, this.out(v) ?? new Uint8Array(0)];
    }
  }
}

async function failures(bug: Bug): Promise<string[]> {
  const tests: { name: string; fn: () => Promise<void> }[] = [];
  storageComplianceSuite({
    test: (name, fn) => tests.push({ name, fn }),
    factory: () => new NaiveStorage(bug),
  });
  const failed: string[] = [];
  for (const t of tests) {
    try {
      await t.fn();
    } catch {
      failed.push(t.name);
    }
  }
  return failed;
}

describe('storageComplianceSuite', () => {
  test('passes a correct (naive) storage', async () => {
    expect(await failures('none')).toEqual([]);
  });

  test.each([
    ['aliased-values', 'mutating buffers'],
    ['non-atomic-batch', 'invalid operation'],
    ['signed-order', 'unsigned bytes'],
    ['open-after-close', 'after close()'],
    ['ignores-limit', 'limit'],
    ['exclusive-gte', 'gte (inclusive)'],
    ['empty-value-missing', 'empty values'],
    ['drops-concurrent', 'concurrent batches'],
  ] as const)('fails a storage with bug %s', async (bug, failingTest) => {
    const failed = await failures(bug);
    expect(
      failed.some((name) => name.includes(failingTest)),
      `failed: ${failed.join(' | ')}`,
    ).toBe(true);
  });
});
