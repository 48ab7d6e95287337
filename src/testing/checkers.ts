/**
 * Consistency checkers: pure functions over a recorded history and the state after settling.
 * They know nothing of the simulator, so they work on any history recorded with
 * `HistoryRecorder` (your own workload, your own cluster) plus a `FinalState` snapshot.
 *
 * Every checker returns `{ checker, ok, problems, stats }`; each problem names the key and says
 * in a sentence what went wrong, so a failing seed explains itself.
 */
import { decodeContext } from '../versioning/codec.js';
import { type Context, coversDot, descendsContext } from '../versioning/context.js';
import type { Dot, VersionVector } from '../versioning/vector.js';
import { type HistoryEvent, type Operation, operations } from './sim-history.js';

/** One sibling as a replica stores it, with its value decoded. */
export interface ReplicaSibling {
  /** `[actor, counter]`: the write that created this sibling. */
  dot: [string, number];
  /** The coordinator's (possibly skewed) clock at write time. */
  timestamp: number;
  /** A tombstone, or a value expired by the replica's clock when the snapshot was taken. */
  tombstone: boolean;
  /** Decoded value (absent for a tombstone). */
  value?: unknown;
  /** The value's expiry (ms, the writing coordinator's clock), for a value written with `ttlMs`. */
  expiresAt?: number;
}

/** What one replica holds for one key, read straight from its storage (data region, not hints). */
export interface ReplicaSnapshot {
  /** The replica's node id. */
  node: string;
  /** base64 of the canonical encoded object (`encodeObject`), null when the replica has nothing. */
  encoded: string | null;
  /** The object's causal context: [actor, counter] pairs. */
  ctx: [string, number][];
  /** The versions it holds. */
  siblings: ReplicaSibling[];
}

/** The end state of one key. */
export interface FinalKeyState {
  /** The key. */
  key: string;
  /**
   * `set`: values are arrays of elements merged by union; `register`: single values; `counter`:
   * one number (a `node.counter` key); `orset`: one array of elements (a `node.set` key); `flag`:
   * one boolean; `mvregister`: one array of the values assigned concurrently.
   */
  kind: 'set' | 'register' | 'counter' | 'orset' | 'flag' | 'mvregister';
  /** What a read at r = n returned after settling (every sibling, or the resolver's one value). */
  values: unknown[];
  /** The key's primary replicas (N of them when the ring is healthy). */
  replicas: ReplicaSnapshot[];
}

/** The state the checkers compare the history against, taken after heal + settle. */
export interface FinalState {
  /** Replicas per key (quorum.n). */
  n: number;
  /**
   * How reads resolved siblings. The causal checks (antichain of set values, resurrection)
   * assume `siblings`: with a resolver, reads write merged values back under new versions, so a
   * value may legitimately reappear.
   */
  resolver: 'siblings' | 'union' | 'lww' | 'custom';
  /** `limits.maxSiblings` of the nodes. */
  maxSiblings: number;
  /** Hints still held for their owners after settling (0 once handoff has finished). */
  hintsPending: number;
  /** Every key the workload touched. */
  keys: FinalKeyState[];
  /** The keys a listing (`allKeys()`) returned after the final reads (absent: none was made). */
  listed?: string[];
}

/** One violation a checker found. */
export interface CheckProblem {
  /** The key it concerns, when it concerns one. */
  key?: string;
  /** What is wrong, in a sentence. */
  message: string;
  /** Times (virtual ms) of the operations involved, to cut a history excerpt around them. */
  at?: number[];
}

/** What one checker found. */
export interface CheckResult {
  /** The checker's name (`lost-adds`, `convergence`, ...). */
  checker: string;
  /** True when it found no problem. */
  ok: boolean;
  /** The problems, at most 50 listed (the rest summarised). */
  problems: CheckProblem[];
  /** Counts for summaries (what was checked, what was found). */
  stats: Record<string, number>;
  /** Why the checker skipped part of its work, if it did. */
  note?: string;
}

/** Tuning of the checkers. */
export interface CheckOptions {
  /**
   * For the causal checks (antichain, resurrection): the invocation value of the write that
   * produced `value` on key `key`. Default: a register value is its own id (register writes must
   * be unique), and a set value's last element is the element its add added (the simulator's
   * workload writes set values that way).
   */
  writeId?: (key: FinalKeyState, value: unknown) => unknown;
  /**
   * Most siblings a register key may hold (the stale-context workload: with dotted version
   * vectors each writing client leaves at most about one sibling). Default: unchecked.
   */
  registerSiblingBound?: number;
  /**
   * For the expiry check: how far any node's clock may be from the history's timeline, ms (the
   * simulator's `clockSkewMs`). Default: the expiry check is skipped.
   */
  clockSkewMs?: number;
  /**
   * For the expiry check: how long after its caller saw it fail a put may still be coordinated
   * (a forwarded put delayed in the network), ms. Default 1000.
   */
  lateMs?: number;
}

/** The result of every checker. */
export interface CheckReport {
  /** True when every checker passed. */
  ok: boolean;
  /** One result per checker. */
  results: CheckResult[];
}

/** Problems listed per checker before the rest is summarised as "... and k more". */
const MAX_PROBLEMS = 50;

function result(
  checker: string,
  problems: CheckProblem[],
  stats: Record<string, number>,
  note?: string,
): CheckResult {
  const shown =
    problems.length > MAX_PROBLEMS
      ? [...problems.slice(0, MAX_PROBLEMS), { message: `... and ${problems.length - MAX_PROBLEMS} more` }]
      : problems;
  const r: CheckResult = { checker, ok: problems.length === 0, problems: shown, stats };
  if (note !== undefined) r.note = note;
  return r;
}

function byKey(ops: readonly Operation[]): Map<string, Operation[]> {
  const m = new Map<string, Operation[]>();
  for (const op of ops) {
    const list = m.get(op.key) ?? [];
    if (list.length === 0) m.set(op.key, list);
    list.push(op);
  }
  return m;
}

/** Union of the elements of a set key's final values; non-array values are reported. */
function finalElements(k: FinalKeyState, problems: CheckProblem[]): Set<string> {
  const out = new Set<string>();
  for (const v of k.values) {
    if (!Array.isArray(v)) {
      problems.push({ key: k.key, message: `final value ${JSON.stringify(v)} is not a set (array)` });
      continue;
    }
    for (const e of v) out.add(JSON.stringify(e));
  }
  return out;
}

function list(values: Iterable<string>, max = 20): string {
  const all = [...values];
  return all.length > max ? `${all.slice(0, max).join(', ')}, ... (${all.length} in all)` : all.join(', ');
}

/**
 * Jepsen's set checker, per set key: every acknowledged add must be in the final set
 * (acknowledged − final = lost). Stats also count indeterminate adds that made it (`recovered`).
 */
export function checkLostAdds(history: readonly HistoryEvent[], final: FinalState): CheckResult {
  const problems: CheckProblem[] = [];
  const ops = byKey(operations(history).filter((o) => o.f === 'add'));
  let attempted = 0;
  let acknowledged = 0;
  let lost = 0;
  let recovered = 0;
  let keysWithLoss = 0;
  for (const k of final.keys) {
    if (k.kind !== 'set') continue;
    const present = finalElements(k, problems);
    const lostHere: string[] = [];
    const at: number[] = [];
    for (const op of ops.get(k.key) ?? []) {
      attempted++;
      const e = JSON.stringify(op.value);
      if (op.outcome === 'ok') {
        acknowledged++;
        if (!present.has(e)) {
          lostHere.push(`${e} (by ${op.process} at t=${op.invokeTime})`);
          at.push(op.invokeTime);
        }
      } else if (present.has(e)) recovered++;
    }
    if (lostHere.length > 0) {
      keysWithLoss++;
      lost += lostHere.length;
      problems.push({
        key: k.key,
        message: `${lostHere.length} acknowledged add${lostHere.length === 1 ? '' : 's'} missing from the final set: ${list(lostHere, 10)}`,
        at,
      });
    }
  }
  return result('lost-adds', problems, { attempted, acknowledged, lost, recovered, keysWithLoss });
}

/**
 * No value from nowhere: every element of a final set was the argument of some add on that key,
 * and every final register value (and every live sibling on a replica) was written to that key.
 */
export function checkUnexpectedValues(history: readonly HistoryEvent[], final: FinalState): CheckResult {
  const problems: CheckProblem[] = [];
  const ops = byKey(operations(history).filter((o) => o.f === 'add' || o.f === 'write'));
  let checked = 0;
  for (const k of final.keys) {
    const attempted = new Set((ops.get(k.key) ?? []).map((o) => JSON.stringify(o.value)));
    const unexpected = new Set<string>();
    if (k.kind === 'set') {
      const present = finalElements(k, problems);
      for (const r of k.replicas) {
        for (const s of r.siblings) {
          if (!s.tombstone && Array.isArray(s.value)) for (const e of s.value) present.add(JSON.stringify(e));
        }
      }
      for (const e of present) {
        checked++;
        if (!attempted.has(e)) unexpected.add(e);
      }
    } else {
      const values = [
        ...k.values,
        ...k.replicas.flatMap((r) => r.siblings.filter((s) => !s.tombstone).map((s) => s.value)),
      ];
      for (const v of values) {
        checked++;
        const e = JSON.stringify(v);
        if (!attempted.has(e)) unexpected.add(e);
      }
    }
    if (unexpected.size > 0) {
      problems.push({
        key: k.key,
        message: `value${unexpected.size === 1 ? '' : 's'} never written to this key: ${list(unexpected)}`,
      });
    }
  }
  return result('unexpected-values', problems, { checked, keys: final.keys.length });
}

/**
 * Replica convergence: after settling, all N primaries of every key hold byte-identical
 * canonical objects (same causal context, same siblings), and no hint is left undelivered.
 */
export function checkConvergence(_history: readonly HistoryEvent[], final: FinalState): CheckResult {
  const problems: CheckProblem[] = [];
  let diverged = 0;
  for (const k of final.keys) {
    if (k.replicas.length !== final.n) {
      problems.push({
        key: k.key,
        message: `${k.replicas.length} primaries known (${k.replicas.map((r) => r.node).join(', ')}), expected ${final.n}`,
      });
    }
    const distinct = new Set(k.replicas.map((r) => r.encoded));
    if (distinct.size > 1) {
      diverged++;
      const describe = (r: ReplicaSnapshot) =>
        r.encoded === null
          ? `${r.node}: nothing`
          : `${r.node}: ctx {${r.ctx.map(([a, c]) => `${a}:${c}`).join(' ')}} siblings [${r.siblings
              .map((s) => `${s.dot[0]}:${s.dot[1]}${s.tombstone ? '(deleted)' : ''}`)
              .join(' ')}]`;
      problems.push({
        key: k.key,
        message: `replicas differ after settling: ${k.replicas.map(describe).join('; ')}`,
      });
    }
  }
  if (final.hintsPending > 0) {
    problems.push({ message: `${final.hintsPending} hints still pending after settling` });
  }
  return result('convergence', problems, {
    keys: final.keys.length,
    diverged,
    hintsPending: final.hintsPending,
  });
}

function toVector(pairs: readonly [string, number][]): VersionVector {
  return new Map(pairs);
}

function safeContext(s: string | undefined): Context | undefined {
  if (s === undefined) return undefined;
  try {
    return decodeContext(s, Number.MAX_SAFE_INTEGER);
  } catch {
    return undefined;
  }
}

/** Decoded contexts of every write operation (add, write, delete) on one key. */
interface WriteOp {
  op: Operation;
  /** The context the write was sent with (undefined: none known). */
  sent: Context | undefined;
  /** The context an acknowledged write returned (covers the version it created). */
  result: Context | undefined;
}

function writeOps(history: readonly HistoryEvent[]): Map<string, WriteOp[]> {
  const out = new Map<string, WriteOp[]>();
  for (const op of operations(history)) {
    if (op.f === 'read') continue;
    const list = out.get(op.key) ?? [];
    if (list.length === 0) out.set(op.key, list);
    list.push({
      op,
      sent: safeContext(op.completion?.context),
      result: op.outcome === 'ok' ? safeContext(op.completion?.resultContext) : undefined,
    });
  }
  return out;
}

/**
 * The operation that wrote `value` to key `k`, by `writeId` (default: a register value is its own
 * id, a set value's last element is the element its add added).
 */
function writerLookup(
  k: FinalKeyState,
  ops: readonly WriteOp[],
  options: CheckOptions,
): (value: unknown) => WriteOp | undefined {
  const byId = new Map<string, WriteOp>();
  for (const w of ops) if (!isDelete(w.op)) byId.set(JSON.stringify(w.op.value), w);
  const id = options.writeId ?? defaultWriteId;
  return (value) => {
    const v = id(k, value);
    return v === undefined ? undefined : byId.get(JSON.stringify(v));
  };
}

function isDelete(op: Operation): boolean {
  return op.f === 'delete' || op.f === 'delete-found';
}

/**
 * What a write had seen, as a context: the one it was sent with, or for a delete without a
 * context the one it returned (the coordinator's read, which it deleted, plus its tombstone).
 */
function seenContext(w: WriteOp): Context | undefined {
  return w.op.f === 'delete-found' ? w.result : w.sent;
}

function defaultWriteId(k: FinalKeyState, value: unknown): unknown {
  if (k.kind === 'register') return value;
  return Array.isArray(value) && value.length > 0 ? value[value.length - 1] : undefined;
}

function describeOp(w: WriteOp): string {
  const o = w.op;
  const what =
    o.f === 'delete'
      ? 'delete'
      : o.f === 'delete-found'
        ? 'delete without a context'
        : `${o.f} ${JSON.stringify(o.value)}`;
  return `${what} (${o.process} at t=${o.invokeTime}${o.outcome === 'ok' ? ', acknowledged' : `, ${o.outcome}`})`;
}

/**
 * Siblings form an antichain: no sibling may be one that a fellow sibling's writer had already
 * seen. Checked on every replica object:
 * - structure: distinct dots, each covered by the object's ctx (what dotted version vectors need
 *   for a put with a context to supersede exactly what that context saw);
 * - causality (no resolver): no two live siblings A and B where B's write was sent with a context
 *   that descends the context A's acknowledged write returned, i.e. B's writer had read A and
 *   its put should have superseded A. The writer of a sibling is found with `writeId`.
 */
export function checkSiblingAntichain(
  history: readonly HistoryEvent[],
  final: FinalState,
  options: CheckOptions = {},
): CheckResult {
  const problems: CheckProblem[] = [];
  const causal = final.resolver === 'siblings';
  const ops = writeOps(history);
  let objects = 0;
  let pairs = 0;
  for (const k of final.keys) {
    const writerOf = writerLookup(k, ops.get(k.key) ?? [], options);
    for (const r of k.replicas) {
      if (r.encoded === null) continue;
      objects++;
      const ctx = toVector(r.ctx);
      const seen = new Set<string>();
      for (const s of r.siblings) {
        const id = `${s.dot[0]}:${s.dot[1]}`;
        if (seen.has(id)) problems.push({ key: k.key, message: `${r.node}: two siblings share dot ${id}` });
        seen.add(id);
        if ((ctx.get(s.dot[0]) ?? 0) < s.dot[1]) {
          problems.push({ key: k.key, message: `${r.node}: sibling dot ${id} is not covered by the ctx` });
        }
      }
      if (!causal) continue;
      const live = r.siblings.filter((s) => !s.tombstone).map((s) => ({ s, w: writerOf(s.value) }));
      for (const a of live) {
        for (const b of live) {
          if (a === b || !a.w || !b.w || a.w === b.w) continue;
          pairs++;
          if (a.w.result && b.w.sent && descendsContext(b.w.sent, a.w.result)) {
            problems.push({
              key: k.key,
              message: `${r.node}: sibling ${a.s.dot.join(':')} from ${describeOp(a.w)} coexists with sibling ${b.s.dot.join(':')} from ${describeOp(b.w)}, whose context had seen it`,
              at: [a.w.op.invokeTime, b.w.op.invokeTime],
            });
          }
        }
      }
    }
  }
  return result(
    'sibling-antichain',
    problems,
    { objects, pairs },
    causal ? undefined : `causal checks skipped: reads use a resolver (${final.resolver})`,
  );
}

/**
 * Bounded siblings: no replica object, and no read in the history, exceeds `limits.maxSiblings`;
 * with `registerSiblingBound`, no register key exceeds that either.
 */
export function checkSiblingBounds(
  history: readonly HistoryEvent[],
  final: FinalState,
  options: CheckOptions = {},
): CheckResult {
  const problems: CheckProblem[] = [];
  let maxSet = 0;
  let maxRegister = 0;
  let maxRead = 0;
  for (const k of final.keys) {
    for (const r of k.replicas) {
      const count = r.siblings.length;
      if (k.kind === 'set') maxSet = Math.max(maxSet, count);
      else maxRegister = Math.max(maxRegister, count);
      if (count > final.maxSiblings) {
        problems.push({
          key: k.key,
          message: `${r.node} holds ${count} siblings, over maxSiblings ${final.maxSiblings}`,
        });
      } else if (
        k.kind === 'register' &&
        options.registerSiblingBound !== undefined &&
        count > options.registerSiblingBound
      ) {
        problems.push({
          key: k.key,
          message: `${r.node} holds ${count} siblings, over the stale-context bound ${options.registerSiblingBound}`,
        });
      }
    }
  }
  for (const e of history) {
    if (e.type !== 'ok' || e.siblings === undefined) continue;
    maxRead = Math.max(maxRead, e.siblings);
    if (e.siblings > final.maxSiblings) {
      problems.push({
        key: e.key,
        message: `a read by ${e.process} at t=${e.time} saw ${e.siblings} siblings, over maxSiblings ${final.maxSiblings}`,
      });
    }
  }
  return result('sibling-bounds', problems, {
    maxSetSiblings: maxSet,
    maxRegisterSiblings: maxRegister,
    maxSiblingsRead: maxRead,
  });
}

/**
 * No resurrection: a value whose acknowledged write was later superseded by an acknowledged
 * write or delete that had seen it (sent with a context descending the context the first write
 * returned) must not be in the final read nor live on any replica. For a delete this is the
 * classic tombstone resurrection: a key whose last acknowledged operation was a delete with a
 * context covering every acknowledged write, and no later write, must read as []. A delete
 * without a context counts with the context it returned (what its coordinator read and deleted).
 * Skipped with a resolver (its write-backs may legitimately write an old value again under a new
 * version).
 */
export function checkNoResurrection(
  history: readonly HistoryEvent[],
  final: FinalState,
  options: CheckOptions = {},
): CheckResult {
  if (final.resolver !== 'siblings') {
    return result('no-resurrection', [], {}, `skipped: reads use a resolver (${final.resolver})`);
  }
  const problems: CheckProblem[] = [];
  const ops = writeOps(history);
  let checked = 0;
  let deletedKeys = 0;
  for (const k of final.keys) {
    const keyOps = ops.get(k.key) ?? [];
    const writerOf = writerLookup(k, keyOps, options);
    const acked = keyOps.filter((w) => w.op.outcome === 'ok' && seenContext(w) !== undefined);
    if (acked.length > 0 && isDelete(acked[acked.length - 1]!.op)) deletedKeys++;
    // Each live value once, with every place it was found.
    const where = new Map<string, { value: unknown; places: string[] }>();
    const note = (value: unknown, place: string) => {
      const id = JSON.stringify(value);
      const entry = where.get(id) ?? { value, places: [] };
      entry.places.push(place);
      where.set(id, entry);
    };
    for (const v of k.values) note(v, 'the final read');
    for (const r of k.replicas) for (const s of r.siblings) if (!s.tombstone) note(s.value, r.node);
    for (const { value, places } of where.values()) {
      checked++;
      const w = writerOf(value);
      if (!w?.result) continue;
      const superseder = acked.find((a) => a !== w && descendsContext(seenContext(a)!, w.result!));
      if (!superseder) continue;
      const kind = isDelete(superseder.op) ? 'deleted' : 'overwritten';
      problems.push({
        key: k.key,
        message: `the value of ${describeOp(w)} was ${kind} by ${describeOp(superseder)} with a context that had seen it, yet is live in ${places.join(', ')}`,
        at: [w.op.invokeTime, superseder.op.invokeTime],
      });
    }
  }
  return result('no-resurrection', problems, { checked, deletedKeys });
}

/**
 * Causality, on register keys: every acknowledged write is in the final state (the final read or
 * a live sibling on a replica) unless some write or delete that may have been applied had been
 * shown it (its `observed` list, recorded from what its caller's reads returned and what the
 * contexts it chained through had written). A write that vanished although nobody who wrote had
 * seen it was dropped by a context that covered more than its holder observed. Set keys are left
 * to `checkLostAdds`, which is stricter there (a set add is never legitimately removed). A write
 * with a `ttlMs` may be gone once it expired (`checkExpiredReads` checks those). A delete without
 * a context was shown nothing, but deleted what its coordinator read: an acknowledged one may have
 * removed the writes its returned context covers; one that failed, anything. Skipped with a
 * resolver, whose write-backs supersede siblings without a recorded write.
 */
export function checkCausal(history: readonly HistoryEvent[], final: FinalState): CheckResult {
  if (final.resolver !== 'siblings') {
    return result('causal', [], {}, `skipped: reads use a resolver (${final.resolver})`);
  }
  const problems: CheckProblem[] = [];
  const ops = byKey(operations(history).filter((o) => o.f === 'write' || isDelete(o)));
  let acknowledged = 0;
  let superseded = 0;
  let lost = 0;
  let expired = 0;
  let keys = 0;
  for (const k of final.keys) {
    if (k.kind !== 'register') continue;
    keys++;
    const keyOps = ops.get(k.key) ?? [];
    const present = new Set(k.values.map((v) => JSON.stringify(v)));
    for (const r of k.replicas)
      for (const s of r.siblings) if (!s.tombstone) present.add(JSON.stringify(s.value));
    // What the writers that may have been applied had seen; undefined: one of them saw anything.
    let seen: Set<string> | undefined = new Set();
    // Contexts returned by acknowledged deletes without a context: what they deleted.
    const deletedFound: Context[] = [];
    for (const op of keyOps) {
      if (!mayHaveApplied(op)) continue;
      if (op.f === 'delete-found') {
        const deleted = op.outcome === 'ok' ? safeContext(op.completion?.resultContext) : undefined;
        if (deleted === undefined) seen = undefined;
        else deletedFound.push(deleted);
        if (seen === undefined) break;
        continue;
      }
      const observed = op.completion?.observed;
      if (observed === undefined) {
        if (op.completion?.context !== undefined || op.outcome === 'pending') seen = undefined;
        if (seen === undefined) break;
        continue;
      }
      for (const v of observed) seen.add(JSON.stringify(v));
    }
    for (const op of keyOps) {
      if (op.f !== 'write' || op.outcome !== 'ok') continue;
      acknowledged++;
      const id = JSON.stringify(op.value);
      if (present.has(id)) continue;
      if (op.ttlMs !== undefined) {
        expired++;
        continue;
      }
      const dots = newDots(op);
      if (
        seen === undefined ||
        seen.has(id) ||
        (dots.length > 0 && deletedFound.some((d) => dots.every((dot) => coversDot(d.vector, d.cloud, dot))))
      ) {
        superseded++;
        continue;
      }
      lost++;
      problems.push({
        key: k.key,
        message: `acknowledged write ${id} (${op.process} at t=${op.invokeTime}) is gone, and no write had been shown it`,
        at: [op.invokeTime],
      });
    }
  }
  return result('causal', problems, { keys, acknowledged, superseded, lost, expired });
}

/**
 * The dots an acknowledged write added: those of the context it returned that the one it was sent
 * with did not cover. (Comparing whole contexts would not do: contexts drop old entries at
 * `maxContextEntries`, so a later context may lack an entry an earlier one had.)
 */
function newDots(op: Operation): Dot[] {
  const result = safeContext(op.completion?.resultContext);
  if (result === undefined) return [];
  const sent = safeContext(op.completion?.context);
  const seen = (dot: Dot) => sent !== undefined && coversDot(sent.vector, sent.cloud, dot);
  const dots: Dot[] = [];
  for (const [actor, counter] of result.vector) if (!seen([actor, counter])) dots.push([actor, counter]);
  for (const [actor, counters] of result.cloud)
    for (const counter of counters) if (!seen([actor, counter])) dots.push([actor, counter]);
  return dots;
}

/** Operations that count as "may have been applied": acknowledged, indeterminate or pending. */
function mayHaveApplied(op: Operation): boolean {
  return op.outcome !== 'fail' || op.completion?.definite !== true;
}

/**
 * Counters (`node.counter`): the final value lies in [sum of acknowledged increments, that + sum
 * of indeterminate ones] (a failed increment may or may not have reached a replica). Stats:
 * `difference` = final − acknowledged, summed over keys (what indeterminate increments added).
 */
export function checkCounters(history: readonly HistoryEvent[], final: FinalState): CheckResult {
  const problems: CheckProblem[] = [];
  const ops = byKey(operations(history).filter((o) => o.f === 'increment'));
  let keys = 0;
  let acknowledged = 0;
  let indeterminate = 0;
  let difference = 0;
  for (const k of final.keys) {
    if (k.kind !== 'counter') continue;
    keys++;
    let acked = 0;
    let unknown = 0;
    for (const op of ops.get(k.key) ?? []) {
      const by = Number(op.value);
      if (op.outcome === 'ok') acked += by;
      else if (mayHaveApplied(op)) unknown += by;
    }
    acknowledged += acked;
    indeterminate += unknown;
    const value = k.values.length === 1 && typeof k.values[0] === 'number' ? k.values[0] : undefined;
    if (value === undefined) {
      problems.push({ key: k.key, message: `final read ${JSON.stringify(k.values)} is not one number` });
      continue;
    }
    difference += value - acked;
    if (value < acked || value > acked + unknown) {
      problems.push({
        key: k.key,
        message: `final value ${value}, acknowledged increments sum to ${acked}, indeterminate ones to ${unknown}: ${value - acked} is outside [0, ${unknown}]`,
      });
    }
  }
  return result('counters', problems, { keys, acknowledged, indeterminate, difference });
}

/**
 * May `later` have seen what `earlier` wrote? Its own read may come any time until it completes
 * (never, for one that failed without effect); one that failed indeterminately or never completed
 * may still read and write after its caller gave up.
 */
function mayHaveSeen(later: Operation, earlier: Operation): boolean {
  if (!mayHaveApplied(later)) return false;
  if (later.outcome !== 'ok') return true;
  return later.completeTime! > earlier.invokeTime;
}

/**
 * Enable-wins flags: a flag an acknowledged enable set reads true at the end unless a disable
 * that may have seen that enable may have been applied (a disable removes only the enables its
 * read observed). Whether a flag must read false is not checked: a disable's read may miss an
 * acknowledged enable under sloppy quorum.
 */
export function checkFlags(history: readonly HistoryEvent[], final: FinalState): CheckResult {
  const problems: CheckProblem[] = [];
  const all = operations(history);
  const enables = byKey(all.filter((o) => o.f === 'enable'));
  const disables = byKey(all.filter((o) => o.f === 'disable'));
  let keys = 0;
  let mustBeOn = 0;
  for (const k of final.keys) {
    if (k.kind !== 'flag') continue;
    keys++;
    const value = k.values.length === 1 && typeof k.values[0] === 'boolean' ? k.values[0] : undefined;
    if (value === undefined) {
      problems.push({ key: k.key, message: `final read ${JSON.stringify(k.values)} is not one boolean` });
      continue;
    }
    const unseen = (enables.get(k.key) ?? []).find(
      (e) => e.outcome === 'ok' && !(disables.get(k.key) ?? []).some((d) => mayHaveSeen(d, e)),
    );
    if (!unseen) continue;
    mustBeOn++;
    if (!value) {
      problems.push({
        key: k.key,
        message: `the flag reads false, yet its enable (${unseen.process} at t=${unseen.invokeTime}) was acknowledged and no disable could have seen it`,
        at: [unseen.invokeTime],
      });
    }
  }
  return result('flags', problems, { keys, mustBeOn });
}

/**
 * Multi-value registers (each assignment a unique value): every final value was assigned by
 * someone, and an acknowledged assignment is in the final value unless another assignment that
 * may have seen it may have been applied (an assignment supersedes what its read observed).
 */
export function checkMvRegisters(history: readonly HistoryEvent[], final: FinalState): CheckResult {
  const problems: CheckProblem[] = [];
  const assigns = byKey(operations(history).filter((o) => o.f === 'assign'));
  let keys = 0;
  let acknowledged = 0;
  let superseded = 0;
  for (const k of final.keys) {
    if (k.kind !== 'mvregister') continue;
    keys++;
    const value =
      k.values.length === 1 && Array.isArray(k.values[0]) ? (k.values[0] as unknown[]) : undefined;
    if (!value) {
      problems.push({ key: k.key, message: `final read ${JSON.stringify(k.values)} is not one array` });
      continue;
    }
    const ops = assigns.get(k.key) ?? [];
    const present = new Set(value.map((v) => JSON.stringify(v)));
    const written = new Set(ops.map((o) => JSON.stringify(o.value)));
    for (const v of present)
      if (!written.has(v)) problems.push({ key: k.key, message: `final value ${v} was never assigned` });
    for (const a of ops) {
      if (a.outcome !== 'ok') continue;
      acknowledged++;
      if (present.has(JSON.stringify(a.value))) continue;
      if (ops.some((b) => b !== a && mayHaveSeen(b, a))) {
        superseded++;
        continue;
      }
      problems.push({
        key: k.key,
        message: `acknowledged assignment ${JSON.stringify(a.value)} (${a.process} at t=${a.invokeTime}) is gone, and no assignment could have seen it`,
        at: [a.invokeTime],
      });
    }
  }
  return result('mv-registers', problems, { keys, acknowledged, superseded });
}

/**
 * OR-sets (`node.set`, elements added once each): no acknowledged add is missing from the final
 * set unless a remove of it (which had seen it: the workload removes only elements its read saw)
 * may have been applied; no element whose remove was acknowledged is in the final set; every
 * final element was added by someone.
 */
export function checkOrSets(history: readonly HistoryEvent[], final: FinalState): CheckResult {
  const problems: CheckProblem[] = [];
  const all = operations(history);
  const adds = byKey(all.filter((o) => o.f === 'sadd'));
  const removes = byKey(all.filter((o) => o.f === 'srem'));
  let keys = 0;
  let acknowledged = 0;
  let lost = 0;
  let removed = 0;
  let resurrected = 0;
  for (const k of final.keys) {
    if (k.kind !== 'orset') continue;
    keys++;
    const value =
      k.values.length === 1 && Array.isArray(k.values[0]) ? (k.values[0] as unknown[]) : undefined;
    if (!value) {
      problems.push({ key: k.key, message: `final read ${JSON.stringify(k.values)} is not one set` });
      continue;
    }
    const present = new Set(value.map((e) => String(e)));
    const removedBy = new Map<string, Operation[]>();
    for (const op of removes.get(k.key) ?? []) {
      const e = op.completion?.value;
      if (typeof e !== 'string') continue;
      removedBy.set(e, [...(removedBy.get(e) ?? []), op]);
    }
    const added = new Set<string>();
    for (const op of adds.get(k.key) ?? []) {
      const e = String(op.value);
      added.add(e);
      if (op.outcome !== 'ok') continue;
      acknowledged++;
      if (present.has(e) || (removedBy.get(e) ?? []).some(mayHaveApplied)) continue;
      lost++;
      problems.push({
        key: k.key,
        message: `acknowledged add of ${e} (${op.process} at t=${op.invokeTime}) is missing, and no remove of it was attempted`,
        at: [op.invokeTime],
      });
    }
    for (const [e, ops] of removedBy) {
      const acked = ops.find((o) => o.outcome === 'ok');
      if (!acked) continue;
      removed++;
      if (!present.has(e)) continue;
      resurrected++;
      problems.push({
        key: k.key,
        message: `${e} is in the final set, yet its remove (${acked.process} at t=${acked.invokeTime}) was acknowledged`,
        at: [acked.invokeTime],
      });
    }
    for (const e of present) {
      if (!added.has(e))
        problems.push({ key: k.key, message: `${e} is in the final set but was never added` });
    }
  }
  return result('orsets', problems, { keys, acknowledged, lost, removed, resurrected });
}

/** Runs every checker (the plain-value ones on `set` and `register` keys, the typed ones on theirs). */
export function checkAll(
  history: readonly HistoryEvent[],
  final: FinalState,
  options: CheckOptions = {},
): CheckReport {
  const plain = { ...final, keys: final.keys.filter((k) => k.kind === 'set' || k.kind === 'register') };
  const results = [
    checkLostAdds(history, plain),
    checkUnexpectedValues(history, plain),
    checkConvergence(history, final),
    checkSiblingAntichain(history, plain, options),
    checkSiblingBounds(history, final, options),
    checkNoResurrection(history, plain, options),
    checkCausal(history, plain),
    checkCounters(history, final),
    checkOrSets(history, final),
    checkFlags(history, final),
    checkMvRegisters(history, final),
    checkExpiredReads(history, options),
    checkListing(history, final),
  ];
  return { ok: results.every((r) => r.ok), results };
}

/**
 * Listing (`keys()` pages, `allKeys()`): no listing, during the run or after it, returns a key
 * nothing had been written to by the time it completed. After settling, the final listing holds
 * every set or register key whose final read found a value (unless it was written with a `ttlMs`,
 * which may expire between the read and the listing) and no key whose final read found none
 * (deleted and expired keys stay out). An operation on `key/field` (a map's field) is a write to
 * `key`. During the run a listing promises no more than "at least
 * once for keys live on the replica asked", which faults make uncheckable, so only phantoms count.
 */
export function checkListing(history: readonly HistoryEvent[], final: FinalState): CheckResult {
  const problems: CheckProblem[] = [];
  const ops = operations(history);
  // When each key was first written to (any write-like invocation).
  const firstWrite = new Map<string, number>();
  const ttlKeys = new Set<string>();
  for (const o of ops) {
    if (o.f === 'read' || o.f === 'list' || isDelete(o) || o.f === 'srem') continue;
    // A field of a map is recorded as `key/field`: a write to `key`.
    for (const key of [o.key, o.key.split('/')[0]!])
      if (!firstWrite.has(key)) firstWrite.set(key, o.invokeTime);
    if (o.ttlMs !== undefined) ttlKeys.add(o.key);
  }
  let listings = 0;
  let keysListed = 0;
  for (const o of ops) {
    if (o.f !== 'list') continue;
    if (o.process === 'final' && o.outcome !== 'ok')
      problems.push({ message: `the final listing failed: ${o.completion?.error ?? 'it never completed'}` });
    if (o.outcome !== 'ok') continue;
    listings++;
    const keys = Array.isArray(o.completion?.value) ? (o.completion.value as unknown[]) : [];
    keysListed += keys.length;
    for (const key of new Set(keys.map(String))) {
      const first = firstWrite.get(key);
      if (first === undefined || first > o.completeTime!) {
        problems.push({
          key,
          message: `${o.process}'s listing at t=${o.invokeTime} (@${o.node}) returned ${key}, which nothing had been written to`,
          at: [o.invokeTime],
        });
      }
    }
  }
  let missing = 0;
  let extra = 0;
  if (final.listed !== undefined) {
    const listed = new Set(final.listed);
    for (const k of final.keys) {
      if (k.kind !== 'set' && k.kind !== 'register') continue;
      const live = k.values.length > 0;
      if (live && !listed.has(k.key) && !ttlKeys.has(k.key)) {
        missing++;
        problems.push({
          key: k.key,
          message: `the final listing lacks ${k.key}, whose final read found a value`,
        });
      } else if (!live && listed.has(k.key)) {
        extra++;
        problems.push({
          key: k.key,
          message: `the final listing returned ${k.key}, whose final read found none`,
        });
      }
    }
  }
  return result(
    'listing',
    problems,
    { listings, keysListed, finalListed: final.listed?.length ?? 0, missing, extra },
    final.listed === undefined ? 'no final listing' : undefined,
  );
}

/**
 * Expiry (writes with `ttlMs`): no read returns a value whose expiry had passed on every node's
 * clock. A value's expiry is its coordinator's clock at write time plus `ttlMs`; the coordinator
 * wrote it before the put completed, on a clock at most `clockSkewMs` ahead of the history's
 * timeline, so the value has expired by `end + ttlMs + clockSkewMs` on that timeline, where `end`
 * is when the put completed (`lateMs` later for a put that failed indeterminately or never
 * completed: it may still be coordinated after its caller gave up). Every node's clock is then
 * past it `clockSkewMs` later, so a read invoked from then on — coordinated by any node, however
 * its clock jumped within the skew — must leave the value out. With bounded skew this is also
 * "an expired value never comes back once it read as absent everywhere": every later read comes
 * later still. (That older values a TTL write superseded stay gone is `checkNoResurrection`'s.)
 */
export function checkExpiredReads(history: readonly HistoryEvent[], options: CheckOptions = {}): CheckResult {
  const skew = options.clockSkewMs;
  const ops = operations(history);
  const ttlWrites = ops.filter((o) => o.f === 'write' && o.ttlMs !== undefined);
  if (skew === undefined) {
    return result('expired-reads', [], { ttlWrites: ttlWrites.length }, 'skipped: no clockSkewMs given');
  }
  const late = options.lateMs ?? 1000;
  const end = Math.max(0, ...ops.map((o) => o.completeTime ?? o.invokeTime));
  /** Per key: value id → the time from which no read may return it. */
  const deadline = new Map<string, Map<string, { at: number; op: Operation }>>();
  for (const w of ttlWrites) {
    if (w.outcome === 'fail' && w.completion?.definite) continue;
    const done = w.outcome === 'ok' ? w.completeTime! : (w.completeTime ?? end) + late;
    const at = done + w.ttlMs! + 2 * skew;
    const byValue = deadline.get(w.key) ?? new Map();
    byValue.set(JSON.stringify(w.value), { at, op: w });
    deadline.set(w.key, byValue);
  }
  const problems: CheckProblem[] = [];
  let readsChecked = 0;
  let expiredChecked = 0;
  for (const r of ops) {
    if (r.f !== 'read' || r.outcome !== 'ok') continue;
    const byValue = deadline.get(r.key);
    if (!byValue) continue;
    readsChecked++;
    for (const { at } of byValue.values()) if (r.invokeTime >= at) expiredChecked++;
    const values = Array.isArray(r.completion?.value) ? (r.completion.value as unknown[]) : [];
    for (const v of values) {
      const d = byValue.get(JSON.stringify(v));
      if (!d || r.invokeTime < d.at) continue;
      problems.push({
        key: r.key,
        message: `${r.process}'s read at t=${r.invokeTime} (@${r.node}) returned ${JSON.stringify(v)}, written by ${d.op.process} at t=${d.op.invokeTime} with ttlMs ${d.op.ttlMs}: expired on every clock by t=${d.at}`,
        at: [d.op.invokeTime, r.invokeTime],
      });
    }
  }
  return result('expired-reads', problems, { ttlWrites: ttlWrites.length, readsChecked, expiredChecked });
}

/** Keys named by the problems of a report, in order of first mention. */
export function problemKeys(report: CheckReport): string[] {
  const keys = new Set<string>();
  for (const r of report.results) for (const p of r.problems) if (p.key !== undefined) keys.add(p.key);
  return [...keys];
}
