/**
 * Property tests of the data types' pure core: merge laws on reachable states, and "every
 * observed operation survives any delivery order" against a sequential specification.
 *
 * The model: three replicas (actors a, b, c), each with its own state (so each actor's writes
 * build on its previous ones, as a node session's do). Commands apply an operation on one
 * replica or merge one replica's state into another's. Every state ever produced is a delivery
 * unit; delivering them in any order, with duplicates, must give the same bytes and the value
 * the specification predicts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CorruptValueError } from '../../../src/errors.js';
import { decodeState, encodeState } from '../../../src/types/codec.js';
import { type MapOps, Mutation, opsFor, prune, typeValue } from '../../../src/types/ops.js';
import { cloneState, emptyState, join, type TypedState, type TypeName } from '../../../src/types/state.js';

const LIMITS = { maxElementBytes: 1024, maxDepth: 8 };
const ELEMENTS = ['x', 'y', 'z'];
const FIELDS = ['f', 'g'];

type Action =
  | { t: 'add'; field: string; el: string }
  | { t: 'remove'; field: string; el: string }
  /** A remove based on what replica `from` holds (a read there), applied at another replica. */
  | { t: 'removeSeenAt'; field: string; el: string; from: number }
  | { t: 'removeField'; field: string }
  | { t: 'inc'; by: number }
  | { t: 'flag'; on: boolean }
  /** A disable based on what replica `from` holds, applied at another replica. */
  | { t: 'flagOffSeenAt'; from: number }
  | { t: 'assign'; v: number }
  | { t: 'mv'; v: number };
type Command = { k: 'op'; r: number; a: Action } | { k: 'merge'; from: number; to: number };

const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({
    t: fc.constant('add' as const),
    field: fc.constantFrom(...FIELDS),
    el: fc.constantFrom(...ELEMENTS),
  }),
  fc.record({
    t: fc.constant('remove' as const),
    field: fc.constantFrom(...FIELDS),
    el: fc.constantFrom(...ELEMENTS),
  }),
  fc.record({
    t: fc.constant('removeSeenAt' as const),
    field: fc.constantFrom(...FIELDS),
    el: fc.constantFrom(...ELEMENTS),
    from: fc.integer({ min: 0, max: 2 }),
  }),
  fc.record({ t: fc.constant('removeField' as const), field: fc.constantFrom(...FIELDS) }),
  fc.record({ t: fc.constant('inc' as const), by: fc.integer({ min: -5, max: 9 }) }),
  fc.record({ t: fc.constant('flag' as const), on: fc.boolean() }),
  fc.record({ t: fc.constant('flagOffSeenAt' as const), from: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ t: fc.constant('assign' as const), v: fc.integer({ min: 0, max: 99 }) }),
  fc.record({ t: fc.constant('mv' as const), v: fc.integer({ min: 0, max: 99 }) }),
);
const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({ k: fc.constant('op' as const), r: fc.integer({ min: 0, max: 2 }), a: action }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('merge' as const),
      from: fc.integer({ min: 0, max: 2 }),
      to: fc.integer({ min: 0, max: 2 }),
    }),
  },
);

interface Replica {
  actor: string;
  state: TypedState;
  /** Operation ids whose effects this replica's state includes (the specification's causality). */
  seen: Set<number>;
}
interface OpRecord {
  id: number;
  a: Action;
  seen: Set<number>;
}

/** Runs the commands on a map whose fields exercise every type. Returns every state produced. */
function run(commands: Command[], time = { now: 1 }) {
  const replicas: Replica[] = ['a', 'b', 'c'].map((actor) => ({
    actor,
    state: emptyState('map'),
    seen: new Set(),
  }));
  const states: TypedState[] = [];
  const ops: OpRecord[] = [];
  for (const c of commands) {
    if (c.k === 'merge') {
      const from = replicas[c.from]!;
      const to = replicas[c.to]!;
      to.state = join(to.state, from.state);
      for (const s of from.seen) to.seen.add(s);
      continue;
    }
    const rep = replicas[c.r]!;
    const observer = c.a.t === 'removeSeenAt' || c.a.t === 'flagOffSeenAt' ? replicas[c.a.from]! : rep;
    const next = cloneState(rep.state);
    const m = new Mutation(next, rep.actor, observer.state.ctx, time.now++, LIMITS);
    const map = opsFor(next.store, m) as MapOps;
    applyAction(map, c.a);
    prune(next.store);
    const id = ops.length;
    ops.push({ id, a: c.a, seen: new Set(observer.seen) });
    rep.seen.add(id);
    rep.state = next;
    states.push(next);
  }
  return { states, ops, replicas };
}

function applyAction(map: MapOps, a: Action): void {
  switch (a.t) {
    case 'add':
      map.set(a.field).add(a.el);
      return;
    case 'remove':
    case 'removeSeenAt':
      map.set(a.field).remove(a.el);
      return;
    case 'removeField':
      map.remove(a.field);
      return;
    case 'inc':
      map.counter('n').increment(a.by);
      return;
    case 'flag':
      if (a.on) map.flag('on').enable();
      else map.flag('on').disable();
      return;
    case 'flagOffSeenAt':
      map.flag('on').disable();
      return;
    case 'assign':
      map.register('r').assign(a.v);
      return;
    case 'mv':
      map.mvRegister('m').assign(a.v);
      return;
  }
}

const bytes = (s: TypedState) => Buffer.from(encodeState(s)).toString('hex');
const joinAll = (list: TypedState[]) => list.reduce((acc, s) => join(acc, s), emptyState('map'));

/** Specification of the OR-set fields: an add survives unless a remove (of it or its field) had seen it. */
function expectedSets(ops: OpRecord[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const field of FIELDS) {
    const alive = ELEMENTS.filter((el) =>
      ops.some(
        (add) =>
          add.a.t === 'add' &&
          add.a.field === field &&
          add.a.el === el &&
          !ops.some(
            (r) =>
              r.seen.has(add.id) &&
              (((r.a.t === 'remove' || r.a.t === 'removeSeenAt') && r.a.field === field && r.a.el === el) ||
                (r.a.t === 'removeField' && r.a.field === field)),
          ),
      ),
    );
    if (alive.length > 0) out[field] = alive;
  }
  return out;
}

describe('data types: merge laws on reachable states', () => {
  const threeStates = fc
    .tuple(fc.array(command, { maxLength: 40 }), fc.nat(), fc.nat(), fc.nat())
    .map(([cmds, i, j, k]) => {
      const { states } = run(cmds);
      const pick = (n: number) => (states.length ? states[n % states.length]! : emptyState('map'));
      return [pick(i), pick(j), pick(k)] as const;
    });

  it('join is commutative, associative and idempotent (byte-identical encodings)', () => {
    fc.assert(
      fc.property(threeStates, ([a, b, c]) => {
        expect(bytes(join(a, b))).toBe(bytes(join(b, a)));
        expect(bytes(join(join(a, b), c))).toBe(bytes(join(a, join(b, c))));
        expect(bytes(join(a, a))).toBe(bytes(a));
        // A state joined with something it already includes does not change.
        expect(bytes(join(join(a, b), b))).toBe(bytes(join(a, b)));
      }),
      { numRuns: 300 },
    );
  });

  it('encoding round-trips exactly', () => {
    fc.assert(
      fc.property(threeStates, ([a]) => {
        expect(bytes(decodeState(encodeState(a)))).toBe(bytes(a));
        expect(typeValue(decodeState(encodeState(a)).store)).toEqual(typeValue(a.store));
      }),
      { numRuns: 200 },
    );
  });
});

describe('data types: every observed operation survives any delivery order', () => {
  it('any order, with duplicates, gives the same state and the specified value', () => {
    fc.assert(
      fc.property(
        fc.array(command, { minLength: 1, maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 60 }),
        fc.func(fc.integer()),
        (cmds, dupes, order) => {
          const { states, ops } = run(cmds);
          const canonical = joinAll(states);
          // A permutation by a random key per state, plus duplicated deliveries.
          const shuffled = states.map((s, i) => ({ s, key: order(i) })).sort((x, y) => x.key - y.key);
          const extra = states.length ? dupes.map((d) => states[d % states.length]!) : [];
          const delivered = [...shuffled.map((x) => x.s), ...extra];
          const merged = joinAll(delivered);
          expect(bytes(merged)).toBe(bytes(canonical));
          const value = typeValue(merged.store) as {
            counters: Record<string, number>;
            sets: Record<string, string[]>;
          };
          const sum = ops.reduce((s, o) => s + (o.a.t === 'inc' ? o.a.by : 0), 0);
          // Counter: every increment counted once, whatever the order and the duplicates.
          expect(value.counters.n ?? 0).toBe(sum);
          expect({ ...value.sets }).toEqual(expectedSets(ops));
          // Flag: on while some enable was observed by no disable (enable wins over a concurrent one).
          const isOff = (o: OpRecord) => (o.a.t === 'flag' && !o.a.on) || o.a.t === 'flagOffSeenAt';
          const on = ops.some(
            (en) => en.a.t === 'flag' && en.a.on && !ops.some((off) => isOff(off) && off.seen.has(en.id)),
          );
          expect((value as unknown as { flags: Record<string, boolean> }).flags.on ?? false).toBe(on);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a counter at the top level: every increment from every actor counts once', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            r: fc.integer({ min: 0, max: 2 }),
            by: fc.integer({ min: -3, max: 7 }),
            merge: fc.nat(3),
          }),
        ),
        (steps) => {
          const reps = ['a', 'b', 'c'].map((actor) => ({ actor, state: emptyState('counter') }));
          const produced: TypedState[] = [];
          for (const st of steps) {
            const rep = reps[st.r]!;
            const next = cloneState(rep.state);
            const m = new Mutation(next, rep.actor, rep.state.ctx, 0, LIMITS);
            (opsFor(next.store, m) as { increment(n: number): void }).increment(st.by);
            rep.state = next;
            produced.push(next);
            if (st.merge < 3) reps[st.merge]!.state = join(reps[st.merge]!.state, next);
          }
          const total = steps.reduce((s, x) => s + x.by, 0);
          expect(typeValue(produced.reduceRight((acc, s) => join(acc, s), emptyState('counter')).store)).toBe(
            total,
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('data types: corrupt states', () => {
  it('a flipped or truncated byte either decodes to a valid state or throws CorruptValueError', () => {
    const { states } = run([
      { k: 'op', r: 0, a: { t: 'add', field: 'f', el: 'x' } },
      { k: 'op', r: 1, a: { t: 'inc', by: 3 } },
      { k: 'op', r: 2, a: { t: 'assign', v: 7 } },
      { k: 'merge', from: 0, to: 1 },
      { k: 'op', r: 1, a: { t: 'mv', v: 1 } },
    ]);
    const good = encodeState(joinAll(states));
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean(), (at, byte, truncate) => {
        const bad = truncate ? good.slice(0, at % good.length) : good.slice();
        if (!truncate) bad[at % bad.length] = byte;
        try {
          const s = decodeState(bad);
          encodeState(s); // what decodes must be a usable state
          typeValue(s.store);
        } catch (err) {
          expect(err).toBeInstanceOf(CorruptValueError);
        }
      }),
      { numRuns: 500 },
    );
  });

  it.each(['counter', 'set', 'map', 'register', 'mvregister', 'flag'] as TypeName[])(
    'the empty %s round-trips',
    (type) => {
      expect(bytes(decodeState(encodeState(emptyState(type))))).toBe(bytes(emptyState(type)));
    },
  );
});
