/**
 * The history of a simulated (or any other) run, in the style of Jepsen: every client operation
 * appears twice, once when it is invoked and once when it completes (`ok` or `fail`), so checkers
 * can tell concurrent operations from ordered ones. Fault injections appear as `nemesis` events.
 *
 * Everything here is plain JSON (no Maps, no bytes), so a history can be saved, diffed, and
 * compared byte for byte between two runs of the same seed.
 */

import { decodeContext } from '../versioning/codec.js';

/** What a client operation does. */
export type OperationFunction =
  /** Set keys: read, merge the siblings (set union), add one new element, write with the read's context. */
  | 'add'
  /** Register keys: write a new unique value (with a fresh or a stale context). */
  | 'write'
  /** Register keys: delete with the context of a fresh read. */
  | 'delete'
  /**
   * Register keys: `delete(key)` without a context: the coordinator reads at its quorum and
   * deletes what it found. Its `ok` carries the returned context (what it deleted) and no
   * `observed`: the caller never saw the values.
   */
  | 'delete-found'
  /** Counter keys (`workload: 'counter'`): `node.counter(key).increment(value)`. */
  | 'increment'
  /** OR-set keys (`workload: 'orset'`): `node.set(key).add(value)`, a unique element. */
  | 'sadd'
  /** OR-set keys: read the set, then `node.set(key).remove(value, { context })` of an element it saw. */
  | 'srem'
  /** Flag keys (a map's flag field, `workload: 'map'`): enable it. */
  | 'enable'
  /** Flag keys: disable it (what the operation's own read observed). */
  | 'disable'
  /** Multi-value register keys (a map's mvRegister field): assign a unique value. */
  | 'assign'
  /** Any key: a read; `ok` carries the values returned. */
  | 'read'
  /**
   * Every key, page by page (`keys({ limit, cursor })`); recorded under key `*`, its `ok` carries
   * the keys listed.
   */
  | 'list';

/** One client operation event. */
export interface OperationEvent {
  /** Position in the history (0-based, dense). */
  index: number;
  /** Virtual ms since the start of the run (the shared clock, not a node's skewed clock). */
  time: number;
  /** Who issued it: a client (`c0`, `c1`, ...), `settle` or `final` (the simulator's own reads). */
  process: string;
  /** `invoke` when the operation starts, `ok` or `fail` when it completes. */
  type: 'invoke' | 'ok' | 'fail';
  /** The operation (`add`, `write`, `delete`, `read`, ...). */
  f: OperationFunction;
  /** The key it touches. */
  key: string;
  /** The node the request was sent to. */
  node: string;
  /**
   * invoke of `add`: the element added; invoke of `write`: the value written; `ok` of `read`:
   * the values returned (siblings, or the resolver's single value).
   */
  value?: unknown;
  /** `write` / `delete` completions: the context the write was sent with (absent: none sent). */
  context?: string;
  /** `ok` of a write, delete or add: the context the put returned (covers the new version). */
  resultContext?: string;
  /**
   * `write` / `delete` completions: the writes its caller had been shown when it got the
   * context it wrote with (the register values a read returned, and the values written since in
   * the chain of contexts that writes hand back), by value. The causal checker's evidence that a
   * write superseding another had seen it; a write without it is assumed to have seen anything.
   */
  observed?: unknown[];
  /** `ok` of `add` / `read`: how many siblings the read saw. */
  siblings?: number;
  /** `fail`: the error code (`DYNAMO_QUORUM`, ...) or message. */
  error?: string;
  /** invoke of `write`: the put's `ttlMs` (absent: the value never expires). */
  ttlMs?: number;
  /**
   * `fail`: true when the operation certainly had no effect (it failed before anything was
   * written, or with a `LimitError`). Otherwise a failed write is indeterminate: it may have
   * reached some replicas and may still appear later.
   */
  definite?: boolean;
}

/** A fault injected or removed by the nemesis. */
export interface NemesisEvent {
  /** Position in the history (0-based, dense). */
  index: number;
  /** Virtual ms since the start of the run. */
  time: number;
  /** Always `nemesis`. */
  process: 'nemesis';
  /** Always `nemesis`. */
  type: 'nemesis';
  /** `start` when the fault begins, `stop` when it is undone. */
  phase: 'start' | 'stop';
  /** Fault kind (`partition-halves`, `crash`, ...). */
  f: string;
  /** Human-readable description (`n1 n3 | n2 n4 n5`, `drop 12%`, ...). */
  value: string;
}

/** One entry of a run's history: a client operation's step or a fault. */
export type HistoryEvent = OperationEvent | NemesisEvent;

/** Fields an operation completion may add to its invocation. */
export type Completion = Pick<
  OperationEvent,
  'value' | 'context' | 'resultContext' | 'observed' | 'siblings' | 'error' | 'definite'
>;

/**
 * Appends events to a history. Use it to record your own workload's history and run the
 * checkers on it. Times come from `now` (virtual ms); they are rounded to microseconds so the JSON
 * form stays short and stable.
 */
export class HistoryRecorder {
  /** The history so far, in order. */
  readonly events: HistoryEvent[] = [];

  constructor(private readonly now: () => number) {}

  /** Records that `process` started operation `f` on `key` through `node` (a write's value and `ttlMs`). */
  invoke(
    process: string,
    f: OperationFunction,
    key: string,
    node: string,
    value?: unknown,
    ttlMs?: number,
  ): void {
    const e: OperationEvent = { index: 0, time: 0, process, type: 'invoke', f, key, node };
    if (value !== undefined) e.value = value;
    if (ttlMs !== undefined) e.ttlMs = ttlMs;
    this.push(e);
  }

  /** Records that `process`'s operation succeeded, with what it returned. */
  ok(process: string, f: OperationFunction, key: string, node: string, completion: Completion = {}): void {
    this.push({ index: 0, time: 0, process, type: 'ok', f, key, node, ...defined(completion) });
  }

  /** Records that `process`'s operation failed (`completion.definite`: certainly without effect). */
  fail(process: string, f: OperationFunction, key: string, node: string, completion: Completion = {}): void {
    this.push({ index: 0, time: 0, process, type: 'fail', f, key, node, ...defined(completion) });
  }

  /** Records a fault starting or ending. */
  nemesis(phase: 'start' | 'stop', f: string, value: string): void {
    this.push({ index: 0, time: 0, process: 'nemesis', type: 'nemesis', phase, f, value });
  }

  private push(e: HistoryEvent): void {
    e.index = this.events.length;
    e.time = Math.round(this.now() * 1000) / 1000;
    this.events.push(e);
  }
}

function defined(c: Completion): Completion {
  const out: Completion = {};
  for (const [k, v] of Object.entries(c)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** An invocation paired with its completion (Jepsen: one process has one operation in flight). */
export interface Operation {
  /** Who issued it. */
  process: string;
  /** The operation. */
  f: OperationFunction;
  /** The key it touched. */
  key: string;
  /** The node it was sent to. */
  node: string;
  /** The invocation's value (element added, value written). */
  value: unknown;
  /** The invocation's `ttlMs` (a write that expires). */
  ttlMs?: number;
  /** `pending`: invoked but never completed (the run ended first); treat like an indeterminate failure. */
  outcome: 'ok' | 'fail' | 'pending';
  /** History index of the invocation. */
  invokeIndex: number;
  /** Virtual ms of the invocation. */
  invokeTime: number;
  /** History index of the completion (undefined while pending). */
  completeIndex: number | undefined;
  /** Virtual ms of the completion (undefined while pending). */
  completeTime: number | undefined;
  /** The completion event (absent while pending). */
  completion: OperationEvent | undefined;
}

/** Pairs every invocation with its completion, in invocation order. Nemesis events are skipped. */
export function operations(history: readonly HistoryEvent[]): Operation[] {
  const out: Operation[] = [];
  const open = new Map<string, Operation>();
  for (const e of history) {
    if (e.type === 'nemesis') continue;
    if (e.type === 'invoke') {
      const op: Operation = {
        process: e.process,
        f: e.f,
        key: e.key,
        node: e.node,
        value: e.value,
        ...(e.ttlMs === undefined ? {} : { ttlMs: e.ttlMs }),
        outcome: 'pending',
        invokeIndex: e.index,
        invokeTime: e.time,
        completeIndex: undefined,
        completeTime: undefined,
        completion: undefined,
      };
      open.set(e.process, op);
      out.push(op);
    } else {
      const op = open.get(e.process);
      if (!op) continue;
      open.delete(e.process);
      op.outcome = e.type;
      op.completeIndex = e.index;
      op.completeTime = e.time;
      op.completion = e;
    }
  }
  return out;
}

/** One line per event, e.g. `  1234.567  c2  ok      add    set:3  @n3  siblings=1`. */
export function formatEvent(e: HistoryEvent): string {
  const t = e.time.toFixed(3).padStart(11);
  if (e.type === 'nemesis') return `${t}  nemesis  ${e.phase.padEnd(6)} ${e.f}: ${e.value}`;
  const parts = [t, e.process.padEnd(7), e.type.padEnd(6), e.f.padEnd(6), e.key, `@${e.node}`];
  if (e.value !== undefined) parts.push(shortJson(e.value));
  if (e.ttlMs !== undefined) parts.push(`ttl=${e.ttlMs}`);
  if (e.siblings !== undefined) parts.push(`siblings=${e.siblings}`);
  if (e.error !== undefined) parts.push(`error=${e.error}${e.definite ? ' (definite)' : ''}`);
  if (e.context !== undefined) parts.push(`ctx ${formatContext(e.context)}`);
  if (e.resultContext !== undefined) parts.push(`→ ${formatContext(e.resultContext)}`);
  return parts.join('  ');
}

/**
 * A context as `{n1 1000003915, n2 1000003877}`: actor = node id, plus its incarnation when a
 * node appears with more than one (after a wipe); dots of its cloud follow as `+n1:1000004012`.
 * Opaque strings that do not decode stay as they are.
 */
export function formatContext(context: string): string {
  let v: Map<string, number>;
  let cloud: [string, number][];
  try {
    const decoded = decodeContext(context, Number.MAX_SAFE_INTEGER);
    v = decoded.vector;
    cloud = [...decoded.cloud].flatMap(([actor, counters]) =>
      counters.map((c): [string, number] => [actor, c]),
    );
  } catch {
    return context;
  }
  const nodes = new Map<string, number>();
  for (const actor of v.keys()) {
    const node = actor.split('@')[0]!;
    nodes.set(node, (nodes.get(node) ?? 0) + 1);
  }
  const name = (actor: string) => {
    const node = actor.split('@')[0]!;
    return (nodes.get(node) ?? 0) > 1 ? actor : node;
  };
  const entries = [
    ...[...v].map(([actor, counter]) => `${name(actor)} ${counter}`),
    ...cloud.map(([actor, counter]) => `+${name(actor)}:${counter}`),
  ];
  return `{${entries.join(', ')}}`;
}

function shortJson(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

/** What `historyExcerpt` shows. */
export interface ExcerptOptions {
  /** Most lines; a longer excerpt keeps its first and last halves. Default 60. */
  maxLines?: number;
  /** Only events at or after this time (virtual ms). */
  from?: number;
  /** Only events at or before this time (virtual ms). */
  to?: number;
  /** Keep the simulator's settle reads (`settle:*` processes). Default false: they repeat the final read. */
  includeSettle?: boolean;
}

/**
 * The part of a history that explains a problem with `key`: the operations on that key (within
 * `from`..`to` when given) and the nemesis events among them.
 */
export function historyExcerpt(
  history: readonly HistoryEvent[],
  key: string,
  options: ExcerptOptions = {},
): string[] {
  const maxLines = options.maxLines ?? 60;
  const from = options.from ?? Number.NEGATIVE_INFINITY;
  const to = options.to ?? Number.POSITIVE_INFINITY;
  const onKey = history.filter(
    (e) =>
      e.type !== 'nemesis' &&
      e.key === key &&
      (options.includeSettle || !e.process.startsWith('settle')) &&
      ((e.time >= from && e.time <= to) || e.process === 'final'),
  );
  if (onKey.length === 0) return [`(no operation on ${key})`];
  const first = onKey[0]!.index;
  const last = onKey[onKey.length - 1]!.index;
  const keep = new Set(onKey);
  const lines = history
    .filter((e) =>
      e.type === 'nemesis'
        ? e.index > first && e.index < last && e.time >= from && e.time <= to
        : keep.has(e),
    )
    .map(formatEvent);
  if (lines.length <= maxLines) return lines;
  const half = Math.floor(maxLines / 2);
  return [...lines.slice(0, half), `  ... ${lines.length - 2 * half} more ...`, ...lines.slice(-half)];
}
