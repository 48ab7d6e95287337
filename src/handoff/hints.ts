/**
 * Hinted handoff (Dynamo § 4.6). A fallback node keeps writes meant for a down owner apart from
 * its own data, under `hint ‖ target ‖ partition ‖ key` (so repeated writes to one key merge
 * into one hint, and neither anti-entropy nor transfer ever mixes them in). Hints are durable,
 * bounded by `maxHints`, and replayed to the owner in small batches once it is reachable; a hint
 * is deleted only after the owner acknowledged it, and only if it did not change meanwhile.
 * Delivery runs one batch at a time (admission control: background work never competes with
 * foreground requests for more than one batch of storage reads and one request).
 */
import { LimitError } from '../errors.js';
import type { Logger } from '../options.js';
import { allHintsRange, hintRangeFor, keyAfter, parseHintKey } from '../replica/layout.js';
import type { Replica } from '../replica/replica.js';
import type { Storage } from '../storage/types.js';
import type { Rpc } from '../transport/rpc.js';
import { MessageType } from '../transport/wire.js';
import type { Clock, Timer } from '../util/clock.js';
import { decodeObject, type VersionedObject } from '../versioning/index.js';

/** Hints sent to an owner per request. */
export const HINT_BATCH_KEYS = 64;

export interface HintedHandoffDeps {
  storage: Storage;
  replica: Replica;
  rpc: Rpc;
  clock: Clock;
  isUp: (id: string) => boolean;
  isMember: (id: string) => boolean;
  intervalMs: number;
  maxHints: number;
  requestTimeoutMs: number;
  maxObjectBytes: number;
  onDelivered: (target: string, count: number) => void;
  onError: (error: Error, context: string) => void;
  logger: Logger;
}

export class HintedHandoff {
  /** Hints held per target; the sum is bounded by maxHints. */
  private readonly pending = new Map<string, number>();
  private total = 0;
  private storedCount = 0;
  private deliveredCount = 0;
  private refusedCount = 0;
  private timer: Timer | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private again = false;

  constructor(private readonly deps: HintedHandoffDeps) {
    deps.replica.hints = {
      admit: (target) => {
        if (this.total < this.deps.maxHints) return;
        this.refusedCount++;
        this.deps.logger.warn({ target, maxHints: this.deps.maxHints }, 'hint store full: hint refused');
        throw new LimitError('maxHints', this.total + 1, this.deps.maxHints, 'hint store full');
      },
      created: (target) => {
        this.pending.set(target, (this.pending.get(target) ?? 0) + 1);
        this.total++;
        this.storedCount++;
      },
      deleted: (target) => {
        const left = (this.pending.get(target) ?? 1) - 1;
        if (left > 0) this.pending.set(target, left);
        else this.pending.delete(target);
        this.total--;
      },
    };
  }

  /** Counts the hints left in storage by an earlier run (hints survive restarts). */
  async open(): Promise<void> {
    this.pending.clear();
    this.total = 0;
    for await (const [key] of this.deps.storage.iterate(allHintsRange)) {
      const { target } = parseHintKey(key);
      this.pending.set(target, (this.pending.get(target) ?? 0) + 1);
      this.total++;
    }
  }

  start(): void {
    if (this.stopped) return;
    this.timer = this.deps.clock.setTimeout(() => {
      this.timer = undefined;
      this.deliverAll();
      this.start();
    }, this.deps.intervalMs);
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  /** Resolves when no delivery is running. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  stats(): { stored: number; delivered: number; refused: number; pending: number } {
    return {
      stored: this.storedCount,
      delivered: this.deliveredCount,
      refused: this.refusedCount,
      pending: this.total,
    };
  }

  /** Keeps `object` for `target`. Refused with LimitError (nothing written) when the store is full. */
  async store(target: string, partition: number, key: Uint8Array, object: VersionedObject): Promise<void> {
    await this.deps.replica.merge(partition, key, object, target);
  }

  /** The owner came back: deliver now rather than at the next interval. */
  deliverSoon(target: string): void {
    if (!this.stopped && (this.pending.get(target) ?? 0) > 0) this.deliverAll();
  }

  /** One delivery pass over every reachable target; a pass requested while one runs runs after it. */
  deliverAll(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch((err) => this.deps.onError(err as Error, 'hint delivery'))
      .finally(() => {
        this.running = undefined;
        if (this.again && !this.stopped) {
          this.again = false;
          this.deliverAll();
        }
      });
  }

  private async pass(): Promise<void> {
    for (const [target, count] of [...this.pending]) {
      if (this.stopped) return;
      if (count === 0 || !this.deps.isUp(target) || !this.deps.isMember(target)) continue;
      try {
        await this.deliverTo(target);
      } catch (err) {
        // Unreachable owners are the failure detector's business; anything else is reported.
        const code = (err as { code?: string }).code;
        if (code !== 'DYNAMO_TIMEOUT' && code !== 'DYNAMO_TRANSPORT')
          this.deps.onError(err as Error, `hint delivery to ${target}`);
      }
    }
  }

  private async deliverTo(target: string): Promise<void> {
    const range = hintRangeFor(target);
    let gte = range.gte;
    for (;;) {
      if (this.stopped || !this.deps.isUp(target)) return;
      const batch: { storageKey: Uint8Array; bytes: Uint8Array; partition: number; key: Uint8Array }[] = [];
      for await (const [storageKey, bytes] of this.deps.storage.iterate({
        gte,
        lt: range.lt,
        limit: HINT_BATCH_KEYS,
      })) {
        const { partition, key } = parseHintKey(storageKey);
        batch.push({ storageKey, bytes, partition, key });
      }
      if (batch.length === 0) return;
      // One Store message per partition: the owner merges each object into its data.
      const byPartition = new Map<number, [Uint8Array, Uint8Array][]>();
      for (const h of batch) {
        decodeObject(h.bytes); // a corrupt hint fails here, before it is sent anywhere
        const group = byPartition.get(h.partition) ?? [];
        group.push([h.key, h.bytes]);
        byPartition.set(h.partition, group);
      }
      // The batch's messages go out together (one round trip per batch, not one per partition).
      await Promise.all(
        [...byPartition].map(([partition, entries]) =>
          this.deps.rpc.call(
            target,
            [MessageType.Store, partition, null, entries],
            this.deps.requestTimeoutMs,
          ),
        ),
      );
      const deleted = await Promise.all(
        batch.map((h) => this.deps.replica.deleteHintIfUnchanged(target, h.storageKey, h.bytes)),
      );
      const delivered = deleted.filter(Boolean).length;
      this.deliveredCount += delivered;
      if (delivered > 0) this.deps.onDelivered(target, delivered);
      // Continue after the last key of this batch (a hint that changed meanwhile stays for the next pass).
      const last = batch[batch.length - 1]!.storageKey;
      gte = keyAfter(last);
      if (batch.length < HINT_BATCH_KEYS) return;
      // Yield to timers and I/O between batches (admission control: foreground first).
      await new Promise<void>((resolve) => this.deps.clock.setTimeout(resolve, 0));
    }
  }
}
