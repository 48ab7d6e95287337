import { expect, it } from 'vitest';
import { hash64, partitionOf } from '../../../src/ring/hash.js';

// Its own file: vitest gives each test file a fresh module graph, so the hasher is not loaded yet.
it('hashing before loadHasher() throws a clear error', () => {
  expect(() => partitionOf(new Uint8Array([1]), 64)).toThrow(/loadHasher/);
  expect(() => hash64(new Uint8Array([1]))).toThrow(/loadHasher/);
});
