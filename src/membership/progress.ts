/**
 * Progress of the transfers of one rebalance, spread with gossip so any node can report how far
 * every transfer has got (the ring state itself only records finished tasks). Advisory: it rides
 * next to the state in Gossip messages, is never persisted, and is merged by keeping the larger
 * count per task, so it only ever lags. A sender that restarts a task from zero is reported at
 * its earlier high-water mark until it passes it.
 */
import { type TransferTask, taskId } from './plan.js';

export interface TaskProgress {
  keysSent: number;
  total: number | null;
}

/** Largest key count accepted from a peer. */
const MAX_COUNT = Number.MAX_SAFE_INTEGER;

export class TransferProgress {
  /** The ring version whose rebalance the entries describe; entries of other rings are dropped. */
  private version = -1;
  private readonly entries = new Map<string, TaskProgress & { partition: number; target: string }>();

  /** `maxEntries`: most entries kept and accepted (a rebalance has at most Q·N tasks). */
  constructor(private readonly maxEntries: number) {}

  /** Moves to the rebalance of ring `version`, forgetting the entries of any other. */
  forRing(version: number): void {
    if (version === this.version) return;
    this.version = version;
    this.entries.clear();
  }

  record(partition: number, target: string, keysSent: number, total: number | null): void {
    const id = taskId({ partition, target });
    const cur = this.entries.get(id);
    if (cur) {
      if (keysSent > cur.keysSent) cur.keysSent = keysSent;
      if (total !== null && (cur.total === null || total > cur.total)) cur.total = total;
    } else if (this.entries.size < this.maxEntries) {
      this.entries.set(id, { partition, target, keysSent, total });
    }
  }

  get(task: TransferTask): TaskProgress | undefined {
    const e = this.entries.get(taskId(task));
    return e && { keysSent: e.keysSent, total: e.total };
  }

  /** `[ringVersion, [[partition, target, keysSent, total | null], ...]]`: arrays only (untrusted on decode). */
  toWire(): unknown {
    const list: unknown[] = [];
    for (const e of this.entries.values()) list.push([e.partition, e.target, e.keysSent, e.total]);
    return [this.version, list];
  }

  /**
   * Validates a peer's progress (throws TypeError when malformed) and returns a function that
   * merges it, so the caller can check the whole message before applying any of it. Undefined
   * (a peer that sends none) merges nothing.
   */
  check(value: unknown, partitions: number): () => void {
    if (value === undefined || value === null) return () => {};
    if (!Array.isArray(value) || value.length !== 2)
      throw new TypeError('transfer progress: expected [version, entries]');
    const [version, list] = value as [unknown, unknown];
    if (typeof version !== 'number' || !Number.isInteger(version))
      throw new TypeError('transfer progress: bad version');
    if (!Array.isArray(list) || list.length > this.maxEntries)
      throw new TypeError(`transfer progress: at most ${this.maxEntries} entries`);
    const entries = list.map((e): [number, string, number, number | null] => {
      if (!Array.isArray(e) || e.length !== 4) throw new TypeError('transfer progress: bad entry');
      const [partition, target, sent, total] = e as unknown[];
      if (!isCount(partition) || partition >= partitions)
        throw new TypeError('transfer progress: bad partition');
      if (typeof target !== 'string' || target.length > 256)
        throw new TypeError('transfer progress: bad target');
      if (!isCount(sent)) throw new TypeError('transfer progress: bad keysSent');
      if (total !== null && !isCount(total)) throw new TypeError('transfer progress: bad total');
      return [partition, target, sent, total];
    });
    return () => {
      if (version !== this.version) return;
      for (const [partition, target, sent, total] of entries) this.record(partition, target, sent, total);
    };
  }
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_COUNT;
}
