/**
 * Child process of `tcp-client.ts`: the front of a service, a process that only reads and writes
 * the cluster, either as a DynamoClient (`--role client`) or as a storing DynamoNode member
 * (`--role node`, on LevelStorage; `--latency-aware false` for a client that reads all N), with a closed-loop load generator driven over IPC.
 *
 * The load uses only keys this process is not a replica of, so with `--role node` every put is
 * forwarded to a replica: the path a client replaces.
 *
 * Not meant to be run by hand: `npx tsx test/bench/tcp-client.ts`.
 */
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import { DynamoClient } from '../../src/client/index.js';
import { DynamoNode } from '../../src/index.js';
import { LevelStorage } from '../../src/level/index.js';
import { TcpTransport } from '../../src/tcp/index.js';
import { closedLoad, type LoadResult, latencyHistogram, serveCommands } from './load.js';

export type FrontCommand =
  | { seq: number; cmd: 'members' }
  | { seq: number; cmd: 'closed'; op: 'put' | 'get'; total: number; inFlight: number; prefix: string }
  | { seq: number; cmd: 'stop' };

const { values: args } = parseArgs({
  options: {
    role: { type: 'string' },
    id: { type: 'string' },
    data: { type: 'string' },
    seeds: { type: 'string', default: '' },
    'latency-aware': { type: 'string', default: 'true' },
  },
});

const VALUE = new Uint8Array(100).fill(7);
const codec = { encode: (v: Uint8Array) => v, decode: (b: Uint8Array) => b };
const common = {
  id: args.id!,
  transport: new TcpTransport(),
  seeds: args.seeds!.split(','),
  quorum: { n: 3, r: 2, w: 2 },
  codec,
};
const front =
  args.role === 'client'
    ? await DynamoClient.start<Uint8Array>({ ...common, latencyAware: args['latency-aware'] === 'true' })
    : await DynamoNode.start<Uint8Array>({ ...common, storage: new LevelStorage({ path: args.data! }) });

/** `total` keys of `prefix` whose preference list does not name this process. */
function foreignKeys(prefix: string, total: number): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < total; i++) {
    const key = `${prefix}-${i}`;
    if (!front.preferenceList(key).some((e) => e.id === front.id)) keys.push(key);
  }
  return keys;
}

async function closedLoop(c: Extract<FrontCommand, { cmd: 'closed' }>): Promise<LoadResult> {
  const keys = foreignKeys(c.prefix, c.total);
  const h = latencyHistogram();
  const cpu0 = process.cpuUsage();
  const startMs = performance.timeOrigin + performance.now();
  const run = c.op === 'put' ? (i: number) => front.put(keys[i]!, VALUE) : (i: number) => front.get(keys[i]!);
  const failures = await closedLoad(c.total, c.inFlight, run, h);
  const endMs = performance.timeOrigin + performance.now();
  const cpu = process.cpuUsage(cpu0);
  const histogram = hdr.encodeIntoCompressedBase64(h);
  h.destroy();
  return { ops: c.total, failures, startMs, endMs, histogram, cpuMs: (cpu.user + cpu.system) / 1000 };
}

async function run(c: FrontCommand): Promise<unknown> {
  switch (c.cmd) {
    case 'members':
      return front.members();
    case 'closed':
      return closedLoop(c);
    case 'stop':
      await front.stop();
      return null;
  }
}

serveCommands(run, () => front.stop(), front.address);
