/**
 * Anti-entropy benchmarks.
 *
 * - Exchange cost: two replicas of one partition holding 100,000 and 1,000,000 keys that differ in
 *   10 keys (updated, deleted, added on either side). Reports the bytes the exchange sent and
 *   received (requests and replies, through the real message encoding) against the bytes of one
 *   full (key, object hash) list, the naive exchange: the acceptance asks < 5 % at 100k and
 *   < 2x the 100k bytes at 1M. One partition holding all keys is the worst case for the tree (a
 *   node spreads keys over Q partitions); the scanned levels below the stored segments keep it
 *   logarithmic.
 * - Tree upkeep: the work anti-entropy adds to every local write (two item hashes and an O(1)
 *   XOR update), against hashing the object alone.
 */
import { exchange, itemHashOf, keyHash32, LocalPeer, MerkleTree } from '../../src/anti-entropy/index.js';
import { hash64, loadHasher } from '../../src/ring/index.js';
import { decodeObject, encodeObject, sync } from '../../src/versioning/index.js';
import { ArrayReplica, fullListBytes, key, object, remoteOf } from '../unit/anti-entropy/helpers.js';
import type { BenchRow } from './lib.js';

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

async function exchangeCost(
  size: number,
): Promise<{ bytes: number; full: number; ms: number; repaired: number }> {
  const { a, b } = replicas(size);
  const remote = remoteOf(b);
  const t0 = performance.now();
  const result = await exchange(0, new LocalPeer(() => a.data()), remote);
  const ms = performance.now() - t0;
  return { bytes: remote.bytes, full: fullListBytes(a), ms, repaired: result.keysRepaired };
}

export async function benchAntiEntropy(): Promise<BenchRow[]> {
  await loadHasher();
  const rows: BenchRow[] = [];

  const small = await exchangeCost(100_000);
  const large = await exchangeCost(1_000_000);
  for (const [label, r] of [
    ['100,000', small],
    ['1,000,000', large],
  ] as const) {
    rows.push({
      scenario: `anti-entropy exchange, ${label} keys, 10 differences`,
      opsPerSec: 1000 / r.ms,
      extra: {
        bytes: r.bytes,
        fullListBytes: r.full,
        percentOfFullList: ((100 * r.bytes) / r.full).toFixed(3),
        vs100k: (r.bytes / small.bytes).toFixed(2),
        keysRepaired: r.repaired,
        ms: r.ms.toFixed(0),
      },
    });
  }

  // Per-write tree upkeep vs hashing the object alone (the floor of any content hash).
  const n = 200_000;
  const keys = Array.from({ length: 1000 }, (_, i) => key(`user:${i}:cart`));
  const objects = Array.from({ length: 1000 }, (_, i) => object(i + 1, `value ${'x'.repeat(100)} ${i}`));
  const tree = new MerkleTree();
  let sink = 0n;
  const time = (op: (i: number) => void) => {
    for (let i = 0; i < 20_000; i++) op(i);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) op(i);
    return n / ((performance.now() - t0) / 1000);
  };
  const baseline = time((i) => {
    sink ^= hash64(objects[i % 1000]!);
  });
  const upkeep = time((i) => {
    const k = keys[i % 1000]!;
    tree.update(keyHash32(k), itemHashOf(k, objects[i % 1000]!), itemHashOf(k, objects[(i + 1) % 1000]!));
  });
  rows.push({
    scenario: 'anti-entropy tree upkeep per write (2 item hashes + XOR update)',
    opsPerSec: upkeep,
    baseline: 'xxhash64 of the object alone',
    baselineOpsPerSec: baseline,
    extra: { sink: Number(sink & 1n) },
  });
  return rows;
}
