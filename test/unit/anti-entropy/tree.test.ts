import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BucketAccumulator,
  bucketOf,
  childOf,
  diffSegments,
  FANOUT,
  itemHashOf,
  keyHash32,
  LEAF_LEVEL,
  MAX_LEVEL,
  MerkleTree,
  parentOf,
  SEGMENTS,
} from '../../../src/anti-entropy/index.js';
import { loadHasher } from '../../../src/ring/index.js';
import { key, object } from './helpers.js';

beforeAll(async () => {
  await loadHasher();
});

function treeOf(entries: Iterable<[string, Uint8Array]>): MerkleTree {
  const t = new MerkleTree();
  for (const [k, o] of entries) t.add(keyHash32(key(k)), itemHashOf(key(k), o));
  return t;
}

/** Operations on a key space of 40 keys: put a version, or delete the key physically (purge). */
const opArb = fc.record({
  k: fc.integer({ min: 0, max: 39 }).map((i) => `k${i}`),
  op: fc.constantFrom('put', 'tombstone', 'purge'),
  v: fc.integer({ min: 1, max: 1000 }),
});

describe('MerkleTree', () => {
  it('incremental updates equal a rebuild from scratch', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 200 }), (ops) => {
        const model = new Map<string, Uint8Array>();
        const t = new MerkleTree();
        for (const { k, op, v } of ops) {
          const before = model.get(k);
          const after = op === 'purge' ? undefined : object(v, op === 'put' ? `v${v}` : null);
          const kb = key(k);
          t.update(keyHash32(kb), before && itemHashOf(kb, before), after && itemHashOf(kb, after));
          if (after) model.set(k, after);
          else model.delete(k);
        }
        const rebuilt = treeOf(model);
        expect(t.equals(rebuilt)).toBe(true);
        expect(t.size).toBe(model.size);
        expect(t.hash(0, 0)).toBe(rebuilt.hash(0, 0));
      }),
    );
  });

  it('does not depend on the order keys are added in', () => {
    fc.assert(
      fc.property(
        fc
          .uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { maxLength: 60 })
          .chain((keys) =>
            fc.tuple(fc.constant(keys), fc.shuffledSubarray(keys, { minLength: keys.length })),
          ),
        ([keys, shuffled]) => {
          const a = treeOf(keys.map((k) => [k, object(1, k)]));
          const b = treeOf(shuffled.map((k) => [k, object(1, k)]));
          expect(a.equals(b)).toBe(true);
        },
      ),
    );
  });

  it('diff finds exactly the segments whose keys differ', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 300 }),
        fc.array(
          fc.record({
            i: fc.integer({ min: 0, max: 5000 }),
            kind: fc.constantFrom('update', 'remove', 'add'),
          }),
          {
            maxLength: 20,
          },
        ),
        (base, changes) => {
          const a = new Map(base.map((i) => [`k${i}`, object(1, `v${i}`)] as [string, Uint8Array]));
          const b = new Map(a);
          for (const { i, kind } of changes) {
            const k = `k${i}`;
            if (kind === 'remove') b.delete(k);
            else if (kind === 'update' && b.has(k)) b.set(k, object(2, `w${i}`));
            else if (kind === 'add' && !b.has(k)) b.set(k, object(3, `x${i}`));
          }
          const expected = new Set<number>();
          for (const k of new Set([...a.keys(), ...b.keys()])) {
            const x = a.get(k);
            const y = b.get(k);
            if (x !== y) expected.add(bucketOf(keyHash32(key(k)), LEAF_LEVEL));
          }
          // Two changes in one segment can only cancel out by a 64-bit hash collision.
          expect(diffSegments(treeOf(a), treeOf(b))).toEqual([...expected].sort((x, y) => x - y));
        },
      ),
    );
  });

  it('identical trees have no differing segments, and a clone is independent', () => {
    const a = treeOf([...Array(500).keys()].map((i) => [`k${i}`, object(1, `v${i}`)]));
    const b = a.clone();
    expect(diffSegments(a, b)).toEqual([]);
    b.add(keyHash32(key('new')), itemHashOf(key('new'), object(1, 'n')));
    expect(diffSegments(a, b)).toEqual([bucketOf(keyHash32(key('new')), LEAF_LEVEL)]);
    expect(a.size).toBe(500);
    expect(b.size).toBe(501);
  });

  it('keeps counts per bucket and serves children level by level', () => {
    const t = treeOf([...Array(3000).keys()].map((i) => [`k${i}`, object(1, `v${i}`)]));
    expect(t.count(0, 0)).toBe(3000);
    const branches = t.children(1, [0]);
    expect(branches.counts.reduce((s, c) => s + c, 0)).toBe(3000);
    const leaves = t.children(2, [0, 7]);
    expect(leaves.counts).toHaveLength(2 * FANOUT);
    expect(leaves.counts.slice(0, FANOUT).reduce((s, c) => s + c, 0)).toBe(branches.counts[0]);
    expect(leaves.counts.slice(FANOUT).reduce((s, c) => s + c, 0)).toBe(branches.counts[7]);
    expect(() => t.children(3, [0])).toThrow(RangeError);
  });
});

describe('bucket arithmetic', () => {
  it('children and parents agree with key-hash buckets at every level', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 1, max: MAX_LEVEL }),
        (h, level) => {
          const b = bucketOf(h, level);
          const p = bucketOf(h, level - 1);
          expect(parentOf(b, level)).toBe(p);
          const c = Math.floor(b / FANOUT ** (level - 1));
          expect(childOf(p, level, c)).toBe(b);
        },
      ),
    );
    expect(SEGMENTS).toBe(1024);
  });
});

describe('BucketAccumulator', () => {
  it('computes from a scan the same hashes the tree stores, and deeper levels that XOR up to them', () => {
    const entries = [...Array(2000).keys()].map(
      (i) => [`k${i}`, object(i + 1, `v${i}`)] as [string, Uint8Array],
    );
    const t = treeOf(entries);
    const feed = (acc: BucketAccumulator) => {
      for (const [k, o] of entries) {
        const kh = keyHash32(key(k));
        if (acc.wants(kh)) acc.add(kh, itemHashOf(key(k), o));
      }
      return acc;
    };
    const leaves = feed(new BucketAccumulator(2, [3, 30]));
    expect(leaves.result()).toEqual(t.children(2, [3, 30]));
    const segments = [5, 900, 1023];
    const deep = feed(new BucketAccumulator(3, segments));
    for (const s of segments) expect(deep.parentHash(s)).toBe(t.hash(LEAF_LEVEL, s));
    const counts = deep.result().counts;
    expect(counts.slice(0, FANOUT).reduce((a, c) => a + c, 0)).toBe(t.count(LEAF_LEVEL, 5));
  });
});
