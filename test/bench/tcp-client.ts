/**
 * Client-driven vs server-driven puts over TCP (Dynamo § 6.4): three storage nodes, each
 * its own process (`tcp-cluster-node.ts`: TcpTransport on 127.0.0.1, LevelStorage, N=3 R=2 W=2),
 * and a fourth process that runs the load, 128 operations in flight, 100-byte values, either
 *
 * - as a DynamoClient: it sends each put to a replica to coordinate, and coordinates gets itself
 *   (latency-aware, and again with `latencyAware: false`: gets ask all N);
 * - as a DynamoNode member (it joins the ring and stores its share) on keys it is not a replica
 *   of, so each put is forwarded to a replica: the path the client replaces.
 *
 * Reported: ops/s and latency of the front's operations, and CPU per operation of all four
 * processes together (the front's own `process.cpuUsage`, the storage nodes' from /proc).
 *
 *   npx tsx test/bench/tcp-client.ts [--ops 20000] [--runs 1]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { MemberView } from '../../src/index.js';
import { BenchChild, bundleChild, combine } from './children.js';
import { type BenchRow, formatTable } from './lib.js';
import type { LoadResult } from './load.js';
import { medianRows } from './tcp-cluster.js';
import type { BenchCommand } from './tcp-cluster-node.js';
import type { FrontCommand } from './tcp-front.js';

const NODE = fileURLToPath(new URL('./tcp-cluster-node.ts', import.meta.url));
const FRONT = fileURLToPath(new URL('./tcp-front.ts', import.meta.url));
const IN_FLIGHT = 128;
/** Linux clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ). */
const USER_HZ = 100;

/** CPU time the process has used so far, ms (all threads), from /proc. */
async function processCpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
}

async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`bench: no ${what} after 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const ringReady = (views: MemberView[], size: number) =>
  views.length === size && views.every((m) => m.status === 'up' && m.partitions > 0);

export async function benchTcpClient(options: { ops?: number } = {}): Promise<BenchRow[]> {
  const ops = options.ops ?? 20_000;
  const root = await mkdtemp(join(tmpdir(), 'dynamo-bench-client-'));
  const nodes: BenchChild<BenchCommand>[] = [];
  const fronts: BenchChild<FrontCommand>[] = [];
  try {
    const nodeScript = await bundleChild(NODE, 'tcp-cluster-node');
    const frontScript = await bundleChild(FRONT, 'tcp-front');
    const startNode = (id: string, seeds: string[]) =>
      BenchChild.start<BenchCommand>(`bench node ${id}`, [
        nodeScript,
        ...['--id', id, '--data', join(root, id), '--seeds', seeds.join(',')],
      ]);
    nodes.push(await startNode('n1', []));
    nodes.push(...(await Promise.all(['n2', 'n3'].map((id) => startNode(id, [nodes[0]!.address])))));
    await waitFor('3-node ring', async () =>
      (await Promise.all(nodes.map((n) => n.call<MemberView[]>({ cmd: 'members' })))).every((v) =>
        ringReady(v, 3),
      ),
    );
    const rows: BenchRow[] = [];
    // The clients first: the member front joins the ring for good.
    for (const arm of ['client', 'client-all-n', 'node'] as const) {
      const role = arm === 'node' ? 'node' : 'client';
      const front = await BenchChild.start<FrontCommand>(`bench front ${arm}`, [
        frontScript,
        ...['--role', role, '--id', `front-${arm}`, '--data', join(root, `front-${arm}`)],
        ...['--seeds', nodes[0]!.address, '--latency-aware', String(arm === 'client')],
      ]);
      fronts.push(front);
      const size = role === 'client' ? 3 : 4;
      await waitFor(`${size}-member ring`, async () =>
        ringReady(await front.call<MemberView[]>({ cmd: 'members' }), size),
      );
      const closed = (op: 'put' | 'get', total: number, prefix: string) =>
        front.call<LoadResult>({ cmd: 'closed', op, total, inFlight: IN_FLIGHT, prefix });
      await closed('put', Math.min(ops, 10_000), `warm-${arm}`);
      const storageCpu = () => Promise.all(nodes.map((n) => processCpuMs(n.child.pid!)));
      const phase = async (op: 'put' | 'get') => {
        const before = await storageCpu();
        const result = await closed(op, ops, arm);
        const after = await storageCpu();
        const storageMs = after.reduce((s, a, i) => s + a - before[i]!, 0);
        const p = combine([{ ...result, cpuMs: result.cpuMs + storageMs }]);
        return { p, frontCpuUsPerOp: (result.cpuMs * 1000) / ops };
      };
      const label = {
        client: '3 storage processes TCP + a DynamoClient process (latency-aware)',
        'client-all-n':
          '3 storage processes TCP + a DynamoClient process (latencyAware: false, gets ask all N)',
        node: '3 storage processes TCP + a DynamoNode member process (keys it is not a replica of: puts forwarded)',
      }[arm];
      for (const op of ['put', 'get'] as const) {
        const { p, frontCpuUsPerOp } = await phase(op);
        rows.push({
          scenario: `${label}: ${op} (${IN_FLIGHT} in flight)`,
          opsPerSec: p.opsPerSec,
          p50Ms: p.p50Ms,
          p99Ms: p.p99Ms,
          p999Ms: p.p999Ms,
          extra: {
            cpuUsPerOp: Math.round(p.cpuUsPerOp),
            frontCpuUsPerOp: Math.round(frontCpuUsPerOp),
            ...(p.failures ? { failures: p.failures } : {}),
          },
        });
      }
    }
    return rows;
  } finally {
    await Promise.all(fronts.map((f) => f.stop()));
    await Promise.all(nodes.map((n) => n.stop()));
    await rm(root, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: { ops: { type: 'string', default: '20000' }, runs: { type: 'string', default: '1' } },
  });
  const runs: BenchRow[][] = [];
  for (let r = 0; r < Number(values.runs); r++) {
    const rows = await benchTcpClient({ ops: Number(values.ops) });
    console.log(`run ${r + 1}:\n${formatTable(rows)}\n`);
    runs.push(rows);
  }
  if (runs.length > 1) console.log(formatTable(medianRows(runs)));
}
