/**
 * Partition transfer (Dynamo § 4.9): when the ring changes, each node streams the partitions it
 * must hand over to their new owners, in ordered batches through the same Store message (the
 * receiver merges, so a resent batch is harmless). Progress is the last acknowledged key: a
 * receiver that crashes mid-stream is retried with backoff from there, and a sender that
 * crashes starts its task again from the beginning. One task at a time, `batchKeys` keys per
 * request, so the transfer competes with foreground requests for at most one batch.
 */

import { type TransferTask, taskId } from '../membership/plan.js';
import type { Logger } from '../options.js';
import { dataRange, keyAfter } from '../replica/layout.js';
import type { Storage } from '../storage/types.js';
import type { Rpc } from '../transport/rpc.js';
import { MessageType } from '../transport/wire.js';
import type { Clock, Timer } from '../util/clock.js';

/** Keys per Store message during a transfer. */
export const TRANSFER_BATCH_KEYS = 128;
/** Retry delay after a failed batch, ms (doubling up to the max). */
const RETRY_INITIAL_MS = 200;
const RETRY_MAX_MS = 5_000;

export interface TransferDeps {
  storage: Storage;
  rpc: Rpc;
  clock: Clock;
  requestTimeoutMs: number;
  /** The failure detector's opinion: tasks for targets believed down wait, others go first. */
  isUp: (id: string) => boolean;
  onProgress: (partition: number, to: string, keysSent: number, total: number) => void;
  /** The whole partition reached its target. */
  onDone: (task: TransferTask) => void;
  onError: (error: Error, context: string) => void;
  logger: Logger;
}

interface Progress {
  /** Storage key of the last acknowledged entry (resume after it). */
  after: Uint8Array | undefined;
  sent: number;
  total: number | undefined;
}

export class PartitionTransfer {
  private queue: TransferTask[] = [];
  private readonly progress = new Map<string, Progress>();
  private running: Promise<void> | undefined;
  private retryTimer: Timer | undefined;
  private stopped = false;
  private retryMs = RETRY_INITIAL_MS;
  /** Keys sent over all tasks, for stats and benchmarks. */
  keysSent = 0;
  bytesSent = 0;

  constructor(private readonly deps: TransferDeps) {}

  /** Replaces the work list (the tasks this node must still send); starts working if idle. */
  assign(tasks: TransferTask[]): void {
    this.queue = tasks;
    const live = new Set(tasks.map(taskId));
    for (const id of this.progress.keys()) if (!live.has(id)) this.progress.delete(id);
    this.kick();
  }

  get pendingTasks(): number {
    return this.queue.length;
  }

  stop(): void {
    this.stopped = true;
    this.retryTimer?.cancel();
  }

  /** A peer came back up: its tasks need not wait for the retry backoff. */
  wake(): void {
    if (!this.retryTimer || this.stopped) return;
    this.retryTimer.cancel();
    this.retryTimer = undefined;
    this.kick();
  }

  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private kick(): void {
    if (this.running || this.stopped || this.retryTimer) return;
    this.running = this.work().finally(() => {
      this.running = undefined;
      // Tasks assigned while the last loop was finishing would otherwise wait for a new assign.
      if (this.queue.length > 0) this.kick();
    });
  }

  private async work(): Promise<void> {
    while (!this.stopped && this.queue.length > 0) {
      // Never wait on a target believed down: the first task whose target is up goes next.
      const at = this.queue.findIndex((t) => this.deps.isUp(t.target));
      if (at < 0) {
        this.retryLater();
        return;
      }
      if (at > 0) this.queue.unshift(...this.queue.splice(at, 1));
      const task = this.queue[0]!;
      try {
        await this.send(task);
        this.retryMs = RETRY_INITIAL_MS;
        if (this.queue[0] === task) this.queue.shift();
        this.deps.onDone(task);
        await this.pause();
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code !== 'DYNAMO_TIMEOUT' && code !== 'DYNAMO_TRANSPORT' && code !== 'DYNAMO_NOT_RUNNING') {
          this.deps.onError(err as Error, `transfer of partition ${task.partition} to ${task.target}`);
        }
        // Rotate so one unreachable target does not hold up the others, then back off.
        if (this.queue[0] === task) this.queue.push(this.queue.shift()!);
        this.retryLater();
        return;
      }
    }
  }

  private retryLater(): void {
    this.retryTimer = this.deps.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  /**
   * Yields to timers and I/O between batches: on an in-process network a stream would otherwise
   * run entirely in microtasks and starve foreground requests (admission control, § 6.5).
   */
  private pause(): Promise<void> {
    return new Promise<void>((resolve) => this.deps.clock.setTimeout(resolve, 0));
  }

  private async send(task: TransferTask): Promise<void> {
    const id = taskId(task);
    let p = this.progress.get(id);
    if (!p) {
      p = { after: undefined, sent: 0, total: undefined };
      this.progress.set(id, p);
    }
    const range = dataRange(task.partition);
    if (p.total === undefined) {
      let total = 0;
      for await (const _ of this.deps.storage.iterate(range)) total++;
      p.total = total;
    }
    for (;;) {
      if (this.stopped) throw Object.assign(new Error('stopped'), { code: 'DYNAMO_NOT_RUNNING' });
      const gte = p.after ? keyAfter(p.after) : range.gte;
      const entries: [Uint8Array, Uint8Array][] = [];
      let last: Uint8Array | undefined;
      let bytes = 0;
      for await (const [storageKey, value] of this.deps.storage.iterate({
        gte,
        lt: range.lt,
        limit: TRANSFER_BATCH_KEYS,
      })) {
        entries.push([storageKey.subarray(3), value]);
        bytes += storageKey.length + value.length;
        last = storageKey;
      }
      if (entries.length === 0) return;
      await this.deps.rpc.call(
        task.target,
        [MessageType.Store, task.partition, null, entries],
        this.deps.requestTimeoutMs,
      );
      p.after = last;
      p.sent += entries.length;
      this.keysSent += entries.length;
      this.bytesSent += bytes;
      this.deps.onProgress(task.partition, task.target, p.sent, Math.max(p.total, p.sent));
      if (entries.length < TRANSFER_BATCH_KEYS) return;
      await this.pause();
    }
  }
}
