/**
 * Request timeouts without a timer per request. Under load a transport, and a coordinator, has
 * thousands of requests in flight and most are answered long before their timeout; arming and
 * cancelling one clock timer for each was a measurable share of the CPU per request.
 *
 * Requests with the same `timeoutMs` that start before the clock's next timer turn share a
 * *batch*: a 0 ms clock timer closes the batches open at that point, and each closed batch arms
 * one timer of its `timeoutMs` for everything still in it. So a request times out no earlier than
 * `timeoutMs` after it started, and at most one timer turn later (about 1 ms on the system clock:
 * Node runs 0 ms timers after at least 1 ms; exactly `timeoutMs` on a `VirtualClock`, where the
 * closing timer fires at the same virtual time). With a shared `timeoutMs` (the usual case) that
 * is two timers per turn instead of one per request; with every request on a `timeoutMs` of its
 * own, one per request, as before.
 *
 * Only relative timers are used, never `clock.now()` arithmetic, so a wall-clock step cannot
 * make requests time out early or late (the per-request timers this replaces had that property).
 * A batch whose requests have all settled cancels its timer and is forgotten: no timer and no
 * memory outlive the requests, and the live batches are never more than the tracked requests.
 */
import type { Clock, Timer } from './clock.js';

/**
 * The links an entry carries so that tracking it allocates nothing; owned by `RequestTimeouts`
 * (initialise them to `undefined` and never touch them otherwise).
 */
export interface TimeoutLinks<T> {
  timeoutBatch: TimeoutBatch<T> | undefined;
  timeoutPrev: T | undefined;
  timeoutNext: T | undefined;
}

/** Entries that started in one timer turn with one `timeoutMs`, in start order. */
export interface TimeoutBatch<T> {
  readonly timeoutMs: number;
  head: T | undefined;
  tail: T | undefined;
  size: number;
  /** The expiry timer, once the batch closed. */
  timer: Timer | undefined;
}

export class RequestTimeouts<T extends TimeoutLinks<T>> {
  /** The batch new entries join, per `timeoutMs`. */
  private readonly open = new Map<number, TimeoutBatch<T>>();
  /** Closes every open batch at the next timer turn; armed while any batch is open. */
  private closeTimer: Timer | undefined;
  private tracked = 0;

  /**
   * `onExpire` is called for each entry whose timeout passed, in start order, after the entry was
   * removed (so calling `remove` from it is harmless).
   */
  constructor(
    private readonly clock: Clock,
    private readonly onExpire: (entry: T, timeoutMs: number) => void,
  ) {}

  /** Entries being tracked (not yet expired or removed). */
  get size(): number {
    return this.tracked;
  }

  /** Starts tracking `entry`, which must not be tracked already. */
  add(entry: T, timeoutMs: number): void {
    let batch = this.open.get(timeoutMs);
    if (!batch) {
      batch = { timeoutMs, head: undefined, tail: undefined, size: 0, timer: undefined };
      this.open.set(timeoutMs, batch);
      this.closeTimer ??= this.clock.setTimeout(this.closeAll, 0);
    }
    entry.timeoutBatch = batch;
    entry.timeoutPrev = batch.tail;
    entry.timeoutNext = undefined;
    if (batch.tail) batch.tail.timeoutNext = entry;
    else batch.head = entry;
    batch.tail = entry;
    batch.size++;
    this.tracked++;
  }

  /** Stops tracking `entry` (it settled); a no-op if it is not tracked. */
  remove(entry: T): void {
    const batch = entry.timeoutBatch;
    if (!batch) return;
    const { timeoutPrev: prev, timeoutNext: next } = entry;
    if (prev) prev.timeoutNext = next;
    else batch.head = next;
    if (next) next.timeoutPrev = prev;
    else batch.tail = prev;
    entry.timeoutBatch = entry.timeoutPrev = entry.timeoutNext = undefined;
    this.tracked--;
    if (--batch.size > 0) return;
    // Empty: forget the batch and cancel what it armed.
    batch.timer?.cancel();
    batch.timer = undefined;
    if (this.open.get(batch.timeoutMs) === batch) {
      this.open.delete(batch.timeoutMs);
      if (this.open.size === 0) {
        this.closeTimer?.cancel();
        this.closeTimer = undefined;
      }
    }
  }

  private readonly closeAll = (): void => {
    this.closeTimer = undefined;
    for (const batch of this.open.values()) {
      batch.timer = this.clock.setTimeout(() => this.expire(batch), batch.timeoutMs);
    }
    this.open.clear();
  };

  private expire(batch: TimeoutBatch<T>): void {
    batch.timer = undefined;
    for (let entry = batch.head; entry; entry = batch.head) {
      this.remove(entry);
      this.onExpire(entry, batch.timeoutMs);
    }
  }
}
