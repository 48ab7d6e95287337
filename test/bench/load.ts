/**
 * The load the 3-process benchmarks' child processes put on themselves (`tcp-cluster-node.ts` for
 * the engine, `floor-node.ts` for the floor), shared so both are driven the same way. `run(i)`
 * performs operation i; latencies go into `h` in microseconds; a rejected operation counts as a
 * failure and is not recorded.
 */
import type { Histogram } from 'hdr-histogram-js';
import * as hdr from 'hdr-histogram-js';

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
