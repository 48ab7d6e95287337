import { describe, expect, it } from 'vitest';
import { runSimulation } from '../../src/testing/index.js';

describe('simulation: last-write-wins control', () => {
  it('loses acknowledged adds on most seeds, and the lost-adds checker says so', async () => {
    const seeds = [1, 2, 3, 4, 5, 6];
    let losing = 0;
    let acknowledged = 0;
    let lost = 0;
    for (const seed of seeds) {
      const result = await runSimulation({ seed, resolver: 'lww' });
      const check = result.report.results.find((r) => r.checker === 'lost-adds')!;
      acknowledged += check.stats.acknowledged!;
      lost += check.stats.lost!;
      if (!check.ok) {
        losing++;
        expect(result.ok).toBe(false);
        expect(check.problems[0]!.message).toMatch(/acknowledged adds? missing from the final set/);
      }
      // The siblings are gone after the resolver's write-backs: the loss is silent, not a conflict.
      expect(result.report.results.find((r) => r.checker === 'convergence')!.ok).toBe(true);
    }
    expect(losing).toBeGreaterThanOrEqual(5);
    expect(lost / acknowledged).toBeGreaterThan(0.05);
  });
});
