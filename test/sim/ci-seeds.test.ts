import { describe, expect, it } from 'vitest';
import { formatSimulationReport, runSimulation, type SimWorkload } from '../../src/testing/index.js';

/**
 * The CI seed list: default settings (5 nodes, N=3 R=2 W=2, sloppy quorum, 1000 operations,
 * every fault kind, clock skew), so `SEED=<n> npm run sim` replays any of them exactly.
 * `npm run sim -- --seeds 1000` runs many more.
 */
const CI_SEEDS = [
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
  30, 31, 36,
];

/**
 * Seeds that failed the strict checkers (sibling antichain, no resurrection) before operation ids:
 * a forwarded put timed out at its first coordinator, which applied it anyway, and the next
 * coordinator stored it again under its own dot; after the client's next write the first copy came
 * back as a sibling. Each must now pass every checker.
 */
const ONE_DOT_SEEDS = [227, 274, 280, 291, 292, 710, 720, 812, 940];

describe('simulation: CI seeds (mixed faults, N=3 R=2 W=2, sloppy quorum)', () => {
  for (const seed of [...CI_SEEDS, ...ONE_DOT_SEEDS]) {
    it(`seed ${seed}: no lost acknowledged add, replicas converge, every checker passes`, async () => {
      const result = await runSimulation({ seed });
      const report = formatSimulationReport(result, { replay: `SEED=${seed} npm run sim` });
      expect(result.ok, report).toBe(true);
      const lost = result.report.results.find((r) => r.checker === 'lost-adds')!;
      expect(lost.stats.acknowledged).toBeGreaterThan(500);
      expect(lost.stats.lost).toBe(0);
    });
  }
});

// Seed 225 with retries lost two acknowledged adds to two hint objects on one node that wrote as
// one reused hint actor (each covered the other's dot); hint writes now get an actor each.
describe('simulation: clients retry failed writes with a requestId', () => {
  for (const seed of [1, 2, 3, 225]) {
    it(`seed ${seed} with --retries 3: every checker passes, no read shows more values than writers`, async () => {
      const result = await runSimulation({ seed, retries: 3 });
      const report = formatSimulationReport(result, { replay: `SEED=${seed} npm run sim -- --retries 3` });
      expect(result.ok, report).toBe(true);
      // The sibling-bounds checker already caps register siblings at clients + 2; retries add none.
      const most = Math.max(...Object.keys(result.stats.siblingsRead).map(Number));
      expect(most).toBeLessThanOrEqual(result.options.clients + 2);
    });
  }
});

describe('simulation: crash, duplicate, drop and latency faults only', () => {
  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: every checker passes`, async () => {
      const result = await runSimulation({
        seed,
        nemesis: { faults: ['crash', 'duplicate', 'drop', 'latency'] },
      });
      const replay = `SEED=${seed} npm run sim -- --faults crash,duplicate,drop,latency`;
      expect(result.ok, formatSimulationReport(result, { replay })).toBe(true);
    });
  }
});

/**
 * Every write path a user can pick, each on its own seeds (every fault kind): put chains on the
 * contexts puts return, DynamoClient, update() and resolved reads with a merge resolver, and all
 * of them mixed. Each of these lost acknowledged writes when a put returned the coordinator's
 * whole clock.
 */
const PATH_WORKLOADS: SimWorkload[] = ['chain', 'client', 'update', 'resolved', 'mixed'];

describe('simulation: every write path', () => {
  for (const workload of PATH_WORKLOADS) {
    for (const seed of [1, 2, 3, 4]) {
      it(`${workload}, seed ${seed}: no lost acknowledged add, every checker passes`, async () => {
        const result = await runSimulation({ seed, workload });
        const replay = `SEED=${seed} npm run sim -- --workload ${workload}`;
        expect(result.ok, formatSimulationReport(result, { replay })).toBe(true);
        const lost = result.report.results.find((r) => r.checker === 'lost-adds')!;
        expect(lost.stats.acknowledged).toBeGreaterThan(500);
      });
    }
  }
});

describe('simulation: ttl workload (puts with ttlMs under every fault kind and clock jumps)', () => {
  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: no read returns an expired value, nothing superseded comes back, every checker passes`, async () => {
      const result = await runSimulation({ seed, workload: 'ttl' });
      const replay = `SEED=${seed} npm run sim -- --workload ttl`;
      expect(result.ok, formatSimulationReport(result, { replay })).toBe(true);
      const expiry = result.report.results.find((r) => r.checker === 'expired-reads')!;
      expect(expiry.stats.ttlWrites).toBeGreaterThan(300);
      // Reads came after values had expired on every clock: the check had something to check.
      expect(expiry.stats.expiredChecked).toBeGreaterThan(100);
    });
  }
});
