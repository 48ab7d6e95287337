/**
 * Latency-aware replica choice (Dynamo § 6.4), pure: no clock, no I/O. Round trips measured by
 * the Rpc layer go in; orders, hedge delays and budgets come out.
 *
 * - `LatencyEstimator`: per peer a smoothed round trip and its mean deviation (the EWMA pair TCP
 *   uses for its retransmission timer, RFC 6298), bounded in peers.
 * - `planRead`: a read with r < n goes first to the r replicas with the lowest estimate (and to
 *   any other about as fast); clearly slower ones are asked when one of those fails, or
 *   ("hedged") once the read has taken longer than the largest `srtt + 2·rttvar` of the first r
 *   (≈ the p95 of a round trip under a normal approximation) — if the hedge budget allows.
 * - `HedgeBudget`: a token bucket that caps timed hedges at a fraction of reads, so the extra load
 *   is bounded whatever the network does (Dean & Barroso, "The Tail at Scale").
 * - `CoordinatorMemory`: which replica answered the read a context came from first, so the put
 *   that follows prefers it as coordinator (paper § 6.4: read-your-writes more often).
 */
import type { PreferenceEntry } from '../ring/index.js';

/** EWMA gains of RFC 6298 (α = 1/8 for the mean, β = 1/4 for the deviation). */
const ALPHA = 1 / 8;
const BETA = 1 / 4;
/** Peers remembered; the least recently inserted is forgotten beyond it. */
export const MAX_TRACKED_PEERS = 4096;
/** Shortest hedge delay, ms: below it a hedge would fire before a healthy reply can arrive. */
export const MIN_HEDGE_DELAY_MS = 1;
/** Timed hedges that may be spent in a burst (the bucket's size). */
export const HEDGE_BURST = 10;
/**
 * Mean deviations above the smoothed round trip after which a reply is late enough to hedge:
 * 2 ≈ the p95 of a normal round trip (TCP's retransmission timer uses 4, as a resend costs more
 * than a hedge).
 */
const HEDGE_DEVIATIONS = 2;
/** A replica is held back by a hedged read only when its estimate exceeds this × the hedge delay. */
const SLOWER_FACTOR = 2;
/** Ranking offset of fallbacks: behind every primary whatever its round trip (ms). */
const FALLBACK_RANK_MS = 1e9;
/** Ranking offset of peers believed down: behind every healthy replica, fallbacks included (ms). */
const DOWN_RANK_MS = 1e12;
/** Ranking offset of a replica in another zone when the read prefers its own: behind every local primary. */
const REMOTE_ZONE_RANK_MS = 1e6;

interface PeerLatency {
  srttMs: number;
  rttvarMs: number;
  samples: number;
}

export class LatencyEstimator {
  private readonly peers = new Map<string, PeerLatency>();

  constructor(private readonly maxPeers = MAX_TRACKED_PEERS) {}

  /** One measured round trip to `id` (a timeout counts as a sample of the timeout's length). */
  record(id: string, ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    const p = this.peers.get(id);
    if (!p) {
      if (this.peers.size >= this.maxPeers) this.peers.delete(this.peers.keys().next().value!);
      this.peers.set(id, { srttMs: ms, rttvarMs: ms / 2, samples: 1 });
      return;
    }
    p.rttvarMs = (1 - BETA) * p.rttvarMs + BETA * Math.abs(p.srttMs - ms);
    p.srttMs = (1 - ALPHA) * p.srttMs + ALPHA * ms;
    p.samples++;
  }

  /** Smoothed round trip to `id`, ms; undefined before the first sample. */
  estimate(id: string): number | undefined {
    return this.peers.get(id)?.srttMs;
  }

  /** `srtt + 2·rttvar`: a round trip longer than this is unusual for `id` (undefined: unknown). */
  upperMs(id: string): number | undefined {
    const p = this.peers.get(id);
    return p ? p.srttMs + HEDGE_DEVIATIONS * p.rttvarMs : undefined;
  }

  forget(id: string): void {
    this.peers.delete(id);
  }

  get size(): number {
    return this.peers.size;
  }

  /**
   * The entries sorted fastest first (stable: ties keep ring order): `self` (a local read costs no
   * network), then primaries before fallbacks (a fallback holds only the hints it took, so its
   * quick "not found" must not fill a quorum ahead of a primary that has the key), each by
   * estimate, peers not measured yet first among their kind (so they get measured, rather than
   * ranked behind a replica known to be slow). Peers `isUp` says are down come last: a routing
   * lists them only when too few healthy nodes are left, and nothing should wait on them first.
   */
  rank<E extends { id: string; kind?: string }>(
    entries: readonly E[],
    self?: string,
    isUp?: (id: string) => boolean,
    isLocal?: (id: string) => boolean,
  ): E[] {
    const key = (e: E) => {
      if (e.id === self) return -1;
      const down = isUp !== undefined && !isUp(e.id) ? DOWN_RANK_MS : 0;
      const zone = isLocal && !isLocal(e.id) ? REMOTE_ZONE_RANK_MS : 0;
      return down + (e.kind === 'fallback' ? FALLBACK_RANK_MS : 0) + zone + (this.estimate(e.id) ?? 0);
    };
    return entries
      .map((e, i) => ({ e, i, k: key(e) }))
      .sort((a, b) => a.k - b.k || a.i - b.i)
      .map((x) => x.e);
  }
}

/**
 * Caps timed hedges at `ratio` of reads: each read adds `ratio` tokens (up to `HEDGE_BURST`), each
 * timed hedge spends one. Over any run, timed hedges ≤ ratio × reads + HEDGE_BURST.
 */
export class HedgeBudget {
  private tokens: number;
  hedged = 0;
  refused = 0;

  constructor(readonly ratio: number) {
    if (!(ratio >= 0 && ratio <= 1)) throw new RangeError(`maxHedgeRatio must be in [0, 1], got ${ratio}`);
    this.tokens = Math.min(HEDGE_BURST, ratio * HEDGE_BURST);
  }

  onRead(): void {
    this.tokens = Math.min(HEDGE_BURST, this.tokens + this.ratio);
  }

  /** Spends a token for one timed hedge; false when the budget is exhausted. */
  take(): boolean {
    if (this.tokens >= 1) {
      this.tokens -= 1;
      this.hedged++;
      return true;
    }
    this.refused++;
    return false;
  }
}

/** How a read's fan-out is staged (see `Coordinator.get`). */
export interface HedgePlan {
  /** Replicas asked at once: the first `first` of the routing list. */
  first: number;
  /** After this long the others are asked, if `allow()` agrees. */
  delayMs: number;
  allow: () => boolean;
}

/**
 * The routing list in the order a latency-aware read asks it, and how to stage it: with r < n the
 * r fastest go first, with any other replica whose estimate is within the hedge delay, and the
 * clearly slower rest are held back (asked on a failure, or after the hedge delay). With r ≥ the
 * list's length, or no replica clearly slower, every replica is asked at once, as without latency
 * awareness.
 */
export function planRead(
  list: readonly PreferenceEntry[],
  r: number,
  estimator: LatencyEstimator,
  budget: HedgeBudget,
  self: string,
  maxDelayMs: number,
  isUp?: (id: string) => boolean,
  isLocal?: (id: string) => boolean,
): { list: PreferenceEntry[]; hedge: HedgePlan | undefined } {
  const ranked = estimator.rank(list, self, isUp, isLocal);
  if (r >= ranked.length) return { list: ranked, hedge: undefined };
  budget.onRead();
  let delayMs = MIN_HEDGE_DELAY_MS;
  for (let i = 0; i < r; i++) {
    const e = ranked[i]!;
    const upper = e.id === self ? 0 : (estimator.upperMs(e.id) ?? 0);
    if (upper > delayMs) delayMs = upper;
  }
  delayMs = Math.min(delayMs, maxDelayMs);
  // Replicas about as fast as the chosen ones are asked at once too: only a clearly slower one
  // (estimate above SLOWER_FACTOR × the hedge delay) is worth holding back. Holding back one that
  // is merely a little slower right now herds every read onto the same r replicas, which makes
  // them the slow ones (the TCP bench: p50 5.5 ms against 3.6 asking all N).
  let first = r;
  const slower = delayMs * SLOWER_FACTOR;
  // Preferring the own zone, a replica in another zone is held back however fast it is.
  const eager = (e: PreferenceEntry) =>
    (!isLocal || isLocal(e.id)) && (estimator.estimate(e.id) ?? 0) <= slower;
  while (first < ranked.length && eager(ranked[first]!)) first++;
  if (first === ranked.length) return { list: ranked, hedge: undefined };
  return { list: ranked, hedge: { first, delayMs, allow: () => budget.take() } };
}

/**
 * A read that prefers the caller's own zone, without latency awareness: this node first, then the
 * replicas in its zone (primaries before fallbacks), then the others in ring order. It asks the
 * local ones (at least r replicas) and holds the others back until one it asked fails. (With
 * latency awareness `planRead` also asks them once the read is slower than usual.)
 */
export function planLocalRead(
  list: readonly PreferenceEntry[],
  r: number,
  self: string,
  isLocal: (id: string) => boolean,
  timeoutMs: number,
): { list: PreferenceEntry[]; hedge: HedgePlan | undefined } {
  const rankOf = (e: PreferenceEntry) =>
    e.id === self ? 0 : (e.kind === 'fallback' ? 2 : 0) + (isLocal(e.id) ? 0 : 1) + 1;
  const ranked = list
    .map((e, i) => ({ e, i, k: rankOf(e) }))
    .sort((a, b) => a.k - b.k || a.i - b.i)
    .map((x) => x.e);
  let first = 0;
  while (first < ranked.length && (first < r || isLocal(ranked[first]!.id))) first++;
  if (first >= ranked.length) return { list: ranked, hedge: undefined };
  return { list: ranked, hedge: { first, delayMs: timeoutMs, allow: () => false } };
}

/**
 * Context string → the replica that answered the read it came from first, for a short while and
 * for a bounded number of contexts (oldest forgotten first).
 */
export class CoordinatorMemory {
  private readonly byContext = new Map<string, { id: string; atMs: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
  ) {}

  remember(context: string, id: string, nowMs: number): void {
    this.byContext.delete(context);
    this.byContext.set(context, { id, atMs: nowMs });
    if (this.byContext.size > this.maxEntries) this.byContext.delete(this.byContext.keys().next().value!);
  }

  recall(context: string, nowMs: number): string | undefined {
    const e = this.byContext.get(context);
    if (!e) return undefined;
    if (nowMs - e.atMs > this.ttlMs) {
      this.byContext.delete(context);
      return undefined;
    }
    return e.id;
  }

  get size(): number {
    return this.byContext.size;
  }
}

/**
 * The order in which to ask replicas to coordinate a put: primaries before fallbacks; with
 * latency awareness the primary remembered for the context first, then by estimate.
 */
export function coordinatorOrder(
  list: readonly PreferenceEntry[],
  preferred: string | undefined,
  estimator: LatencyEstimator | undefined,
): PreferenceEntry[] {
  const primaries = list.filter((e) => e.kind === 'primary');
  const others = list.filter((e) => e.kind !== 'primary');
  const ordered = estimator
    ? [...estimator.rank(primaries), ...estimator.rank(others)]
    : [...primaries, ...others];
  if (preferred === undefined) return ordered;
  const at = ordered.findIndex((e) => e.id === preferred);
  // Only a primary jumps the queue: a fallback that answered the read first (its quick reply from
  // a hint object) must not coordinate while a primary can, as it writes under an actor of its own.
  if (at <= 0 || ordered[at]!.kind !== 'primary') return ordered;
  return [ordered[at]!, ...ordered.slice(0, at), ...ordered.slice(at + 1)];
}
