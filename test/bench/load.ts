/**
 * The child side of the 3-process benchmarks (`tcp-cluster-node.ts` for the engine,
 * `floor-node.ts` for the floor), shared so both are driven and answer the same way: the load a
 * child puts on itself (`run(i)` performs operation i; latencies go into `h` in microseconds; a
 * rejected operation counts as a failure and is not recorded) and its IPC with the parent. The
 * parent side is in `children.ts`.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
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

/**
 * With `BENCH_PROF_DIR` set, runs `fn` under the V8 sampling profiler (inspector, 100 µs) and
 * writes `DIR/<label>.cpuprofile`: one profile per load phase, where `--cpu-prof` gives one per
 * process with every phase mixed. Without it, just `fn()`.
 */
export async function profiled<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const dir = process.env.BENCH_PROF_DIR;
  if (!dir) return fn();
  // BENCH_PROF_HEAP: the sampling heap profiler instead (what is allocated, by stack, every 8 KiB).
  const heap = process.env.BENCH_PROF_HEAP !== undefined;
  const session = new Session();
  session.connect();
  if (heap) {
    await session.post('HeapProfiler.enable');
    // Objects collected since count too: the young generation's churn is what costs scavenges.
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 8192,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  } else {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
  }
  try {
    return await fn();
  } finally {
    const name = `${dir}/${label.replace(/[^\w.-]+/g, '_')}`;
    if (heap) {
      const { profile } = await session.post('HeapProfiler.stopSampling');
      writeFileSync(`${name}.heapprofile`, JSON.stringify(profile));
    } else {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(`${name}.cpuprofile`, JSON.stringify(profile));
    }
    session.disconnect();
  }
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

/**
 * With `BENCH_TAIL` set (a latency in ms), an open loop prints to stderr what might explain its
 * tail: the event loop's delay (max, p99.9), the GC pauses (count, total, longest, by kind), and
 * the operations slower than `BENCH_TAIL` ms grouped by the 10 ms window they were due in (a stall
 * shows as one window with many; a queue as many windows in a row).
 */
class TailProbe {
  private readonly delay = monitorEventLoopDelay({ resolution: 1 });
  private readonly gcs: { kind: number; ms: number; at: number }[] = [];
  private readonly observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries())
      this.gcs.push({
        kind: (e as unknown as { detail: { kind: number } }).detail.kind,
        ms: e.duration,
        at: e.startTime,
      });
  });
  readonly slow = new Map<number, { n: number; max: number }>();
  constructor(
    readonly label: string,
    readonly thresholdMs: number,
    readonly t0: number,
  ) {
    this.delay.enable();
    this.observer.observe({ entryTypes: ['gc'] });
  }
  record(dueAt: number): void {
    const ms = performance.now() - dueAt;
    if (ms < this.thresholdMs) return;
    const w = Math.floor((dueAt - this.t0) / 10) * 10;
    const e = this.slow.get(w) ?? { n: 0, max: 0 };
    e.n++;
    e.max = Math.max(e.max, ms);
    this.slow.set(w, e);
  }
  report(): void {
    this.delay.disable();
    this.observer.disconnect();
    const kinds = new Map<number, { n: number; ms: number; max: number }>();
    for (const g of this.gcs) {
      const k = kinds.get(g.kind) ?? { n: 0, ms: 0, max: 0 };
      k.n++;
      k.ms += g.ms;
      k.max = Math.max(k.max, g.ms);
      kinds.set(g.kind, k);
    }
    const gc = [...kinds]
      .map(([kind, k]) => `kind${kind} n=${k.n} total=${k.ms.toFixed(0)}ms max=${k.max.toFixed(1)}ms`)
      .join(', ');
    const longGcs = this.gcs
      .filter((g) => g.ms >= 5)
      .map((g) => `${(g.at - this.t0).toFixed(0)}:${g.ms.toFixed(0)}`)
      .join(' ');
    const windows = [...this.slow]
      .sort((a, b) => a[0] - b[0])
      .map(([w, e]) => `${w}:${e.n}/${e.max.toFixed(0)}`)
      .join(' ');
    console.error(
      `[tail ${this.label}] loop delay max ${(this.delay.max / 1e6).toFixed(1)} ms p99.9 ${(this.delay.percentile(99.9) / 1e6).toFixed(1)} ms; gc ${gc}; gc>=5ms at ${longGcs}; slow>${this.thresholdMs}ms (window ms:count/max) ${windows}`,
    );
  }
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
  label = 'open',
): Promise<{ ops: number; failures: number }> {
  const total = Math.floor((ratePerSec * durationMs) / 1000);
  const t0 = performance.now();
  const probe = process.env.BENCH_TAIL ? new TailProbe(label, Number(process.env.BENCH_TAIL), t0) : undefined;
  // A count, not an array of the operations' promises: kept to the end, each would survive every
  // scavenge and be promoted, GC work the driver adds to the system it measures.
  let outstanding = 0;
  let allDone: (() => void) | undefined;
  const settled = () => {
    if (--outstanding === 0) allDone?.();
  };
  let issued = 0;
  let failures = 0;
  while (issued < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) * ratePerSec) / 1000) + 1);
    while (issued < due) {
      const i = issued++;
      const dueAt = t0 + (i * 1000) / ratePerSec;
      outstanding++;
      run(i).then(
        () => {
          recordSince(h, dueAt);
          probe?.record(dueAt);
          settled();
        },
        () => {
          failures++;
          settled();
        },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  if (outstanding > 0) await new Promise<void>((resolve) => (allDone = resolve));
  probe?.report();
  return { ops: total, failures };
}
