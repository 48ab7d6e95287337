/**
 * The anti-entropy tree of one partition on one replica: a fixed-shape XOR ("tictac", as in Riak's
 * leveled) Merkle tree. Pure data structure: no I/O, no clock.
 *
 * Shape. A key's bucket at level L is the low 5·L bits of its key hash, so every node has 32
 * children and the shape never depends on the data:
 *   level 0  the root                        (1 bucket)
 *   level 1  branches                        (32 buckets)
 *   level 2  leaves, called segments         (1,024 buckets)  ← stored
 *   level 3… computed on demand by scanning the partition (32 sub-buckets per segment, up to
 *            level 6 = 30 key-hash bits), so a huge partition still narrows a difference down to a
 *            handful of keys instead of listing a whole segment.
 * A bucket's hash is the XOR of the item hashes of its keys (`hash.ts`). XOR makes the tree
 * incremental and order independent: a write changes its segment, its branch and the root by
 * `old ^ new` in O(1), with no rescan and no dirty tracking (every inner node is itself an XOR of
 * its children, so it can be updated by the same delta instead of being recomputed).
 *
 * Memory: 1,024 × (8-byte hash + 4-byte count) + 33 inner nodes ≈ 12.7 KB per tree, whatever the
 * number of keys. Trees live only for the partitions a node replicates, built lazily.
 */

/** Children per node, as bits of the key hash. */
export const BRANCH_BITS = 5;
export const FANOUT = 1 << BRANCH_BITS;
/** Level of the stored leaves (segments). */
export const LEAF_LEVEL = 2;
/** Segments per tree. */
export const SEGMENTS = 1 << (BRANCH_BITS * LEAF_LEVEL);
/** Deepest level computed on demand (5 × 6 = 30 key-hash bits). */
export const MAX_LEVEL = 6;
/** Bytes of one bucket hash on the wire (64-bit, big-endian). */
export const HASH_BYTES = 8;

const MASK32 = 0xffffffffn;

/** Number of buckets at `level`. */
export function bucketsAt(level: number): number {
  checkLevel(level);
  return 2 ** (BRANCH_BITS * level);
}

/** The bucket of a key at `level`: the low 5·level bits of its key hash. */
export function bucketOf(keyHash32: number, level: number): number {
  return level === 0 ? 0 : keyHash32 & (bucketsAt(level) - 1);
}

/** The `c`-th child (0..31) of bucket `parent` at level `level - 1`. */
export function childOf(parent: number, level: number, c: number): number {
  return parent + c * bucketsAt(level - 1);
}

/** The parent (at `level - 1`) of bucket `index` at `level`. */
export function parentOf(index: number, level: number): number {
  return index & (bucketsAt(level - 1) - 1);
}

function checkLevel(level: number): void {
  if (!Number.isInteger(level) || level < 0 || level > MAX_LEVEL) {
    throw new RangeError(`tree level must be an integer in 0..${MAX_LEVEL}, got ${level}`);
  }
}

/** Bucket hashes and key counts, as sent on the wire: `hashes` holds 8 bytes per bucket. */
export interface BucketHashes {
  hashes: Uint8Array;
  counts: number[];
}

export class MerkleTree {
  private readonly leafHi = new Uint32Array(SEGMENTS);
  private readonly leafLo = new Uint32Array(SEGMENTS);
  private readonly leafCount = new Uint32Array(SEGMENTS);
  private readonly branchHi = new Uint32Array(FANOUT);
  private readonly branchLo = new Uint32Array(FANOUT);
  private readonly branchCount = new Uint32Array(FANOUT);
  private rootHi = 0;
  private rootLo = 0;
  private total = 0;

  /** Number of keys the tree covers. */
  get size(): number {
    return this.total;
  }

  /** Adds a key's item hash. */
  add(keyHash32: number, item: bigint): void {
    this.xor(keyHash32 & (SEGMENTS - 1), item, 1);
  }

  /** Removes a key's item hash (XOR is its own inverse). */
  remove(keyHash32: number, item: bigint): void {
    this.xor(keyHash32 & (SEGMENTS - 1), item, -1);
  }

  /** A key changed from `before` to `after` (undefined: absent). */
  update(keyHash32: number, before: bigint | undefined, after: bigint | undefined): void {
    if (before !== undefined) this.remove(keyHash32, before);
    if (after !== undefined) this.add(keyHash32, after);
  }

  /** Hash of one stored bucket (level 0..2), as a bigint. */
  hash(level: number, index: number): bigint {
    const [hi, lo] = this.parts(level, index);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** Keys in one stored bucket (level 0..2). */
  count(level: number, index: number): number {
    if (level === 0) return this.total;
    if (level === 1) return this.branchCount[index]!;
    if (level === LEAF_LEVEL) return this.leafCount[index]!;
    throw new RangeError(`level ${level} is not stored`);
  }

  /**
   * Hashes and counts of every child of each of `parents` (buckets at `level - 1`), in order:
   * 32 per parent. Level 0 answers the root alone (parents ignored).
   */
  children(level: number, parents: readonly number[]): BucketHashes {
    if (level < 0 || level > LEAF_LEVEL) throw new RangeError(`level ${level} is not stored`);
    if (level === 0) {
      const hashes = new Uint8Array(HASH_BYTES);
      writeHash(hashes, 0, this.rootHi, this.rootLo);
      return { hashes, counts: [this.total] };
    }
    const hashes = new Uint8Array(parents.length * FANOUT * HASH_BYTES);
    const counts = new Array<number>(parents.length * FANOUT);
    let i = 0;
    for (const parent of parents) {
      if (!Number.isInteger(parent) || parent < 0 || parent >= bucketsAt(level - 1)) {
        throw new RangeError(`bucket ${parent} out of range at level ${level - 1}`);
      }
      for (let c = 0; c < FANOUT; c++, i++) {
        const index = childOf(parent, level, c);
        const [hi, lo] = this.parts(level, index);
        writeHash(hashes, i * HASH_BYTES, hi, lo);
        counts[i] = this.count(level, index);
      }
    }
    return { hashes, counts };
  }

  clone(): MerkleTree {
    const t = new MerkleTree();
    t.leafHi.set(this.leafHi);
    t.leafLo.set(this.leafLo);
    t.leafCount.set(this.leafCount);
    t.branchHi.set(this.branchHi);
    t.branchLo.set(this.branchLo);
    t.branchCount.set(this.branchCount);
    t.rootHi = this.rootHi;
    t.rootLo = this.rootLo;
    t.total = this.total;
    return t;
  }

  /** Same hashes and counts everywhere. */
  equals(other: MerkleTree): boolean {
    if (this.rootHi !== other.rootHi || this.rootLo !== other.rootLo || this.total !== other.total)
      return false;
    for (let s = 0; s < SEGMENTS; s++) {
      if (
        this.leafHi[s] !== other.leafHi[s] ||
        this.leafLo[s] !== other.leafLo[s] ||
        this.leafCount[s] !== other.leafCount[s]
      )
        return false;
    }
    return true;
  }

  private parts(level: number, index: number): [number, number] {
    if (level === 0) return [this.rootHi, this.rootLo];
    if (level === 1) return [this.branchHi[index]!, this.branchLo[index]!];
    if (level === LEAF_LEVEL) return [this.leafHi[index]!, this.leafLo[index]!];
    throw new RangeError(`level ${level} is not stored`);
  }

  private xor(segment: number, item: bigint, countDelta: number): void {
    const hi = Number((item >> 32n) & MASK32);
    const lo = Number(item & MASK32);
    const branch = segment & (FANOUT - 1);
    this.leafHi[segment]! ^= hi;
    this.leafLo[segment]! ^= lo;
    this.leafCount[segment]! += countDelta;
    this.branchHi[branch]! ^= hi;
    this.branchLo[branch]! ^= lo;
    this.branchCount[branch]! += countDelta;
    this.rootHi = (this.rootHi ^ hi) >>> 0;
    this.rootLo = (this.rootLo ^ lo) >>> 0;
    this.total += countDelta;
  }
}

/**
 * Hashes and counts of the children, at `level` (3..MAX_LEVEL, or any level), of `parents`
 * (buckets at `level - 1`), accumulated from a scan: feed every key of the partition with `add`.
 * Keys outside the parents are skipped cheaply. Also yields each parent's own XOR, so the caller
 * can check a stored tree against the scan.
 */
export class BucketAccumulator {
  private readonly slot = new Map<number, number>();
  private readonly hi: Uint32Array;
  private readonly lo: Uint32Array;
  private readonly counts: number[];
  private readonly parentMask: number;
  private readonly childShift: number;

  constructor(
    readonly level: number,
    readonly parents: readonly number[],
  ) {
    if (level < 1 || level > MAX_LEVEL)
      throw new RangeError(`level must be in 1..${MAX_LEVEL}, got ${level}`);
    const parentBuckets = bucketsAt(level - 1);
    parents.forEach((p, i) => {
      if (!Number.isInteger(p) || p < 0 || p >= parentBuckets) {
        throw new RangeError(`bucket ${p} out of range at level ${level - 1}`);
      }
      if (!this.slot.has(p)) this.slot.set(p, i);
    });
    this.hi = new Uint32Array(parents.length * FANOUT);
    this.lo = new Uint32Array(parents.length * FANOUT);
    this.counts = new Array<number>(parents.length * FANOUT).fill(0);
    this.parentMask = parentBuckets - 1;
    this.childShift = BRANCH_BITS * (level - 1);
  }

  /** True when a key with this hash falls under one of the parents (compute its item hash then). */
  wants(keyHash32: number): boolean {
    return this.slot.has(keyHash32 & this.parentMask);
  }

  add(keyHash32: number, item: bigint): void {
    const s = this.slot.get(keyHash32 & this.parentMask);
    if (s === undefined) return;
    const c = Math.floor(keyHash32 / 2 ** this.childShift) & (FANOUT - 1);
    const i = s * FANOUT + c;
    this.hi[i]! ^= Number((item >> 32n) & MASK32);
    this.lo[i]! ^= Number(item & MASK32);
    this.counts[i]!++;
  }

  result(): BucketHashes {
    const hashes = new Uint8Array(this.parents.length * FANOUT * HASH_BYTES);
    const counts = new Array<number>(this.parents.length * FANOUT);
    this.parents.forEach((p, j) => {
      const s = this.slot.get(p)!;
      for (let c = 0; c < FANOUT; c++) {
        writeHash(hashes, (j * FANOUT + c) * HASH_BYTES, this.hi[s * FANOUT + c]!, this.lo[s * FANOUT + c]!);
        counts[j * FANOUT + c] = this.counts[s * FANOUT + c]!;
      }
    });
    return { hashes, counts };
  }

  /** XOR of all children of `parent`: the parent's hash as the scan saw it. */
  parentHash(parent: number): bigint {
    const s = this.slot.get(parent);
    if (s === undefined) throw new RangeError(`bucket ${parent} is not a parent here`);
    let hi = 0;
    let lo = 0;
    for (let c = 0; c < FANOUT; c++) {
      hi ^= this.hi[s * FANOUT + c]!;
      lo ^= this.lo[s * FANOUT + c]!;
    }
    return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  }
}

/** Indices (into a list of 8-byte hashes) where two equally long hash lists differ. */
export function differingHashes(a: Uint8Array, b: Uint8Array): number[] {
  if (a.byteLength !== b.byteLength || a.byteLength % HASH_BYTES !== 0) {
    throw new RangeError('hash lists differ in length');
  }
  const out: number[] = [];
  for (let i = 0; i < a.byteLength; i += HASH_BYTES) {
    for (let j = 0; j < HASH_BYTES; j++) {
      if (a[i + j] !== b[i + j]) {
        out.push(i / HASH_BYTES);
        break;
      }
    }
  }
  return out;
}

/**
 * Segments whose hashes differ between two trees, found top-down as an exchange would: the root,
 * then only the branches that differ, then only their segments. Ascending order.
 */
export function diffSegments(a: MerkleTree, b: MerkleTree): number[] {
  if (differingHashes(a.children(0, []).hashes, b.children(0, []).hashes).length === 0) return [];
  const branches = differingHashes(a.children(1, [0]).hashes, b.children(1, [0]).hashes);
  if (branches.length === 0) return [];
  const leaves = differingHashes(a.children(2, branches).hashes, b.children(2, branches).hashes);
  return leaves
    .map((i) => childOf(branches[Math.floor(i / FANOUT)]!, LEAF_LEVEL, i % FANOUT))
    .sort((x, y) => x - y);
}

function writeHash(out: Uint8Array, offset: number, hi: number, lo: number): void {
  out[offset] = hi >>> 24;
  out[offset + 1] = (hi >>> 16) & 0xff;
  out[offset + 2] = (hi >>> 8) & 0xff;
  out[offset + 3] = hi & 0xff;
  out[offset + 4] = lo >>> 24;
  out[offset + 5] = (lo >>> 16) & 0xff;
  out[offset + 6] = (lo >>> 8) & 0xff;
  out[offset + 7] = lo & 0xff;
}
