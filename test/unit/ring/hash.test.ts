import { beforeAll, describe, expect, it } from 'vitest';
import { hash64, loadHasher, partitionOf } from '../../../src/ring/hash.js';

const utf8 = (s: string) => new TextEncoder().encode(s);

describe('ring hash', () => {
  beforeAll(async () => {
    await loadHasher();
  });

  it('loadHasher is idempotent', async () => {
    await Promise.all([loadHasher(), loadHasher()]);
    await loadHasher();
    expect(hash64(utf8('a'))).toBe(0xd24ec4f1a98c6e5bn);
  });

  it('hash64 is xxhash64 with seed 0 (reference vectors)', () => {
    expect(hash64(new Uint8Array(0))).toBe(0xef46db3751d8e999n);
    expect(hash64(utf8('a'))).toBe(0xd24ec4f1a98c6e5bn);
    expect(hash64(utf8('abc'))).toBe(0x44bc2cf5ad770999n);
    expect(hash64(utf8('Nobody inspects the spammish repetition'))).toBe(0xfbcea83c8a378bf1n);
  });

  it('partitionOf takes the top log2(Q) bits, so doubling Q splits each partition in two', () => {
    const key = utf8('abc');
    expect(partitionOf(key, 1)).toBe(0);
    expect(partitionOf(key, 256)).toBe(Number(0x44bc2cf5ad770999n >> 56n));
    expect(partitionOf(key, 1024)).toBe(274);
    expect(partitionOf(utf8('cart:42'), 1024)).toBe(872);
    expect(partitionOf(new Uint8Array(0), 65_536)).toBe(0xef46);
    for (let i = 0; i < 1000; i++) {
      const k = utf8(`k${i}`);
      expect(partitionOf(k, 512) >> 1).toBe(partitionOf(k, 256));
    }
  });

  it('partitionOf stays in range and spreads keys evenly', () => {
    for (const q of [1, 2, 64, 256, 1024, 65_536]) {
      for (let i = 0; i < 2000; i++) {
        const p = partitionOf(utf8(`user:${i}`), q);
        expect(Number.isInteger(p) && p >= 0 && p < q).toBe(true);
      }
    }
    const q = 256;
    const keys = 200_000;
    const hist = new Array<number>(q).fill(0);
    for (let i = 0; i < keys; i++) hist[partitionOf(utf8(`key-${i}`), q)]! += 1;
    const expected = keys / q;
    const chi2 = hist.reduce((a, c) => a + (c - expected) ** 2 / expected, 0);
    // 255 degrees of freedom: mean 255, sd ≈ 22.6; 400 is > 6 sd out.
    expect(chi2).toBeLessThan(400);
    expect(Math.min(...hist)).toBeGreaterThan(expected * 0.85);
    expect(Math.max(...hist)).toBeLessThan(expected * 1.15);
  });

  it('accepts Buffers and subarrays (hashes exactly the viewed bytes)', () => {
    const whole = utf8('xxabcxx');
    expect(hash64(whole.subarray(2, 5))).toBe(0x44bc2cf5ad770999n);
    expect(hash64(Buffer.from('abc'))).toBe(0x44bc2cf5ad770999n);
  });

  it('rejects a partition count that is not a power of two in 1..65536', () => {
    for (const q of [0, 3, 100, 131_072, -1, 2.5])
      expect(() => partitionOf(utf8('a'), q)).toThrow(RangeError);
    expect(partitionOf(utf8('a'), 64)).toBeLessThan(64); // and the cache recovers
  });
});
