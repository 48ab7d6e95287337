import { runSimulation } from './src/testing/index.js';
for (const seed of [6, 9, 11]) {
  const r = await runSimulation({ seed, ...(process.env.NOAE ? { nodeOptions: { antiEntropy: { enabled: false } } } : {}) } as any);
  const lost = r.report.results.find((x: any) => x.checker === 'lost-adds')!;
  console.log(seed, r.ok, JSON.stringify(lost.stats));
}
