/**
 * Operations and values of the data types. An operation runs on a copy of the state it read
 * (`Mutation`): every change takes a fresh dot of the writing actor, and removals drop only the
 * dots of the `observed` context (the read the remove is based on), exactly as riak_dt does.
 */
import { Packr } from 'msgpackr';
import { LimitError } from '../errors.js';
import {
  addDot,
  type CausalContext,
  type Dot,
  dotKey,
  joinContexts,
  joinInto,
  nextDot,
  seen,
} from './causal.js';
import {
  covers,
  type Deferred,
  type DotFun,
  emptyStore,
  type Field,
  fieldKey,
  hasContent,
  isEmptyStore,
  latestPerActor,
  type Store,
  type TypedState,
  type TypeName,
} from './state.js';

const values = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });
const utf8 = new TextEncoder();

export function encodeRegisterValue(value: unknown): Uint8Array {
  return values.pack(value);
}

export function decodeRegisterValue(bytes: Uint8Array): unknown {
  return values.unpack(bytes);
}

/** What a map's `value()` returns, grouped by field type (as Riak's clients show maps). */
export interface MapValue {
  /** Counter fields, by name. */
  counters: Record<string, number>;
  /** Set fields, by name. */
  sets: Record<string, string[]>;
  /** Register fields, by name. */
  registers: Record<string, unknown>;
  /** Multi-value register fields, by name. */
  mvRegisters: Record<string, unknown[]>;
  /** Flag fields, by name. */
  flags: Record<string, boolean>;
  /** Embedded maps, by name. */
  maps: Record<string, MapValue>;
}

/** The value type of each data type. */
export interface TypeValues {
  /** A counter's value: the sum of increments less decrements. */
  counter: number;
  /** An OR-set's elements, sorted. */
  set: string[];
  /** A map's fields. */
  map: MapValue;
  /** A register's value (undefined when never assigned). */
  register: unknown;
  /** A multi-value register's concurrent values. */
  mvregister: unknown[];
  /** A flag's state. */
  flag: boolean;
}

// --- values -------------------------------------------------------------------------------------

export function counterValue(dots: DotFun<readonly [number, number]>): number {
  let sum = 0;
  for (const e of latestPerActor(dots).values()) sum += e.value[0] - e.value[1];
  return sum;
}

function byDot(a: { dot: Dot }, b: { dot: Dot }): number {
  return a.dot[0] < b.dot[0] ? -1 : a.dot[0] > b.dot[0] ? 1 : a.dot[1] - b.dot[1];
}

/** Largest (timestamp, actor, counter) wins: deterministic on every replica. */
export function registerValue(dots: DotFun<readonly [number, Uint8Array]>): unknown {
  let best: { dot: Dot; value: readonly [number, Uint8Array] } | undefined;
  for (const e of dots.values()) {
    if (!best || e.value[0] > best.value[0] || (e.value[0] === best.value[0] && byDot(e, best) > 0)) best = e;
  }
  return best ? decodeRegisterValue(best.value[1]) : undefined;
}

function setProp<T>(obj: Record<string, T>, name: string, value: T): void {
  // defineProperty, not assignment: a field called `__proto__` stays a field.
  Object.defineProperty(obj, name, { value, enumerable: true, writable: true, configurable: true });
}

/** The application-facing value of a data type's store (what `value()` returns). */
export function typeValue(store: Store): TypeValues[TypeName] {
  switch (store.type) {
    case 'counter':
      return counterValue(store.dots);
    case 'flag':
      return store.dots.size > 0;
    case 'register':
      return registerValue(store.dots);
    case 'mvregister':
      return [...store.dots.values()].sort(byDot).map((e) => decodeRegisterValue(e.value));
    case 'set':
      return [...store.elements.keys()].sort();
    case 'map': {
      const out: MapValue = { counters: {}, sets: {}, registers: {}, mvRegisters: {}, flags: {}, maps: {} };
      const group = {
        counter: out.counters,
        set: out.sets,
        register: out.registers,
        mvregister: out.mvRegisters,
        flag: out.flags,
        map: out.maps,
      } as Record<TypeName, Record<string, unknown>>;
      const fields = [...store.fields.values()].sort((a, b) =>
        a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
      );
      for (const f of fields)
        if (hasContent(f.store)) setProp(group[f.store.type], f.name, typeValue(f.store));
      return out;
    }
  }
}

// --- operations ---------------------------------------------------------------------------------

/** Limits an operation enforces (from `DataTypeOptions`). */
export interface OperationLimits {
  /** Longest set element or map field name, UTF-8 bytes. */
  maxElementBytes: number;
  /** Deepest map nesting (a top-level map is depth 1). */
  maxDepth: number;
}

/** One operation in progress on a copy of the state: hands out the writer's new dots. */
export class Mutation {
  /** True once the operation changed the state (a write is needed). */
  changed = false;

  constructor(
    /** The state being changed (a copy of what the read returned). */
    readonly state: TypedState,
    /** The writing node's actor: new dots are its. */
    readonly actor: string,
    /** What removals may remove: the dots of the read they are based on. */
    readonly observed: CausalContext,
    /** Wall-clock timestamp for last-writer-wins registers, µs. */
    readonly timestampUs: number,
    /** Size and depth limits. */
    readonly limits: OperationLimits,
  ) {}

  /** A new dot of `actor`, added to the state's context. */
  dot(): Dot {
    const d = nextDot(this.state.ctx, this.actor);
    addDot(this.state.ctx, d);
    this.changed = true;
    return d;
  }

  /** `name` if it is a string within `maxElementBytes`; otherwise throws (TypeError, LimitError). */
  checkName(what: string, name: unknown): string {
    if (typeof name !== 'string') throw new TypeError(`${what} must be a string`);
    const bytes = utf8.encode(name).byteLength;
    if (bytes > this.limits.maxElementBytes) {
      throw new LimitError('maxElementBytes', bytes, this.limits.maxElementBytes);
    }
    return name;
  }
}

function list(elements: string | readonly string[]): readonly string[] {
  return typeof elements === 'string' ? [elements] : elements;
}

/** A removal whose context the state has not fully seen is remembered until it has. */
function defer(deferred: Deferred, key: string, m: Mutation): void {
  if (covers(m.state.ctx, m.observed)) return;
  const cur = deferred.get(key);
  deferred.set(key, cur ? joinContexts(cur, m.observed) : m.observed);
  m.changed = true;
}

function single<T>(dots: DotFun<T>, dot: Dot, value: T): void {
  dots.clear();
  dots.set(dotKey(dot), { dot, value });
}

function dropObserved<T>(dots: DotFun<T>, m: Mutation): void {
  for (const [k, e] of dots) {
    if (seen(m.observed, e.dot)) {
      dots.delete(k);
      m.changed = true;
    }
  }
}

/** Operations on a counter (top-level or a map field). */
export class CounterOps {
  constructor(
    private readonly store: Extract<Store, { type: 'counter' }>,
    private readonly m: Mutation,
  ) {}

  /** Adds `by` (a safe integer, may be negative). */
  increment(by = 1): void {
    if (!Number.isSafeInteger(by)) throw new RangeError(`increment must be a safe integer, got ${by}`);
    if (by === 0) return;
    const mine = latestPerActor(this.store.dots).get(this.m.actor);
    const [p, n] = mine?.value ?? [0, 0];
    const next: [number, number] = by > 0 ? [p + by, n] : [p, n - by];
    if (!Number.isSafeInteger(next[0]) || !Number.isSafeInteger(next[1])) {
      throw new RangeError('counter total would exceed Number.MAX_SAFE_INTEGER');
    }
    for (const [k, e] of this.store.dots) if (e.dot[0] === this.m.actor) this.store.dots.delete(k);
    const dot = this.m.dot();
    this.store.dots.set(dotKey(dot), { dot, value: next });
  }

  /** Subtracts `by` (a safe integer). */
  decrement(by = 1): void {
    if (!Number.isSafeInteger(by)) throw new RangeError(`decrement must be a safe integer, got ${by}`);
    this.increment(-by);
  }
}

/** Operations on an OR-set (top-level or a map field). */
export class SetOps {
  constructor(
    private readonly store: Extract<Store, { type: 'set' }>,
    private readonly m: Mutation,
  ) {}

  /** Adds each element under a new dot: a concurrent remove of it does not remove this add. */
  add(elements: string | readonly string[]): void {
    for (const e of list(elements)) {
      const dots: DotFun<null> = new Map();
      single(dots, this.m.dot(), null);
      this.store.elements.set(this.m.checkName('a set element', e), dots);
    }
  }

  /**
   * Removes what the read observed of each element. An element the read did not see is left alone,
   * unless the caller's context saw what this state has not yet: then the removal is kept
   * (deferred) and applied to those dots when they arrive.
   */
  remove(elements: string | readonly string[]): void {
    for (const e of list(elements)) {
      const dots = this.store.elements.get(this.m.checkName('a set element', e));
      if (dots) {
        dropObserved(dots, this.m);
        if (dots.size === 0) this.store.elements.delete(e);
      }
      defer(this.store.deferred, e, this.m);
    }
  }
}

/** Operations on an enable-wins flag (top-level or a map field). */
export class FlagOps {
  constructor(
    private readonly store: Extract<Store, { type: 'flag' }>,
    private readonly m: Mutation,
    /** In a map: removes this flag field (what the read observed of it, deferred if need be). */
    private readonly removeField?: () => void,
  ) {}

  /** Enables the flag. */
  enable(): void {
    single(this.store.dots, this.m.dot(), null);
  }

  /**
   * Disables what the read observed; a concurrent enable wins. An enable the observed context saw
   * but this state has not received yet must stay disabled when it arrives: in a map the field's
   * removal is deferred; a top-level flag's context takes in the observed one (every dot of a
   * flag object is an enable), so the join drops that enable as seen and gone.
   */
  disable(): void {
    if (this.removeField) {
      this.removeField();
      return;
    }
    dropObserved(this.store.dots, this.m);
    if (covers(this.m.state.ctx, this.m.observed)) return;
    joinInto(this.m.state.ctx, this.m.observed);
    this.m.changed = true;
  }
}

/** Operations on a last-writer-wins register (top-level or a map field). */
export class RegisterOps {
  constructor(
    private readonly store: Extract<Store, { type: 'register' }>,
    private readonly m: Mutation,
  ) {}

  /** Sets the value, stamped with the writing node's clock. */
  assign(value: unknown): void {
    single(this.store.dots, this.m.dot(), [this.m.timestampUs, encodeRegisterValue(value)] as const);
  }
}

/** Operations on a multi-value register (top-level or a map field). */
export class MvRegisterOps {
  constructor(
    private readonly store: Extract<Store, { type: 'mvregister' }>,
    private readonly m: Mutation,
  ) {}

  /** Replaces every value the read observed; concurrent assigns stay side by side. */
  assign(value: unknown): void {
    single(this.store.dots, this.m.dot(), encodeRegisterValue(value));
  }
}

/** A map's fields, by name and type (a counter `x` and a set `x` are two fields, as in riak_dt_map). */
export class MapOps {
  constructor(
    private readonly store: Extract<Store, { type: 'map' }>,
    private readonly m: Mutation,
    private readonly depth = 1,
  ) {}

  /** The counter field `name` (created on first write). */
  counter(name: string): CounterOps {
    return new CounterOps(this.field(name, 'counter'), this.m);
  }

  /** The set field `name`. */
  set(name: string): SetOps {
    return new SetOps(this.field(name, 'set'), this.m);
  }

  /** The register field `name`. */
  register(name: string): RegisterOps {
    return new RegisterOps(this.field(name, 'register'), this.m);
  }

  /** The multi-value register field `name`. */
  mvRegister(name: string): MvRegisterOps {
    return new MvRegisterOps(this.field(name, 'mvregister'), this.m);
  }

  /** The flag field `name`. */
  flag(name: string): FlagOps {
    return new FlagOps(this.field(name, 'flag'), this.m, () => this.remove(name, 'flag'));
  }

  /** The embedded map `name` (at most `maxDepth` levels deep). */
  map(name: string): MapOps {
    if (this.depth + 1 > this.m.limits.maxDepth) {
      throw new LimitError('maxDepth', this.depth + 1, this.m.limits.maxDepth);
    }
    return new MapOps(this.field(name, 'map'), this.m, this.depth + 1);
  }

  /** Removes the field `name` (of `type`, or of every type): what the read observed of it. */
  remove(name: string, type?: TypeName): void {
    this.m.checkName('a map field name', name);
    for (const t of type ? [type] : (['counter', 'set', 'map', 'register', 'mvregister', 'flag'] as const)) {
      const k = fieldKey(name, t);
      const f = this.store.fields.get(k);
      defer(this.store.deferred, k, this.m);
      if (!f) continue;
      // In place: a handle to this field (or to one nested in it) taken earlier in the operation
      // must keep writing into the map; an emptied field is dropped by `prune` if nothing is.
      const before = size(f.store);
      dropSeen(f.store, this.m.observed);
      if (size(f.store) !== before) this.m.changed = true;
    }
  }

  /** The map's value as this operation sees it so far. */
  value(): MapValue {
    return typeValue(this.store) as MapValue;
  }

  private field<T extends TypeName>(name: string, type: T): Extract<Store, { type: T }> {
    const k = fieldKey(this.m.checkName('a map field name', name), type);
    let f: Field | undefined = this.store.fields.get(k);
    if (!f) {
      f = { name, store: emptyStore(type) };
      this.store.fields.set(k, f);
    }
    return f.store as Extract<Store, { type: T }>;
  }
}

/** Drops the dots `ctx` has seen from `s` in place, at every depth (emptied map fields stay until `prune`). */
function dropSeen(s: Store, ctx: CausalContext): void {
  if (s.type === 'set') {
    for (const [e, dots] of s.elements) {
      for (const [k, d] of dots) if (seen(ctx, d.dot)) dots.delete(k);
      if (dots.size === 0) s.elements.delete(e);
    }
  } else if (s.type === 'map') {
    for (const f of s.fields.values()) dropSeen(f.store, ctx);
  } else {
    const dots = s.dots as DotFun<unknown>;
    for (const [k, d] of dots) if (seen(ctx, d.dot)) dots.delete(k);
  }
}

/** Dots held by a store (a removal that leaves as many removed nothing). */
function size(s: Store): number {
  if (s.type === 'set') {
    let n = 0;
    for (const d of s.elements.values()) n += d.size;
    return n;
  }
  if (s.type === 'map') {
    let n = 0;
    for (const f of s.fields.values()) n += size(f.store);
    return n;
  }
  return s.dots.size;
}

/** Drops map fields an operation created but left empty (bottom), at every depth. */
export function prune(s: Store): void {
  if (s.type !== 'map') return;
  for (const [k, f] of s.fields) {
    prune(f.store);
    if (isEmptyStore(f.store)) s.fields.delete(k);
  }
}

/** The operation handle for a top-level store of `type`. */
export function opsFor(store: Store, m: Mutation) {
  switch (store.type) {
    case 'counter':
      return new CounterOps(store, m);
    case 'set':
      return new SetOps(store, m);
    case 'map':
      return new MapOps(store, m);
    case 'register':
      return new RegisterOps(store, m);
    case 'mvregister':
      return new MvRegisterOps(store, m);
    case 'flag':
      return new FlagOps(store, m);
  }
}
