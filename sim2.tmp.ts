import { formatSimulationReport, runSimulation } from './src/testing/index.js';
const r = await runSimulation({ seed: 6 });
console.log(formatSimulationReport(r, {}).slice(0, 4000));
