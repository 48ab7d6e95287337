/** Per-operation counters and latency histograms behind `node.stats()`. */
import * as hdr from 'hdr-histogram-js';
import type { AntiEntropyStats } from './anti-entropy/anti-entropy.js';
import type { TransportByteStats } from './transport/types.js';

export interface OperationStats {
  count: number;
  failures: number;
  /** Latency percentiles of successful and failed calls, ms. */
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
}

export interface NodeStats {
  get: OperationStats;
  put: OperationStats;
  delete: OperationStats;
  /** Reads that found more than one concurrent sibling, and the most siblings seen on one read. */
  siblings: { conflictedReads: number; maxSeen: number; histogram: Record<number, number> };
  readRepairs: number;
  /** Puts this node forwarded to a replica of the key (it was not one). */
  forwarded: number;
  hints: { stored: number; delivered: number; refused: number; pending: number };
  /** Requests served for peers, by message kind. */
  served: Record<string, number>;
  /** Anti-entropy totals since start (exchanges this node started, tombstones it purged). */
  antiEntropy: AntiEntropyStats;
  /** Bytes the node's transport moved, when the transport counts them (`Transport.stats`). */
  transport?: TransportByteStats;
}

export class OperationRecorder {
  private readonly histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 2,
  });
  count = 0;
  failures = 0;

  /** `onRecord` sees every call (the `request:complete` event); it must be cheap. */
  constructor(private readonly onRecord?: (latencyMs: number, ok: boolean) => void) {}

  record(latencyMs: number, ok: boolean): void {
    this.count++;
    if (!ok) this.failures++;
    this.onRecord?.(latencyMs, ok);
    // Microseconds, clamped: a virtual clock may report 0 ms.
    this.histogram.recordValue(Math.min(3_600_000_000, Math.max(1, Math.round(latencyMs * 1000))));
  }

  snapshot(): OperationStats {
    const at = (p: number) => (this.count === 0 ? 0 : this.histogram.getValueAtPercentile(p) / 1000);
    return { count: this.count, failures: this.failures, p50Ms: at(50), p99Ms: at(99), p999Ms: at(99.9) };
  }
}
