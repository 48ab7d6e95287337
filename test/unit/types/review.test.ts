/** Counterexamples from the review of the data types' pure core and options (issue 16). */
import { describe, expect, it } from 'vitest';
import { decodeState, encodeState } from '../../../src/types/codec.js';
import { type MapOps, Mutation, opsFor, prune } from '../../../src/types/ops.js';
import { cloneState, emptyState } from '../../../src/types/state.js';
import { resolveDataTypeOptions } from '../../../src/types/store.js';

describe('data types review: options', () => {
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
