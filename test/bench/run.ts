/**
 * `npm run bench [-- --json FILE] [--quick] [--only NAME,...] [--workload a,b,c,d,f]`: every
 * benchmark, one table (`--workload` chooses the YCSB workloads of the `ycsb` suite).
 * Figures are wall-clock ops/s and latency percentiles on this machine; quote medians of
 * several runs (the machine is shared and noisy).
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { benchAntiEntropy } from './anti-entropy.js';
import { benchCluster, benchCounter, benchFailover, benchJoin } from './cluster.js';
import { benchFloor } from './floor.js';
import { benchLatencyRouting } from './latency-routing.js';
import { type BenchRow, formatTable } from './lib.js';
import { benchListing } from './listing.js';
import { benchRing } from './micro-ring.js';
import { benchStorage } from './micro-storage.js';
import { benchTcp } from './micro-tcp.js';
import { benchVersioning } from './micro-versioning.js';
import { benchTcpClient } from './tcp-client.js';
import { benchTcpCluster } from './tcp-cluster.js';
import { benchYcsb } from './ycsb.js';
import { workloadsNamed } from './ycsb-core.js';
import { benchZones } from './zones.js';

const { values } = parseArgs({
  options: {
    json: { type: 'string' },
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    workload: { type: 'string', default: 'a,b,c,d,f' },
  },
});
const quick = values.quick;
const suites: Record<string, () => Promise<BenchRow[]>> = {
  ring: () => benchRing(),
  zones: () => benchZones({ quick }),
  versioning: () => benchVersioning(),
  storage: () => benchStorage(quick ? { ops: 20_000, syncOps: 2_000 } : {}),
  'cluster-memory': () => benchCluster({ storage: 'memory', ops: quick ? 10_000 : 100_000 }),
  'cluster-level': () => benchCluster({ storage: 'level', ops: quick ? 10_000 : 100_000 }),
  failover: () => benchFailover(quick ? 5_000 : 50_000),
  counter: () => benchCounter(quick ? 5_000 : 30_000),
  join: () => benchJoin(quick ? 10_000 : 100_000),
  'anti-entropy': () => benchAntiEntropy(),
  listing: () => benchListing({ keys: quick ? 20_000 : 100_000 }),
  'latency-routing': () => benchLatencyRouting({ ops: quick ? 5_000 : 20_000 }),
  tcp: () => benchTcp(),
  'tcp-cluster': () => benchTcpCluster({ ops: quick ? 20_000 : 100_000 }),
  'tcp-client': () => benchTcpClient({ ops: quick ? 10_000 : 20_000 }),
  // The same work as tcp-cluster without the engine: what this machine allows at best.
  'tcp-floor': () => benchFloor({ ops: quick ? 20_000 : 100_000 }),
  // YCSB core workloads in one process (MemoryStorage, LevelStorage) and over TCP.
  ycsb: () =>
    benchYcsb({
      workloads: workloadsNamed(values.workload),
      records: quick ? 10_000 : 100_000,
      operations: quick ? 10_000 : 100_000,
    }),
};
const selected = values.only ? values.only.split(',') : Object.keys(suites);
const rows: BenchRow[] = [];
for (const name of selected) {
  const suite = suites[name];
  if (!suite) throw new Error(`unknown suite ${name}; known: ${Object.keys(suites).join(', ')}`);
  process.stderr.write(`running ${name}...\n`);
  rows.push(...(await suite()));
}
console.log(formatTable(rows));
if (values.json) {
  await writeFile(values.json, JSON.stringify({ date: new Date().toISOString(), rows }, null, 2));
  console.log(`\nwrote ${values.json}`);
}
