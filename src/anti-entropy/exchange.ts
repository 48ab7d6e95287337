/**
 * One anti-entropy exchange of one partition between two replicas (DESIGN § 8 "Merkle trees").
 *
 * The initiator compares the two trees top-down — the root, then only the 32 children of every
 * bucket that differs — down to the segments; a segment that still holds many keys is narrowed
 * further on buckets computed by scanning the partition (levels 3..6), until each differing bucket
 * holds a few keys. Then both sides list `(key, object hash)` for those buckets only, the lists
 * are compared, and each differing key is merged in both directions: the remote object is merged
 * locally, and the local object is pushed when the remote lacks something it has. Cost follows the
 * number of differences (times the log of the partition size), not the data size.
 *
 * Both sides are `SyncPeer`s: `LocalPeer` serves one replica's data directly (the initiator's own
 * side, and the responder behind the wire), `RemotePeer` (protocol.ts) speaks to another node. The
 * algorithm is the same whichever side is which, and tests run it on in-memory data.
 */
import { equalBytes } from '../replica/replica.js';
import { decodeObject, encodeObject, prune, sync } from '../versioning/index.js';
import { itemHash, itemHashOf, keyHash32, objectHash } from './hash.js';
import {
  BucketAccumulator,
  type BucketHashes,
  bucketOf,
  childOf,
  differingHashes,
  FANOUT,
  LEAF_LEVEL,
  MAX_LEVEL,
  type MerkleTree,
} from './tree.js';

/** `[key, 8-byte object hash]`, as listed for comparison. */
export type KeyHash = [Uint8Array, Uint8Array];

export interface KeyList {
  /** Ascending key order. */
  entries: KeyHash[];
  /** True when the list stopped at a key or byte limit: keys after the last one were not listed. */
  truncated: boolean;
}

/** One replica's side of an exchange. */
export interface SyncPeer {
  /** Hashes and counts of the children of `parents` at `level` (level 0: the root). */
  hashes(partition: number, level: number, parents: number[]): Promise<BucketHashes>;
  /**
   * `(key, object hash)` of the keys in `buckets` (at `level`) that sort after `after` (null: from
   * the start), ascending, within the limits; at least one key when there is one.
   */
  keys(
    partition: number,
    level: number,
    buckets: number[],
    after: Uint8Array | null,
    maxKeys: number,
    maxBytes: number,
  ): Promise<KeyList>;
  /**
   * The objects of `keys` (null: absent), for a prefix of `keys` at least one long: the reply stops
   * once it holds `maxBytes`.
   */
  fetch(partition: number, keys: Uint8Array[], maxBytes: number): Promise<(Uint8Array | null)[]>;
  /** Merges each object into the replica. */
  store(partition: number, entries: [Uint8Array, Uint8Array][]): Promise<void>;
}

/** What a `LocalPeer` needs from one partition of one replica. */
export interface PartitionData {
  /** The partition's tree, built and current. */
  tree(): Promise<MerkleTree>;
  /** Every `[key, object bytes]` of the partition (after `after`, if given), ascending key order. */
  scan(after?: Uint8Array): AsyncIterable<[Uint8Array, Uint8Array]>;
  get(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]>;
  merge(key: Uint8Array, object: Uint8Array): Promise<void>;
  /** Called when a scan disagrees with the tree although nothing changed meanwhile: rebuild it. */
  distrust(): void;
  /** Counts changes applied to the tree; equal before and after a scan means nothing changed. */
  changes(): number;
}

/** Serves a replica's own data. */
export class LocalPeer implements SyncPeer {
  constructor(private readonly data: (partition: number) => PartitionData) {}

  async hashes(partition: number, level: number, parents: number[]): Promise<BucketHashes> {
    const d = this.data(partition);
    const tree = await d.tree();
    if (level <= LEAF_LEVEL) return tree.children(level, parents);
    const acc = new BucketAccumulator(level, parents);
    const before = d.changes();
    for await (const [key, object] of d.scan()) {
      const kh = keyHash32(key);
      if (acc.wants(kh)) acc.add(kh, itemHashOf(key, object));
    }
    if (level === LEAF_LEVEL + 1 && d.changes() === before) {
      // The scan saw each parent segment whole: check the stored tree against it.
      for (const segment of new Set(parents)) {
        if (acc.parentHash(segment) !== tree.hash(LEAF_LEVEL, segment)) {
          d.distrust();
          break;
        }
      }
    }
    return acc.result();
  }

  async keys(
    partition: number,
    level: number,
    buckets: number[],
    after: Uint8Array | null,
    maxKeys: number,
    maxBytes: number,
  ): Promise<KeyList> {
    const d = this.data(partition);
    const wanted = new Set(buckets);
    const entries: KeyHash[] = [];
    let bytes = 0;
    let truncated = false;
    // A complete list of whole segments must XOR to their stored leaves: check the tree with it.
    const check = level === LEAF_LEVEL && after === null ? new Map<number, bigint>() : undefined;
    const tree = check ? await d.tree() : undefined;
    const before = d.changes();
    for await (const [key, object] of after === null ? d.scan() : d.scan(after)) {
      if (after !== null && compareBytes(key, after) <= 0) continue;
      const kh = keyHash32(key);
      if (!wanted.has(bucketOf(kh, level))) continue;
      if (entries.length >= maxKeys || (entries.length > 0 && bytes + key.byteLength + 16 > maxBytes)) {
        truncated = true;
        break;
      }
      const h = objectHash(object);
      entries.push([key, h]);
      bytes += key.byteLength + 16;
      if (check) {
        const s = bucketOf(kh, LEAF_LEVEL);
        check.set(s, (check.get(s) ?? 0n) ^ itemHash(key, h));
      }
    }
    if (check && tree && !truncated && d.changes() === before) {
      for (const s of wanted) {
        if ((check.get(s) ?? 0n) !== tree.hash(LEAF_LEVEL, s)) {
          d.distrust();
          break;
        }
      }
    }
    return { entries, truncated };
  }

  async fetch(partition: number, keys: Uint8Array[], maxBytes: number): Promise<(Uint8Array | null)[]> {
    const found = await this.data(partition).get(keys);
    const out: (Uint8Array | null)[] = [];
    let bytes = 0;
    for (const o of found) {
      if (out.length > 0 && o && bytes + o.byteLength > maxBytes) break;
      out.push(o ?? null);
      bytes += o?.byteLength ?? 0;
    }
    return out;
  }

  async store(partition: number, entries: [Uint8Array, Uint8Array][]): Promise<void> {
    const d = this.data(partition);
    await Promise.all(entries.map(([key, object]) => d.merge(key, object)));
  }
}

export interface ExchangeLimits {
  /** A differing bucket with at most this many keys (on either side) is listed, not narrowed. */
  listMaxKeys: number;
  /** Segments narrowed further per exchange (each costs 32 hashes per side). */
  maxNarrow: number;
  /** Keys per list reply. */
  maxListKeys: number;
  /** Bytes per list reply. */
  maxListBytes: number;
  /** Differing keys repaired per exchange; the rest waits for the next one. */
  maxRepairKeys: number;
  /** Keys per fetch / store message. */
  batchKeys: number;
  /** Bytes of objects per fetch reply / store message (a larger object travels alone). */
  batchBytes: number;
  /** The replica's maxClockEntries: merged objects are pruned as the replica would. */
  maxClockEntries: number;
}

export const DEFAULT_EXCHANGE_LIMITS: ExchangeLimits = {
  listMaxKeys: 8,
  maxNarrow: 64,
  maxListKeys: 4096,
  maxListBytes: 1024 * 1024,
  maxRepairKeys: 4096,
  batchKeys: 256,
  batchBytes: 1024 * 1024,
  maxClockEntries: 50,
};

export interface ExchangeResult {
  /** Keys the comparison covered: the larger side's key count. */
  keysCompared: number;
  /** Keys found different (listed on one side only, or with different object hashes). */
  keysDiffering: number;
  /** Keys changed on either side by the repair. */
  keysRepaired: number;
  /** Keys whose remote object changed the local replica. */
  pulled: number;
  /** Keys whose local object was pushed to the remote. */
  pushed: number;
  /** False when a limit cut the comparison short: more differences may remain for next time. */
  complete: boolean;
}

/** Compares, then repairs in both directions. */
export async function exchange(
  partition: number,
  local: SyncPeer,
  remote: SyncPeer,
  limits: ExchangeLimits = DEFAULT_EXCHANGE_LIMITS,
): Promise<ExchangeResult> {
  const found = await findDifferences(partition, local, remote, limits);
  const repaired = await repair(partition, found.keys, local, remote, limits);
  return {
    keysCompared: found.keysCompared,
    keysDiffering: found.keys.length,
    ...repaired,
    complete: found.complete,
  };
}

/** The keys that differ between the two replicas of `partition` (at most `maxRepairKeys`). */
export async function findDifferences(
  partition: number,
  local: SyncPeer,
  remote: SyncPeer,
  limits: ExchangeLimits = DEFAULT_EXCHANGE_LIMITS,
): Promise<{ keys: Uint8Array[]; keysCompared: number; complete: boolean }> {
  const [l0, r0] = await Promise.all([local.hashes(partition, 0, []), remote.hashes(partition, 0, [])]);
  const keysCompared = Math.max(l0.counts[0] ?? 0, r0.counts[0] ?? 0);
  if (differingHashes(l0.hashes, r0.hashes).length === 0) return { keys: [], keysCompared, complete: true };

  let complete = true;
  const toList: { level: number; buckets: number[] }[] = [];
  let parents = [0];
  for (let level = 1; level <= MAX_LEVEL && parents.length > 0; level++) {
    if (level > LEAF_LEVEL && parents.length > limits.maxNarrow) {
      // The others still differ next time; bounded work per exchange.
      parents = parents.slice(0, limits.maxNarrow);
      complete = false;
    }
    const [lh, rh] = await Promise.all([
      local.hashes(partition, level, parents),
      remote.hashes(partition, level, parents),
    ]);
    checkShape(rh, parents.length * FANOUT);
    const next: number[] = [];
    const list: number[] = [];
    for (const i of differingHashes(lh.hashes, rh.hashes)) {
      const bucket = childOf(parents[Math.floor(i / FANOUT)]!, level, i % FANOUT);
      const lc = lh.counts[i] ?? 0;
      const rc = rh.counts[i] ?? 0;
      // Narrow a bucket only while it is big on both sides: when one side has nothing there, or
      // few keys, every key in it is listed anyway.
      const small = Math.max(lc, rc) <= limits.listMaxKeys || Math.min(lc, rc) === 0;
      if (level >= LEAF_LEVEL && (small || level === MAX_LEVEL)) list.push(bucket);
      else next.push(bucket);
    }
    if (list.length > 0) toList.push({ level, buckets: list });
    parents = next;
  }

  const keys: Uint8Array[] = [];
  for (const { level, buckets } of toList) {
    // Page through the lists: a page ends where the shorter of the two truncated lists ends.
    let after: Uint8Array | null = null;
    for (;;) {
      if (keys.length >= limits.maxRepairKeys) {
        complete = false;
        break;
      }
      const [ll, rl] = await Promise.all([
        local.keys(partition, level, buckets, after, limits.maxListKeys, limits.maxListBytes),
        remote.keys(partition, level, buckets, after, limits.maxListKeys, limits.maxListBytes),
      ]);
      for (const key of diffLists(ll, rl)) {
        if (keys.length >= limits.maxRepairKeys) {
          complete = false;
          break;
        }
        keys.push(key);
      }
      const cutoff = listCutoff(ll, rl);
      if (cutoff === undefined) break;
      after = cutoff;
    }
  }
  return { keys, keysCompared, complete };
}

/**
 * Keys listed on one side only, or with different hashes. A truncated list says nothing about
 * keys past its last one, so the comparison stops there (the rest is compared next time).
 */
export function diffLists(a: KeyList, b: KeyList): Uint8Array[] {
  const cutoff = listCutoff(a, b);
  const within = (k: Uint8Array) => cutoff === undefined || compareBytes(k, cutoff) <= 0;
  const out: Uint8Array[] = [];
  let i = 0;
  let j = 0;
  const ae = a.entries;
  const be = b.entries;
  while (i < ae.length || j < be.length) {
    const x = ae[i];
    const y = be[j];
    const c = x === undefined ? 1 : y === undefined ? -1 : compareBytes(x[0], y[0]);
    const key = c <= 0 ? x![0] : y![0];
    if (!within(key)) break;
    if (c < 0) i++;
    else if (c > 0) j++;
    else {
      i++;
      j++;
      if (equalBytes(x![1], y![1])) continue;
    }
    out.push(key);
  }
  return out;
}

/** The last key both lists cover, when either was truncated (undefined: both complete). */
export function listCutoff(a: KeyList, b: KeyList): Uint8Array | undefined {
  let cutoff: Uint8Array | undefined;
  for (const l of [a, b]) {
    if (!l.truncated) continue;
    const last = l.entries[l.entries.length - 1];
    if (!last) throw new RangeError('a truncated key list must hold at least one key');
    if (cutoff === undefined || compareBytes(last[0], cutoff) < 0) cutoff = last[0];
  }
  return cutoff;
}

/** Merges each key both ways: remote into local, local into remote, as needed. */
export async function repair(
  partition: number,
  keys: Uint8Array[],
  local: SyncPeer,
  remote: SyncPeer,
  limits: ExchangeLimits = DEFAULT_EXCHANGE_LIMITS,
): Promise<{ keysRepaired: number; pulled: number; pushed: number }> {
  let pulled = 0;
  let pushed = 0;
  let keysRepaired = 0;
  let pending = keys;
  while (pending.length > 0) {
    const ask = pending.slice(0, limits.batchKeys);
    const remoteObjects = await remote.fetch(partition, ask, limits.batchBytes);
    if (remoteObjects.length === 0 || remoteObjects.length > ask.length) {
      throw new RangeError('fetch reply does not match the request');
    }
    const got = ask.slice(0, remoteObjects.length);
    pending = pending.slice(got.length);
    const localObjects = await local.fetch(partition, got, Number.POSITIVE_INFINITY);
    const pulls: [Uint8Array, Uint8Array][] = [];
    const pushes: [Uint8Array, Uint8Array][] = [];
    got.forEach((key, i) => {
      const r = remoteObjects[i] ?? null;
      const l = localObjects[i] ?? null;
      let pull = false;
      let push = false;
      if (r && !l) pull = true;
      else if (l && !r) push = true;
      else if (l && r && !equalBytes(l, r)) {
        const merged = encodeObject(prune(sync(decodeObject(l), decodeObject(r)), limits.maxClockEntries));
        pull = !equalBytes(merged, l);
        push = !equalBytes(merged, r);
      }
      if (pull) pulls.push([key, r!]);
      if (push) pushes.push([key, l!]);
      if (pull || push) keysRepaired++;
    });
    if (pulls.length > 0) await local.store(partition, pulls);
    for (const chunk of chunksByBytes(pushes, limits.batchBytes)) await remote.store(partition, chunk);
    pulled += pulls.length;
    pushed += pushes.length;
  }
  return { keysRepaired, pulled, pushed };
}

function* chunksByBytes(
  entries: [Uint8Array, Uint8Array][],
  maxBytes: number,
): Generator<[Uint8Array, Uint8Array][]> {
  let chunk: [Uint8Array, Uint8Array][] = [];
  let bytes = 0;
  for (const e of entries) {
    const size = e[0].byteLength + e[1].byteLength;
    if (chunk.length > 0 && bytes + size > maxBytes) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(e);
    bytes += size;
  }
  if (chunk.length > 0) yield chunk;
}

function checkShape(h: BucketHashes, buckets: number): void {
  if (h.hashes.byteLength !== buckets * 8 || h.counts.length !== buckets) {
    throw new RangeError(`expected ${buckets} bucket hashes, got ${h.counts.length}`);
  }
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}
