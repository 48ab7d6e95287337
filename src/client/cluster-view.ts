/**
 * A DynamoClient's knowledge of the cluster: the member table and ring, pulled from members and
 * merged with the very merge nodes use (`mergeState`), so it converges to what they agree on.
 *
 * The client is not a member. It never sends its own record nor a state to be merged: it pulls
 * with the read-only `State` message (a Gossip would be merged into the receiver's table; the
 * client then only relays what members already know). So no node ever counts it, gives it
 * partitions, or sends it hints. Every `gossipIntervalMs` (±25 % jitter) it pulls from a random
 * member it believes up, falling back to any member and then to the seeds when none answers;
 * `refreshSoon` pulls at once when a reply showed its ring stale.
 */
import { AuthError } from '../errors.js';
import { incompatibility, seedInfoFromWire } from '../membership/bootstrap.js';
import type { SeedSource } from '../membership/membership.js';
import { checkState, mergeState, sameState } from '../membership/state.js';
import type { ClusterState } from '../membership/types.js';
import type { Rpc } from '../transport/rpc.js';
import { MessageType } from '../transport/wire.js';
import type { Clock, Timer } from '../util/clock.js';
import type { Random } from '../util/random.js';

/** Start-up pulls: first delay and ceiling between rounds over the seeds, ms (doubling). */
const START_BACKOFF_INITIAL_MS = 100;
const START_BACKOFF_MAX_MS = 5_000;
/** Most addresses used from one answer of a seed function. */
const MAX_SEEDS = 1024;

export interface ClusterViewDeps {
  /** Asked before every round of start-up pulls, and when no member answers. */
  seeds: SeedSource;
  partitions: number;
  /** The client's quorum.n: a member with another one is refused (see `merge`). */
  n: number;
  gossipIntervalMs: number;
  requestTimeoutMs: number;
  clock: Clock;
  random: Random;
  rpc: Rpc;
  isUp: (id: string) => boolean;
  onChange: (before: ClusterState, after: ClusterState) => void;
  onError: (error: Error, context: string) => void;
}

export class ClusterView {
  private current: ClusterState = {
    members: [],
    ring: { version: 0, owners: [], claimant: '', pending: null },
  };
  private timer: Timer | undefined;
  private stopped = false;
  private refreshing: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** The seed source's last good answer. */
  private listed: readonly string[] = [];
  /** What each seed answered in the last start-up round, for start's error. */
  private answers = new Map<string, string>();
  private problem: string | undefined;

  constructor(private readonly deps: ClusterViewDeps) {}

  get state(): ClusterState {
    return this.current;
  }

  addressOf = (id: string): string | undefined => {
    for (const m of this.current.members) if (m.id === id) return m.address;
    return undefined;
  };

  /**
   * Pulls from the seeds until one knows a ring; retried with backoff until `stop()` or abort
   * (rejects with `signal.reason`). A wrong secret or certificate (AuthError) and a member with
   * other `partitions` or `quorum.n` (RangeError) fail at once: they will not fix themselves.
   */
  async start(signal?: AbortSignal): Promise<void> {
    let delayMs = START_BACKOFF_INITIAL_MS;
    while (!this.stopped) {
      if (signal?.aborted) throw signal.reason;
      const seeds = await this.askSeeds();
      this.answers = new Map();
      for (const seed of seeds) {
        if (this.stopped) return;
        if (signal?.aborted) throw signal.reason;
        try {
          await this.pullAddress(seed);
          this.answers.set(
            seed,
            this.current.ring.owners.length > 0 ? 'in a cluster' : 'answered, not in a cluster yet',
          );
        } catch (err) {
          // A wrong secret or certificate, or a cluster of another shape, will not fix itself.
          if (err instanceof AuthError || err instanceof RangeError) throw err;
          this.answers.set(seed, `unreachable: ${err instanceof Error ? err.message : String(err)}`);
        }
        if (this.current.ring.owners.length > 0) {
          this.schedule();
          return;
        }
      }
      this.deps.onError(new Error(`no seed knows a ring yet: ${this.report()}`), 'client start: retrying');
      await new Promise<void>((resolve) => {
        const abort = () => resolve();
        signal?.addEventListener('abort', abort, { once: true });
        this.wake = resolve;
        this.timer = this.deps.clock.setTimeout(() => {
          signal?.removeEventListener('abort', abort);
          resolve();
        }, delayMs);
      });
      delayMs = Math.min(delayMs * 2, START_BACKOFF_MAX_MS);
    }
  }

  /** What the seeds answered in the last start-up round. */
  report(): string {
    if (this.problem !== undefined) return this.problem;
    if (this.answers.size === 0) return 'no seed asked yet';
    return [...this.answers].map(([seed, answer]) => `${seed}: ${answer}`).join('; ');
  }

  /** The seed source's answer; the last good one when it fails (reported). */
  private async askSeeds(): Promise<readonly string[]> {
    this.problem = undefined;
    try {
      const answer: unknown = await this.deps.seeds();
      if (!Array.isArray(answer) || answer.some((s) => typeof s !== 'string' || s.length === 0)) {
        throw new TypeError('seeds must resolve to an array of address strings');
      }
      if (answer.length === 0) throw new Error('the seed function listed no address');
      this.listed = answer.slice(0, MAX_SEEDS) as string[];
    } catch (err) {
      this.problem = `seeds: ${err instanceof Error ? err.message : String(err)}`;
      this.deps.onError(err as Error, 'client: seed source failed');
    }
    return this.listed;
  }

  /** Pulls now (one pull at a time), preferably from `from`: a member whose reply showed us stale. */
  refreshSoon(from?: string): Promise<void> {
    this.refreshing ??= this.pullOnce(from).finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.wake?.();
  }

  private schedule(): void {
    if (this.stopped) return;
    const jitter = 0.75 + this.deps.random.next() * 0.5;
    this.timer = this.deps.clock.setTimeout(() => {
      this.refreshSoon().finally(() => this.schedule());
    }, this.deps.gossipIntervalMs * jitter);
  }

  /** One pull: `from`, else a random member believed up, else the others, else the seeds. */
  private async pullOnce(from?: string): Promise<void> {
    const members = this.current.members.filter((m) => m.state !== 'removed');
    const up = members.filter((m) => this.deps.isUp(m.id));
    const order: string[] = [];
    if (from !== undefined) order.push(from);
    if (up.length > 0) order.push(up[this.deps.random.int(up.length)]!.id);
    for (const m of members) if (!order.includes(m.id)) order.push(m.id);
    for (const id of order) {
      if (this.stopped) return;
      try {
        this.merge((await this.deps.rpc.call(id, [MessageType.State], this.deps.requestTimeoutMs))[0]);
        return;
      } catch {
        // Unreachable (the failure detector heard of it) or not a member any more: try the next.
      }
    }
    for (const seed of await this.askSeeds()) {
      try {
        await this.pullAddress(seed);
        return;
      } catch {
        // Every member and seed failed: the next round tries again.
      }
    }
  }

  private async pullAddress(address: string): Promise<void> {
    const reply = await this.deps.rpc.callAddress(address, [MessageType.State], this.deps.requestTimeoutMs);
    // The client refuses a cluster of another shape rather than adopting it: its own r, w and
    // the application's expectations were chosen for its n (see docs/api/client.md).
    const info = seedInfoFromWire(reply[1]);
    const mismatch = info && incompatibility(this.deps, info);
    if (mismatch) {
      throw new RangeError(
        `DynamoClient: the cluster member at ${address} (${info.id}) has another shape: ${mismatch}; partitions and quorum.n must be the cluster's`,
      );
    }
    this.merge(reply[0]);
  }

  private merge(wire: unknown): void {
    // Throws on a member without a ring yet, or with another partition count than ours.
    const merged = mergeState(this.current, checkState(wire, this.deps.partitions));
    if (sameState(merged, this.current)) return;
    const before = this.current;
    this.current = merged;
    this.deps.onChange(before, merged);
  }
}

/** The events a change of state means: members that joined or left, a new ring. */
export type MembershipEvent =
  | { name: 'member:join'; id: string; address: string }
  | { name: 'member:leave'; id: string }
  | { name: 'ring:change'; version: number; owners: readonly string[] };

export function membershipEvents(before: ClusterState, after: ClusterState, self: string): MembershipEvent[] {
  const events: MembershipEvent[] = [];
  const was = new Map(before.members.map((m) => [m.id, m.state]));
  for (const m of after.members) {
    if (m.state === 'valid' && was.get(m.id) !== 'valid' && m.id !== self) {
      events.push({ name: 'member:join', id: m.id, address: m.address });
    }
    if (m.state === 'removed' && was.get(m.id) !== 'removed') events.push({ name: 'member:leave', id: m.id });
  }
  if (after.ring.version !== before.ring.version) {
    events.push({ name: 'ring:change', version: after.ring.version, owners: after.ring.owners });
  }
  return events;
}
