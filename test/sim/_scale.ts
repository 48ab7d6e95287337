import { runSimulation } from '../../src/testing/index.js';

for (const seed of [5, 6]) {
  const t0 = performance.now();
  const r = await runSimulation({ seed, nodes: 5, operations: 10_000, keys: 50, registerKeys: 10 });
  console.log(
    seed,
    r.ok,
    (performance.now() - t0).toFixed(0),
    r.report.results.filter((x) => !x.ok).map((x) => x.checker + ':' + x.problems[0]?.message.slice(0, 100)),
  );
}
