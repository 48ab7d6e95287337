/**
 * Latency-aware routing for one node or client: the pure pieces of `latency.ts` wired to a clock
 * and to the routing of `router.ts`. Created only when `latencyAware` is on.
 */
import { hash64, type PreferenceEntry } from '../ring/index.js';
import type { Clock } from '../util/clock.js';
import { type Context, encodeContext } from '../versioning/index.js';
import type { Routing } from './coordinator.js';
import {
  CoordinatorMemory,
  coordinatorOrder,
  HedgeBudget,
  type HedgePlan,
  LatencyEstimator,
  planRead,
} from './latency.js';

/** How long the replica that answered a read first stays the preferred coordinator of its context, ms. */
export const COORDINATOR_MEMORY_MS = 10_000;
/** Contexts remembered at most (oldest forgotten first). */
export const COORDINATOR_MEMORY_ENTRIES = 10_000;

/** Latency-aware routing counters (`client.stats().latency`). */
export interface LatencyStats {
  /** Reads whose held-back replicas were asked after the hedge delay. */
  hedged: number;
  /** Hedges the budget refused (the read waited for the replicas it had asked). */
  hedgesRefused: number;
  /** Peers with a round-trip estimate. */
  trackedPeers: number;
}

export class LatencyRouting {
  readonly estimator = new LatencyEstimator();
  private readonly budget: HedgeBudget;
  private readonly memory = new CoordinatorMemory(COORDINATOR_MEMORY_MS, COORDINATOR_MEMORY_ENTRIES);
  /** For `Rpc`: every round trip feeds the estimator. */
  readonly roundTrips: { clock: Clock; record(id: string, ms: number): void };

  constructor(
    private readonly self: string,
    private readonly clock: Clock,
    options: { maxHedgeRatio: number; requestTimeoutMs: number },
    /** The failure detector's opinion: replicas believed down are asked last. */
    private readonly isUp?: (id: string) => boolean,
  ) {
    this.budget = new HedgeBudget(options.maxHedgeRatio);
    this.maxHedgeDelayMs = options.requestTimeoutMs;
    this.roundTrips = { clock, record: (id, ms) => this.estimator.record(id, ms) };
  }

  private readonly maxHedgeDelayMs: number;

  /**
   * The routing reordered fastest first (with `isLocal`, the caller's own zone first), and the hedge
   * plan when r is below the list's length.
   */
  planRead(
    routing: Routing,
    r: number,
    isLocal?: (id: string) => boolean,
  ): { routing: Routing; hedge: HedgePlan | undefined } {
    const plan = planRead(
      routing.list,
      r,
      this.estimator,
      this.budget,
      this.self,
      this.maxHedgeDelayMs,
      this.isUp,
      isLocal,
    );
    return { routing: { ...routing, list: plan.list }, hedge: plan.hedge };
  }

  /** Remembers that `id` answered the read of `key` that produced `context` first. */
  remember(key: Uint8Array, context: string, id: string): void {
    if (id !== this.self) this.memory.remember(memoryKey(key, context), id, this.clock.now());
  }

  /** Candidate coordinators of a put of `key` with `context`, in the order to ask them. */
  coordinators(
    list: readonly PreferenceEntry[],
    key: Uint8Array,
    context: Context | string,
  ): PreferenceEntry[] {
    const encoded = typeof context === 'string' ? context : encodeContext(context);
    const preferred = this.memory.recall(memoryKey(key, encoded), this.clock.now());
    return coordinatorOrder(list, preferred, this.estimator);
  }

  stats(): LatencyStats {
    return {
      hedged: this.budget.hedged,
      hedgesRefused: this.budget.refused,
      trackedPeers: this.estimator.size,
    };
  }
}

/**
 * A 64-bit hash of the key and the context: contexts of different keys may be equal (every absent
 * key's is the empty vector), and a context runs to kilobytes (maxContextEntries), which 10,000
 * remembered strings would multiply. A collision only reorders the replicas of one put.
 */
function memoryKey(key: Uint8Array, context: string): string {
  const input = Buffer.allocUnsafe(4 + key.byteLength + Buffer.byteLength(context, 'utf8'));
  input.writeUInt32BE(key.byteLength, 0);
  input.set(key, 4);
  input.write(context, 4 + key.byteLength, 'utf8');
  return hash64(input).toString(36);
}
