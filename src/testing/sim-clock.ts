import type { Clock, Timer } from '../util/clock.js';

/**
 * A node's view of time in the simulator: a shared clock plus a per-node offset. `now()` is
 * skewed (it feeds write timestamps, which last-write-wins resolvers and tombstone grace rely on,
 * and incarnations); `setTimeout` delegates unchanged, because skew shifts what a node believes
 * the time is, not how fast its timers run, and all nodes must stay on one timeline for the run to
 * be deterministic. `offsetMs` may change during a run (a clock jump).
 */
export class SkewedClock implements Clock {
  constructor(
    private readonly base: Clock,
    /** How far this clock is ahead of `base` (negative: behind), ms. */
    public offsetMs = 0,
  ) {}

  now(): number {
    return this.base.now() + this.offsetMs;
  }

  setTimeout(fn: () => void, delayMs: number): Timer {
    return this.base.setTimeout(fn, delayMs);
  }
}
