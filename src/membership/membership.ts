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
import { IdInUseError } from '../errors.js';
import { metaKey } from '../replica/layout.js';
import { type ClaimMember, claim, zonesMatter } from '../ring/index.js';
import type { Storage } from '../storage/types.js';
import type { Rpc } from '../transport/rpc.js';
import { MessageType, RemoteError } from '../transport/wire.js';
import { onAbort } from '../util/abort.js';
import type { Clock, Timer } from '../util/clock.js';
import type { Random } from '../util/random.js';
import {
  describeAnswers,
  formsCluster,
  incompatibility,
  type JoinAttempt,
  joinInfoFromWire,
  joinInfoToWire,
  type Refusal,
  refusalFromWire,
  type SeedAnswer,
  seedInfoFromWire,
} from './bootstrap.js';
import type { FailureDetector } from './failure-detector.js';
import { type TransferTask, taskId, transferPlan } from './plan.js';
import { type TaskProgress, TransferProgress } from './progress.js';
import {
  checkState,
  claimantOf,
  memberToWire,
  mergeMembers,
  mergeState,
  sameState,
  stateToWire,
} from './state.js';
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
/**
 * A Join may wait on two more requests at the seed (asking a live holder of the id who it is,
 * forwarding to the claimant): its timeout is this many request timeouts.
 */
const JOIN_TIMEOUT_FACTOR = 3;
/** Most ids remembered of ring-less nodes that asked this one to join (see `formsCluster`). */
const MAX_RECENT_JOINERS = 1024;

export interface MembershipDeps {
  id: string;
  /** This node's incarnation (see node.ts): tells a restart of this node from another node under its id. */
  incarnation: () => string;
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
  /** After every round of join attempts. */
  onJoinAttempt: (attempt: JoinAttempt) => void;
}

export class Membership {
  private current: ClusterState;
  private gossipTimer: Timer | undefined;
  private stopped = false;
  private persistChain: Promise<void> = Promise.resolve();
  private readonly waiters = new Set<() => boolean>();
  private readonly progress: TransferProgress;
  /** Ring-less nodes that asked this one to join while it had no ring either, with when. */
  private readonly recentJoiners = new Map<string, number>();
  /** The last round of join attempts, for the error of a start that gives up. */
  private lastAttempt: JoinAttempt | undefined;

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

  /**
   * A new cluster formed by this node, with every ring-less node it knows of (those that answered
   * its join attempts or asked it to join) in the first ring at once: no rebalance follows.
   */
  bootstrap(): void {
    const self = this.deps.id;
    const placed: MemberRecord[] = this.current.members
      .filter((m) => m.state === 'joining' && m.id !== self)
      .map((m) => ({ ...m, state: 'valid', version: m.version + 1 }));
    const known = this.member(self);
    placed.push(
      this.withZone({
        id: self,
        address: this.deps.address(),
        weight: this.deps.weight,
        state: 'valid',
        version: (known?.version ?? 0) + 1,
      }),
    );
    placed.sort(byId);
    const owners = claim(undefined, placed.map(claimMember), this.deps.n, this.deps.partitions);
    this.replace({
      members: mergeMembers(this.current.members, placed),
      ring: { version: this.current.ring.version + 1, owners, claimant: self, pending: null },
    });
    this.broadcast();
  }

  /**
   * Asks the seeds to let this node in and resolves once it owns partitions (or will, once the
   * rebalance placing it ends). `seeds` is asked again before every round (DNS answers change
   * while pods start); each round asks every seed at once. Unreachable seeds, a failing source
   * and an empty answer are retried with backoff, so nodes may start in any order. An answer
   * listing only this node's own address forms a new cluster; when every seed answered and none is
   * in a cluster, the smallest id forms it (see bootstrap.ts). Rejects with `IdInUseError` when a
   * live member holds this node's id, with `signal.reason` on abort; ends when the membership stops.
   */
  async join(seeds: SeedSource, signal?: AbortSignal): Promise<void> {
    let delayMs = JOIN_BACKOFF_INITIAL_MS;
    for (let attempt = 1; !this.stopped; attempt++) {
      if (signal?.aborted) throw signal.reason;
      this.becomeJoining();
      if (this.inRing) return;
      const listed = await this.askSeeds(seeds);
      if (signal?.aborted) throw signal.reason;
      if (this.stopped) return;
      if (typeof listed === 'string') {
        this.report({ attempt, seeds: [], problem: listed, outcome: 'waiting' });
      } else {
        const targets = listed.filter((s) => s !== this.deps.address());
        if (targets.length === 0) {
          this.bootstrap();
          this.report({ attempt, seeds: [], outcome: 'formed' });
          return;
        }
        const self = this.member(this.deps.id)!;
        const answers = await Promise.all(targets.map((address) => this.askToJoin(address, self, signal)));
        if (signal?.aborted) throw signal.reason;
        if (this.stopped) return;
        const inUse = answers.find((a) => a.answer === 'id-in-use');
        if (inUse) {
          this.report({ attempt, seeds: answers, outcome: 'waiting' });
          throw new IdInUseError(this.deps.id, inUse.address, `${inUse.address}: ${inUse.reason}`);
        }
        if (this.inRing) {
          this.report({ attempt, seeds: answers, outcome: 'joined' });
          return;
        }
        if (formsCluster(this.deps.id, answers, this.joinersHeardFrom())) {
          this.bootstrap();
          this.report({ attempt, seeds: answers, outcome: 'formed' });
          return;
        }
        this.report({ attempt, seeds: answers, outcome: 'waiting' });
        // A cluster has us now: its claimant places joiners once the rebalance in progress ends.
        if (answers.some((a) => a.answer === 'in-ring')) {
          await this.pause(this.deps.gossipIntervalMs * 2, signal);
          continue;
        }
      }
      await this.pause(delayMs, signal);
      delayMs = Math.min(delayMs * 2, JOIN_BACKOFF_MAX_MS);
    }
  }

  /** What the last round of join attempts heard, for the error of a start that gives up. */
  joinReport(): string {
    const last = this.lastAttempt;
    if (!last) return 'no seed asked yet';
    if (last.problem !== undefined) return last.problem;
    return describeAnswers(last.seeds);
  }

  private report(attempt: JoinAttempt): void {
    this.lastAttempt = attempt;
    this.deps.onJoinAttempt(attempt);
  }

  /**
   * Makes this node's own record a joining one: a new node has none yet; an id that left or was
   * removed comes back with a record newer than its removal; a new address is announced.
   */
  private becomeJoining(): void {
    const known = this.member(this.deps.id);
    const address = this.deps.address();
    if (!known) {
      const self: MemberRecord = this.withZone({
        id: this.deps.id,
        address,
        weight: this.deps.weight,
        state: 'joining',
        version: 0,
      });
      this.replace({ members: [...this.current.members, self].sort(byId), ring: this.current.ring });
    } else if (known.state === 'removed') {
      const { zone: _old, ...rest } = known;
      this.updateSelf(
        this.withZone({
          ...rest,
          address,
          weight: this.deps.weight,
          state: 'joining',
          version: known.version + 1,
        }),
      );
    } else if (known.address !== address) {
      this.updateSelf({ ...known, address, version: known.version + 1 });
    }
  }

  /** One Join request to one seed; merges the state it answers with and says what it answered. */
  private async askToJoin(address: string, self: MemberRecord, signal?: AbortSignal): Promise<SeedAnswer> {
    let reply: unknown[];
    try {
      reply = await this.deps.rpc.callAddress(
        address,
        [
          MessageType.Join,
          memberToWire(self),
          joinInfoToWire({
            partitions: this.deps.partitions,
            n: this.deps.n,
            incarnation: this.deps.incarnation(),
          }),
        ],
        this.deps.requestTimeoutMs * JOIN_TIMEOUT_FACTOR,
      );
    } catch (err) {
      if (err instanceof RemoteError) {
        return {
          address,
          answer: 'refused',
          reason:
            err.code === 'DYNAMO_NOT_RUNNING'
              ? 'refused: not running (starting or stopping)'
              : `refused: ${err.message}`,
        };
      }
      const auth = (err as { code?: unknown }).code === 'DYNAMO_AUTH';
      return {
        address,
        answer: auth ? 'refused' : 'unreachable',
        reason: `${auth ? 'authentication failed' : 'unreachable'}: ${messageOf(err)}`,
      };
    }
    const info = seedInfoFromWire(reply[1]);
    const id = info?.id;
    const mismatch = info && incompatibility(this.deps, info);
    if (mismatch) return { address, id, answer: 'incompatible', reason: `incompatible: ${mismatch}` };
    const refusal = refusalFromWire(reply[2]);
    if (refusal) return { address, id, answer: refusal.kind, reason: refusalReason(refusal) };
    let remote: ClusterState;
    try {
      remote = checkState(reply[0], this.deps.partitions);
    } catch (err) {
      return { address, id, answer: 'incompatible', reason: `incompatible: ${messageOf(err)}` };
    }
    if (this.stopped || signal?.aborted) return { address, id, answer: 'refused', reason: 'join abandoned' };
    this.merge(remote);
    const seedId = id ?? remote.members.find((m) => m.address === address)?.id;
    return remote.ring.owners.length > 0
      ? {
          address,
          id: seedId,
          answer: 'in-ring',
          reason: `in a cluster (ring version ${remote.ring.version})`,
        }
      : { address, id: seedId, answer: 'no-ring', reason: 'not in a cluster yet' };
  }

  /** Ids of ring-less nodes that asked this one to join lately (older entries are forgotten). */
  private joinersHeardFrom(): string[] {
    const since =
      this.deps.clock.now() - (2 * JOIN_BACKOFF_MAX_MS + JOIN_TIMEOUT_FACTOR * this.deps.requestTimeoutMs);
    const ids: string[] = [];
    for (const [id, at] of this.recentJoiners) {
      if (at < since) this.recentJoiners.delete(id);
      else ids.push(id);
    }
    return ids;
  }

  /** Waits `ms` on the clock, or less: until this node is in a ring, the membership stops, or abort. */
  private pause(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: Timer | undefined;
      let removeAbort = () => {};
      const done = (): true => {
        timer?.cancel();
        removeAbort();
        resolve();
        return true;
      };
      const waiter = () => (this.inRing || this.stopped ? done() : false);
      if (waiter()) return;
      this.waiters.add(waiter);
      timer = this.deps.clock.setTimeout(() => {
        this.waiters.delete(waiter);
        done();
      }, ms);
      removeAbort = onAbort(signal, () => {
        this.waiters.delete(waiter);
        done();
      });
    });
  }

  /** One answer of the seed source, checked; a string says why it gave none (reported, retried). */
  private async askSeeds(seeds: SeedSource): Promise<readonly string[] | string> {
    let answer: unknown;
    try {
      answer = await seeds();
    } catch (err) {
      this.deps.onError(err as Error, 'join: seed source failed, retrying');
      return `the seed function failed: ${messageOf(err)}`;
    }
    if (
      !Array.isArray(answer) ||
      answer.length > MAX_SEEDS ||
      answer.some((s) => typeof s !== 'string' || s.length === 0 || s.length > 1024)
    ) {
      const problem = `seeds must resolve to an array of at most ${MAX_SEEDS} address strings`;
      this.deps.onError(new TypeError(problem), 'join: bad seed list, retrying');
      return problem;
    }
    if (answer.length === 0) {
      this.deps.onError(new Error('seed source returned no addresses'), 'join: no seeds yet, retrying');
      return 'the seed function listed no address';
    }
    return answer as string[];
  }

  /**
   * A restarted node catches up: one gossip exchange with the first seed or known member that
   * answers, no retries (it is already in the ring; periodic gossip does the rest).
   */
  async refresh(seeds: SeedSource, signal?: AbortSignal): Promise<void> {
    const listed: unknown = await Promise.resolve()
      .then(seeds)
      .catch(() => []);
    for (const seed of new Set([...(Array.isArray(listed) ? listed : []), ...this.knownAddresses()])) {
      if (signal?.aborted) throw signal.reason;
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

  /** Addresses of the other members this node knows (not removed ones). */
  knownAddresses(): string[] {
    return this.current.members
      .filter((m) => m.id !== this.deps.id && m.state !== 'removed')
      .map((m) => m.address);
  }

  /**
   * A node asks to join through us. Refused (in the answer, nothing recorded) when its settings
   * differ from ours, when its id is this node's or a live member's with another incarnation, or
   * while a member under its id is still leaving. Otherwise recorded as joining (an id that left
   * or was removed comes back as a new record; a member's new address replaces its old one) and
   * left to the claimant to place. Answer fields: `[state | null, [id, partitions, n], refusal | null]`.
   */
  async handleJoin(wireMember: unknown, wireInfo?: unknown): Promise<unknown[]> {
    const record = memberFromWire(wireMember);
    const info = joinInfoFromWire(wireInfo);
    const seedInfo = [this.deps.id, this.deps.partitions, this.deps.n];
    const refuse = (kind: Refusal['kind'], message: string): unknown[] => [null, seedInfo, [kind, message]];
    if (info) {
      const mismatch = incompatibility(info, this.deps);
      if (mismatch) return refuse('incompatible', mismatch);
    }
    if (record.id === this.deps.id) {
      // Its own Join, forwarded back by a seed that takes it for the claimant: nothing to do.
      if (info !== undefined && info.incarnation === this.deps.incarnation()) {
        return [stateToWire(this.current), seedInfo, null];
      }
      return refuse('id-in-use', `id ${record.id} is the node answering at ${this.deps.address()}`);
    }
    const known = this.member(record.id);
    if (known?.state === 'leaving') {
      return refuse(
        'refused',
        `id ${record.id} is still leaving the cluster; it can join again once it has left`,
      );
    }
    if (known && known.state !== 'removed' && known.address !== record.address) {
      const holder = await this.holderAt(known);
      if (holder !== undefined && holder !== info?.incarnation) {
        return refuse('id-in-use', `id ${record.id} is held by a live member at ${known.address}`);
      }
    }
    if (this.current.ring.owners.length === 0) this.heardFromJoiner(record.id);
    const accepted = acceptedRecord(known, record);
    if (accepted !== known) this.merge({ members: [accepted], ring: this.current.ring });
    const claimant = claimantOf(this.current.members, (id) => this.deps.detector.isUp(id));
    // The joiner itself may be the claimant (a member placed already, asking again; or one that
    // restarted with an empty disk): it learns its place from our state, not from itself.
    if (claimant === this.deps.id || claimant === undefined || claimant === record.id) {
      this.claimIfClaimant();
      return [stateToWire(this.current), seedInfo, null];
    }
    try {
      const reply = await this.deps.rpc.call(
        claimant,
        [MessageType.Join, memberToWire(this.member(record.id) ?? accepted), wireInfo ?? null],
        this.deps.requestTimeoutMs,
      );
      const refusal = refusalFromWire(reply[2]);
      if (refusal) return refuse(refusal.kind, refusal.message);
      if (reply[0] !== null) this.merge(checkState(reply[0], this.deps.partitions));
    } catch (err) {
      this.deps.onError(err as Error, `join of ${record.id}: claimant ${claimant} unreachable`);
    }
    return [stateToWire(this.current), seedInfo, null];
  }

  /**
   * The incarnation of the live node at `member`'s address that answers as `member` (an empty
   * string when it does not say), or undefined when nothing answers there as that member.
   */
  private async holderAt(member: MemberRecord): Promise<string | undefined> {
    if (!this.deps.detector.isUp(member.id)) return undefined;
    try {
      const reply = await this.deps.rpc.callAddress(
        member.address,
        [MessageType.Ping],
        this.deps.requestTimeoutMs,
      );
      if (reply.length === 0) return '';
      return reply[0] === member.id && typeof reply[1] === 'string' ? reply[1] : undefined;
    } catch {
      return undefined;
    }
  }

  private heardFromJoiner(id: string): void {
    this.recentJoiners.delete(id);
    if (this.recentJoiners.size >= MAX_RECENT_JOINERS) {
      const oldest = this.recentJoiners.keys().next().value;
      if (oldest !== undefined) this.recentJoiners.delete(oldest);
    }
    this.recentJoiners.set(id, this.deps.clock.now());
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

/**
 * The record a seed keeps for a node asking to join: an id it never saw as asked; an id that left
 * or was removed as a new joining record, newer than the removal; a member at a new address (its
 * holder is gone, or it is the same incarnation) with that address, keeping its state and weight.
 */
function acceptedRecord(known: MemberRecord | undefined, asked: MemberRecord): MemberRecord {
  if (!known) return asked;
  const version = Math.max(known.version, asked.version) + 1;
  if (known.state === 'removed') return { ...asked, state: 'joining', version };
  if (known.address !== asked.address) return { ...known, address: asked.address, version };
  return known;
}

function refusalReason(refusal: Refusal): string {
  const what = refusal.kind === 'id-in-use' ? 'id in use' : refusal.kind;
  return `${what}: ${refusal.message}`;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function memberFromWire(value: unknown): MemberRecord {
  // Reuse the state checker's member validation through a one-member state with an empty ring.
  const state = checkState([[value], [0, [], '', null, []]], 0);
  return state.members[0]!;
}
