/**
 * The data types as causal dot stores sharing one causal context per object (the delta-CRDT
 * framework of Almeida, Shoker & Baquero, which riak_dt's ORSWOT and map follow):
 *
 *   flag        DotSet                 enable adds a dot, disable drops the observed dots (enable wins)
 *   counter     DotFun actor→(P, N)    per actor its latest dot with its running totals (riak_dt_emcntr)
 *   register    DotFun → (ts, value)   last writer wins among the values not yet overwritten
 *   mvregister  DotFun → value         every concurrently assigned value (riak_dt_mvreg)
 *   set         element → DotSet       observed-remove set, add wins (riak_dt_orswot)
 *   map         field → dot store      fields of any type; remove drops the observed dots (riak_dt_map)
 *
 * Join keeps a dot that both sides have, or that one side has and the other has not seen; so
 * removing means "drop the dots you observed", and a concurrent add (a dot the remover never saw)
 * survives. Join is commutative, associative and idempotent (test/unit/types-laws.test.ts).
 * Everything here is pure.
 */
import {
  type CausalContext,
  cloneContext,
  type Dot,
  dotKey,
  emptyContext,
  joinContexts,
  seen,
} from './causal.js';

/** The data types a key can hold (`node.counter(key)`, `node.set(key)`, ...). */
export type TypeName = 'counter' | 'set' | 'map' | 'register' | 'mvregister' | 'flag';
/** Every `TypeName`. */
export const TYPE_NAMES: readonly TypeName[] = ['counter', 'set', 'map', 'register', 'mvregister', 'flag'];

/** A value under the dot of the write that made it. */
export interface Entry<T> {
  /** The write that made it. */
  readonly dot: Dot;
  /** The value. */
  readonly value: T;
}
/** dotKey → entry. Register values are kept as their msgpack bytes: compared and sized exactly. */
export type DotFun<T> = Map<string, Entry<T>>;

/** A data type's dot store: its values, each under the dot of the write that made it. */
export type Store =
  | { type: 'flag'; dots: DotFun<null> }
  | { type: 'counter'; dots: DotFun<readonly [p: number, n: number]> }
  | { type: 'register'; dots: DotFun<readonly [timestamp: number, value: Uint8Array]> }
  | { type: 'mvregister'; dots: DotFun<Uint8Array> }
  | { type: 'set'; elements: Map<string, DotFun<null>>; deferred: Deferred }
  | { type: 'map'; fields: Map<string, Field>; deferred: Deferred };

/**
 * Removals based on a context this state has not fully seen yet (riak_dt_orswot's deferred
 * operations): element (or field key) → the remover's context. Applied to every dot that arrives
 * inside that context, and dropped once the state's own context covers it.
 */
export type Deferred = Map<string, CausalContext>;

/** A map field: its name and its own store. */
export interface Field {
  /** The field's name. */
  readonly name: string;
  /** The field's value. */
  readonly store: Store;
}

/** A whole data-type object: its dot store and its causal context. */
export interface TypedState {
  /** The values. */
  readonly store: Store;
  /** Every dot this state has seen (including removed ones). */
  readonly ctx: CausalContext;
}

export function fieldKey(name: string, type: TypeName): string {
  return `${type}\u0000${name}`;
}

export function emptyStore(type: TypeName): Store {
  switch (type) {
    case 'set':
      return { type, elements: new Map(), deferred: new Map() };
    case 'map':
      return { type, fields: new Map(), deferred: new Map() };
    default:
      return { type, dots: new Map() } as Store;
  }
}

/** The state of a key of `type` that was never written. */
export function emptyState(type: TypeName): TypedState {
  return { store: emptyStore(type), ctx: emptyContext() };
}

/** Bottom: no dots and nothing deferred (such a map field is dropped). */
export function isEmptyStore(s: Store): boolean {
  if (s.type === 'set') return s.elements.size === 0 && s.deferred.size === 0;
  if (s.type === 'map') return s.fields.size === 0 && s.deferred.size === 0;
  return s.dots.size === 0;
}

/** Holds a value (a map lists such fields; a field with only deferred removals is not shown). */
export function hasContent(s: Store): boolean {
  if (s.type === 'set') return s.elements.size > 0;
  if (s.type === 'map') return [...s.fields.values()].some((f) => hasContent(f.store));
  return s.dots.size > 0;
}

/** Every dot of `d` is seen by `ctx`. */
export function covers(ctx: CausalContext, d: CausalContext): boolean {
  for (const [a, n] of d.vv) if ((ctx.vv.get(a) ?? 0) < n && !coveredRange(ctx, a, n)) return false;
  for (const [a, ns] of d.cloud) for (const n of ns) if (!seen(ctx, [a, n])) return false;
  return true;
}

function coveredRange(ctx: CausalContext, actor: string, n: number): boolean {
  const base = ctx.vv.get(actor) ?? 0;
  const cloud = ctx.cloud.get(actor);
  // The gap can only be filled by the cloud: bounded by its size, whatever `n` claims.
  if (!cloud || n - base > cloud.size) return false;
  for (let i = base + 1; i <= n; i++) if (!cloud.has(i)) return false;
  return true;
}

function joinDeferred(a: Deferred, b: Deferred): Deferred {
  const out: Deferred = new Map(a);
  for (const [k, c] of b) out.set(k, out.has(k) ? joinContexts(out.get(k)!, c) : c);
  return out;
}

/**
 * Applies deferred removals to a joined set or map store (in place) and forgets those the joined
 * context now covers: every dot they could remove has arrived, so the plain join keeps it removed.
 */
function applyDeferred(s: Extract<Store, { type: 'set' | 'map' }>, ctx: CausalContext): void {
  for (const [k, d] of s.deferred) {
    if (s.type === 'set') {
      const dots = s.elements.get(k);
      if (dots) {
        const kept = unseen(dots, d);
        if (kept.size > 0) s.elements.set(k, kept);
        else s.elements.delete(k);
      }
    } else {
      const f = s.fields.get(k);
      if (f) {
        const kept = without(f.store, d);
        if (kept) s.fields.set(k, { name: f.name, store: kept });
        else s.fields.delete(k);
      }
    }
    if (covers(ctx, d)) s.deferred.delete(k);
  }
}

// --- join --------------------------------------------------------------------------------------

function joinDots<T>(a: DotFun<T>, ca: CausalContext, b: DotFun<T>, cb: CausalContext): DotFun<T> {
  const out: DotFun<T> = new Map();
  for (const [k, e] of a) if (b.has(k) || !seen(cb, e.dot)) out.set(k, e);
  for (const [k, e] of b) if (!a.has(k) && !seen(ca, e.dot)) out.set(k, e);
  return out;
}

function joinKeyed<S>(
  a: Map<string, S>,
  b: Map<string, S>,
  join: (x: S | undefined, y: S | undefined) => S | undefined,
): Map<string, S> {
  const out = new Map<string, S>();
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    const v = join(a.get(k), b.get(k));
    if (v !== undefined) out.set(k, v);
  }
  return out;
}

/** Join of two stores of the same type under their objects' contexts (`joined`: ca ⊔ cb). */
export function joinStores(
  a: Store,
  ca: CausalContext,
  b: Store,
  cb: CausalContext,
  joined: CausalContext,
): Store {
  if (a.type !== b.type) throw new TypeError(`cannot join a ${a.type} with a ${b.type}`);
  if (a.type === 'set') {
    const bs = b as typeof a;
    const elements = joinKeyed(a.elements, bs.elements, (x, y) => {
      const d = joinDots<null>(x ?? new Map(), ca, y ?? new Map(), cb);
      return d.size > 0 ? d : undefined;
    });
    const out: Store = { type: 'set', elements, deferred: joinDeferred(a.deferred, bs.deferred) };
    applyDeferred(out, joined);
    return out;
  }
  if (a.type === 'map') {
    const bm = b as typeof a;
    const fields = joinKeyed(a.fields, bm.fields, (x, y) => {
      const type = (x ?? y)!.store.type;
      const s = joinStores(x?.store ?? emptyStore(type), ca, y?.store ?? emptyStore(type), cb, joined);
      return isEmptyStore(s) ? undefined : { name: (x ?? y)!.name, store: s };
    });
    const out: Store = { type: 'map', fields, deferred: joinDeferred(a.deferred, bm.deferred) };
    applyDeferred(out, joined);
    return out;
  }
  const dots = joinDots(a.dots as DotFun<unknown>, ca, (b as typeof a).dots as DotFun<unknown>, cb);
  return { type: a.type, dots } as Store;
}

/** Merges two states of one type: commutative, associative, idempotent (the CRDT join). */
export function join(a: TypedState, b: TypedState): TypedState {
  const ctx = joinContexts(a.ctx, b.ctx);
  return { store: joinStores(a.store, a.ctx, b.store, b.ctx, ctx), ctx };
}

// --- removal within a context -------------------------------------------------------------------

/** The store without the dots `ctx` has seen (an observed remove); undefined when nothing is left. */
export function without(s: Store, ctx: CausalContext): Store | undefined {
  let out: Store;
  if (s.type === 'set') {
    const elements = new Map<string, DotFun<null>>();
    for (const [e, dots] of s.elements) {
      const kept = unseen(dots, ctx);
      if (kept.size > 0) elements.set(e, kept);
    }
    out = { type: 'set', elements, deferred: new Map(s.deferred) };
  } else if (s.type === 'map') {
    const fields = new Map<string, Field>();
    for (const [k, f] of s.fields) {
      const kept = without(f.store, ctx);
      if (kept) fields.set(k, { name: f.name, store: kept });
    }
    out = { type: 'map', fields, deferred: new Map(s.deferred) };
  } else {
    out = { type: s.type, dots: unseen(s.dots as DotFun<unknown>, ctx) } as Store;
  }
  return isEmptyStore(out) ? undefined : out;
}

function unseen<T>(dots: DotFun<T>, ctx: CausalContext): DotFun<T> {
  const out: DotFun<T> = new Map();
  for (const [k, e] of dots) if (!seen(ctx, e.dot)) out.set(k, e);
  return out;
}

// --- copies, sizes ------------------------------------------------------------------------------

export function cloneStore(s: Store): Store {
  if (s.type === 'set') {
    return {
      type: 'set',
      elements: new Map([...s.elements].map(([e, d]) => [e, new Map(d)])),
      deferred: new Map(s.deferred),
    };
  }
  if (s.type === 'map') {
    return {
      type: 'map',
      fields: new Map([...s.fields].map(([k, f]) => [k, { name: f.name, store: cloneStore(f.store) }])),
      deferred: new Map(s.deferred),
    };
  }
  return { type: s.type, dots: new Map(s.dots as DotFun<unknown>) } as Store;
}

export function cloneState(s: TypedState): TypedState {
  return { store: cloneStore(s.store), ctx: cloneContext(s.ctx) };
}

/** Set elements plus map fields, at every depth; and the deepest map nesting (a top-level map is 1). */
export function measure(s: Store): { elements: number; depth: number } {
  if (s.type === 'set') return { elements: s.elements.size + s.deferred.size, depth: 0 };
  if (s.type !== 'map') return { elements: 0, depth: 0 };
  let elements = s.fields.size + s.deferred.size;
  let depth = 1;
  for (const f of s.fields.values()) {
    const m = measure(f.store);
    elements += m.elements;
    depth = Math.max(depth, m.depth + 1);
  }
  return { elements, depth };
}

/** The dot of the newest entry per actor (counters keep one; a join may briefly hold two). */
export function latestPerActor<T>(dots: DotFun<T>): Map<string, Entry<T>> {
  const out = new Map<string, Entry<T>>();
  for (const e of dots.values()) {
    const cur = out.get(e.dot[0]);
    if (!cur || e.dot[1] > cur.dot[1]) out.set(e.dot[0], e);
  }
  return out;
}

export { dotKey };
