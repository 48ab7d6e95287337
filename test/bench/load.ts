/**
 * The child side of the 3-process benchmarks (`tcp-cluster-node.ts` for the engine,
 * `floor-node.ts` for the floor), shared so both are driven and answer the same way: the load a
 * child puts on itself (`run(i)` performs operation i; latencies go into `h` in microseconds; a
 * rejected operation counts as a failure and is not recorded) and its IPC with the parent. The
 * parent side is in `children.ts`.
 */
import type { Histogram } from 'hdr-histogram-js';
import * as hdr from 'hdr-histogram-js';

/** What a child reports for one load phase. */
export interface LoadResult {
  ops: number;
  failures: number;
  /** Epoch milliseconds (sub-ms precision), comparable across processes on one machine. */
  startMs: number;
  endMs: number;
  /** Latencies in microseconds, `hdr.encodeIntoCompressedBase64`. */
  histogram: string;
  /** CPU time this process used during the run (all threads: main, libuv pool, LevelDB), ms. */
  cpuMs: number;
}

/**
 * Answers the parent's `{ seq, cmd }` requests with `run`, announces `address` as ready, and stops
 * (then exits) when the parent goes away. After a `stop` command the child exits normally, so
 * `--cpu-prof` gets to write its profile.
 */
export function serveCommands<C extends { seq: number; cmd: string }>(
  run: (command: C) => Promise<unknown>,
  stop: () => Promise<unknown>,
  address: string,
): void {
  process.on('message', (c: C) => {
    run(c).then(
      (result) => {
        const reply = { seq: c.seq, ok: true, result };
        if (c.cmd === 'stop') process.send!(reply, () => process.exit(0));
        else process.send!(reply);
      },
      (err: unknown) => process.send!({ seq: c.seq, ok: false, error: String(err) }),
    );
  });
  // The parent went away (crashed, interrupted): do not linger.
  process.on('disconnect', () => {
    stop().finally(() => process.exit(0));
  });
  process.send!({ event: 'ready', address });
}

export function latencyHistogram(): Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

function recordSince(h: Histogram, sinceMs: number): void {
  h.recordValue(Math.max(1, Math.round((performance.now() - sinceMs) * 1000)));
}

/** Closed loop: `inFlight` workers run operations 0..total-1 back to back. Resolves to the failures. */
export async function closedLoad(
  total: number,
  inFlight: number,
  run: (i: number) => Promise<unknown>,
  h: Histogram,
): Promise<number> {
  let next = 0;
  let failures = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= total) return;
      const t0 = performance.now();
      try {
        await run(i);
      } catch {
        failures++;
        continue;
      }
      recordSince(h, t0);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return failures;
}

/**
 * Open loop: operation i is due at start + i / rate whatever happened before it, a 1 ms timer
 * issues what has come due, and latency counts from when an operation was due (not from when the
 * timer got round to it), so a stall shows up in the percentiles instead of silently lowering the
 * offered load (coordinated omission). Resolves to the operations issued and the failures.
 */
export async function openLoad(
  ratePerSec: number,
  durationMs: number,
  run: (i: number) => Promise<unknown>,
  h: Histogram,
): Promise<{ ops: number; failures: number }> {
  const total = Math.floor((ratePerSec * durationMs) / 1000);
  const t0 = performance.now();
  const pending: Promise<void>[] = [];
  let issued = 0;
  let failures = 0;
  while (issued < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) * ratePerSec) / 1000) + 1);
    while (issued < due) {
      const i = issued++;
      const dueAt = t0 + (i * 1000) / ratePerSec;
      pending.push(
        run(i).then(
          () => recordSince(h, dueAt),
          () => {
            failures++;
          },
        ),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(pending);
  return { ops: total, failures };
}
