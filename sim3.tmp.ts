import { runSimulation } from './src/testing/index.js';
const extra = process.env.NOAE ? { antiEntropy: { enabled: false } } : {};
const r = await runSimulation({ seed: 1, nodes: 5, operations: 10_000, keys: 50, registerKeys: 10, nodeOptions: extra } as any);
const lost = r.report.results.find((x: any) => x.checker === 'lost-adds')!;
console.log(r.ok, JSON.stringify(lost.stats));
