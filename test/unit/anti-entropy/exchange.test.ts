import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_EXCHANGE_LIMITS,
  diffLists,
  exchange,
  findDifferences,
  type KeyList,
  LocalPeer,
} from '../../../src/anti-entropy/index.js';
import { loadHasher } from '../../../src/ring/index.js';
import { decodeObject, encodeObject, sync } from '../../../src/versioning/index.js';
import { ArrayReplica, fullListBytes, key, object, remoteOf, sameData } from './helpers.js';

beforeAll(async () => {
  await loadHasher();
});

const h = (n: number) => new Uint8Array(8).fill(n);
const list = (entries: [string, number][], truncated = false): KeyList => ({
  entries: entries.map(([k, n]) => [key(k), h(n)]),
  truncated,
});
const names = (keys: Uint8Array[]) => keys.map((k) => new TextDecoder().decode(k));

describe('diffLists', () => {
  it('reports keys on one side only and keys whose hashes differ', () => {
    const a = list([
      ['a', 1],
      ['b', 1],
      ['d', 1],
    ]);
    const b = list([
      ['b', 2],
      ['c', 1],
      ['d', 1],
      ['e', 1],
    ]);
    expect(names(diffLists(a, b))).toEqual(['a', 'b', 'c', 'e']);
    expect(names(diffLists(b, a))).toEqual(['a', 'b', 'c', 'e']);
  });

  it('says nothing about keys past the end of a truncated list', () => {
    const a = list(
      [
        ['a', 1],
        ['c', 1],
      ],
      true,
    );
    const b = list([
      ['b', 1],
      ['c', 2],
      ['d', 1],
    ]);
    expect(names(diffLists(a, b))).toEqual(['a', 'b', 'c']);
  });
});

/** Random replica histories over a small key space: versions, tombstones, concurrent writes. */
const replicaArb = fc.array(
  fc.record({
    k: fc.integer({ min: 0, max: 300 }),
    counter: fc.integer({ min: 1, max: 5 }),
    actor: fc.constantFrom('a@1', 'b@1', 'c@1'),
    live: fc.boolean(),
  }),
  { maxLength: 400 },
);

function build(ops: { k: number; counter: number; actor: string; live: boolean }[]): ArrayReplica {
  const r = new ArrayReplica();
  for (const op of ops) {
    // A dot names one write everywhere: its value is a function of the dot.
    const o = object(op.counter, op.live ? `${op.actor}:${op.counter}:${op.k}` : null, op.actor);
    r.merge(key(op.k), o);
  }
  return r;
}

describe('exchange', () => {
  it('makes two replicas identical, and a second exchange finds nothing', async () => {
    await fc.assert(
      fc.asyncProperty(replicaArb, replicaArb, async (opsA, opsB) => {
        const a = build(opsA);
        const b = build(opsB);
        // What both should hold: the merge of the two, key by key.
        const expected = build([...opsA, ...opsB]);
        const result = await exchange(0, new LocalPeer(() => a.data()), remoteOf(b));
        expect(result.complete).toBe(true);
        expect(sameData(a, b)).toBe(true);
        expect(sameData(a, expected)).toBe(true);
        expect(a.tree.equals(b.tree)).toBe(true);
        const again = await exchange(0, new LocalPeer(() => a.data()), remoteOf(b));
        expect(again.keysDiffering).toBe(0);
        expect(again.keysRepaired).toBe(0);
        expect(a.distrusted + b.distrusted).toBe(0);
      }),
      { numRuns: 40 },
    );
  });

  it('repairs in both directions: newer versions, tombstones, keys missing on either side', async () => {
    const base = [...Array(2000).keys()].map((i) => [key(i), object(1, `v${i}`)] as [Uint8Array, Uint8Array]);
    const a = ArrayReplica.from(base);
    const b = a.clone();
    a.set(key(1), object(2, 'newer on a')); // a newer version on a
    b.set(key(2), object(2, null)); // a delete on b
    a.set(key(3), undefined); // missing on a
    b.set(key('only-b'), object(1, 'b'));
    const result = await exchange(7, new LocalPeer(() => a.data()), remoteOf(b));
    expect(result).toMatchObject({ keysDiffering: 4, keysRepaired: 4, complete: true });
    expect(result.pulled).toBe(3); // 2, 3, only-b
    expect(result.pushed).toBe(1); // 1
    expect(sameData(a, b)).toBe(true);
    expect(decodeObject(b.get(key(1))!).siblings[0]!.value).toEqual(new TextEncoder().encode('newer on a'));
    expect(decodeObject(a.get(key(2))!).siblings[0]!.value).toBeNull();
  });

  it('narrows big segments on scanned levels and lists only a few keys', async () => {
    // 200,000 keys: ≈ 195 per segment, so a difference is narrowed to level 3 before listing.
    const base = [...Array(200_000).keys()].map((i) => [key(i), object(1, 'v')] as [Uint8Array, Uint8Array]);
    const a = ArrayReplica.from(base);
    const b = a.clone();
    b.set(key(42), object(2, 'w'));
    const remote = remoteOf(b);
    const found = await findDifferences(0, new LocalPeer(() => a.data()), remote);
    expect(names(found.keys)).toEqual(['key:42']);
    expect(remote.bytes).toBeLessThan(2_000);
  });

  it('stays within its key limit per exchange and finishes over several', async () => {
    const a = ArrayReplica.from([...Array(3000).keys()].map((i) => [key(i), object(1, `v${i}`)]));
    const b = new ArrayReplica();
    const limits = { ...DEFAULT_EXCHANGE_LIMITS, maxRepairKeys: 1000, maxListKeys: 700 };
    let rounds = 0;
    for (; rounds < 20 && !sameData(a, b); rounds++) {
      const r = await exchange(0, new LocalPeer(() => b.data()), remoteOf(a), limits);
      expect(r.keysRepaired).toBeLessThanOrEqual(1000);
    }
    expect(sameData(a, b)).toBe(true);
    expect(rounds).toBeGreaterThanOrEqual(3);
  });

  it('notices a tree that disagrees with its data', async () => {
    const a = ArrayReplica.from([...Array(100).keys()].map((i) => [key(i), object(1, `v${i}`)]));
    const b = a.clone();
    // Corrupt a's tree without changing its data (what a racing build could leave behind).
    a.tree.add(123, 0xdeadbeefn);
    const result = await exchange(0, new LocalPeer(() => a.data()), remoteOf(b));
    expect(result.keysDiffering).toBe(0);
    expect(a.distrusted).toBe(1);
  });
});

describe('exchange cost', () => {
  /**
   * Two replicas of `size` keys that differ in 10 keys (updated, deleted and added on either side).
   * Keys are zero-padded so that they are generated in byte order, and share one object's bytes
   * (item hashes include the key, so the tree does not care): a million keys build in a second.
   */
  function replicas(size: number): { a: ArrayReplica; b: ArrayReplica } {
    const shared = object(1, 'a typical small value');
    const keys = Array.from({ length: size }, (_, i) => key(`key:${String(i).padStart(8, '0')}`));
    const a = new ArrayReplica(keys, new Array<Uint8Array>(size).fill(shared));
    const b = a.clone();
    for (let d = 0; d < 10; d++) {
      const k = keys[Math.floor((size / 10) * d) + 3]!;
      if (d < 4) b.set(k, object(2, 'newer'));
      else if (d < 6) a.set(k, encodeObject(sync(decodeObject(a.get(k)!), decodeObject(object(2, null)))));
      else if (d < 8) b.set(key(`extra:${d}`), object(1, 'x'));
      else a.set(k, undefined);
    }
    return { a, b };
  }

  async function cost(size: number): Promise<{ bytes: number; full: number }> {
    const { a, b } = replicas(size);
    const remote = remoteOf(b);
    const result = await exchange(0, new LocalPeer(() => a.data()), remote);
    expect(result.keysDiffering).toBe(10);
    expect(result.keysRepaired).toBe(10);
    expect(sameData(a, b)).toBe(true);
    return { bytes: remote.bytes, full: fullListBytes(a) };
  }

  it('100,000 keys with 10 differences cost < 5 % of a full key list; 1,000,000 keys < 2x that', async () => {
    const small = await cost(100_000);
    expect(small.bytes).toBeLessThan(0.05 * small.full);
    const large = await cost(1_000_000);
    expect(large.bytes).toBeLessThan(2 * small.bytes);
    console.info(
      `exchange cost: 100k keys ${small.bytes} B (full list ${small.full} B), 1M keys ${large.bytes} B (full list ${large.full} B)`,
    );
  }, 120_000);
});
