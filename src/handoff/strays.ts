/**
 * Data a node holds for partitions it is no longer a replica of: a node that left or was removed
 * and comes back with its old disk, or one that was stopped while a rebalance took partitions
 * away. Nothing in it may be lost (it can be the only copy of a write), yet nothing reads it
 * there. After every start, each such key becomes a hint for each of the partition's current
 * replicas (and, during a rebalance, the ones it moves to), and only then is the data copy
 * deleted: hinted handoff delivers the hints and deletes each only once its owner acknowledged
 * it, as for any hint. A full hint store (`maxHints`) pauses the sweep until there is room.
 */
import { LimitError } from '../errors.js';
import { dataRange } from '../replica/layout.js';
import { equalBytes } from '../replica/replica.js';
import type { Storage } from '../storage/types.js';
import type { Clock, Timer } from '../util/clock.js';
import { decodeObject, type VersionedObject } from '../versioning/index.js';

/** Keys turned into hints per storage read (then the sweep yields). */
const STRAY_BATCH_KEYS = 128;

export interface StrayDataDeps {
  self: string;
  partitions: number;
  storage: Storage;
  clock: Clock;
  /** Whether this node is a replica of the partition (current ring, or the one it moves to). */
  holds(partition: number): boolean;
  /** The partition's replicas: the current ring's primaries, and the gaining ones during a rebalance. */
  owners(partition: number): readonly string[];
  /** Keeps `object` as a hint for `target` (LimitError when the hint store is full). */
  hint(target: string, partition: number, key: Uint8Array, object: VersionedObject): Promise<void>;
  /** Retry delay after a full hint store or a failure, ms. */
  retryMs: number;
  onMoved: (partition: number, keys: number) => void;
  onError: (error: Error, context: string) => void;
}

export class StrayData {
  private running: Promise<void> | undefined;
  private timer: Timer | undefined;
  private stopped = false;
  /** Keys handed to hinted handoff since start. */
  moved = 0;

  constructor(private readonly deps: StrayDataDeps) {}

  /** Sweeps every partition once (again after `retryMs` if it could not finish). */
  start(): void {
    if (this.stopped || this.running || this.timer) return;
    this.running = this.sweep()
      .then(
        (done) => {
          if (!done && !this.stopped) {
            this.timer = this.deps.clock.setTimeout(() => {
              this.timer = undefined;
              this.start();
            }, this.deps.retryMs);
          }
        },
        (err: unknown) =>
          this.deps.onError(err as Error, 'handing over data of partitions this node no longer holds'),
      )
      .finally(() => {
        this.running = undefined;
      });
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** True when every partition this node does not hold is empty here. */
  private async sweep(): Promise<boolean> {
    const { storage, partitions } = this.deps;
    partition: for (let k = 0; k < partitions; k++) {
      for (;;) {
        if (this.stopped) return true;
        if (this.deps.holds(k)) break;
        const entries: [Uint8Array, Uint8Array][] = [];
        for await (const entry of storage.iterate({ ...dataRange(k), limit: STRAY_BATCH_KEYS })) {
          entries.push(entry);
        }
        if (entries.length === 0) break;
        const owners = this.deps.owners(k).filter((id) => id !== this.deps.self);
        if (owners.length === 0) return false;
        try {
          for (const [storageKey, value] of entries) {
            let object: VersionedObject;
            try {
              object = decodeObject(value);
            } catch (err) {
              // Kept, never deleted: a corrupt copy is reported, not silently dropped.
              this.deps.onError(
                err as Error,
                `stray data: undecodable object in partition ${k}, left in place`,
              );
              continue partition;
            }
            const key = storageKey.subarray(3);
            for (const owner of owners) await this.deps.hint(owner, k, key, object);
          }
        } catch (err) {
          if (!(err instanceof LimitError)) throw err;
          return false;
        }
        // A rebalance may have given the partition back meanwhile: then the data stays (it is a
        // replica's again), and the hints only deliver what the owners will also get anyway.
        if (this.deps.holds(k) || this.stopped) break;
        const now = await storage.getMany(entries.map(([key]) => key));
        const unchanged = entries.filter(
          ([, value], i) => now[i] !== undefined && equalBytes(now[i]!, value),
        );
        await storage.batch(unchanged.map(([key]) => ({ type: 'del' as const, key })));
        this.moved += unchanged.length;
        this.deps.onMoved(k, unchanged.length);
        // Yield between batches: this competes with foreground requests.
        await new Promise<void>((resolve) => this.deps.clock.setTimeout(resolve, 0));
      }
    }
    return true;
  }
}
