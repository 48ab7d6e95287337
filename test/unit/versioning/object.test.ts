import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidContextError } from '../../../src/errors.js';
import {
  compare,
  covers,
  isDeleted,
  mergeVectors,
  prune,
  sync,
  update,
  type VersionedObject,
  type VersionVector,
} from '../../../src/versioning/index.js';
import { bytes, commandsArb, hex, objectArb, play, values, vv } from './helpers.js';

/** Objects from simulated histories: realistic shapes, including tombstones and siblings. */
const historyObjectsArb = commandsArb
  .map((cmds) => play(cmds).snapshots)
  .filter((s) => s.length > 0)
  .chain((s) => fc.tuple(fc.constantFrom(...s), fc.constantFrom(...s), fc.constantFrom(...s)));

const tripleArb = fc.oneof(fc.tuple(objectArb, objectArb, objectArb), historyObjectsArb);

describe('sync', () => {
  it('is commutative', () => {
    fc.assert(fc.property(tripleArb, ([x, y]) => hex(sync(x, y)) === hex(sync(y, x))));
  });

  it('is associative', () => {
    fc.assert(fc.property(tripleArb, ([x, y, z]) => hex(sync(sync(x, y), z)) === hex(sync(x, sync(y, z)))));
  });

  it('is idempotent', () => {
    fc.assert(
      fc.property(tripleArb, ([x, y]) => {
        const xy = sync(x, y);
        expect(hex(sync(x, x))).toBe(hex(x));
        expect(hex(sync(xy, y))).toBe(hex(xy));
        expect(hex(sync(xy, xy))).toBe(hex(xy));
      }),
    );
  });

  it('joins the contexts and keeps every dot covered', () => {
    fc.assert(
      fc.property(tripleArb, ([x, y]) => {
        const m = sync(x, y);
        expect(compare(m.ctx, mergeVectors(x.ctx, y.ctx))).toBe('equal');
        for (const s of m.siblings) expect(covers(m.ctx, s.dot)).toBe(true);
      }),
    );
  });

  it('outputs siblings in canonical order', () => {
    const x: VersionedObject = {
      ctx: vv({ b: 1, a: 2 }),
      siblings: [
        { dot: ['b', 1], value: bytes('b1'), timestamp: 1 },
        { dot: ['a', 2], value: bytes('a2'), timestamp: 2 },
      ],
    };
    const y: VersionedObject = {
      ctx: vv({ a: 1 }),
      siblings: [{ dot: ['a', 1], value: bytes('a1'), timestamp: 0 }],
    };
    expect(sync(x, y).siblings.map((s) => s.dot)).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
  });

  it('picks deterministically between two different siblings with one dot', () => {
    const a: VersionedObject = {
      ctx: vv({ 1: 1 }),
      siblings: [{ dot: ['1', 1], value: bytes('x'), timestamp: 5 }],
    };
    const b: VersionedObject = {
      ctx: vv({ 1: 1 }),
      siblings: [{ dot: ['1', 1], value: bytes('y'), timestamp: 5 }],
    };
    const c: VersionedObject = {
      ctx: vv({ 1: 1 }),
      siblings: [{ dot: ['1', 1], value: null, timestamp: 5 }],
    };
    expect(hex(sync(a, b))).toBe(hex(sync(b, a)));
    expect(values(sync(a, b))).toEqual(['y']);
    expect(values(sync(c, a))).toEqual(['x']);
    expect(hex(sync(sync(a, b), c))).toBe(hex(sync(a, sync(b, c))));
  });
});

describe('update', () => {
  it('puts a new dot past both the local ctx and the context', () => {
    const local: VersionedObject = {
      ctx: vv({ 1: 3, 2: 1 }),
      siblings: [{ dot: ['1', 3], value: bytes('a'), timestamp: 1 }],
    };
    const o = update(local, vv({ 1: 3, 3: 7 }), '3', bytes('b'), 2);
    expect(o.siblings.map((s) => s.dot)).toEqual([['3', 8]]);
    expect(o.ctx).toEqual(vv({ 1: 3, 2: 1, 3: 8 }));
    expect(update(undefined, new Map(), 'x', bytes('v'), 0).siblings[0]!.dot).toEqual(['x', 1]);
    // Inputs are left alone.
    expect(local.ctx).toEqual(vv({ 1: 3, 2: 1 }));
    expect(local.siblings).toHaveLength(1);
  });

  it('honours minCounter as a floor', () => {
    const o = update(undefined, new Map(), '1', bytes('v'), 0, 1_700_000_000_000);
    expect(o.siblings[0]!.dot).toEqual(['1', 1_700_000_000_000]);
    expect(update(o, new Map(), '1', bytes('w'), 0, 5).siblings.map((s) => s.dot[1])).toEqual([
      1_700_000_000_000, 1_700_000_000_001,
    ]);
  });

  it('rejects a context that would push a counter past 2^53, and non-finite timestamps', () => {
    expect(() => update(undefined, vv({ 1: Number.MAX_SAFE_INTEGER }), '1', null, 0)).toThrow(
      InvalidContextError,
    );
    expect(() => update(undefined, new Map(), '1', null, Number.NaN)).toThrow(RangeError);
    expect(() => update(undefined, new Map(), '1', null, 0, 1.5)).toThrow(RangeError);
  });

  it('then syncing with older copies never loses the new value', () => {
    fc.assert(
      fc.property(
        commandsArb,
        fc.nat(2),
        fc.nat(100),
        fc.boolean(),
        fc.infiniteStream(fc.nat(1000)),
        (cmds, at, ctxPick, tombstone, picks) => {
          const h = play(cmds);
          const ctx = h.contexts[ctxPick % h.contexts.length]!;
          const value = tombstone ? null : bytes('new');
          const fresh = update(h.replicas[at], ctx, String(at + 1), value, 1e6);
          const dot = fresh.siblings.find((s) => s.timestamp === 1e6)!.dot;
          // Fold in older copies in a random order and from either side.
          let merged = fresh;
          const pool = [...h.snapshots, ...h.replicas.filter((r) => r !== undefined)];
          const it = picks[Symbol.iterator]();
          for (let i = 0; i < pool.length; i++) {
            const other = pool[it.next().value! % pool.length]!;
            merged = i % 2 === 0 ? sync(merged, other) : sync(other, merged);
          }
          const kept = merged.siblings.find((s) => s.dot[0] === dot[0] && s.dot[1] === dot[1]);
          expect(kept?.value).toEqual(value);
        },
      ),
    );
  });

  it('with a context covering every sibling leaves exactly one sibling', () => {
    fc.assert(
      fc.property(commandsArb, fc.nat(2), fc.nat(100), (cmds, at, pick) => {
        const h = play(cmds);
        const local = h.replicas[at];
        // The replica's own ctx, possibly joined with anything else a client saw.
        const ctx = mergeVectors(local?.ctx ?? new Map(), h.contexts[pick % h.contexts.length]!);
        const o = update(local, ctx, String(at + 1), bytes('only'), 1e6);
        expect(values(o)).toEqual(['only']);
      }),
    );
  });
});

describe('no sibling explosion', () => {
  it('two writers alternating with stale contexts for 100 rounds hold at most 2 siblings', () => {
    // Each writer uses only the context of its own last put response; the two coordinators
    // (actors "1" and "2") replicate each put to the other with sync.
    let r1: VersionedObject | undefined;
    let r2: VersionedObject | undefined;
    let ctxA: VersionVector = new Map();
    let ctxB: VersionVector = new Map();
    for (let round = 0; round < 100; round++) {
      r1 = update(r1, ctxA, '1', bytes(`A${round}`), round * 2);
      ctxA = r1.ctx;
      r2 = r2 === undefined ? r1 : sync(r2, r1);
      r2 = update(r2, ctxB, '2', bytes(`B${round}`), round * 2 + 1);
      ctxB = r2.ctx;
      r1 = sync(r1, r2);
      expect(r1.siblings.length).toBeLessThanOrEqual(2);
      expect(r2.siblings.length).toBeLessThanOrEqual(2);
      // Each writer's latest value is never lost.
      expect(values(r1)).toEqual([`A${round}`, `B${round}`]);
    }
    // Same through a single coordinator.
    let r: VersionedObject | undefined;
    ctxA = new Map();
    ctxB = new Map();
    for (let round = 0; round < 100; round++) {
      r = update(r, ctxA, '1', bytes(`A${round}`), round * 2);
      ctxA = r.ctx;
      r = update(r, ctxB, '1', bytes(`B${round}`), round * 2 + 1);
      ctxB = r.ctx;
      expect(r.siblings.length).toBeLessThanOrEqual(2);
    }
  });

  it('holds for any coordinator choice and replication order (3 replicas)', () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant('put' as const), writer: fc.nat(1), at: fc.nat(2) }),
      fc.record({ kind: fc.constant('sync' as const), from: fc.nat(2), to: fc.nat(2) }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
        const replicas: (VersionedObject | undefined)[] = [undefined, undefined, undefined];
        const writerCtx: VersionVector[] = [new Map(), new Map()];
        let t = 0;
        for (const s of steps) {
          if (s.kind === 'put') {
            const o = update(
              replicas[s.at],
              writerCtx[s.writer]!,
              String(s.at + 1),
              bytes(`w${s.writer}`),
              t++,
            );
            replicas[s.at] = o;
            writerCtx[s.writer] = o.ctx;
          } else {
            const from = replicas[s.from];
            const to = replicas[s.to];
            if (from !== undefined) replicas[s.to] = to === undefined ? from : sync(to, from);
          }
          for (const r of replicas) expect(r?.siblings.length ?? 0).toBeLessThanOrEqual(2);
        }
      }),
    );
  });
});

describe('tombstones', () => {
  const live = update(undefined, new Map(), '1', bytes('v1'), 10);

  it('a delete covering the live sibling leaves only the tombstone', () => {
    const del = update(live, live.ctx, '1', null, 20);
    expect(del.siblings).toHaveLength(1);
    expect(del.siblings[0]!.value).toBeNull();
    expect(isDeleted(del)).toBe(true);
    expect(isDeleted(live)).toBe(false);
    expect(isDeleted({ ctx: new Map(), siblings: [] })).toBe(true);
  });

  it('a put with the deleted object ctx supersedes the tombstone', () => {
    const del = update(live, live.ctx, '1', null, 20);
    const again = update(del, del.ctx, '2', bytes('v2'), 30);
    expect(values(again)).toEqual(['v2']);
    expect(isDeleted(again)).toBe(false);
  });

  it('a stale copy of the live value cannot resurrect through sync', () => {
    const del = update(live, live.ctx, '1', null, 20);
    expect(values(sync(live, del))).toEqual([null]);
    expect(values(sync(del, live))).toEqual([null]);
  });

  it('a put without context after a delete keeps the tombstone as a concurrent sibling', () => {
    // The client saw nothing, so its write is concurrent with the delete: both stay, the read
    // shows only the live value (tombstones are filtered), and the next put with that read's
    // context removes both.
    const del = update(live, live.ctx, '1', null, 20);
    const blind = update(del, new Map(), '1', bytes('v3'), 30);
    expect(values(blind)).toEqual([null, 'v3']);
    expect(isDeleted(blind)).toBe(false);
    expect(values(update(blind, blind.ctx, '1', bytes('v4'), 40))).toEqual(['v4']);
  });
});

describe('prune', () => {
  const siblingActors = (o: VersionedObject) => new Set(o.siblings.map((s) => s.dot[0]));
  const bigObjectArb = fc
    .uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 3 }), fc.integer({ min: 1, max: 5 })), {
      selector: (e) => e[0],
      minLength: 1,
      maxLength: 20,
    })
    .chain((entries) =>
      fc.tuple(
        fc.constant(entries),
        fc.subarray(entries, { maxLength: Math.min(3, entries.length) }),
        fc.nat({ max: 25 }),
        fc.shuffledSubarray(entries, { minLength: entries.length }),
      ),
    )
    .map(([entries, sibs, maxEntries, shuffled]) => ({
      object: {
        ctx: new Map(entries),
        siblings: sibs.map(([a, c]) => ({ dot: [a, c] as const, value: bytes(a), timestamp: 0 })),
      } satisfies VersionedObject,
      shuffled: { ctx: new Map(shuffled), siblings: [] } as VersionedObject,
      maxEntries,
    }));

  it('is bounded, keeps sibling actors, only drops entries, and is deterministic', () => {
    fc.assert(
      fc.property(bigObjectArb, ({ object, shuffled, maxEntries }) => {
        const p = prune(object, maxEntries);
        const keep = siblingActors(object);
        expect(p.ctx.size).toBeLessThanOrEqual(Math.max(maxEntries, keep.size));
        expect(p.ctx.size).toBe(Math.min(object.ctx.size, Math.max(maxEntries, keep.size)));
        for (const a of keep) expect(p.ctx.get(a)).toBe(object.ctx.get(a));
        for (const [a, c] of p.ctx) expect(object.ctx.get(a)).toBe(c);
        expect(p.siblings).toBe(object.siblings);
        // Same ctx in another insertion order prunes to the same result.
        const q = prune({ ctx: shuffled.ctx, siblings: object.siblings }, maxEntries);
        expect(hex(q)).toBe(hex(p));
      }),
    );
  });

  it('drops the smallest counters first, larger actor strings first on ties', () => {
    const o: VersionedObject = {
      ctx: vv({ a: 1, b: 1, c: 1, d: 2, e: 9 }),
      siblings: [{ dot: ['a', 1], value: bytes('x'), timestamp: 0 }],
    };
    expect([...prune(o, 4).ctx.keys()].sort()).toEqual(['a', 'b', 'd', 'e']);
    expect([...prune(o, 3).ctx.keys()].sort()).toEqual(['a', 'd', 'e']);
    expect([...prune(o, 2).ctx.keys()].sort()).toEqual(['a', 'e']);
    expect([...prune(o, 1).ctx.keys()]).toEqual(['a']);
    expect([...prune(o, 0).ctx.keys()]).toEqual(['a']);
    expect(prune(o, 5)).toBe(o);
    expect(() => prune(o, -1)).toThrow(RangeError);
  });
});
