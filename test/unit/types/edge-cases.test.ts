/** The data types' pure core and options at their edges: depth limits, deferred removals, map field handles. */
import { describe, expect, it } from 'vitest';
import { type CausalContext, emptyContext } from '../../../src/types/causal.js';
import { decodeState, encodeState } from '../../../src/types/codec.js';
import {
  type FlagOps,
  type MapOps,
  type MapValue,
  Mutation,
  opsFor,
  prune,
  typeValue,
} from '../../../src/types/ops.js';
import { cloneState, emptyState, join, type TypedState } from '../../../src/types/state.js';
import { resolveDataTypeOptions } from '../../../src/types/store.js';

describe('data type options', () => {
  it('maxDepth cannot be set above the nesting every replica decodes', () => {
    // The decoder refuses maps nested deeper than 64 (a bound on its recursion): a deeper map that
    // a larger maxDepth let through would be written, then fail on every read as corrupt.
    const next = cloneState(emptyState('map'));
    const m = new Mutation(next, 'a', next.ctx, 0, { maxElementBytes: 64, maxDepth: 100 });
    let map = opsFor(next.store, m) as MapOps;
    for (let d = 1; d < 65; d++) map = map.map('m');
    map.flag('f').enable();
    prune(next.store);
    expect(() => decodeState(encodeState(next))).toThrow(/nested too deep/);
    expect(() => resolveDataTypeOptions({ maxDepth: 65 })).toThrow(RangeError);
    expect(resolveDataTypeOptions({ maxDepth: 64 }).maxDepth).toBe(64);
  });
});

describe('removals based on a context the state has not caught up with', () => {
  /** Applies `fn` at `actor` on a copy of `state`, removals based on `observed`. */
  function op(state: TypedState, actor: string, observed: CausalContext, fn: (ops: never) => void) {
    const next = cloneState(state);
    const m = new Mutation(next, actor, observed, 0, { maxElementBytes: 64, maxDepth: 8 });
    fn(opsFor(next.store, m) as never);
    prune(next.store);
    return next;
  }

  it('a flag disabled with the context of a read that saw it enabled stays disabled when the enable arrives', () => {
    const enabled = op(emptyState('flag'), 'a', emptyContext(), (f: FlagOps) => f.enable());
    // Replica c has not received the enable; the disable carries the context of a read that saw it.
    const disabled = op(emptyState('flag'), 'c', enabled.ctx, (f: FlagOps) => f.disable());
    expect(typeValue(join(disabled, enabled).store)).toBe(false);
    expect(typeValue(join(enabled, disabled).store)).toBe(false);
    // An enable the disabler had not seen still wins.
    const again = op(enabled, 'a', enabled.ctx, (f: FlagOps) => f.enable());
    expect(typeValue(join(join(disabled, enabled), again).store)).toBe(true);
  });

  it('the same inside a map', () => {
    const enabled = op(emptyState('map'), 'a', emptyContext(), (m: MapOps) => m.flag('f').enable());
    const disabled = op(emptyState('map'), 'c', enabled.ctx, (m: MapOps) => m.flag('f').disable());
    expect((typeValue(join(disabled, enabled).store) as MapValue).flags).toEqual({});
    const again = op(enabled, 'a', enabled.ctx, (m: MapOps) => m.flag('f').enable());
    expect((typeValue(join(join(disabled, enabled), again).store) as MapValue).flags).toEqual({ f: true });
  });
});

describe('map field handles', () => {
  it('a field handle taken before the field is removed in the same update still writes into the map', () => {
    const limits = { maxElementBytes: 64, maxDepth: 8 };
    const base = cloneState(emptyState('map'));
    const first = new Mutation(base, 'a', emptyContext(), 0, limits);
    const m1 = opsFor(base.store, first) as MapOps;
    m1.set('cart').add('old');
    m1.counter('visits').increment(5);
    m1.map('address').register('city').assign('Oslo');
    // One update on what was read: take the handles, remove the fields, then use the handles.
    const next = cloneState(base);
    const m = new Mutation(next, 'a', base.ctx, 0, limits);
    const map = opsFor(next.store, m) as MapOps;
    const cart = map.set('cart');
    const visits = map.counter('visits');
    const city = map.map('address').register('city');
    map.remove('cart');
    map.remove('visits');
    map.remove('address');
    cart.add('new');
    visits.increment(2);
    city.assign('Paris');
    prune(next.store);
    // Before the fix the held handles wrote into detached stores: the dots were issued (into the
    // context) but the add and the increment were in no field, so acknowledged and lost for good.
    expect(typeValue(next.store)).toMatchObject({
      sets: { cart: ['new'] },
      counters: { visits: 2 },
      maps: { address: { registers: { city: 'Paris' } } },
    });
  });
});
