/**
 * Operation ids (twins), byte-equal absorption and op pruning: each test states a guarantee of
 * the version objects (see the docs' guarantees) and tries to break it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applied,
  MAX_OP_ENTRIES,
  opKey,
  prune,
  sync,
  update,
  type VersionedObject,
  type VersionVector,
} from '../../../src/versioning/index.js';
import { bytes, hex, text } from './helpers.js';

const EMPTY: VersionVector = new Map();
const live = (o: VersionedObject) =>
  o.siblings.filter((s) => s.value !== null).map((s) => text(s.value)) as string[];

describe('absorption (a put of a value the key already shows)', () => {
  it('a write absorbed into a sibling that another replica already superseded is not lost', () => {
    // Client 1 writes "v" at A; it replicates to C.
    const a1 = update(undefined, EMPTY, 'A', bytes('v'), 1);
    // Client 2 reads "v" from C and overwrites it with "w" at C (A does not hear of it yet).
    const c1 = update(a1, a1.ctx, 'C', bytes('w'), 2);
    // Later, client 3, which never saw "w", writes "v" (no context) at A: acknowledged.
    const a2 = update(a1, EMPTY, 'A', bytes('v'), 3);
    // Client 3's write is concurrent with "w" (no context that saw it exists), so after the
    // replicas merge both must survive as siblings, as they do when the values differ:
    const differentValue = update(a1, EMPTY, 'A', bytes('v2'), 3);
    expect(live(sync(differentValue, c1)).sort()).toEqual(['v2', 'w']);
    expect(live(sync(a2, c1)).sort()).toEqual(['v', 'w']);
  });

  it('a write absorbed into a sibling is not deleted by a delete whose context predates it', () => {
    const a1 = update(undefined, EMPTY, 'A', bytes('v'), 1);
    const readBefore = a1.ctx; // client X reads "v" ...
    const a2 = update(a1, EMPTY, 'A', bytes('v'), 2); // ... then client Y writes "v": acknowledged
    const deleted = update(a2, readBefore, 'A', null, 3); // ... then X deletes what it had read
    // Y's write happened after X's read: the delete did not see it, so it must survive.
    expect(live(deleted)).toEqual(['v']);
  });

  it('an equal-valued write with an op does not take over an older sibling (its twin may be superseded)', () => {
    const b1 = update(undefined, EMPTY, 'B', bytes('v'), 1000); // writer 1: "v" at B
    const b2 = update(b1, EMPTY, 'B', bytes('v'), 2000, 0, 'o'); // writer 2: forwarded "v" (op o) at B
    const a1 = update(undefined, EMPTY, 'A', bytes('v'), 2000, 0, 'o'); // ... and its twin at A
    // A client reads A's twin only and overwrites it: it saw writer 2, never writer 1.
    const a2 = update(a1, a1.ctx, 'A', bytes('w'), 3000);
    expect(live(sync(b2, a2)).sort()).toEqual(['v', 'w']);
  });

  it('equal values by two writers, then a context that saw one of them: the other survives', () => {
    const first = update(undefined, EMPTY, 'A', bytes('v'), 1);
    const second = update(first, EMPTY, 'A', bytes('v'), 2); // another writer, same value
    // A put whose context saw only the first writer's copy supersedes that copy only.
    const later = update(second, first.ctx, 'A', bytes('w'), 3);
    expect(live(later).sort()).toEqual(['v', 'w']);
  });
});

/**
 * A reference model of "no acknowledged write is lost": every write carries the set of writes
 * its context had seen (ground truth, tracked beside the objects). After all replicas merge, every
 * write that no later write's context had seen must still show its value.
 */
describe('no lost write, with twins, equal values, pruning', () => {
  type Step =
    | { kind: 'put'; at: number; ctx: number; value: number; op: number | null; tomb: boolean }
    | { kind: 'twin'; at: number; which: number }
    | { kind: 'sync'; from: number; to: number };
  const stepArb: fc.Arbitrary<Step> = fc.oneof(
    fc.record({
      kind: fc.constant('put' as const),
      at: fc.nat(2),
      ctx: fc.nat(30),
      value: fc.nat(2),
      op: fc.option(fc.nat(1000), { nil: null }),
      tomb: fc.boolean(),
    }),
    fc.record({ kind: fc.constant('twin' as const), at: fc.nat(2), which: fc.nat(30) }),
    fc.record({ kind: fc.constant('sync' as const), from: fc.nat(2), to: fc.nat(2) }),
  );

  interface Write {
    id: number;
    value: string | null;
    ctx: VersionVector;
    seen: Set<number>;
    op: string | undefined;
  }

  function run(steps: Step[], maxEntries: number, absorbValues: boolean) {
    const replicas: (VersionedObject | undefined)[] = [undefined, undefined, undefined];
    // Ground truth: the writes each replica's object has seen, and each context.
    const knows: Set<number>[] = [new Set(), new Set(), new Set()];
    const contexts: { ctx: VersionVector; seen: Set<number> }[] = [{ ctx: EMPTY, seen: new Set() }];
    const writes: Write[] = [];
    let clock = 0;
    let opCount = 0;
    const coordinate = (at: number, w: Write) => {
      const local = replicas[at];
      if (applied(local, w.op)) return;
      const o = update(
        local,
        w.ctx,
        'ABC'[at]!,
        w.value === null ? null : bytes(w.value),
        ++clock * 1000,
        0,
        w.op,
      );
      replicas[at] = prune(o, maxEntries);
      knows[at] = new Set([...knows[at]!, ...w.seen, w.id]);
      contexts.push({ ctx: replicas[at]!.ctx, seen: knows[at]! });
    };
    for (const st of steps) {
      if (st.kind === 'put') {
        const c = contexts[st.ctx % contexts.length]!;
        // Unique values unless absorption is under test.
        const value = st.tomb ? null : absorbValues ? `v${st.value}` : `u${writes.length}`;
        const op = st.op === null ? undefined : `op${opCount++}`;
        const w: Write = { id: writes.length, value, ctx: c.ctx, seen: c.seen, op };
        writes.push(w);
        coordinate(st.at, w);
      } else if (st.kind === 'twin') {
        // The same forwarded write reaches another coordinator (after a timeout, or duplicated).
        const withOp = writes.filter((w) => w.op !== undefined);
        if (withOp.length === 0) continue;
        coordinate(st.at, withOp[st.which % withOp.length]!);
      } else {
        const from = replicas[st.from];
        if (from === undefined) continue;
        const to = replicas[st.to];
        replicas[st.to] = prune(to === undefined ? from : sync(to, from), maxEntries);
        knows[st.to] = new Set([...knows[st.to]!, ...knows[st.from]!]);
        contexts.push({ ctx: replicas[st.to]!.ctx, seen: knows[st.to]! });
      }
    }
    return { replicas, writes, knows };
  }

  const merged = (replicas: (VersionedObject | undefined)[]) => {
    const present = replicas.filter((o): o is VersionedObject => o !== undefined);
    return present.length === 0 ? undefined : present.reduce((x, y) => sync(x, y));
  };

  /** Values of writes (that some replica applied) no later write's context had seen. */
  const expectedValues = (writes: Write[], knows: Set<number>[]) => {
    const applied = new Set(knows.flatMap((k) => [...k]));
    const superseded = new Set(writes.flatMap((w) => [...w.seen]));
    return new Set(
      writes
        .filter((w) => applied.has(w.id) && !superseded.has(w.id) && w.value !== null)
        .map((w) => w.value!),
    );
  };

  it('unique values, twins, no pruning: exactly the unsuperseded writes survive', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 40 }), (steps) => {
        const { replicas, writes, knows } = run(steps, 1000, false);
        const all = merged(replicas);
        if (all === undefined) return;
        expect(new Set(live(all))).toEqual(expectedValues(writes, knows));
      }),
      { numRuns: 1000 },
    );
  });

  it('equal values (absorption), twins, no pruning: no unsuperseded value is lost', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 40 }), (steps) => {
        const { replicas, writes, knows } = run(steps, 1000, true);
        const all = merged(replicas);
        if (all === undefined) return;
        const got = new Set(live(all));
        for (const v of expectedValues(writes, knows)) expect(got).toContain(v);
      }),
      { numRuns: 5000 },
    );
  });

  it('merge laws with equal values, twins and pruning at the default maxClockEntries', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 40 }), fc.nat(), fc.nat(), fc.nat(), (steps, i, j, k) => {
        const { replicas } = run(steps, 4, true);
        const present = replicas.filter((o): o is VersionedObject => o !== undefined);
        if (present.length === 0) return;
        const x = present[i % present.length]!;
        const y = present[j % present.length]!;
        const z = present[k % present.length]!;
        expect(hex(sync(x, y))).toBe(hex(sync(y, x)));
        expect(hex(sync(x, x))).toBe(hex(x));
        expect(hex(sync(sync(x, y), z))).toBe(hex(sync(x, sync(y, z))));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('op pruning window', () => {
  it('with the default maxClockEntries (50), a key remembers MAX_OP_ENTRIES superseded op ids', () => {
    // One key, written by forwarded puts (each with an op) through its 3 replicas, every write
    // reading first (so each supersedes the last): the docs promise the last 64 are remembered.
    let o: VersionedObject | undefined;
    const ops: string[] = [];
    for (let i = 1; i <= 80; i++) {
      const op = `op${i}`;
      ops.push(op);
      const actor = 'ABC'[i % 3]!;
      // Counters as the replica issues them: floored by the clock in µs (Replica.coordinate).
      const t = 1_700_000_000_000 + i * 1000;
      o = prune(update(o, o?.ctx ?? EMPTY, actor, bytes(`v${i}`), t, t * 1000, op), 50);
    }
    const remembered = ops.filter((op) => o!.ctx.has(opKey(op)));
    // The live sibling's op and MAX_OP_ENTRIES superseded ones.
    expect(remembered.length).toBeGreaterThanOrEqual(MAX_OP_ENTRIES);
  });

  it('a hidden twin of a deleted write does not come back within the window', () => {
    // A forwarded write "v" (op x) is applied at A and, after a timeout, at B (B is then cut off).
    const a = update(undefined, EMPTY, 'A', bytes('v'), 1000, 0, 'x');
    const bHidden = update(undefined, EMPTY, 'B', bytes('v'), 1000, 0, 'x');
    // A client reads A's copy and deletes it; then 50 more forwarded writes to the key (< 64).
    let o = prune(update(a, a.ctx, 'A', null, 2000), 50);
    for (let i = 0; i < 50; i++) {
      const t = 3000 + i * 1000;
      o = prune(update(o, o.ctx, 'A', bytes(`n${i}`), t, t * 1000, `f${i}`), 50);
    }
    // B reappears: its copy of the deleted "v" must stay deleted (the delete's context saw it).
    expect(live(sync(o, bHidden))).not.toContain('v');
  });
});
