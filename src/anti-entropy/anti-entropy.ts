/**
 * Anti-entropy (Dynamo § 4.7): the background task that keeps the replicas of every partition
 * identical, whatever hinted handoff and read repair missed (a replica down past its hints, a
 * wiped disk, a lost message).
 *
 * Trees. One `MerkleTree` per partition this node replicates, built lazily from storage the first
 * time it is needed (after a start, too) and then kept current by `Replica.onChange`: each local
 * change updates its segment by `old ^ new`, no rescan. A tree a scan contradicts while nothing
 * changed (possible only if a write raced the build) is rebuilt. At most `MAX_TREES` trees are
 * kept (least recently used go first, to be rebuilt when needed): ≈ 12.7 KB each, so ≤ 13 MB.
 *
 * Exchange. Every `intervalMs` (± 25 % jitter, so nodes do not synchronise), one pass over the
 * partitions this node is a primary of: for each, one other primary that is up (round robin), and
 * one `exchange` (exchange.ts) that repairs both sides. One partition at a time per node; keys,
 * messages and bytes per exchange are bounded (`ExchangeLimits`).
 *
 * Admission control (paper § 6.5): background work yields to foreground requests. Before each
 * partition the pass checks the node's load, and stops (resuming from that partition after a
 * backoff of 1 s doubling up to `intervalMs`) when either
 *   - more than `BUSY_IN_FLIGHT` requests (client operations and requests served for peers) are
 *     in flight on this node, or
 *   - the event loop is late: a zero-delay timer set between two partitions (or the pass's own
 *     timer) fired more than `BUSY_LAG_MS` after it was due — the node's CPU is saturated, and
 *     foreground latency with it.
 *
 * Tombstones. Deletes are tombstones and take part like any object; so do expired values, which
 * behave as tombstones from their expiry on. A key is purged (physically deleted) only when every
 * sibling is a tombstone or an expired value, the newest tombstone and the latest expiry are older
 * than `tombstoneGraceMs`, and every primary of the partition holds a byte-identical object: the first
 * primary checks the others (`AePurge` phase 0), then asks each to purge (phase 1), then purges
 * its own copy. Each replica purges under the key's lock, and only if its object is still that
 * object and past the grace period by its own clock. A replica that missed the purge keeps its
 * tombstone and anti-entropy spreads it again, to be purged again later: a deleted value can
 * never come back this way. (Hints held by fallbacks are not checked: the grace period must
 * outlast any outage a hint can wait through.) A stale tombstone cannot hide a newer write either:
 * the coordinator floors every new dot's counter above its clock and above every counter it issued
 * since it started (replica.ts `coordinate`), so a write after a purge never reuses a dot the stale
 * tombstone's context covers: the two stay concurrent siblings, and reads ignore the tombstone.
 */
import type { Logger } from '../options.js';
import { dataKey, dataRange } from '../replica/layout.js';
import { equalBytes, type Replica } from '../replica/replica.js';
import { PreferenceTable } from '../ring/index.js';
import type { Storage } from '../storage/types.js';
import type { Rpc } from '../transport/rpc.js';
import { asInt, MessageType, WireError } from '../transport/wire.js';
import type { Clock, Timer } from '../util/clock.js';
import type { Random } from '../util/random.js';
import { deathTime, decodeObject } from '../versioning/index.js';
import {
  DEFAULT_EXCHANGE_LIMITS,
  type ExchangeLimits,
  exchange,
  type KeyHash,
  LocalPeer,
  type PartitionData,
} from './exchange.js';
import { itemHashOf, keyHash32, objectHash } from './hash.js';
import { keyHashList, RemotePeer, serveSync, type WireLimits } from './protocol.js';
import { MerkleTree } from './tree.js';

/** Trees kept in memory at most (≈ 12.7 KB each). */
export const MAX_TREES = 1024;
/** Foreground requests in flight above which a pass stops (admission control). */
export const BUSY_IN_FLIGHT = 64;
/** Event-loop lateness above which a pass stops (admission control), ms. */
export const BUSY_LAG_MS = 100;
/** Tombstones checked and purged per partition per exchange. */
export const PURGE_BATCH = 256;
/** Anti-entropy requests may scan a whole partition on the peer: this many request timeouts each. */
const TIMEOUT_FACTOR = 10;

export interface SyncCompleteEvent {
  partition: number;
  peer: string;
  keysCompared: number;
  keysRepaired: number;
  bytes: number;
}

/** Anti-entropy totals since the node started (`node.stats().antiEntropy`). */
export interface AntiEntropyStats {
  /** Exchanges completed. */
  exchanges: number;
  /** Exchanges failed (peer unreachable, timeout, error). */
  failed: number;
  /** Keys compared in differing segments. */
  keysCompared: number;
  /** Keys whose objects were merged because replicas differed. */
  keysRepaired: number;
  /** Bytes sent and received by exchanges this node started. */
  bytes: number;
  /** Tombstones this node purged from its storage. */
  purged: number;
  /** Passes stopped early by admission control. */
  deferred: number;
  /** Trees built from storage (first use, or rebuilt after a scan contradicted one). */
  treesBuilt: number;
  /** Trees held now. */
  trees: number;
}

export interface AntiEntropyDeps {
  self: string;
  storage: Storage;
  replica: Replica;
  rpc: Rpc;
  clock: Clock;
  random: Random;
  partitions: number;
  n: number;
  owners: () => readonly string[];
  isUp: (id: string) => boolean;
  intervalMs: number;
  enabled: boolean;
  tombstoneGraceMs: number;
  requestTimeoutMs: number;
  maxKeyBytes: number;
  maxObjectBytes: number;
  maxClockEntries: number;
  /** Requests in flight on the node (admission control). */
  inFlight: () => number;
  onSync: (e: SyncCompleteEvent) => void;
  onError: (error: Error, context: string) => void;
  logger: Logger;
  limits?: Partial<ExchangeLimits>;
}

interface TreeState {
  tree: MerkleTree;
  /** The build in progress (deltas already go to `tree`). */
  building: Promise<void> | undefined;
  built: boolean;
  /** A scan contradicted the tree: rebuild before the next use. */
  stale: boolean;
  /** Changes applied since the tree was created. */
  changes: number;
  /**
   * Earliest time a tombstone here may become purgeable (Infinity: none known), so that the
   * candidate scan runs only when it can find something. A lower bound: writes only lower it.
   */
  purgeAt: number;
}

export class AntiEntropy {
  private readonly trees = new Map<number, TreeState>();
  private readonly local: LocalPeer;
  private readonly limits: ExchangeLimits;
  private readonly wire: WireLimits;
  private readonly roundRobin = new Map<number, number>();
  private table: { owners: readonly string[]; table: PreferenceTable } | undefined;
  private scanTail: Promise<void> = Promise.resolve();
  private timer: Timer | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private cursor = 0;
  private lagMs = 0;
  private backoffMs = 0;
  /** Ends the pass's yield between two partitions at once (on stop). */
  private wake: (() => void) | undefined;
  private readonly totals: Omit<AntiEntropyStats, 'trees'> = {
    exchanges: 0,
    failed: 0,
    keysCompared: 0,
    keysRepaired: 0,
    bytes: 0,
    purged: 0,
    deferred: 0,
    treesBuilt: 0,
  };

  constructor(private readonly deps: AntiEntropyDeps) {
    this.limits = { ...DEFAULT_EXCHANGE_LIMITS, maxClockEntries: deps.maxClockEntries, ...deps.limits };
    this.wire = {
      partitions: deps.partitions,
      maxKeyBytes: deps.maxKeyBytes,
      maxObjectBytes: deps.maxObjectBytes,
    };
    this.local = new LocalPeer((p) => this.data(p));
    deps.replica.onChange((partition, key, before, after) => this.changed(partition, key, before, after));
  }

  start(): void {
    if (!this.deps.enabled || this.stopped) return;
    this.schedule(this.jittered());
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.wake?.();
  }

  /** Resolves when no pass is running. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  stats(): AntiEntropyStats {
    return { ...this.totals, trees: this.trees.size };
  }

  /** Serves a peer's anti-entropy request (AeHashes, AeKeys, AeFetch, AePurge). */
  async handle(message: unknown[]): Promise<unknown[]> {
    if (message[0] !== MessageType.AePurge) return serveSync(this.local, message, this.wire);
    const partition = asInt(message[1], 'partition', 0, this.deps.partitions - 1);
    const phase = asInt(message[2], 'phase', 0, 1);
    const entries = keyHashList(message[3], this.deps.maxKeyBytes);
    if (phase === 0) return [await this.holdsPurgeable(partition, entries)];
    return [await Promise.all(entries.map(([key, hash]) => this.purgeLocal(partition, key, hash)))];
  }

  // --- scheduling ----------------------------------------------------------------------------

  private jittered(): number {
    return Math.round(this.deps.intervalMs * (0.75 + 0.5 * this.deps.random.next()));
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    const due = this.deps.clock.now() + delayMs;
    this.timer = this.deps.clock.setTimeout(() => {
      this.timer = undefined;
      this.lagMs = this.deps.clock.now() - due;
      this.run();
    }, delayMs);
  }

  private run(): void {
    if (this.running || this.stopped) return;
    this.running = this.pass()
      .then(
        (outcome) => {
          if (outcome === 'busy') {
            this.totals.deferred++;
            this.backoffMs = Math.min(
              this.deps.intervalMs,
              this.backoffMs === 0 ? Math.min(1000, this.deps.intervalMs) : this.backoffMs * 2,
            );
            this.schedule(this.backoffMs);
          } else {
            this.backoffMs = 0;
            this.schedule(this.jittered());
          }
        },
        (err) => {
          this.deps.onError(err as Error, 'anti-entropy pass');
          this.schedule(this.jittered());
        },
      )
      .finally(() => {
        this.running = undefined;
      });
  }

  private busy(): boolean {
    return this.deps.inFlight() > BUSY_IN_FLIGHT || this.lagMs > BUSY_LAG_MS;
  }

  /** One pass over this node's primary partitions, from where the last busy pass stopped. */
  private async pass(): Promise<'done' | 'busy'> {
    const table = this.preferenceTable();
    if (!table) return 'done';
    const mine: number[] = [];
    for (let p = 0; p < this.deps.partitions; p++) {
      if (table.primaries(p).includes(this.deps.self)) mine.push(p);
    }
    // Trees of partitions this node no longer replicates go (memory stays bounded by what it holds).
    const keep = new Set(mine);
    for (const [p, state] of this.trees) if (!keep.has(p) && !state.building) this.trees.delete(p);
    for (const p of mine) {
      if (p < this.cursor) continue;
      if (this.stopped) return 'done';
      if (this.busy()) {
        this.cursor = p;
        return 'busy';
      }
      await this.exchangePartition(p, table.primaries(p));
      if (this.stopped) return 'done';
      // Yield to foreground work between partitions, and measure how late the event loop is.
      const due = this.deps.clock.now();
      await new Promise<void>((resolve) => {
        const timer = this.deps.clock.setTimeout(resolve, 0);
        // stop() must not wait for a clock that may never move again (a stopped simulation).
        this.wake = () => {
          timer.cancel();
          resolve();
        };
      });
      this.wake = undefined;
      this.lagMs = this.deps.clock.now() - due;
    }
    this.cursor = 0;
    return 'done';
  }

  private preferenceTable(): PreferenceTable | undefined {
    const owners = this.deps.owners();
    if (owners.length === 0) return undefined;
    if (this.table?.owners !== owners)
      this.table = { owners, table: new PreferenceTable(owners, this.deps.n) };
    return this.table.table;
  }

  private async exchangePartition(partition: number, primaries: readonly string[]): Promise<void> {
    const peers = primaries.filter((id) => id !== this.deps.self && this.deps.isUp(id));
    if (peers.length === 0) return;
    const turn = this.roundRobin.get(partition) ?? this.deps.random.int(peers.length);
    this.roundRobin.set(partition, turn + 1);
    const peer = peers[turn % peers.length]!;
    const remote = this.remote(peer);
    try {
      const result = await exchange(partition, this.local, remote, this.limits);
      this.totals.exchanges++;
      this.totals.keysCompared += result.keysCompared;
      this.totals.keysRepaired += result.keysRepaired;
      this.totals.bytes += remote.bytes;
      if (result.keysRepaired > 0) {
        this.deps.logger.debug({ partition, peer, ...result }, 'anti-entropy repaired keys');
      }
      this.deps.onSync({
        partition,
        peer,
        keysCompared: result.keysCompared,
        keysRepaired: result.keysRepaired,
        bytes: remote.bytes,
      });
      // The first primary proposes purges (when all replicas exist and are up, it is up too).
      if (
        primaries[0] === this.deps.self &&
        primaries.every((id) => id === this.deps.self || this.deps.isUp(id))
      ) {
        const state = this.trees.get(partition);
        if (state?.built && this.deps.clock.now() >= state.purgeAt) {
          await this.proposePurge(partition, primaries, state);
        }
      }
    } catch (err) {
      this.totals.failed++;
      this.totals.bytes += remote.bytes;
      // Unreachable peers are the failure detector's business; anything else is reported.
      const code = (err as { code?: string }).code;
      if (
        this.stopped ||
        code === 'DYNAMO_TIMEOUT' ||
        code === 'DYNAMO_TRANSPORT' ||
        code === 'DYNAMO_NOT_RUNNING'
      )
        return;
      this.deps.onError(err as Error, `anti-entropy of partition ${partition} with ${peer}`);
    }
  }

  private remote(peer: string): RemotePeer {
    const timeoutMs = this.deps.requestTimeoutMs * TIMEOUT_FACTOR;
    return new RemotePeer((message) => this.deps.rpc.call(peer, message, timeoutMs), this.wire);
  }

  // --- trees ---------------------------------------------------------------------------------

  private changed(
    partition: number,
    key: Uint8Array,
    before: Uint8Array | undefined,
    after: Uint8Array,
  ): void {
    const state = this.trees.get(partition);
    if (!state) return; // built from storage when first needed
    state.tree.update(keyHash32(key), before && itemHashOf(key, before), itemHashOf(key, after));
    state.changes++;
    this.notePurgeTime(state, after);
  }

  /** The partition's tree, built (or rebuilt) from storage first if needed. */
  private async treeFor(partition: number): Promise<MerkleTree> {
    for (;;) {
      let state = this.trees.get(partition);
      if (state?.building) {
        await state.building;
        continue;
      }
      if (state?.built && !state.stale) {
        // Most recently used last: eviction takes the first.
        this.trees.delete(partition);
        this.trees.set(partition, state);
        return state.tree;
      }
      state = {
        tree: new MerkleTree(),
        building: undefined,
        built: false,
        stale: false,
        changes: 0,
        purgeAt: Number.POSITIVE_INFINITY,
      };
      this.trees.delete(partition);
      this.trees.set(partition, state);
      this.evict();
      const s = state;
      s.building = this.build(partition, s).finally(() => {
        s.building = undefined;
      });
      await s.building;
      if (this.trees.get(partition) === s) return s.tree;
    }
  }

  /**
   * Fills a new tree from a scan. Changes during the scan already go to the tree as deltas, which
   * compose with what the scan saw; see `distrust` for the one race that does not.
   */
  private async build(partition: number, state: TreeState): Promise<void> {
    for await (const [key, object] of this.scan(partition)) {
      state.tree.add(keyHash32(key), itemHashOf(key, object));
      this.notePurgeTime(state, object);
    }
    state.built = true;
    this.totals.treesBuilt++;
  }

  private evict(): void {
    for (const [p, state] of this.trees) {
      if (this.trees.size <= MAX_TREES) return;
      if (!state.building) this.trees.delete(p);
    }
  }

  /**
   * Every `[key, object]` of a partition. Scans run one at a time on a node (tree builds, key
   * lists, deep levels, purge candidates), bounding the background I/O and memory.
   */
  private async *scan(partition: number, after?: Uint8Array): AsyncGenerator<[Uint8Array, Uint8Array]> {
    const previous = this.scanTail;
    let release!: () => void;
    this.scanTail = new Promise<void>((resolve) => {
      release = resolve;
    });
    try {
      await previous;
      const range = dataRange(partition);
      if (after) {
        // Just past `after`: its storage key followed by a zero byte.
        const start = dataKey(partition, after);
        range.gte = new Uint8Array(start.byteLength + 1);
        range.gte.set(start);
      }
      for await (const [storageKey, object] of this.deps.storage.iterate(range)) {
        yield [storageKey.subarray(3), object];
      }
    } finally {
      release();
    }
  }

  private data(partition: number): PartitionData {
    return {
      tree: () => this.treeFor(partition),
      scan: (after) => this.scan(partition, after),
      get: (keys) => this.deps.storage.getMany(keys.map((k) => dataKey(partition, k))),
      merge: async (key, object) => {
        await this.deps.replica.merge(partition, key, decodeObject(object), null);
      },
      distrust: () => {
        const state = this.trees.get(partition);
        if (state?.built) {
          state.stale = true;
          this.deps.logger.warn({ partition }, 'anti-entropy tree disagreed with storage: rebuilding');
        }
      },
      changes: () => this.trees.get(partition)?.changes ?? 0,
    };
  }

  // --- tombstone purge -----------------------------------------------------------------------

  private notePurgeTime(state: TreeState, object: Uint8Array): void {
    const t = deathTimeOf(object);
    if (t !== undefined) state.purgeAt = Math.min(state.purgeAt, t + this.deps.tombstoneGraceMs);
  }

  private purgeable(object: Uint8Array, now: number): boolean {
    const t = deathTimeOf(object);
    return t !== undefined && t <= now - this.deps.tombstoneGraceMs;
  }

  private async proposePurge(
    partition: number,
    primaries: readonly string[],
    state: TreeState,
  ): Promise<void> {
    const now = this.deps.clock.now();
    const grace = this.deps.tombstoneGraceMs;
    const candidates: KeyHash[] = [];
    let next = Number.POSITIVE_INFINITY;
    // Writes during the scan lower purgeAt again through notePurgeTime.
    state.purgeAt = Number.POSITIVE_INFINITY;
    for await (const [key, object] of this.scan(partition)) {
      const t = deathTimeOf(object);
      if (t === undefined) continue;
      if (t > now - grace) {
        next = Math.min(next, t + grace);
        continue;
      }
      candidates.push([key.slice(), objectHash(object)]);
      if (candidates.length >= PURGE_BATCH) break;
    }
    // Candidates left (a batch cut short, or a replica not yet holding the tombstone): look again next time.
    state.purgeAt = Math.min(state.purgeAt, candidates.length > 0 ? now : next);
    if (candidates.length === 0) return;
    let agreed = candidates;
    const others = primaries.filter((id) => id !== this.deps.self);
    for (const peer of others) {
      const reply = await this.remote(peer).send([MessageType.AePurge, partition, 0, agreed]);
      const holds = reply[0];
      if (!Array.isArray(holds) || holds.length !== agreed.length)
        throw new WireError('purge reply has the wrong shape');
      agreed = agreed.filter((_, i) => holds[i] === true);
      if (agreed.length === 0) return;
    }
    // Everyone holds these exact tombstones: each replica drops its own, then this one.
    for (const peer of others) {
      await this.remote(peer)
        .send([MessageType.AePurge, partition, 1, agreed])
        .catch(() => {}); // that replica keeps its tombstone; anti-entropy spreads it back, and it is purged later
    }
    for (const [key, hash] of agreed) await this.purgeLocal(partition, key, hash);
  }

  private async holdsPurgeable(partition: number, entries: KeyHash[]): Promise<boolean[]> {
    const now = this.deps.clock.now();
    const objects = await this.deps.storage.getMany(entries.map(([key]) => dataKey(partition, key)));
    return objects.map((o, i) => !!o && equalBytes(objectHash(o), entries[i]![1]) && this.purgeable(o, now));
  }

  /** Physically deletes the key if it still holds the object with this hash, a tombstone past grace. */
  private async purgeLocal(partition: number, key: Uint8Array, hash: Uint8Array): Promise<boolean> {
    const object = await this.deps.storage.get(dataKey(partition, key));
    if (!object || !equalBytes(objectHash(object), hash) || !this.purgeable(object, this.deps.clock.now()))
      return false;
    if (!(await this.deps.replica.purgeIfUnchanged(partition, key, object))) return false;
    this.totals.purged++;
    const state = this.trees.get(partition);
    if (state) {
      // XOR deltas commute, so applying this after the lock was released is still exact.
      state.tree.remove(keyHash32(key), itemHashOf(key, object));
      state.changes++;
    }
    return true;
  }
}

/**
 * When every sibling is or will be dead — the newest tombstone's timestamp or the latest expiry
 * (-Infinity for no sibling at all) — else undefined (a value that never expires). A tombstone is
 * encoded with a msgpack nil (0xc0), an empty sibling list ends the object with 0x90, and only
 * objects of five fields (0x95) carry expiries, so objects with none of these (most live values)
 * skip the decode.
 */
function deathTimeOf(object: Uint8Array): number | undefined {
  if (object[0] !== 0x95 && object.indexOf(0xc0) < 0 && object[object.byteLength - 1] !== 0x90)
    return undefined;
  return deathTime(decodeObject(object));
}
