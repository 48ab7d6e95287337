/**
 * Time source. Everything in `src/` outside `src/util/` takes time only from a `Clock`, so the
 * same code runs on the wall clock in production and on a `VirtualClock` in the simulator.
 */
export interface Timer {
  /** Cancels the timer; calling it again or after the timer fired is harmless. */
  cancel(): void;
}

/**
 * Time for a node: the wall clock (`systemClock`) or a simulated one (`VirtualClock`). Everything
 * a node schedules goes through it, which is what makes a simulation deterministic.
 */
export interface Clock {
  /** Milliseconds since the epoch (wall clock) or since the start of a virtual run. */
  now(): number;
  /** Runs `fn` once after `delayMs` (0 or more) milliseconds. */
  setTimeout(fn: () => void, delayMs: number): Timer;
}

/**
 * The process clock: `Date.now()` and Node's timers. Timers are not unref'd: a request waiting
 * for its timeout must keep the process alive (`stop()` cancels every timer a node holds).
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, delayMs) {
    return new SystemTimer(setTimeout(fn, Math.max(0, delayMs)));
  },
};

// A class rather than a `{ cancel: () => ... }` literal: one object per timer instead of two, on
// paths that arm a timer per operation.
class SystemTimer implements Timer {
  constructor(private readonly handle: ReturnType<typeof setTimeout>) {}
  cancel(): void {
    clearTimeout(this.handle);
  }
}

interface VirtualTimer {
  due: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** Lets every promise chain that is ready run before the next virtual timer fires. */
const drainMicrotasks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * A clock that moves only when told to. Timers fire in order of due time, then of creation;
 * between two timers every ready promise continuation runs, so a run is a pure function of its
 * inputs. Used by the simulator and by every timing test (no sleeps).
 */
export class VirtualClock implements Clock {
  private current: number;
  private seq = 0;
  // Min-heap ordered by (due, seq): O(log n) per timer even with thousands pending.
  private readonly heap: VirtualTimer[] = [];

  constructor(startMs = 0) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, delayMs: number): Timer {
    const timer: VirtualTimer = {
      due: this.current + Math.max(0, delayMs),
      seq: this.seq++,
      fn,
      cancelled: false,
    };
    this.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  /** Number of timers not yet fired or cancelled. */
  get pending(): number {
    let n = 0;
    for (const t of this.heap) if (!t.cancelled) n++;
    return n;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way, in order. */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError(`advance(ms): ms must be >= 0, got ${ms}`);
    const target = this.current + ms;
    await drainMicrotasks();
    for (;;) {
      const next = this.peek();
      if (!next || next.due > target) break;
      this.pop();
      this.current = next.due;
      next.fn();
      await drainMicrotasks();
    }
    this.current = target;
  }

  /**
   * Fires timers until none is left. Periodic work (gossip, hint delivery) never goes idle, so
   * the run stops with a RangeError after `maxTimers` firings.
   */
  async runUntilIdle(options: { maxTimers?: number } = {}): Promise<void> {
    const maxTimers = options.maxTimers ?? 100_000;
    await drainMicrotasks();
    for (let fired = 0; ; fired++) {
      const next = this.peek();
      if (!next) return;
      if (fired >= maxTimers) throw new RangeError(`runUntilIdle: still busy after ${maxTimers} timers`);
      this.pop();
      this.current = Math.max(this.current, next.due);
      next.fn();
      await drainMicrotasks();
    }
  }

  private peek(): VirtualTimer | undefined {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
    return this.heap[0];
  }

  private push(t: VirtualTimer): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): VirtualTimer | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: VirtualTimer, b: VirtualTimer): boolean {
  return a.due < b.due || (a.due === b.due && a.seq < b.seq);
}

/**
 * Runs `fn` on the next turn of the event loop (after I/O callbacks of this turn). Used for
 * per-turn batching (group commit, frame coalescing); it is not time, so it is not on `Clock`.
 */
export function nextTurn(fn: () => void): void {
  setImmediate(fn);
}

/**
 * Runs `fn` once the microtasks queued so far, and those they queue, have all run: the end of
 * the current cascade of promise continuations, before the event loop moves on. Work that many
 * continuations of one turn add to (replication messages to a peer) is sent from here as one
 * batch, without the extra loop iteration `nextTurn` costs. Not time either.
 */
export function afterMicrotasks(fn: () => void): void {
  process.nextTick(fn);
}
