/**
 * Encoding of data-type states and their contexts: deterministic (actors sorted and numbered,
 * entries sorted), so replicas holding the same state hold the same bytes (anti-entropy compares
 * hashes). A state starts with a 4-byte marker: 0xc1 (the one byte MessagePack never uses, so no
 * msgpack-encoded plain value can start with it), 'd', 't', format version. Decoding checks every
 * field and throws `CorruptValueError` for anything else.
 */
import { Packr } from 'msgpackr';
import { CorruptValueError, InvalidContextError } from '../errors.js';
import { type CausalContext, type Dot, dotKey, emptyContext } from './causal.js';
import { decodeRegisterValue } from './ops.js';
import {
  type Deferred,
  type DotFun,
  fieldKey,
  type Store,
  TYPE_NAMES,
  type TypedState,
  type TypeName,
} from './state.js';

const MARKER = [0xc1, 0x64, 0x74] as const;
const FORMAT_VERSION = 1;
const HEADER_BYTES = 4;
const CONTEXT_PREFIX = 'dt1.';
/** Deepest map nesting any replica decodes (bounds the decoder's recursion); `maxDepth` stays within it. */
export const MAX_DECODED_DEPTH = 64;
const packr = new Packr({ useRecords: false, mapsAsObjects: false, moreTypes: false });

/** True when `bytes` carry the data-type marker (any version). */
export function isTypedValue(bytes: Uint8Array | null | undefined): boolean {
  return (
    !!bytes && bytes.length >= 3 && bytes[0] === MARKER[0] && bytes[1] === MARKER[1] && bytes[2] === MARKER[2]
  );
}

/** The type named in an encoded state, without decoding the rest (for error messages). */
export function typeOfValue(bytes: Uint8Array): TypeName | 'plain' | 'unknown' {
  if (!isTypedValue(bytes)) return 'plain';
  // The body is a 5-element array (one header byte) whose first item is the type tag, a fixint.
  const t = bytes[HEADER_BYTES + 1];
  return t !== undefined && t < TYPE_NAMES.length ? TYPE_NAMES[t]! : 'unknown';
}

// --- encode -------------------------------------------------------------------------------------

class Actors {
  readonly index = new Map<string, number>();
  constructor(readonly list: string[]) {
    for (const [i, a] of list.entries()) this.index.set(a, i);
  }
  of(a: string): number {
    return this.index.get(a)!;
  }
}

function collectActors(store: Store, ctx: CausalContext, into: Set<string>): void {
  for (const a of ctx.vv.keys()) into.add(a);
  for (const a of ctx.cloud.keys()) into.add(a);
  const visit = (s: Store): void => {
    if (s.type === 'set' || s.type === 'map') {
      for (const d of s.deferred.values()) for (const a of [...d.vv.keys(), ...d.cloud.keys()]) into.add(a);
    }
    if (s.type === 'set') for (const d of s.elements.values()) for (const e of d.values()) into.add(e.dot[0]);
    else if (s.type === 'map') for (const f of s.fields.values()) visit(f.store);
    else for (const e of (s.dots as DotFun<unknown>).values()) into.add(e.dot[0]);
  };
  visit(store);
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function sortedEntries<T>(dots: DotFun<T>, actors: Actors): { ai: number; n: number; value: T }[] {
  return [...dots.values()]
    .map((e) => ({ ai: actors.of(e.dot[0]), n: e.dot[1], value: e.value }))
    .sort((a, b) => a.ai - b.ai || a.n - b.n);
}

function encodeStore(s: Store, actors: Actors): unknown[] {
  switch (s.type) {
    case 'flag':
      return sortedEntries(s.dots, actors).map((e) => [e.ai, e.n]);
    case 'counter':
      return sortedEntries(s.dots, actors).map((e) => [e.ai, e.n, e.value[0], e.value[1]]);
    case 'register':
      return sortedEntries(s.dots, actors).map((e) => [e.ai, e.n, e.value[0], e.value[1]]);
    case 'mvregister':
      return sortedEntries(s.dots, actors).map((e) => [e.ai, e.n, e.value]);
    case 'set': {
      const elements = [...s.elements]
        .sort((a, b) => cmp(a[0], b[0]))
        .map(([el, dots]) => [el, sortedEntries(dots, actors).map((e) => [e.ai, e.n])]);
      const deferred = [...s.deferred]
        .sort((a, b) => cmp(a[0], b[0]))
        .map(([el, d]) => [el, ...encodeContextBody(d, actors)]);
      return [elements, deferred];
    }
    case 'map': {
      const byField = (a: { name: string; tag: number }, b: { name: string; tag: number }) =>
        cmp(a.name, b.name) || a.tag - b.tag;
      const fields = [...s.fields.values()]
        .map((f) => ({ name: f.name, tag: TYPE_NAMES.indexOf(f.store.type), f }))
        .sort(byField)
        .map(({ name, tag, f }) => [name, tag, encodeStore(f.store, actors)]);
      const deferred = [...s.deferred]
        .map(([k, d]) => ({ ...parseFieldKey(k), d }))
        .sort(byField)
        .map(({ name, tag, d }) => [name, tag, ...encodeContextBody(d, actors)]);
      return [fields, deferred];
    }
  }
}

function parseFieldKey(k: string): { name: string; tag: number } {
  const at = k.indexOf('\u0000');
  return { name: k.slice(at + 1), tag: TYPE_NAMES.indexOf(k.slice(0, at) as TypeName) };
}

function encodeContextBody(ctx: CausalContext, actors: Actors): [unknown[], unknown[]] {
  const vv = [...ctx.vv]
    .map(([a, n]) => [actors.of(a), n])
    .sort((x, y) => (x[0] as number) - (y[0] as number));
  const cloud = [...ctx.cloud]
    .map(([a, s]) => [actors.of(a), [...s].sort((x, y) => x - y)])
    .sort((x, y) => (x[0] as number) - (y[0] as number));
  return [vv, cloud];
}

/** The bytes a data-type state is stored as (what a node's replicas hold for a typed key). */
export function encodeState(state: TypedState): Uint8Array {
  const names = new Set<string>();
  collectActors(state.store, state.ctx, names);
  const actors = new Actors([...names].sort(cmp));
  const [vv, cloud] = encodeContextBody(state.ctx, actors);
  const body = packr.pack([
    TYPE_NAMES.indexOf(state.store.type),
    actors.list,
    vv,
    cloud,
    encodeStore(state.store, actors),
  ]);
  const out = new Uint8Array(HEADER_BYTES + body.length);
  out.set(MARKER, 0);
  out[3] = FORMAT_VERSION;
  out.set(body, HEADER_BYTES);
  return out;
}

// --- decode -------------------------------------------------------------------------------------

class Reader {
  constructor(
    readonly actors: readonly string[],
    readonly fail: (why: string) => never,
  ) {}

  array(v: unknown, what: string): unknown[] {
    if (!Array.isArray(v)) this.fail(`${what} is not an array`);
    return v;
  }
  count(v: unknown, what: string): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) this.fail(`${what} is not a count`);
    return v;
  }
  string(v: unknown, what: string): string {
    if (typeof v !== 'string') this.fail(`${what} is not a string`);
    return v;
  }
  bytes(v: unknown, what: string): Uint8Array {
    if (!(v instanceof Uint8Array)) this.fail(`${what} is not bytes`);
    return v;
  }
  /** A register value: msgpack bytes that must decode (checked once here, not on every read). */
  value(v: unknown): Uint8Array {
    const b = this.bytes(v, 'a register value');
    try {
      decodeRegisterValue(b);
    } catch (err) {
      this.fail(`a register value does not decode (${(err as Error).message})`);
    }
    return b;
  }
  actor(v: unknown): string {
    const i = this.count(v, 'an actor index');
    if (i >= this.actors.length) this.fail('an actor index is out of range');
    return this.actors[i]!;
  }
  dot(ai: unknown, n: unknown): Dot {
    const counter = this.count(n, 'a dot counter');
    if (counter === 0) this.fail('a dot counter is 0');
    return [this.actor(ai), counter];
  }
  dots<T>(v: unknown, width: number, value: (row: unknown[]) => T): DotFun<T> {
    const out: DotFun<T> = new Map();
    for (const row of this.array(v, 'a dot list')) {
      const r = this.array(row, 'a dot entry');
      if (r.length !== width) this.fail('a dot entry has the wrong width');
      const dot = this.dot(r[0], r[1]);
      const k = dotKey(dot);
      if (out.has(k)) this.fail('a dot appears twice');
      out.set(k, { dot, value: value(r) });
    }
    return out;
  }
}

function typeAt(v: unknown, r: Reader): TypeName {
  const t = r.count(v, 'a type tag');
  if (t >= TYPE_NAMES.length) r.fail(`unknown type tag ${t}`);
  return TYPE_NAMES[t]!;
}

function decodeStore(type: TypeName, v: unknown, r: Reader, depth: number): Store {
  if (depth > MAX_DECODED_DEPTH) r.fail('maps nested too deep');
  switch (type) {
    case 'flag':
      return { type, dots: r.dots(v, 2, () => null) };
    case 'counter':
      return {
        type,
        dots: r.dots(
          v,
          4,
          (row) => [r.count(row[2], 'a counter total'), r.count(row[3], 'a counter total')] as const,
        ),
      };
    case 'register':
      return {
        type,
        dots: r.dots(v, 4, (row) => [r.count(row[2], 'a timestamp'), r.value(row[3])] as const),
      };
    case 'mvregister':
      return { type, dots: r.dots(v, 3, (row) => r.value(row[2])) };
    case 'set': {
      const [list, deferredRows] = pair(v, r);
      const elements = new Map<string, DotFun<null>>();
      for (const row of r.array(list, 'set elements')) {
        const [el, dots] = r.array(row, 'a set element');
        const name = r.string(el, 'a set element');
        const d = r.dots(dots, 2, () => null);
        if (d.size === 0 || elements.has(name)) r.fail('a set element is empty or repeated');
        elements.set(name, d);
      }
      const deferred: Deferred = new Map();
      for (const row of r.array(deferredRows, 'deferred removals')) {
        const d = r.array(row, 'a deferred removal');
        if (d.length !== 3) r.fail('a deferred removal has the wrong width');
        deferred.set(r.string(d[0], 'a set element'), decodeContextBody(d[1], d[2], r));
      }
      return { type, elements, deferred };
    }
    case 'map': {
      const [list, deferredRows] = pair(v, r);
      const fields = new Map<string, { name: string; store: Store }>();
      for (const row of r.array(list, 'map fields')) {
        const f = r.array(row, 'a map field');
        if (f.length !== 3) r.fail('a map field has the wrong width');
        const name = r.string(f[0], 'a field name');
        const t = typeAt(f[1], r);
        const k = fieldKey(name, t);
        if (fields.has(k)) r.fail('a map field is repeated');
        fields.set(k, { name, store: decodeStore(t, f[2], r, depth + 1) });
      }
      const deferred: Deferred = new Map();
      for (const row of r.array(deferredRows, 'deferred removals')) {
        const d = r.array(row, 'a deferred removal');
        if (d.length !== 4) r.fail('a deferred removal has the wrong width');
        const k = fieldKey(r.string(d[0], 'a field name'), typeAt(d[1], r));
        deferred.set(k, decodeContextBody(d[2], d[3], r));
      }
      return { type, fields, deferred };
    }
  }
}

function pair(v: unknown, r: Reader): [unknown, unknown] {
  const p = r.array(v, 'a set or map body');
  if (p.length !== 2) r.fail('a set or map body has the wrong width');
  return [p[0], p[1]];
}

function decodeContextBody(vv: unknown, cloud: unknown, r: Reader): CausalContext {
  const ctx = emptyContext();
  for (const row of r.array(vv, 'the version vector')) {
    const [a, n] = r.array(row, 'a version vector entry');
    ctx.vv.set(r.actor(a), r.count(n, 'a version vector counter'));
  }
  for (const row of r.array(cloud, 'the dot cloud')) {
    const [a, ns] = r.array(row, 'a dot cloud entry');
    const set = new Set(r.array(ns, 'dot cloud counters').map((n) => r.count(n, 'a dot cloud counter')));
    if (set.size > 0) ctx.cloud.set(r.actor(a), set);
  }
  return ctx;
}

function unpack(bytes: Uint8Array, fail: (why: string) => never): unknown[] {
  let body: unknown;
  try {
    body = packr.unpack(bytes);
  } catch (err) {
    fail(`undecodable (${(err as Error).message})`);
  }
  if (!Array.isArray(body)) fail('the body is not an array');
  return body as unknown[];
}

/** The state in `bytes`; throws `CorruptValueError` on anything `encodeState` would not make. */
export function decodeState(bytes: Uint8Array): TypedState {
  const fail = (why: string): never => {
    throw new CorruptValueError(`corrupt data-type state: ${why}`);
  };
  if (!isTypedValue(bytes)) fail('no data-type marker');
  if (bytes[3] !== FORMAT_VERSION) fail(`unknown format version ${bytes[3]}`);
  const body = unpack(bytes.subarray(HEADER_BYTES), fail);
  if (body.length !== 5) fail('the body has the wrong width');
  const probe = new Reader([], fail);
  const actors = probe.array(body[1], 'the actor table').map((a) => probe.string(a, 'an actor'));
  if (new Set(actors).size !== actors.length) fail('an actor appears twice');
  const r = new Reader(actors, fail);
  const type = typeAt(body[0], r);
  const ctx = decodeContextBody(body[2], body[3], r);
  const store = decodeStore(type, body[4], r, 1);
  return { store, ctx };
}

// --- contexts handed to callers -----------------------------------------------------------------

/** An opaque string for a read's causal context (what a later remove may remove). */
export function encodeTypeContext(ctx: CausalContext): string {
  const actors = new Actors([...new Set([...ctx.vv.keys(), ...ctx.cloud.keys()])].sort(cmp));
  const [vv, cloud] = encodeContextBody(ctx, actors);
  return CONTEXT_PREFIX + Buffer.from(packr.pack([actors.list, vv, cloud])).toString('base64url');
}

/** The causal context in a string `encodeTypeContext` made; throws `InvalidContextError` otherwise. */
export function decodeTypeContext(context: string, maxBytes: number): CausalContext {
  const fail = (why: string): never => {
    throw new InvalidContextError(`not a data-type context: ${why}`);
  };
  if (typeof context !== 'string' || !context.startsWith(CONTEXT_PREFIX)) fail('wrong prefix');
  if (context.length > maxBytes) fail(`longer than ${maxBytes} characters`);
  const body = unpack(Buffer.from(context.slice(CONTEXT_PREFIX.length), 'base64url'), fail);
  if (body.length !== 3) fail('wrong width');
  const probe = new Reader([], fail);
  const actors = probe.array(body[0], 'the actor table').map((a) => probe.string(a, 'an actor'));
  return decodeContextBody(body[1], body[2], new Reader(actors, fail));
}
