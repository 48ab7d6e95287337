/**
 * Operation ids: one client write that two coordinators applied ("twins", two dots) stays one
 * write, and byte-equal values are one value. See versioning/object.ts `opKey`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applied,
  CorruptObjectError,
  decodeObject,
  encodeObject,
  MAX_OP_ENTRIES,
  opKey,
  prune,
  sync,
  update,
  type VersionedObject,
} from '../../../src/versioning/index.js';
import { bytes, hex, values, vv } from './helpers.js';

/** The same forwarded write ("op1", value "v") as coordinator `actor` makes it on `local`. */
const twin = (actor: string, local?: VersionedObject) =>
  update(local, new Map(), actor, bytes('v'), 10, 0, 'op1');

describe('operation ids', () => {
  it('a twin carries the op, and the ctx records it', () => {
    const a = twin('A');
    expect(a.siblings).toEqual([{ dot: ['A', 1], value: bytes('v'), timestamp: 10, op: 'op1' }]);
    expect(a.ctx.get(opKey('op1'))).toBe(1); // whole seconds, at least 1
    expect(applied(a, 'op1')).toBe(true);
    expect(applied(a, 'op2')).toBe(false);
    expect(applied(undefined, 'op1')).toBe(false);
  });

  it('sync keeps one of two twins (the smaller dot) and covers both dots', () => {
    const a = twin('A');
    const b = twin('B');
    for (const m of [sync(a, b), sync(b, a)]) {
      expect(m.siblings.map((s) => s.dot)).toEqual([['A', 1]]);
      expect(m.ctx.get('A')).toBe(1);
      expect(m.ctx.get('B')).toBe(1);
    }
    expect(hex(sync(a, b))).toBe(hex(sync(b, a)));
  });

  it('a put whose context saw one twin supersedes the other, wherever it is (no resurrection)', () => {
    const a = twin('A');
    const b = twin('B');
    // The client read only B's copy, then wrote "w" with that context at C.
    const next = update(undefined, b.ctx, 'C', bytes('w'), 20);
    expect(values(sync(next, a))).toEqual(['w']);
    expect(values(sync(a, next))).toEqual(['w']);
    // And a coordinator that still holds A's copy drops it on the same put.
    expect(values(update(a, b.ctx, 'A', bytes('w'), 20))).toEqual(['w']);
  });

  it('a context without the op keeps a twin it did not see (a concurrent write is never lost)', () => {
    const a = twin('A');
    const other = update(undefined, new Map(), 'C', bytes('w'), 20);
    expect(values(sync(other, a)).sort()).toEqual(['v', 'w']);
  });

  it('encodes ops canonically and decodes them back; objects without ops keep the old layout', () => {
    const m = sync(twin('B'), update(undefined, new Map(), 'A', bytes('x'), 5));
    const decoded = decodeObject(encodeObject(m));
    expect(decoded.siblings.map((s) => s.op)).toEqual([undefined, 'op1']);
    expect(hex(decoded)).toBe(hex(m));
    const plain = update(undefined, new Map(), 'A', bytes('x'), 5);
    expect(encodeObject(plain)[0]).toBe(0x92); // [ctx, siblings], as before ops existed
    expect(encodeObject(m)[0]).toBe(0x93);
  });

  it('refuses op lists that are malformed, out of order, duplicated or not covered by the ctx', () => {
    // [ctx, siblings, ops] built by hand: ctx {A: 1, B: 1, "\0op1": 10}.
    const bad = (ops: unknown[], ctxHasOp = true) => {
      const o: VersionedObject = {
        ctx: vv({ A: 1, B: 1, ...(ctxHasOp ? { [opKey('op1')]: 10 } : {}) }),
        siblings: [
          { dot: ['A', 1], value: bytes('x'), timestamp: 1 },
          { dot: ['B', 1], value: bytes('y'), timestamp: 1 },
        ],
      };
      const base = encodeObject(o);
      // Patch the header 0x92 -> 0x93 and append the op list as msgpack.
      const tail = Buffer.from(msgpackArray(ops));
      const out = Buffer.concat([Buffer.from([0x93]), Buffer.from(base.subarray(1)), tail]);
      return () => decodeObject(out);
    };
    expect(bad([0, 'op1'])().siblings[0]!.op).toBe('op1');
    expect(bad([0, 'op1'], false)).toThrow(CorruptObjectError);
    expect(bad([1, 'op1', 0, 'op1'])).toThrow(CorruptObjectError);
    expect(bad([0, 'op1', 1, 'op1'])).toThrow(CorruptObjectError);
    expect(bad([5, 'op1'])).toThrow(CorruptObjectError);
    expect(bad([0, ''])).toThrow(CorruptObjectError);
    expect(bad([])).toThrow(CorruptObjectError);
    expect(bad([0])).toThrow(CorruptObjectError);
  });

  it('prune keeps the ops of live siblings and at most MAX_OP_ENTRIES others, oldest dropped first', () => {
    let o: VersionedObject | undefined;
    for (let i = 1; i <= MAX_OP_ENTRIES + 10; i++) {
      o = prune(update(o, o?.ctx ?? new Map(), 'A', bytes(`v${i}`), i * 1000, 0, `op${i}`), 1000);
    }
    const ops = [...o!.ctx.keys()].filter((k) => k.charCodeAt(0) === 0);
    // The live sibling's op, plus the newest MAX_OP_ENTRIES - 1 superseded ones... at most MAX + 1.
    expect(ops.length).toBeLessThanOrEqual(MAX_OP_ENTRIES + 1);
    expect(ops).toContain(opKey(`op${MAX_OP_ENTRIES + 10}`));
    expect(ops).not.toContain(opKey('op1'));
    expect(o!.ctx.get('A')).toBe(MAX_OP_ENTRIES + 10);
  });

  it('merge laws hold with twins: commutative, associative, idempotent', () => {
    // Three replicas A, B, C, each coordinating on its own object (as nodes do); ops w1 and w2 are
    // forwarded writes that several of them may apply (twins), the rest plain writes; a put's
    // context is any object seen so far (or none); replicas sync in any order.
    const stepArb = fc.oneof(
      fc.record({
        kind: fc.constant('put' as const),
        at: fc.nat(2),
        op: fc.constantFrom('w1', 'w2', undefined),
        ctx: fc.nat(20),
      }),
      fc.record({ kind: fc.constant('sync' as const), from: fc.nat(2), to: fc.nat(2) }),
    );
    const objectsArb = fc.array(stepArb, { minLength: 1, maxLength: 20 }).map((steps) => {
      const replicas: (VersionedObject | undefined)[] = [undefined, undefined, undefined];
      const seen: VersionedObject[] = [];
      for (const [i, st] of steps.entries()) {
        if (st.kind === 'sync') {
          const from = replicas[st.from];
          const to = replicas[st.to];
          if (from) replicas[st.to] = to ? sync(to, from) : from;
        } else {
          const local = replicas[st.at];
          if (applied(local, st.op)) continue;
          const ctx = st.ctx < seen.length ? seen[st.ctx]!.ctx : new Map<string, number>();
          replicas[st.at] = update(local, ctx, 'ABC'[st.at]!, bytes(st.op ?? `plain${i}`), i + 1, 0, st.op);
        }
        const now = replicas[st.kind === 'sync' ? st.to : st.at];
        if (now) seen.push(now);
      }
      return seen.length ? seen : [update(undefined, new Map(), 'A', bytes('x'), 1)];
    });
    fc.assert(
      fc.property(objectsArb, fc.nat(), fc.nat(), fc.nat(), (made, i, j, k) => {
        const x = made[i % made.length]!;
        const y = made[j % made.length]!;
        const z = made[k % made.length]!;
        expect(hex(sync(x, y))).toBe(hex(sync(y, x)));
        expect(hex(sync(sync(x, y), z))).toBe(hex(sync(x, sync(y, z))));
        expect(hex(sync(x, x))).toBe(hex(x));
        // One sibling per op in any merge.
        const ops = sync(sync(x, y), z)
          .siblings.map((s) => s.op)
          .filter((op) => op !== undefined);
        expect(new Set(ops).size).toBe(ops.length);
      }),
      { numRuns: 500 },
    );
  });
});

describe('byte-equal values', () => {
  it('a put of a value the key already shows replaces that sibling, and its context covers both', () => {
    const first = update(undefined, new Map(), 'A', bytes('v'), 1);
    const retry = update(first, new Map(), 'A', bytes('v'), 2);
    expect(retry.siblings).toEqual([{ dot: ['A', 2], value: bytes('v'), timestamp: 2 }]);
    // The retry's context supersedes the value it returned.
    expect(values(update(retry, retry.ctx, 'A', bytes('w'), 3))).toEqual(['w']);
  });

  it('tombstones are always added (their timestamps start the purge grace)', () => {
    const del = update(undefined, new Map(), 'A', null, 1);
    expect(update(del, new Map(), 'A', null, 2).siblings).toHaveLength(2);
  });
});

/** Minimal msgpack for small arrays of small uints and short strings (test input only). */
function msgpackArray(items: unknown[]): number[] {
  const out = [0x90 | items.length];
  for (const item of items) {
    if (typeof item === 'number') out.push(item);
    else {
      const b = Buffer.from(String(item));
      out.push(0xa0 | b.length, ...b);
    }
  }
  return out;
}
