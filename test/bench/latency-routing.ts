/**
 * Latency-aware routing and client-driven coordination (Dynamo § 6.4) on a MemoryNetwork
 * with injected latency: 5 nodes, N=3 R=2 W=2, every message 0.5–1.5 ms one way except to and from
 * n5, a slow machine at 15–25 ms.
 *
 * It runs on a VirtualClock: the latencies are the network's and the protocol's, not this
 * machine's scheduling (on a shared 2-core machine a wall-clock run's tail is the CPU's, whatever
 * the routing), and a run is a pure function of its seed. ops/s is in virtual time too.
 *
 * Scenarios, each on a fresh cluster with the same keys and load (16 operations in flight):
 * - server-driven: every operation is called on a random node, which coordinates it (the paper's
 *   baseline; the hop from a load balancer to that node is not even counted);
 * - the same with latency-aware nodes;
 * - a DynamoClient without latency awareness (gets ask all N, puts go to the first primary);
 * - a DynamoClient with it (gets ask the 2 fastest and hedge within 10 % of reads; a put goes to
 *   the replica that answered its read first, else the fastest primary).
 * Each prints a get row and a read-modify-write row (get, then put with its context), with the
 * requests and replies on the network per operation.
 *
 *   npx tsx test/bench/latency-routing.ts [--ops 20000]
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { DynamoClient } from '../../src/client/index.js';
import { seededRandom } from '../../src/index.js';
import { createCluster, drive } from '../../src/testing/index.js';
import { type BenchRow, formatTable, latencyRecorder } from './lib.js';

const SLOW = 'n5';
const KEYS = 2000;
const IN_FLIGHT = 16;
const WARM_UP_MS = 10_000;

export interface LatencyRoutingBenchOptions {
  /** Gets (and read-modify-writes) measured per scenario (default 20 000). */
  ops?: number;
}

type Scenario = 'server-driven' | 'server-driven, latency-aware nodes' | 'client' | 'client, latency-aware';

async function runScenario(scenario: Scenario, ops: number): Promise<BenchRow[]> {
  const latencyAware = scenario.includes('latency-aware');
  const cluster = await createCluster<number>({
    nodes: 5,
    seed: 17,
    network: { latencyMs: { min: 0.5, max: 1.5 } },
    nodeOptions: { latencyAware: scenario === 'server-driven, latency-aware nodes' },
  });
  const { clock, network, nodes } = cluster;
  let client: DynamoClient<number> | undefined;
  /** Runs `total` operations, `IN_FLIGHT` at a time, moving virtual time; virtual latency percentiles. */
  const closedLoop = async (total: number, op: (i: number) => Promise<unknown>) => {
    const rec = latencyRecorder();
    let next = 0;
    let running = IN_FLIGHT;
    const t0 = clock.now();
    const worker = async () => {
      for (let i = next++; i < total; i = next++) {
        const started = clock.now();
        await op(i);
        rec.record(clock.now() - started);
      }
      running--;
    };
    const workers = Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    while (running > 0) await clock.advance(5);
    await workers;
    return { opsPerSec: total / ((clock.now() - t0) / 1000), ...rec.percentiles() };
  };
  try {
    if (scenario.startsWith('client')) {
      client = await drive(
        clock,
        DynamoClient.start<number>({
          id: 'client',
          transport: network.connect('client'),
          seeds: ['n1'],
          clock,
          random: seededRandom('client'),
          latencyAware,
        }),
      );
    }
    const keys = Array.from({ length: KEYS }, (_, i) => `key-${i}`);
    const pick = seededRandom('front').fork('pick');
    // Server-driven: a random node per operation (the same sequence in every run).
    const front = () => client ?? nodes[pick.int(nodes.length)]!;
    await closedLoop(KEYS, (i) => front().put(keys[i]!, 0));
    // The slow node from now on; state pulls, probes and a warm-up load measure it.
    network.setNodeLatency(SLOW, { min: 15, max: 25 });
    await clock.advance(WARM_UP_MS);
    await closedLoop(2000, (i) => front().get(keys[i % KEYS]!));
    const sentBefore = network.counters.sent;
    const get = await closedLoop(ops, (i) => front().get(keys[i % KEYS]!));
    const getMessages = network.counters.sent - sentBefore;
    const rmwBefore = network.counters.sent;
    const rmw = await closedLoop(ops, async (i) => {
      const f = front();
      const { context } = await f.get(keys[i % KEYS]!);
      await f.put(keys[i % KEYS]!, i, { context });
    });
    const rmwMessages = network.counters.sent - rmwBefore;
    const label = `MemoryNetwork (virtual time) 5 nodes, links 0.5–1.5 ms, n5 at 15–25 ms, N=3 R=2 W=2, ${scenario}`;
    const hedged = client?.stats().latency?.hedged;
    return [
      {
        scenario: `${label}: get`,
        ...get,
        extra: {
          messagesPerOp: (getMessages / ops).toFixed(2),
          ...(hedged === undefined ? {} : { hedgedReads: hedged }),
        },
      },
      {
        scenario: `${label}: get then put with its context`,
        ...rmw,
        extra: { messagesPerOp: (rmwMessages / ops).toFixed(2) },
      },
    ];
  } finally {
    await client?.stop();
    await cluster.stop();
  }
}

export async function benchLatencyRouting(options: LatencyRoutingBenchOptions = {}): Promise<BenchRow[]> {
  const ops = options.ops ?? 20_000;
  const rows: BenchRow[] = [];
  const scenarios: Scenario[] = [
    'server-driven',
    'server-driven, latency-aware nodes',
    'client',
    'client, latency-aware',
  ];
  for (const s of scenarios) rows.push(...(await runScenario(s, ops)));
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { ops: { type: 'string', default: '20000' } } });
  console.log(formatTable(await benchLatencyRouting({ ops: Number(values.ops) })));
}
