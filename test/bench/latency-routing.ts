/**
 * Latency-aware routing and client-driven coordination (issue 17, Dynamo § 6.4) on a MemoryNetwork
 * with injected latency: 5 nodes in one process, N=3 R=2 W=2, every message 1 ms one way except
 * to and from n5, a slow machine at 20 ms. Wall clock (systemClock): the latencies are real timers.
 *
 * Scenarios, each on a fresh cluster with the same keys:
 * - server-driven: every operation is called on a random node, which coordinates it (the paper's
 *   baseline; the hop from a load balancer to that node is not even counted);
 * - the same with latency-aware nodes;
 * - a DynamoClient without latency awareness (gets ask all N, puts go to the first primary);
 * - a DynamoClient with it (gets ask the 2 fastest, hedge within 10 % of reads; puts go to the
 *   replica that answered the read first, else the fastest primary).
 * Each prints get and put rows with p50/p99/p99.9 and the replica requests per operation.
 *
 *   npx tsx test/bench/latency-routing.ts [--ops 20000] [--in-flight 16]
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { DynamoClient } from '../../src/client/index.js';
import { DynamoNode, MemoryNetwork, MemoryStorage } from '../../src/index.js';
import { type BenchRow, formatTable, runClosedLoop } from './lib.js';

const IDS = ['n1', 'n2', 'n3', 'n4', 'n5'];
const SLOW = 'n5';
const FAST_MS = { min: 1, max: 1 };
const SLOW_MS = { min: 20, max: 20 };
const KEYS = 2000;

export interface LatencyRoutingBenchOptions {
  /** Gets (and puts) measured per scenario (default 20 000). */
  ops?: number;
  /** Operations in flight (default 16). */
  inFlight?: number;
}

type Scenario = 'server-driven' | 'server-driven, latency-aware nodes' | 'client' | 'client, latency-aware';

async function runScenario(scenario: Scenario, ops: number, inFlight: number): Promise<BenchRow[]> {
  const network = new MemoryNetwork({ latencyMs: FAST_MS });
  const latencyAware = scenario.includes('latency-aware');
  const nodes: DynamoNode<number>[] = [];
  for (const id of IDS) {
    nodes.push(
      await DynamoNode.start<number>({
        id,
        transport: network.connect(id),
        storage: new MemoryStorage(),
        seeds: id === 'n1' ? [] : ['n1'],
        latencyAware: scenario === 'server-driven, latency-aware nodes',
      }),
    );
  }
  let client: DynamoClient<number> | undefined;
  try {
    while (!nodes.every((n) => n.members().every((m) => m.status === 'up' && m.partitions > 0))) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    if (scenario.startsWith('client')) {
      client = await DynamoClient.start<number>({
        id: 'client',
        transport: network.connect('client'),
        seeds: ['n1'],
        latencyAware,
      });
    }
    const keys = Array.from({ length: KEYS }, (_, i) => `key-${i}`);
    let pick = 0;
    // Server-driven: a random node per operation (deterministic sequence, same for every run).
    const front = () => client ?? nodes[(pick = (pick * 1103515245 + 12345) >>> 0) % nodes.length]!;
    for (const k of keys) await front().put(k, 0);
    // The slow node from now on; a warm-up lets estimates (and JIT) settle before measuring.
    network.setNodeLatency(SLOW, SLOW_MS);
    await runClosedLoop(2000, inFlight, (i) => front().get(keys[i % KEYS]!));
    const sentBefore = network.counters.sent;
    const get = await runClosedLoop(ops, inFlight, (i) => front().get(keys[i % KEYS]!));
    const getMessages = network.counters.sent - sentBefore;
    const putBefore = network.counters.sent;
    // Read-modify-write: a put after a get with its context (the write coordinator choice).
    const put = await runClosedLoop(ops, inFlight, async (i) => {
      const f = front();
      const { context } = await f.get(keys[i % KEYS]!);
      await f.put(keys[i % KEYS]!, i, { context });
    });
    const putMessages = network.counters.sent - putBefore;
    const label = `MemoryNetwork 5 nodes, 1 ms links, n5 at 20 ms, N=3 R=2 W=2, ${scenario}`;
    const hedged = client?.stats().latency?.hedged;
    return [
      {
        scenario: `${label}: get`,
        ...get,
        extra: {
          // Requests and replies on the network per get (read repair included).
          messagesPerOp: (getMessages / ops).toFixed(2),
          ...(hedged === undefined ? {} : { hedgedReads: hedged }),
        },
      },
      {
        scenario: `${label}: get then put (latency of the pair)`,
        ...put,
        extra: { messagesPerOp: (putMessages / ops).toFixed(2) },
      },
    ];
  } finally {
    await client?.stop();
    await Promise.all(nodes.map((n) => n.stop()));
  }
}

export async function benchLatencyRouting(options: LatencyRoutingBenchOptions = {}): Promise<BenchRow[]> {
  const ops = options.ops ?? 20_000;
  const inFlight = options.inFlight ?? 16;
  const rows: BenchRow[] = [];
  const scenarios: Scenario[] = [
    'server-driven',
    'server-driven, latency-aware nodes',
    'client',
    'client, latency-aware',
  ];
  for (const s of scenarios) rows.push(...(await runScenario(s, ops, inFlight)));
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: { ops: { type: 'string', default: '20000' }, 'in-flight': { type: 'string', default: '16' } },
  });
  console.log(
    formatTable(
      await benchLatencyRouting({ ops: Number(values.ops), inFlight: Number(values['in-flight']) }),
    ),
  );
}
