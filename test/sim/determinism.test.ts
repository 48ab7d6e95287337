import { describe, expect, it } from 'vitest';
import { runSimulation, type SimulationOptions } from '../../src/testing/index.js';

// Every fault kind, a wiped disk, clock jumps and both workloads: the runs most likely to expose
// a hidden source of nondeterminism (wall time, Math.random, map iteration over unordered input).
const options: SimulationOptions = {
  operations: 400,
  nemesis: { intervalMs: { min: 50, max: 400 }, durationMs: { min: 100, max: 1500 } },
};

describe('simulation determinism', () => {
  it('gives the same history, byte for byte, for the same seed', async () => {
    const a = await runSimulation({ ...options, seed: 7 });
    const b = await runSimulation({ ...options, seed: 7 });
    expect(a.history.length).toBeGreaterThan(800);
    expect(Object.keys(a.stats.faults).length).toBeGreaterThan(1);
    expect(JSON.stringify(b.history)).toBe(JSON.stringify(a.history));
    expect(JSON.stringify(b.final)).toBe(JSON.stringify(a.final));
    expect(b.stats).toEqual(a.stats);
  });

  it('gives a different history for a different seed', async () => {
    const a = await runSimulation({ ...options, seed: 7, operations: 100 });
    const b = await runSimulation({ ...options, seed: 8, operations: 100 });
    expect(JSON.stringify(b.history)).not.toBe(JSON.stringify(a.history));
  });
});
