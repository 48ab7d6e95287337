/**
 * Cluster membership: the member table and the ring, spread by push-pull gossip.
 *
 * Ring changes are computed by one deterministic member, the claimant (the smallest id among
 * valid members this node believes up; Riak's approach). Every other node only merges states, and
 * the merge is deterministic (`state.ts`), so concurrent joins converge to one ring: the
 * claimant serialises them, and two claimants racing during a partition are resolved by ring
 * version, then claimant id. After a ring change the claimant pushes the new state to every
 * member at once instead of waiting for gossip to carry it.
 */

import { Packr } from 'msgpackr';
import { metaKey } from '../replica/layout.js';
import { type ClaimMember, claim, zonesMatter } from '../ring/index.js';
import type { Storage } from '../storage/types.js';
import type { Rpc } from '../transport/rpc.js';
import { MessageType } from '../transport/wire.js';
import type { Clock, Timer } from '../util/clock.js';
import type { Random } from '../util/random.js';
import type { FailureDetector } from './failure-detector.js';
import { type TransferTask, taskId, transferPlan } from './plan.js';
import { type TaskProgress, TransferProgress } from './progress.js';
import { checkState, claimantOf, memberToWire, mergeState, sameState, stateToWire } from './state.js';
import type { ClusterState, MemberRecord } from './types.js';

const STATE_KEY = metaKey('cluster');
const packr = new Packr({ useRecords: false, mapsAsObjects: false });

/** Addresses accepted from one answer of a seed source. */
export const MAX_SEEDS = 1024;

/** Where a joining node finds the cluster: asked before every round of join attempts. */
export type SeedSource = () => Promise<readonly string[]>;

/** The `seeds` option as a source: a fixed list answers the same every time. */
export function seedSource(seeds: readonly string[] | SeedSource): SeedSource {
  if (typeof seeds === 'function') return seeds;
  const fixed = [...seeds];
  return () => Promise.resolve(fixed);
}

/** Join retries: first delay and ceiling, ms (doubling). */
const JOIN_BACKOFF_INITIAL_MS = 100;
const JOIN_BACKOFF_MAX_MS = 5_000;

export interface MembershipDeps {
  id: string;
  address: () => string;
  weight: number;
  /** This node's failure domain (undefined: the default zone). */
  zone: string | undefined;
  n: number;
  partitions: number;
  gossipIntervalMs: number;
  requestTimeoutMs: number;
  clock: Clock;
  random: Random;
  storage: Storage;
  rpc: Rpc;
  detector: FailureDetector;
  /** Called after every change of the state (events, caches). */
  onChange: (before: ClusterState, after: ClusterState) => void;
  onError: (error: Error, context: string) => void;
}

export class Membership {
  private current: ClusterState;
  private gossipTimer: Timer | undefined;
  private stopped = false;
  private persistChain: Promise<void> = Promise.resolve();
  private joinWaiter: Timer | undefined;
  private readonly waiters = new Set<() => boolean>();
  private readonly progress: TransferProgress;

  constructor(private readonly deps: MembershipDeps) {
    this.current = { members: [], ring: { version: 0, owners: [], claimant: '', pending: null } };
    this.progress = new TransferProgress(deps.partitions * deps.n);
  }

  /** Replicas per key (N), as the ring is laid out for. */
  get n(): number {
    return this.deps.n;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /**
   * Calls `listener` after every state change and once when the membership stops, until it
   * returns true or the returned function is called.
   */
  watch(listener: () => boolean): () => void {
    this.waiters.add(listener);
    return () => this.waiters.delete(listener);
  }

  /** Progress of this node's own stream of a task of the rebalance in progress (spread by gossip). */
  recordProgress(partition: number, target: string, keysSent: number, total: number): void {
    this.progress.record(partition, target, keysSent, total);
  }

  /** How far a task of the rebalance in progress has got, as last heard. */
  progressOf(task: TransferTask): TaskProgress | undefined {
    return this.progress.get(task);
  }

  /**
   * Pushes this node's state to every member it believes up and merges their answers: once it
   * resolves, every reachable member has this ring (or a newer one). Failures are left to gossip.
   */
  async syncRing(): Promise<void> {
    const message = this.gossipMessage();
    await Promise.all(
      this.current.members
        .filter((m) => m.id !== this.deps.id && m.state !== 'removed' && this.deps.detector.isUp(m.id))
        .map((m) =>
          this.deps.rpc.call(m.id, message, this.deps.requestTimeoutMs).then(
            (reply) => this.mergeReply(reply),
            () => {},
          ),
        ),
    );
  }

  get state(): ClusterState {
    return this.current;
  }

  get owners(): readonly string[] {
    return this.current.ring.owners;
  }

  /** True once this node owns partitions in the ring it knows, or will once a rebalance ends. */
  get inRing(): boolean {
    const ring = this.current.ring;
    return ring.owners.includes(this.deps.id) || (ring.pending?.owners.includes(this.deps.id) ?? false);
  }

  /** The transfers of the rebalance in progress that are not done yet (all nodes' tasks). */
  openTasks(): TransferTask[] {
    const ring = this.current.ring;
    if (!ring.pending) return [];
    const done = new Set(ring.pending.done);
    return this.plan(ring.owners, ring.pending.owners).filter((t) => !done.has(taskId(t)));
  }

  /** The transfer plan of one ring change, memoised: it is asked for after every state change. */
  private plan(from: readonly string[], to: readonly string[]): TransferTask[] {
    const sources = this.current.members.map((m) => `${m.id}:${m.state === 'removed' ? 0 : 1}`).join();
    const c = this.planCache;
    if (c && c.from === from && c.to === to && c.sources === sources) return c.tasks;
    const tasks = transferPlan(from, to, this.deps.n, (id) => this.canSend(id));
    this.planCache = { from, to, sources, tasks };
    return tasks;
  }
  private planCache:
    | { from: readonly string[]; to: readonly string[]; sources: string; tasks: TransferTask[] }
    | undefined;

  /** Records finished transfers and tells the claimant at once (it finalises the rebalance). */
  markDone(tasks: readonly TransferTask[]): void {
    const ring = this.current.ring;
    if (!ring.pending || tasks.length === 0) return;
    const done = [...new Set([...ring.pending.done, ...tasks.map(taskId)])].sort();
    if (done.length === ring.pending.done.length) return;
    this.replace({
      members: this.current.members,
      ring: { ...ring, pending: { owners: ring.pending.owners, done } },
    });
    const claimant = claimantOf(this.current.members, (id) => this.deps.detector.isUp(id));
    if (claimant === this.deps.id) this.claimIfClaimant();
    else if (claimant !== undefined) this.push(claimant);
  }

  /**
   * Leaves the cluster: marks this node leaving; the claimant moves its partitions to the others
   * and, once every transfer is done, marks it removed. Resolves then.
   */
  async leave(): Promise<void> {
    const self = this.member(this.deps.id);
    if (!self || self.state === 'removed') return;
    if (self.state !== 'leaving') this.updateSelf({ ...self, state: 'leaving', version: self.version + 1 });
    this.broadcast();
    this.claimIfClaimant();
    await this.waitFor(
      () => this.member(this.deps.id)?.state === 'removed',
      () => this.broadcast(),
    );
  }

  /** Admin action for a dead node: its partitions are reassigned and refilled from the survivors. */
  remove(id: string): void {
    const m = this.member(id);
    if (!m) throw new RangeError(`no member ${id}`);
    if (m.state === 'removed') return;
    this.replace({
      members: this.current.members.map((x) =>
        x.id === id ? { ...x, state: 'removed', version: x.version + 1 } : x,
      ),
      ring: this.current.ring,
    });
    this.deps.detector.forget(id);
    this.broadcast();
    this.claimIfClaimant();
  }

  addressOf = (id: string): string | undefined => {
    for (const m of this.current.members) if (m.id === id) return m.address;
    return undefined;
  };

  member(id: string): MemberRecord | undefined {
    return this.current.members.find((m) => m.id === id);
  }

  /** Loads the persisted state; false when this storage has none (a new node). */
  async load(): Promise<boolean> {
    const bytes = await this.deps.storage.get(STATE_KEY);
    if (!bytes) return false;
    this.current = checkState(packr.unpack(bytes), this.deps.partitions);
    this.progress.forRing(this.current.ring.version);
    // The address may differ after a restart (ephemeral ports), and the zone if the operator
    // moved the node: announce the new ones (a zone change makes the claimant lay the ring out again).
    const self = this.member(this.deps.id);
    if (self && (self.address !== this.deps.address() || self.zone !== this.deps.zone)) {
      const { zone: _old, ...rest } = self;
      this.updateSelf(this.withZone({ ...rest, address: this.deps.address(), version: self.version + 1 }));
    }
    return true;
  }

  /** True when no member is in a ring yet and this node has the smallest id among those known. */
  private formsCluster(): boolean {
    if (this.current.ring.owners.length > 0) return false;
    return this.current.members.every((m) => m.state === 'joining' && m.id >= this.deps.id);
  }

  /** A new one-node cluster. */
  bootstrap(): void {
    const self: MemberRecord = this.withZone({
      id: this.deps.id,
      address: this.deps.address(),
      weight: this.deps.weight,
      state: 'valid',
      version: 1,
    });
    const owners = claim(undefined, [claimMember(self)], this.deps.n, this.deps.partitions);
    this.replace({ members: [self], ring: { version: 1, owners, claimant: self.id, pending: null } });
  }

  /**
   * Asks the seeds to let this node in and resolves once it owns partitions. `seeds` is asked
   * again before every round over them (DNS answers change while pods start); unreachable seeds,
   * a failing source and an empty answer are retried with backoff until `stop()`, so nodes may
   * start in any order. An answer that lists only this node's own address forms a new cluster.
   */
  async join(seeds: SeedSource): Promise<void> {
    const self: MemberRecord =
      this.member(this.deps.id) ??
      this.withZone({
        id: this.deps.id,
        address: this.deps.address(),
        weight: this.deps.weight,
        state: 'joining',
        version: 0,
      });
    if (!this.member(this.deps.id)) {
      this.replace({ members: [...this.current.members, self].sort(byId), ring: this.current.ring });
    }
    let delayMs = JOIN_BACKOFF_INITIAL_MS;
    while (!this.stopped) {
      const answer = await this.askSeeds(seeds);
      const targets = answer?.filter((s) => s !== this.deps.address()) ?? [];
      if (answer && answer.length > 0 && targets.length === 0) {
        this.bootstrap();
        return;
      }
      let ringlessAnswers = 0;
      for (const [i, seed] of targets.entries()) {
        if (this.stopped) return;
        try {
          const reply = await this.deps.rpc.callAddress(
            seed,
            [MessageType.Join, memberToWire(this.member(this.deps.id) ?? self)],
            this.deps.requestTimeoutMs,
          );
          const remote = checkState(reply[0], this.deps.partitions);
          this.merge(remote);
          if (this.inRing) return;
          if (remote.ring.owners.length === 0) ringlessAnswers++;
          // Every seed answered and none is in a cluster (nodes started with each other as seeds):
          // the smallest id among them forms the cluster, and the others join it on their next try.
          if (ringlessAnswers === targets.length && this.formsCluster()) {
            this.bootstrap();
            return;
          }
          // The claimant has us; it places joiners once the rebalance in progress ends and tells us.
          await this.waitFor(() => this.inRing, undefined, this.deps.gossipIntervalMs * 2);
          if (this.inRing) return;
        } catch (err) {
          if (i === targets.length - 1) {
            this.deps.onError(err as Error, `join: seed ${seed} not reachable yet, retrying`);
          }
        }
      }
      await this.sleep(delayMs);
      delayMs = Math.min(delayMs * 2, JOIN_BACKOFF_MAX_MS);
    }
  }

  /** One answer of the seed source, checked; undefined (reported) when it failed or is empty. */
  private async askSeeds(seeds: SeedSource): Promise<readonly string[] | undefined> {
    let answer: unknown;
    try {
      answer = await seeds();
    } catch (err) {
      this.deps.onError(err as Error, 'join: seed source failed, retrying');
      return undefined;
    }
    if (
      !Array.isArray(answer) ||
      answer.length > MAX_SEEDS ||
      answer.some((s) => typeof s !== 'string' || s.length === 0 || s.length > 1024)
    ) {
      this.deps.onError(
        new TypeError(`seeds must resolve to an array of at most ${MAX_SEEDS} address strings`),
        'join: bad seed list, retrying',
      );
      return undefined;
    }
    if (answer.length === 0) {
      this.deps.onError(new Error('seed source returned no addresses'), 'join: no seeds yet, retrying');
      return undefined;
    }
    return answer as string[];
  }

  /** Waits on the clock; ends early when the membership stops. */
  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.joinWaiter = this.deps.clock.setTimeout(resolve, ms);
      this.wakeSleeper = resolve;
    });
  }
  private wakeSleeper: (() => void) | undefined;

  /**
   * A restarted node catches up: one gossip exchange with the first seed or known member that
   * answers, no retries (it is already in the ring; periodic gossip does the rest).
   */
  async refresh(seeds: SeedSource): Promise<void> {
    const listed: unknown = await Promise.resolve()
      .then(seeds)
      .catch(() => []);
    const members = this.current.members.filter((m) => m.id !== this.deps.id).map((m) => m.address);
    for (const seed of new Set([...(Array.isArray(listed) ? listed : []), ...members])) {
      if (typeof seed !== 'string') continue;
      if (seed === this.deps.address()) continue;
      try {
        const reply = await this.deps.rpc.callAddress(seed, this.gossipMessage(), this.deps.requestTimeoutMs);
        this.mergeReply(reply);
        return;
      } catch {
        // Not reachable now: the periodic gossip will catch up with someone else.
      }
    }
  }

  /** A node asked to join through us: record it, and let the claimant place it in the ring. */
  async handleJoin(wireMember: unknown): Promise<unknown> {
    const record = memberFromWire(wireMember);
    const known = this.member(record.id);
    if (!known) {
      this.merge({ members: [record], ring: this.current.ring });
    }
    const claimant = claimantOf(this.current.members, (id) => this.deps.detector.isUp(id));
    if (claimant === this.deps.id || claimant === undefined) {
      this.claimIfClaimant();
      return stateToWire(this.current);
    }
    try {
      const reply = await this.deps.rpc.call(
        claimant,
        [MessageType.Join, memberToWire(record)],
        this.deps.requestTimeoutMs,
      );
      this.merge(checkState(reply[0], this.deps.partitions));
    } catch (err) {
      this.deps.onError(err as Error, `join of ${record.id}: claimant ${claimant} unreachable`);
    }
    return stateToWire(this.current);
  }

  /** A peer's gossip: its state and transfer progress; answered with ours (reply fields). */
  handleGossip(wireState: unknown, wireProgress?: unknown): unknown[] {
    this.mergeReply([wireState, wireProgress]);
    return [stateToWire(this.current), this.progress.toWire()];
  }

  /** `[Gossip, state, progress]`; peers that predate progress read only the state. */
  private gossipMessage(): unknown[] {
    return [MessageType.Gossip, stateToWire(this.current), this.progress.toWire()];
  }

  /** Merges a gossip reply `[state, progress?]`, both checked before either is applied. */
  private mergeReply(reply: unknown[]): void {
    const remote = checkState(reply[0], this.deps.partitions);
    const mergeProgress = this.progress.check(reply[1], this.deps.partitions);
    this.merge(remote);
    mergeProgress();
  }

  startGossip(): void {
    if (this.stopped) return;
    // ±25% jitter: nodes started together do not gossip in lockstep.
    const jitter = 0.75 + this.deps.random.next() * 0.5;
    this.gossipTimer = this.deps.clock.setTimeout(() => {
      this.gossipOnce().finally(() => this.startGossip());
    }, this.deps.gossipIntervalMs * jitter);
  }

  async gossipOnce(): Promise<void> {
    const peers = this.current.members.filter(
      (m) => m.id !== this.deps.id && m.state !== 'removed' && this.deps.detector.isUp(m.id),
    );
    if (peers.length === 0) return;
    const peer = peers[this.deps.random.int(peers.length)]!;
    try {
      const reply = await this.deps.rpc.call(peer.id, this.gossipMessage(), this.deps.requestTimeoutMs);
      this.mergeReply(reply);
    } catch {
      // The failure detector already heard about it; gossip simply tries another peer next round.
    }
  }

  stop(): Promise<void> {
    this.stopped = true;
    this.gossipTimer?.cancel();
    this.joinWaiter?.cancel();
    this.wakeSleeper?.();
    for (const waiter of [...this.waiters]) waiter();
    this.waiters.clear();
    return this.persistChain;
  }

  /** Merges a state from elsewhere; the claimant then places joiners. */
  merge(remote: ClusterState): void {
    const merged = mergeState(this.current, remote);
    if (!sameState(merged, this.current)) this.replace(merged);
    this.claimIfClaimant();
  }

  /**
   * The claimant's job: finish the rebalance in progress once all its transfers are done, or
   * start one when members joined, are leaving, or were removed. One rebalance at a time, so
   * joiners arriving meanwhile wait for the next (and concurrent joiners share one).
   */
  private claimIfClaimant(): void {
    const { members, ring } = this.current;
    if (claimantOf(members, (id) => this.deps.detector.isUp(id)) !== this.deps.id) return;
    if (ring.pending) {
      if (this.openTasks().length > 0) return;
      const owners = ring.pending.owners;
      const removedNow = new Set<string>();
      const nextMembers = members.map((m) => {
        if (m.state === 'leaving' && !owners.includes(m.id)) {
          removedNow.add(m.id);
          return { ...m, state: 'removed' as const, version: m.version + 1 };
        }
        return m;
      });
      this.replace({
        members: nextMembers,
        ring: { version: ring.version + 1, owners, claimant: this.deps.id, pending: null },
      });
      this.broadcast(removedNow);
      this.claimIfClaimant();
      return;
    }
    const active = members.filter((m) => m.state === 'valid' || m.state === 'joining');
    const activeIds = new Set(active.map((m) => m.id));
    const joinsOrLeaves =
      members.some((m) => m.state === 'joining') || ring.owners.some((o) => !activeIds.has(o));
    if (active.length === 0) return;
    let target: string[] | undefined;
    if (joinsOrLeaves) {
      target = claim(
        ring.owners.length ? ring.owners : undefined,
        active.map(claimMember),
        this.deps.n,
        this.deps.partitions,
      );
    } else {
      // Zones (or weights) of members changed since the ring was laid out: lay it out again.
      target = this.zoneRelayout(ring.owners, active);
      if (target === undefined) return;
    }
    const plan = ring.owners.length
      ? transferPlan(ring.owners, target, this.deps.n, (id) => this.canSend(id))
      : [];
    // Nothing to stream (e.g. S <= N: the members that stay already hold every replica): a
    // leaving member is done at once, as it would be at the end of a rebalance's transfers.
    const removedNow = new Set<string>();
    const nextMembers = members.map((m) => {
      if (m.state === 'joining') return { ...m, state: 'valid' as const, version: m.version + 1 };
      if (plan.length === 0 && m.state === 'leaving' && !target.includes(m.id)) {
        removedNow.add(m.id);
        return { ...m, state: 'removed' as const, version: m.version + 1 };
      }
      return m;
    });
    this.replace({
      members: nextMembers,
      ring:
        plan.length === 0
          ? { version: ring.version + 1, owners: target, claimant: this.deps.id, pending: null }
          : {
              version: ring.version + 1,
              owners: ring.owners,
              claimant: this.deps.id,
              pending: { owners: target, done: [] },
            },
    });
    this.broadcast(removedNow);
    if (plan.length === 0) this.claimIfClaimant();
  }

  /**
   * With zones, the ring the claim makes for these members when it differs from `owners` (a
   * member's zone or weight changed after it was placed), else undefined. Without zones the ring
   * changes only with joins and leaves, as it always has. Memoised: asked after every merge.
   */
  private zoneRelayout(owners: readonly string[], active: readonly MemberRecord[]): string[] | undefined {
    if (owners.length === 0 || !active.some((m) => m.zone !== undefined)) return undefined;
    const zones = new Set(active.map((m) => m.zone ?? '')).size;
    if (!zonesMatter(active.length, zones, this.deps.n, this.deps.partitions)) return undefined;
    const key = active.map((m) => `${m.id}\u0000${m.weight}\u0000${m.zone ?? ''}`).join('\u0001');
    const cached = this.relayoutCache;
    if (cached && cached.owners === owners && cached.key === key) return cached.target;
    const next = claim(owners, active.map(claimMember), this.deps.n, this.deps.partitions);
    const target = next.every((o, i) => o === owners[i]) ? undefined : next;
    this.relayoutCache = { owners, key, target };
    return target;
  }
  private relayoutCache: { owners: readonly string[]; key: string; target: string[] | undefined } | undefined;

  /** A record of this node with its zone (the field absent without one). */
  private withZone(record: MemberRecord): MemberRecord {
    return this.deps.zone === undefined ? record : { ...record, zone: this.deps.zone };
  }

  private canSend(id: string): boolean {
    const m = this.member(id);
    return m !== undefined && m.state !== 'removed';
  }

  /** Sends our state to one member and merges its answer. */
  private push(id: string): void {
    this.deps.rpc.call(id, this.gossipMessage(), this.deps.requestTimeoutMs).then(
      (reply) => this.mergeReply(reply),
      () => {},
    );
  }

  /**
   * Resolves when `condition` holds after a state change, or after `timeoutMs` (then `onTimeout`
   * runs and, without a timeout bound, the wait goes on). Ends when the membership stops.
   */
  private waitFor(condition: () => boolean, onTimeout?: () => void, timeoutMs?: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (condition() || this.stopped) {
        resolve();
        return;
      }
      let timer: Timer | undefined;
      const waiter = () => {
        if (!condition() && !this.stopped) return false;
        timer?.cancel();
        resolve();
        return true;
      };
      this.waiters.add(waiter);
      const arm = () => {
        timer = this.deps.clock.setTimeout(
          () => {
            if (timeoutMs !== undefined) {
              this.waiters.delete(waiter);
              resolve();
              return;
            }
            onTimeout?.();
            arm();
          },
          timeoutMs ?? this.deps.gossipIntervalMs * 2,
        );
      };
      arm();
    });
  }

  /** Pushes the state to every other member now (best effort: gossip repairs what this misses). */
  private broadcast(alsoRemoved: ReadonlySet<string> = new Set()): void {
    const message = this.gossipMessage();
    for (const m of this.current.members) {
      if (m.id === this.deps.id || (m.state === 'removed' && !alsoRemoved.has(m.id))) continue;
      this.deps.rpc.call(m.id, message, this.deps.requestTimeoutMs).then(
        (reply) => this.mergeReply(reply),
        () => {},
      );
    }
  }

  private updateSelf(record: MemberRecord): void {
    this.replace({
      members: this.current.members.map((m) => (m.id === record.id ? record : m)),
      ring: this.current.ring,
    });
  }

  private replace(next: ClusterState): void {
    const before = this.current;
    this.current = next;
    this.progress.forRing(next.ring.version);
    for (const waiter of [...this.waiters]) if (waiter()) this.waiters.delete(waiter);
    const bytes = packr.pack(stateToWire(next));
    this.persistChain = this.persistChain
      .then(() => this.deps.storage.batch([{ type: 'put', key: STATE_KEY, value: bytes }]))
      .catch((err) => this.deps.onError(err as Error, 'persisting cluster state'));
    this.deps.onChange(before, next);
  }
}

function claimMember(m: MemberRecord): ClaimMember {
  return m.zone === undefined ? { id: m.id, weight: m.weight } : { id: m.id, weight: m.weight, zone: m.zone };
}

function byId(a: MemberRecord, b: MemberRecord): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function memberFromWire(value: unknown): MemberRecord {
  // Reuse the state checker's member validation through a one-member state with an empty ring.
  const state = checkState([[value], [0, [], '', null, []]], 0);
  return state.members[0]!;
}
