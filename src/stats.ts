/** Per-operation counters and latency histograms behind `node.stats()`. */
import * as hdr from 'hdr-histogram-js';
import type { AntiEntropyStats } from './anti-entropy/anti-entropy.js';
import type { TransportByteStats } from './transport/types.js';

/** Counts and latency percentiles of one kind of request since the node started. */
export interface OperationStats {
  /** Calls completed, successful or not. */
  count: number;
  /** Calls that rejected. */
  failures: number;
  /** Median latency of successful and failed calls, ms. */
  p50Ms: number;
  /** 99th-percentile latency, ms. */
  p99Ms: number;
  /** 99.9th-percentile latency, ms. */
  p999Ms: number;
}

/** `node.stats()`: what a node did since it started (counters only grow). */
export interface NodeStats {
  /** `get` calls coordinated here. */
  get: OperationStats;
  /** `put` calls (and `update` writes) coordinated or forwarded here. */
  put: OperationStats;
  /** `delete` calls. */
  delete: OperationStats;
  /** Sibling counts seen by reads coordinated here. */
  siblings: {
    /** Reads that found more than one concurrent sibling. */
    conflictedReads: number;
    /** The most siblings seen on one read. */
    maxSeen: number;
    /** Reads by sibling count (count → reads). */
    histogram: Record<number, number>;
  };
  /** Replicas sent the merged object after a read found them stale or missing it. */
  readRepairs: number;
  /** Puts this node forwarded to a replica of the key (it was not one). */
  forwarded: number;
  /** Hinted handoff on this node. */
  hints: {
    /** Hints written here for an unreachable owner. */
    stored: number;
    /** Hints the owner acknowledged (then deleted here). */
    delivered: number;
    /** Writes not taken as hints because the hint store was full (`maxHints`). */
    refused: number;
    /** Hints held now. */
    pending: number;
  };
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
