/** Shared by every benchmark: latency recording and the result row the table prints. */
import * as hdr from 'hdr-histogram-js';

export interface BenchRow {
  /** Scenario name, e.g. "LevelStorage put, group commit, 64 in flight". */
  scenario: string;
  opsPerSec: number;
  /** Latency percentiles in milliseconds, when the scenario measures per-operation latency. */
  p50Ms?: number;
  p99Ms?: number;
  p999Ms?: number;
  /** The same run's baseline this scenario is compared with, e.g. "raw classic-level put". */
  baseline?: string;
  baselineOpsPerSec?: number;
  /** Anything else worth printing (bytes, keys moved...). */
  extra?: Record<string, number | string>;
}

/** Records latencies in microseconds (1 µs .. 60 s, 3 significant digits). */
export function latencyRecorder() {
  const h = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
  return {
    record(ms: number) {
      h.recordValue(Math.max(1, Math.round(ms * 1000)));
    },
    percentiles() {
      return {
        p50Ms: h.getValueAtPercentile(50) / 1000,
        p99Ms: h.getValueAtPercentile(99) / 1000,
        p999Ms: h.getValueAtPercentile(99.9) / 1000,
      };
    },
  };
}

/**
 * Runs `op(i)` for i in [0, total) with `concurrency` operations in flight; returns ops/s and
 * latency percentiles. The wall clock is fine here: benchmarks measure, tests never do.
 */
export async function runClosedLoop(
  total: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
  /**
   * Start each operation in a macrotask of its own, as requests arriving over a socket do.
   * In-process, an operation chain otherwise runs in microtasks only and starves every timer
   * (failure-detector probes, hint delivery) until the loop ends.
   */
  options: { macrotaskPerOp?: boolean } = {},
): Promise<{ opsPerSec: number; p50Ms: number; p99Ms: number; p999Ms: number }> {
  const rec = latencyRecorder();
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= total) return;
      if (options.macrotaskPerOp) await new Promise((resolve) => setImmediate(resolve));
      const t0 = performance.now();
      await op(i);
      rec.record(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  const seconds = (performance.now() - started) / 1000;
  return { opsPerSec: total / seconds, ...rec.percentiles() };
}

export function formatTable(rows: BenchRow[]): string {
  const fmt = (n: number | undefined, digits = 2) => (n === undefined ? '' : n.toFixed(digits));
  const header = [
    'scenario',
    'ops/s',
    'p50 ms',
    'p99 ms',
    'p99.9 ms',
    'baseline',
    'baseline ops/s',
    'ratio',
    'extra',
  ];
  const lines = rows.map((r) => [
    r.scenario,
    Math.round(r.opsPerSec).toLocaleString('en-US'),
    fmt(r.p50Ms),
    fmt(r.p99Ms),
    fmt(r.p999Ms),
    r.baseline ?? '',
    r.baselineOpsPerSec === undefined ? '' : Math.round(r.baselineOpsPerSec).toLocaleString('en-US'),
    r.baselineOpsPerSec ? `${(r.opsPerSec / r.baselineOpsPerSec).toFixed(2)}x` : '',
    r.extra
      ? Object.entries(r.extra)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')
      : '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  return [row(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...lines.map(row)].join('\n');
}

/**
 * Open loop: issues `ratePerSec` operations per second for `durationMs` regardless of how fast
 * they complete (so latency is measured at a load, not at saturation), and records each one's
 * latency. Returns the achieved rate and percentiles.
 */
export async function runOpenLoop(
  ratePerSec: number,
  durationMs: number,
  op: (i: number) => Promise<unknown>,
  /** Stop issuing early once this returns true. */
  until?: () => boolean,
): Promise<{ opsPerSec: number; p50Ms: number; p99Ms: number; p999Ms: number }> {
  const rec = latencyRecorder();
  const started = performance.now();
  let total = Math.floor((ratePerSec * durationMs) / 1000);
  const pending: Promise<unknown>[] = [];
  let issued = 0;
  while (issued < total) {
    if (until?.()) total = issued;
    const due = Math.floor(((performance.now() - started) * ratePerSec) / 1000);
    while (issued < Math.min(due, total)) {
      const i = issued++;
      const t0 = performance.now();
      pending.push(op(i).then(() => rec.record(performance.now() - t0)));
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(pending);
  const seconds = (performance.now() - started) / 1000;
  return { opsPerSec: total / seconds, ...rec.percentiles() };
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Best of 3 timed runs after a warm-up: the least disturbed run on a shared machine. */
export function measure(scenario: string, iterations: number, op: (i: number) => void): BenchRow {
  for (let i = 0; i < Math.min(iterations, 20_000); i++) op(i); // warm up the JIT
  let best = 0;
  for (let run = 0; run < 3; run++) {
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) op(i);
    best = Math.max(best, iterations / ((performance.now() - t0) / 1000));
  }
  return { scenario, opsPerSec: best };
}
