/**
 * Quorum accounting, pure: counts acknowledgements and failures of one request fanned out to
 * `total` replicas and says when the outcome is decided. It holds no timers and does no I/O, so
 * it is tested exhaustively on its own.
 */
import type { ReplicaFailure } from '../errors.js';

export type QuorumOutcome = 'pending' | 'met' | 'failed';

export class QuorumTracker {
  readonly acked: string[] = [];
  readonly failures: ReplicaFailure[] = [];

  constructor(
    readonly required: number,
    /** Replicas asked so far; grows when a fallback replaces a failed replica (`extend`). */
    public total: number,
  ) {
    if (!(Number.isInteger(required) && required >= 1))
      throw new RangeError(`required must be >= 1, got ${required}`);
  }

  get outcome(): QuorumOutcome {
    if (this.acked.length >= this.required) return 'met';
    // Not enough replicas left that could still answer.
    if (this.total - this.failures.length < this.required) return 'failed';
    return 'pending';
  }

  get outstanding(): number {
    return this.total - this.acked.length - this.failures.length;
  }

  /** One more replica is asked (a fallback standing in for one that failed). */
  extend(): void {
    this.total++;
  }

  ack(node: string): QuorumOutcome {
    this.acked.push(node);
    return this.outcome;
  }

  fail(node: string, reason: string): QuorumOutcome {
    this.failures.push({ node, reason });
    return this.outcome;
  }
}
