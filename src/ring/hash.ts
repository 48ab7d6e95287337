/**
 * Key hashing: xxhash64 (seed 0) through `xxhash-wasm`. The wasm module is compiled once per
 * process; after `loadHasher()` resolves every call here is synchronous, so the request path
 * never awaits a hash.
 */
import xxhash from 'xxhash-wasm';

type Hash64Raw = (input: Uint8Array, seed?: bigint) => bigint;

let h64Raw: Hash64Raw | undefined;
let loading: Promise<void> | undefined;

/** Idempotent: concurrent and repeated callers share one instantiation. A failed load can be retried. */
export function loadHasher(): Promise<void> {
  loading ??= xxhash().then(
    (api) => {
      h64Raw = api.h64Raw;
    },
    (err: unknown) => {
      loading = undefined;
      throw err;
    },
  );
  return loading;
}

function hasher(): Hash64Raw {
  if (h64Raw === undefined) throw new Error('ring hasher not loaded: await loadHasher() first');
  return h64Raw;
}

/** xxhash64 of `bytes` with seed 0, as an unsigned 64-bit bigint. */
export function hash64(bytes: Uint8Array): bigint {
  return hasher()(bytes);
}

// The shift for the last Q seen: a ring uses one Q for its whole life, so this avoids a BigInt
// allocation per lookup.
let lastPartitions = 0;
let lastShift = 0n;

/**
 * The partition of `key` among `partitions` (Q, a power of two in 1..65536): the top log2(Q) bits
 * of xxhash64(key). Top bits rather than `mod Q` so that doubling Q splits every partition in two.
 */
export function partitionOf(key: Uint8Array, partitions: number): number {
  if (partitions !== lastPartitions) {
    if (
      !Number.isInteger(partitions) ||
      partitions < 1 ||
      partitions > 65_536 ||
      (partitions & (partitions - 1)) !== 0
    ) {
      throw new RangeError(`partitions must be a power of two in 1..65536, got ${partitions}`);
    }
    lastShift = BigInt(64 - (31 - Math.clz32(partitions)));
    lastPartitions = partitions;
  }
  return Number(hasher()(key) >> lastShift);
}
