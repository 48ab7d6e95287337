import { runSimulation } from './src/testing/index.js';
const seeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 18, 19, 20, 21, 22, 23, 24, 26, 27, 28, 29, 30, 31, 32, 33];
const extra = process.env.NOAE ? { antiEntropy: { enabled: false } } : {};
const bad: string[] = [];
for (const seed of seeds) {
  const r = await runSimulation({ seed, nodeOptions: extra } as any);
  const lost = r.report.results.find((x: any) => x.checker === 'lost-adds')!;
  if (!r.ok) bad.push(`${seed}(lost ${lost.stats.lost}; ${r.report.results.filter((x: any) => !x.ok).map((x: any) => x.checker).join(',')})`);
}
console.log(process.env.NOAE ? 'AE off:' : 'AE on:', bad.join(' '));
