/**
 * TypedStore against a scripted key-value layer (reads that miss, writes that land or not), to
 * reach session states a cluster reaches only under rare timing.
 */
import { describe, expect, it } from 'vitest';
import { TypeMismatchError } from '../../../src/errors.js';
import { MemoryStorage } from '../../../src/storage/index.js';
import { decodeState } from '../../../src/types/codec.js';
import { TypedStore, type TypedStoreDeps } from '../../../src/types/store.js';
import { VirtualClock } from '../../../src/util/clock.js';

/** One replica's siblings: a write with a context replaces them all; `miss` makes reads see nothing. */
async function fakeKv() {
  const storage = new MemoryStorage();
  await storage.open();
  const kv = { values: [] as Uint8Array[], miss: false };
  const deps: TypedStoreDeps = {
    read: async () => ({ values: kv.miss ? [] : [...kv.values], context: '' }),
    write: async (_key, value) => {
      // A read that missed wrote with an empty context: its write is a sibling of what it missed.
      if (kv.miss) kv.values.push(value);
      else kv.values = [value];
      return {};
    },
    actor: () => 'n1@inc',
    storage,
    clock: new VirtualClock(1000),
    maxValueBytes: 1 << 20,
    onBackgroundError: (e) => {
      throw e;
    },
  };
  return { kv, deps };
}

describe('TypedStore sessions', () => {
  it('an operation of another type than the session knows the key holds is a TypeMismatchError, nothing written', async () => {
    const { kv, deps } = await fakeKv();
    const store = new TypedStore(deps);
    await store.update('k', 'counter', (c) => (c as { increment(n: number): void }).increment(5));
    // The next read misses the counter (a sloppy quorum, a partition): the node still knows the key.
    kv.miss = true;
    await expect(
      store.update('k', 'set', (s) => (s as { add(e: string): void }).add('x')),
    ).rejects.toBeInstanceOf(TypeMismatchError);
    await expect(store.read('k', 'set')).rejects.toBeInstanceOf(TypeMismatchError);
    kv.miss = false;
    expect(kv.values).toHaveLength(1);
    expect((await store.read('k', 'counter')).value).toBe(5);
  });
});

/** Per-key siblings; `lose` makes the next write fail as a timeout while it lands on a replica no read reaches. */
async function keyedKv() {
  const storage = new MemoryStorage();
  await storage.open();
  const kv = {
    keys: new Map<string, Uint8Array[]>(),
    lose: false,
    unseen: [] as Uint8Array[],
    /** When set, the next write calls `arrived` and then waits for `until`. */
    gate: undefined as { arrived(): void; until: Promise<void> } | undefined,
  };
  const deps: TypedStoreDeps = {
    read: async (key) => ({ values: [...(kv.keys.get(String(key)) ?? [])], context: '' }),
    write: async (key, value) => {
      const gate = kv.gate;
      kv.gate = undefined;
      if (gate) {
        gate.arrived();
        await gate.until;
      }
      if (kv.lose) {
        kv.lose = false;
        kv.unseen.push(value);
        throw new Error('timed out: some replicas may have the write');
      }
      kv.keys.set(String(key), [value]);
      return {};
    },
    actor: () => 'n1@inc',
    storage,
    clock: new VirtualClock(1000),
    maxValueBytes: 1 << 20,
    onBackgroundError: (e) => {
      throw e;
    },
  };
  return { kv, deps };
}

const increment = (by: number) => (c: unknown) => (c as { increment(n: number): void }).increment(by);
const actors = (bytes: Uint8Array) => [...decodeState(bytes).ctx.vv.keys()];

describe('TypedStore retired sessions', () => {
  it("resumes an evicted session's actor when the read has its last dot", async () => {
    const { kv, deps } = await keyedKv();
    const store = new TypedStore(deps, { maxSessions: 1 });
    for (let i = 0; i < 5; i++) {
      await store.update('x', 'counter', increment(1));
      await store.update('y', 'counter', increment(1)); // evicts x's session
    }
    expect(store.held()).toMatchObject({ sessions: 1, retiredSessions: 1 });
    expect(actors(kv.keys.get('x')![0]!)).toHaveLength(1);
    expect(decodeState(kv.keys.get('x')![0]!).ctx.vv.values().next().value).toBe(5);
    expect((await store.read('x', 'counter')).value).toBe(5);
    // The record keeps the type too: a read that misses the counter still knows the key holds one.
    const stored = kv.keys.get('x')!;
    kv.keys.set('x', []);
    const add = (s: unknown) => (s as { add(e: string): void }).add('e');
    await expect(store.update('x', 'set', add)).rejects.toBeInstanceOf(TypeMismatchError);
    await expect(store.read('x', 'set')).rejects.toBeInstanceOf(TypeMismatchError);
    kv.keys.set('x', stored);
    await store.update('x', 'counter', increment(1));
    expect(actors(kv.keys.get('x')![0]!)).toHaveLength(1);
  });

  it('an evicted session whose last write the read did not see gets a new actor (no dot issued twice)', async () => {
    const { kv, deps } = await keyedKv();
    const store = new TypedStore(deps, { maxSessions: 1 });
    await store.update('x', 'counter', increment(1)); // dot 1, acknowledged
    kv.lose = true;
    await expect(store.update('x', 'counter', increment(10))).rejects.toThrow('timed out'); // dot 2, unseen
    await store.update('y', 'counter', increment(1)); // evicts x's session
    await store.update('x', 'counter', increment(100)); // the read has dot 1 only
    const written = kv.keys.get('x')![0]!;
    const [first, second] = actors(written);
    expect(second).toBeDefined();
    expect(decodeState(written).ctx.vv.get(first!)).toBe(1); // the old actor's dot 2 was not reissued
    // The lost write surfaces: both it and the new actor's count, once each.
    kv.keys.get('x')!.push(...kv.unseen);
    expect((await store.read('x', 'counter')).value).toBe(111);
  });

  it('a session evicted while its write is in flight keeps that write when it may have landed', async () => {
    const { kv, deps } = await keyedKv();
    const store = new TypedStore(deps, { maxSessions: 1 });
    await store.update('x', 'counter', increment(1));
    let open = () => {};
    const atGate = new Promise<void>((arrived) => {
      kv.gate = { arrived, until: new Promise((resolve) => (open = resolve)) };
    });
    const pending = store.update('x', 'counter', increment(10)); // dot 2, held
    await atGate;
    await store.update('y', 'counter', increment(1)); // evicts x's session mid-write
    expect(store.held()).toMatchObject({ retiredSessions: 1 });
    kv.lose = true;
    open();
    await expect(pending).rejects.toThrow('timed out'); // may have landed: x's session comes back
    expect(store.held()).toMatchObject({ retiredSessions: 1 }); // y's, evicted by x's return
    await store.update('x', 'counter', increment(100)); // builds on dot 2 though the read lacks it
    const written = decodeState(kv.keys.get('x')![0]!);
    expect([...written.ctx.vv.entries()]).toHaveLength(1);
    expect([...written.ctx.vv.values()]).toEqual([3]);
    kv.keys.get('x')!.push(...kv.unseen);
    expect((await store.read('x', 'counter')).value).toBe(111);
  });

  it('a last write that issued no dot (a field removal) the read missed is not resumed over', async () => {
    const { kv, deps } = await keyedKv();
    const store = new TypedStore(deps, { maxSessions: 1 });
    type M = { counter(n: string): { increment(by: number): void }; remove(n: string): void };
    await store.update('x', 'map', (m) => (m as M).counter('f').increment(5)); // dot 1
    kv.lose = true;
    await expect(store.update('x', 'map', (m) => (m as M).remove('f'))).rejects.toThrow('timed out');
    await store.update('y', 'counter', increment(1)); // evicts x's session
    // The read has dot 1 as the actor's highest, yet not the removal that came after it.
    await store.update('x', 'map', (m) => (m as M).counter('f').increment(1));
    kv.keys.get('x')!.push(...kv.unseen);
    // The removal and this increment are one node's operations in order: the field holds 1.
    expect((await store.read('x', 'map')).value.counters).toEqual({ f: 1 });
  });

  it('keeps at most maxRetiredSessions records (a forgotten one starts a new actor)', async () => {
    const { kv, deps } = await keyedKv();
    const store = new TypedStore(deps, { maxSessions: 1, maxRetiredSessions: 2 });
    for (const k of ['a', 'b', 'c', 'd']) await store.update(k, 'counter', increment(1));
    expect(store.held()).toMatchObject({ sessions: 1, retiredSessions: 2 });
    await store.update('a', 'counter', increment(1)); // a's record was the oldest: forgotten
    await store.update('c', 'counter', increment(1)); // c's was kept: resumed
    expect(actors(kv.keys.get('a')![0]!)).toHaveLength(2);
    expect(actors(kv.keys.get('c')![0]!)).toHaveLength(1);
  });
});
