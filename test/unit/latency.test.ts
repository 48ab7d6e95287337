import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CoordinatorMemory,
  coordinatorOrder,
  HEDGE_BURST,
  HedgeBudget,
  LatencyEstimator,
  MIN_HEDGE_DELAY_MS,
  planRead,
} from '../../src/coordinator/latency.js';
import { LatencyRouting } from '../../src/coordinator/latency-routing.js';
import { loadHasher, type PreferenceEntry } from '../../src/ring/index.js';
import { VirtualClock } from '../../src/util/clock.js';

const primary = (id: string): PreferenceEntry => ({ id, kind: 'primary' });
const fallback = (id: string, hintFor: string): PreferenceEntry => ({ id, kind: 'fallback', hintFor });

describe('LatencyEstimator', () => {
  it('converges on a steady round trip and tracks its deviation (RFC 6298 gains)', () => {
    const e = new LatencyEstimator();
    e.record('a', 10);
    expect(e.estimate('a')).toBe(10);
    expect(e.upperMs('a')).toBe(20); // first sample: rttvar = rtt / 2; upper = srtt + 2·rttvar
    for (let i = 0; i < 200; i++) e.record('a', 2);
    expect(e.estimate('a')).toBeCloseTo(2, 3);
    expect(e.upperMs('a')!).toBeLessThan(2.01);
    for (let i = 0; i < 200; i++) e.record('b', i % 2 === 0 ? 1 : 3);
    expect(e.estimate('b')).toBeGreaterThan(1.5);
    expect(e.estimate('b')).toBeLessThan(2.5);
    expect(e.upperMs('b')!).toBeGreaterThan(4);
  });

  it('ignores samples that are not finite non-negative numbers', () => {
    const e = new LatencyEstimator();
    for (const bad of [Number.NaN, -1, Number.POSITIVE_INFINITY]) e.record('a', bad);
    expect(e.estimate('a')).toBeUndefined();
  });

  it('keeps at most maxPeers peers, forgetting the oldest', () => {
    const e = new LatencyEstimator(3);
    for (const id of ['a', 'b', 'c', 'd']) e.record(id, 1);
    expect(e.size).toBe(3);
    expect(e.estimate('a')).toBeUndefined();
    expect(e.estimate('d')).toBe(1);
  });

  it('ranks self first, primaries before fallbacks, unmeasured then fastest first', () => {
    const e = new LatencyEstimator();
    e.record('a', 5);
    e.record('b', 1);
    e.record('f', 0.1);
    const list = [primary('a'), primary('u'), primary('b'), primary('me'), fallback('f', 'x')];
    expect(e.rank(list, 'me').map((x) => x.id)).toEqual(['me', 'u', 'b', 'a', 'f']);
  });

  it('ranking is a stable permutation', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'd', 'e'), fc.nat(50)), { maxLength: 20 }),
        (samples) => {
          const e = new LatencyEstimator();
          for (const [id, ms] of samples) e.record(id, ms);
          const list = ['a', 'b', 'c', 'd', 'e'].map(primary);
          const ranked = e.rank(list);
          expect([...ranked].sort((x, y) => (x.id < y.id ? -1 : 1))).toEqual(list);
          for (let i = 1; i < ranked.length; i++) {
            const prev = e.estimate(ranked[i - 1]!.id) ?? 0;
            expect(prev).toBeLessThanOrEqual(e.estimate(ranked[i]!.id) ?? 0);
          }
        },
      ),
    );
  });
});

describe('HedgeBudget', () => {
  it('bounds timed hedges by ratio × reads + burst, whatever the demand', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.array(fc.boolean(), { maxLength: 2000 }),
        (ratio, wantsHedge) => {
          const b = new HedgeBudget(ratio);
          let reads = 0;
          for (const wants of wantsHedge) {
            b.onRead();
            reads++;
            if (wants) b.take();
          }
          expect(b.hedged).toBeLessThanOrEqual(ratio * reads + HEDGE_BURST);
        },
      ),
    );
  });

  it('refuses every hedge at ratio 0 and grants every one at ratio 1', () => {
    const none = new HedgeBudget(0);
    const all = new HedgeBudget(1);
    for (let i = 0; i < 100; i++) {
      none.onRead();
      all.onRead();
      expect(none.take()).toBe(false);
      expect(all.take()).toBe(true);
    }
    expect(none.refused).toBe(100);
    expect(() => new HedgeBudget(1.5)).toThrow(RangeError);
  });
});

describe('planRead', () => {
  const e = new LatencyEstimator();
  for (let i = 0; i < 50; i++) {
    e.record('fast1', 1);
    e.record('fast2', 2);
    e.record('slow', 40);
  }
  const list = [primary('slow'), primary('fast2'), primary('fast1')];

  it('asks the r fastest first and hedges after the r-th one’s upper estimate', () => {
    const plan = planRead(list, 2, e, new HedgeBudget(1), 'me', 1000);
    expect(plan.list.map((x) => x.id)).toEqual(['fast1', 'fast2', 'slow']);
    expect(plan.hedge?.first).toBe(2);
    expect(plan.hedge!.delayMs).toBeCloseTo(e.upperMs('fast2')!, 6);
    expect(plan.hedge!.allow()).toBe(true);
  });

  it('asks everyone at once when r covers the list, and clamps the delay', () => {
    expect(planRead(list, 3, e, new HedgeBudget(1), 'me', 1000).hedge).toBeUndefined();
    expect(planRead(list, 2, e, new HedgeBudget(1), 'me', 1.5).hedge!.delayMs).toBe(1.5);
    const fresh = planRead(
      [primary('x'), primary('y')],
      1,
      new LatencyEstimator(),
      new HedgeBudget(1),
      'me',
      9,
    );
    // Nothing measured yet: nobody is known to be slower, so everyone is asked (and measured).
    expect(fresh.hedge).toBeUndefined();
  });

  it('asks at once the replicas about as fast as the chosen ones; holds back only slower ones', () => {
    const even = new LatencyEstimator();
    for (let i = 0; i < 50; i++) {
      even.record('a', 2 + (i % 2));
      even.record('b', 3 + (i % 2));
      even.record('c', 2.5 + (i % 2));
    }
    expect(
      planRead(['a', 'b', 'c'].map(primary), 2, even, new HedgeBudget(1), 'me', 1000).hedge,
    ).toBeUndefined();
    const oneSlow = new LatencyEstimator();
    for (let i = 0; i < 50; i++) {
      oneSlow.record('a', 1);
      oneSlow.record('b', 1);
      oneSlow.record('c', 0.2);
    }
    oneSlow.record('d', 30);
    const plan = planRead(['d', 'a', 'b', 'c'].map(primary), 1, oneSlow, new HedgeBudget(1), 'me', 1000);
    expect(plan.list.map((x) => x.id)).toEqual(['c', 'a', 'b', 'd']);
    // a and b (1 ms) are within the 1 ms floor of the hedge delay: asked at once; d is held back.
    expect(plan.hedge!.first).toBe(3);
    expect(plan.hedge!.delayMs).toBe(MIN_HEDGE_DELAY_MS);
  });
});

describe('CoordinatorMemory and coordinatorOrder', () => {
  it('remembers a context briefly and boundedly', () => {
    const m = new CoordinatorMemory(100, 2);
    m.remember('c1', 'a', 0);
    expect(m.recall('c1', 100)).toBe('a');
    expect(m.recall('c1', 101)).toBeUndefined();
    m.remember('c1', 'a', 0);
    m.remember('c2', 'b', 0);
    m.remember('c3', 'c', 0);
    expect(m.size).toBe(2);
    expect(m.recall('c1', 0)).toBeUndefined();
    expect(m.recall('c3', 0)).toBe('c');
  });

  it('puts the remembered replica first, then primaries by latency, then fallbacks', () => {
    const e = new LatencyEstimator();
    e.record('a', 9);
    e.record('b', 1);
    e.record('c', 5);
    const list = [primary('a'), fallback('f', 'x'), primary('b'), primary('c')];
    expect(coordinatorOrder(list, undefined, e).map((x) => x.id)).toEqual(['b', 'c', 'a', 'f']);
    expect(coordinatorOrder(list, 'a', e).map((x) => x.id)).toEqual(['a', 'b', 'c', 'f']);
    expect(coordinatorOrder(list, 'gone', undefined).map((x) => x.id)).toEqual(['a', 'b', 'c', 'f']);
  });

  it('never puts a remembered fallback ahead of a primary (it answered a read from a hint object)', () => {
    const e = new LatencyEstimator();
    const list = [primary('a'), fallback('f', 'x'), primary('b')];
    expect(coordinatorOrder(list, 'f', e).map((x) => x.id)).toEqual(['a', 'b', 'f']);
    expect(coordinatorOrder(list, 'f', undefined).map((x) => x.id)).toEqual(['a', 'b', 'f']);
  });
});

describe('LatencyRouting coordinator memory', () => {
  it('remembers the first replier per key and context in a bounded number of bytes per entry', async () => {
    await loadHasher();
    const routing = new LatencyRouting('self', new VirtualClock(), {
      maxHedgeRatio: 0.1,
      requestTimeoutMs: 100,
    });
    const list = [primary('a'), primary('b'), primary('c')];
    const key = new Uint8Array(1024).fill(7);
    // A context as large as a client's may be (hundreds of entries): kilobytes.
    const context = `ctx:${'x'.repeat(16_000)}`;
    routing.remember(key, context, 'c');
    routing.remember(new Uint8Array([1]), context, 'b');
    expect(routing.coordinators(list, key, context)[0]!.id).toBe('c');
    expect(routing.coordinators(list, new Uint8Array([1]), context)[0]!.id).toBe('b');
    expect(routing.coordinators(list, new Uint8Array([2]), context)[0]!.id).toBe('a');
    const stored = (routing as unknown as { memory: { byContext: Map<string, unknown> } }).memory.byContext;
    expect(stored.size).toBe(2);
    for (const k of stored.keys()) expect(k.length).toBeLessThanOrEqual(16);
  });
});
