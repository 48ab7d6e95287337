import { describe, expect, it } from 'vitest';
import { Router } from '../../src/coordinator/router.js';

// Four nodes dealt round-robin over 8 partitions: partition p's primaries (N=3) are the next three
// distinct owners clockwise, e.g. partition 0 → a, b, c.
const owners = ['a', 'b', 'c', 'd', 'a', 'b', 'c', 'd'];

function setup(options: { sloppyQuorum?: boolean; down?: string[]; pending?: readonly string[] } = {}) {
  const down = new Set(options.down ?? []);
  const ring = { owners, pending: options.pending ? { owners: options.pending } : null };
  const router = new Router({
    self: 'a',
    n: 3,
    sloppyQuorum: options.sloppyQuorum ?? true,
    ring: () => ring,
    detector: { isUp: (id) => !down.has(id), downCount: down.size },
  });
  return { router, down, ring };
}

describe('Router', () => {
  it('routes to the primaries and reuses one routing per partition while everyone is up', () => {
    const { router } = setup();
    const first = router.route(0);
    expect(first.list).toEqual([
      { id: 'a', kind: 'primary' },
      { id: 'b', kind: 'primary' },
      { id: 'c', kind: 'primary' },
    ]);
    expect(first.unavailable).toEqual([]);
    expect(router.route(0)).toBe(first);
    expect(router.route(1).list.map((e) => e.id)).toEqual(['b', 'c', 'd']);
  });

  it('stands in a fallback for a primary believed down, which holds the hint for it', () => {
    const { router } = setup({ down: ['b'] });
    const routing = router.route(0);
    // The stand-in takes the down primary's place in the list.
    expect(routing.list).toEqual([
      { id: 'a', kind: 'primary' },
      { id: 'd', kind: 'fallback', hintFor: 'b' },
      { id: 'c', kind: 'primary' },
    ]);
    // A replica failing mid-request is replaced by the next healthy node not yet asked.
    expect(routing.nextFallback!(new Set(['a', 'c', 'd']))).toBeUndefined();
    expect(routing.nextFallback!(new Set(['a', 'c']))).toBe('d');
  });

  it('with strict quorum, counts a down primary as unavailable instead', () => {
    const { router } = setup({ down: ['b'], sloppyQuorum: false });
    const routing = router.route(0);
    expect(routing.list.map((e) => e.id)).toEqual(['a', 'c']);
    expect(routing.unavailable).toEqual(['b']);
    expect(routing.nextFallback).toBeUndefined();
  });

  it('asks primaries believed down when no healthy stand-in is left', () => {
    const { router } = setup({ down: ['b', 'c', 'd'] });
    expect(router.route(0).list.map((e) => e.id)).toEqual(['a', 'b', 'c']);
  });

  it('during a rebalance, sends writes also to gaining nodes and holds what it will gain', () => {
    // In the pending ring, partition 1 moves from b, c, d to a, c, d.
    const pending = ['a', 'a', 'c', 'd', 'b', 'b', 'c', 'd'];
    const { router } = setup({ pending });
    expect(router.primaries(pending, 1)).toEqual(['a', 'c', 'd']);
    const routing = router.route(1);
    expect(routing.list.map((e) => e.id)).toEqual(['b', 'c', 'd']);
    expect(routing.extra).toEqual([{ id: 'a', kind: 'primary' }]);
    expect(router.holds(1)).toBe(true);
    expect(setup().router.holds(1)).toBe(false);
  });
});
