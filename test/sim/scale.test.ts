import { describe, expect, it } from 'vitest';
import { formatSimulationReport, runSimulation } from '../../src/testing/index.js';

describe('simulation: 5 nodes, 10,000 operations', () => {
  // One long seeded run under every fault kind: more operations than the CI seed list's runs, so
  // more faults overlap. Wall time is measured by `npm run sim -- --bench`, never asserted here.
  it('runs with faults and passes every checker', async () => {
    const result = await runSimulation({
      seed: 10,
      nodes: 5,
      operations: 10_000,
      keys: 50,
      registerKeys: 10,
    });
    // Listings come on top of the operations asked for.
    const { list, ...asked } = result.stats.operations;
    const ops = Object.values(asked).reduce((s, x) => s + x.ok + x.fail, 0);
    expect(ops).toBe(10_000);
    expect(list!.ok).toBeGreaterThan(100);
    expect(result.ok, formatSimulationReport(result, { replay: 'SEED=10 npm run sim -- --bench' })).toBe(
      true,
    );
  });
});
