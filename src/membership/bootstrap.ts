/**
 * Joining and forming a cluster (pure parts): what a seed answered a joining node, the Join
 * message's extra fields, and the rule that lets exactly one of several ring-less nodes form the
 * cluster.
 *
 * The rule: a node with no ring forms one when every seed it asked answered and none of them is in
 * a ring, and its id is smaller than every id it heard from (the seeds that answered, and the
 * nodes that asked *it* to join recently). Two nodes can only both form if neither heard from the
 * other; with one seed list and every node reachable, each hears from all the others, so only the
 * smallest id forms, and it places every ring-less node it knows in the first ring at once.
 */

/** What one seed answered (the `join:attempt` event, and start's error when it gives up). */
export interface SeedAnswer {
  /** The address asked. */
  address: string;
  /** The seed's node id, once it answered. */
  id?: string;
  /**
   * - `unreachable`: no answer (connection refused, timed out, ...);
   * - `no-ring`: answered, but is not in a cluster yet (starting too);
   * - `in-ring`: answered from a cluster, which now knows this node (placing it takes a rebalance);
   * - `refused`: answered that it cannot take this node now (stopping, or the id is still leaving);
   * - `incompatible`: another `partitions` or `quorum.n` than this node's;
   * - `id-in-use`: a live member holds this node's id with another incarnation.
   */
  answer: 'unreachable' | 'no-ring' | 'in-ring' | 'refused' | 'incompatible' | 'id-in-use';
  /** Why, in words. */
  reason: string;
}

/** One round of join attempts (the `join:attempt` event). */
export interface JoinAttempt {
  /** 1 for the first round of this join. */
  attempt: number;
  /** Every seed asked this round, with its answer; empty when the seed source gave nothing. */
  seeds: SeedAnswer[];
  /** Set when the round could not ask anyone: the seed function failed or listed no address. */
  problem?: string;
  /** What the round led to. */
  outcome: 'joined' | 'formed' | 'waiting';
}

/** The Join request's extra field, `[partitions, n, incarnation]`: what a seed checks. */
export interface JoinInfo {
  partitions: number;
  n: number;
  incarnation: string;
}

export function joinInfoToWire(info: JoinInfo): unknown[] {
  return [info.partitions, info.n, info.incarnation];
}

/** Undefined for a peer that sent none (or a malformed one: then nothing is checked against it). */
export function joinInfoFromWire(value: unknown): JoinInfo | undefined {
  if (!Array.isArray(value) || value.length !== 3) return undefined;
  const [partitions, n, incarnation] = value as unknown[];
  if (!isCount(partitions) || !isCount(n) || typeof incarnation !== 'string' || incarnation.length > 256) {
    return undefined;
  }
  return { partitions, n, incarnation };
}

/** A seed's identity and settings, `[id, partitions, n]`, sent back with every Join answer. */
export interface SeedInfo {
  id: string;
  partitions: number;
  n: number;
}

export function seedInfoFromWire(value: unknown): SeedInfo | undefined {
  if (!Array.isArray(value) || value.length !== 3) return undefined;
  const [id, partitions, n] = value as unknown[];
  if (typeof id !== 'string' || id.length > 256 || !isCount(partitions) || !isCount(n)) return undefined;
  return { id, partitions, n };
}

/** Why a seed will not take a joining node: `[kind, message]` in a Join answer. */
export type Refusal = { kind: 'refused' | 'incompatible' | 'id-in-use'; message: string };

export function refusalFromWire(value: unknown): Refusal | undefined {
  if (!Array.isArray(value) || value.length !== 2) return undefined;
  const [kind, message] = value as unknown[];
  if (kind !== 'refused' && kind !== 'incompatible' && kind !== 'id-in-use') return undefined;
  return { kind, message: typeof message === 'string' ? message.slice(0, 1024) : '' };
}

/** Why `mine` and a seed's settings cannot share a cluster, or undefined when they can. */
export function incompatibility(
  mine: { partitions: number; n: number },
  theirs: { partitions: number; n: number },
): string | undefined {
  const diffs: string[] = [];
  if (mine.partitions !== theirs.partitions)
    diffs.push(`partitions ${theirs.partitions} there, ${mine.partitions} here`);
  if (mine.n !== theirs.n) diffs.push(`quorum.n ${theirs.n} there, ${mine.n} here`);
  return diffs.length > 0 ? diffs.join('; ') : undefined;
}

/**
 * Whether `self` forms the cluster after a round in which nobody asked is in a ring: every seed
 * answered (`no-ring`), and `self` is smaller than every id it heard from.
 */
export function formsCluster(
  self: string,
  answers: readonly SeedAnswer[],
  recentJoiners: Iterable<string>,
): boolean {
  if (answers.length === 0 || answers.some((a) => a.answer !== 'no-ring')) return false;
  for (const a of answers) if (a.id === undefined || a.id <= self) return false;
  for (const id of recentJoiners) if (id < self) return false;
  return true;
}

/** One line per seed: `address (id): reason`. */
export function describeAnswers(answers: readonly SeedAnswer[]): string {
  if (answers.length === 0) return 'no seed asked yet';
  return answers
    .map((a) => `${a.address}${a.id !== undefined && a.id !== a.address ? ` (${a.id})` : ''}: ${a.reason}`)
    .join('; ');
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 1 << 20;
}
