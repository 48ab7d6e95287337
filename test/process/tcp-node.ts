/**
 * One dynamo-engine node in its own process for the tests (`NodeProcess` in `node-process.ts`
 * starts it): `TcpTransport` on loopback, `LevelStorage` in the given directory. Start waits until
 * the ring is settled with this node in it (`waitUntilReady`).
 *
 * `--seeds-file PATH` takes the seeds from a file (addresses separated by commas or new lines),
 * read again before every round of join attempts, as `dnsSeeds` asks DNS again: a stand-in for a
 * headless Service that publishes pods' addresses as they appear.
 *
 * It takes commands over its IPC channel — put, get, local (what this node's own storage holds for
 * a key: internal modules, which is why this lives in test/ and not in examples/), preferenceList,
 * members, ringStatus, stats, leave, remove, stop — and announces `{ event: 'listening', address }`
 * once its port is bound (before it has joined), `{ event: 'ready', id, address }` once it can
 * serve requests, and `{ event: 'failed', message }` when the start failed (then it exits with
 * code 1).
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Packr } from 'msgpackr';
import { DynamoNode, type Logger } from '../../src/index.js';
import { LevelStorage } from '../../src/level/index.js';
// Internal modules, used only by the `local` command to look into this node's own storage.
import { dataKey } from '../../src/replica/layout.js';
import { partitionOf } from '../../src/ring/index.js';
import { TcpTransport } from '../../src/tcp/index.js';
import { decodeObject } from '../../src/versioning/index.js';

/** Commands a parent sends over IPC; every one is answered with a `Reply` carrying the same `seq`. */
export type Command =
  | { seq: number; cmd: 'put'; key: string; value: unknown; context?: string; w?: number }
  | { seq: number; cmd: 'get'; key: string; r?: number }
  | { seq: number; cmd: 'local'; keys: string[] }
  | { seq: number; cmd: 'preferenceList'; keys: string[] }
  | { seq: number; cmd: 'members' }
  | { seq: number; cmd: 'ringStatus' }
  | { seq: number; cmd: 'stats' }
  | { seq: number; cmd: 'leave' }
  | { seq: number; cmd: 'remove'; id: string }
  | { seq: number; cmd: 'stop' };

export type Reply =
  | { seq: number; ok: true; result: unknown }
  | { seq: number; ok: false; error: { name: string; code?: string; message: string } };

/** Messages a node process sends without being asked. */
export type NodeEvent =
  | { event: 'listening'; address: string }
  | { event: 'ready'; id: string; address: string; pid: number }
  | { event: 'failed'; message: string; code?: string };

const { values: args } = parseArgs({
  options: {
    id: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    data: { type: 'string' },
    seeds: { type: 'string', default: '' },
    'seeds-file': { type: 'string' },
    // Bound on the whole start (0: the engine's default); with --ready-timeout-ms the earlier wins.
    'start-timeout-ms': { type: 'string', default: '0' },
    // A shared secret authenticates every connection (HMAC handshake); also read from DYNAMO_SECRET.
    secret: { type: 'string' },
    // Failure domain (availability zone, rack): every key's replicas span min(N, zones) zones.
    zone: { type: 'string' },
    n: { type: 'string', default: '3' },
    r: { type: 'string', default: '2' },
    w: { type: 'string', default: '2' },
    'gossip-ms': { type: 'string', default: '1000' },
    'request-timeout-ms': { type: 'string', default: '1000' },
    // Merkle-tree exchange period between replicas (the engine's default is 60 s).
    'anti-entropy-ms': { type: 'string', default: '60000' },
    // Start waits until the ring is settled with this node in it (node.ready); 0: do not wait.
    'ready-timeout-ms': { type: 'string', default: '60000' },
    verbose: { type: 'boolean', default: false },
  },
});

if (!args.id || !args.data) {
  console.error(
    'usage: tcp-node.ts --id ID --data DIR [--host 127.0.0.1] [--port 0] [--seeds host:port,...] [--secret S]',
  );
  process.exit(2);
}
const id = args.id;
const partitions = 256;

// Values travel as msgpack; the `local` command decodes stored versions with the same codec.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });
const codec = {
  encode: (v: unknown) => packr.pack(v),
  decode: (b: Uint8Array) => packr.unpack(b) as unknown,
};

const say = (obj: object, msg?: string) => console.error(`[${id}] ${msg ?? ''} ${JSON.stringify(obj)}`);
const quiet = () => {};
const logger: Logger = args.verbose
  ? { debug: quiet, info: say, warn: say, error: say }
  : { debug: quiet, info: quiet, warn: quiet, error: say };

const storage = new LevelStorage({ path: args.data });
const secret = args.secret ?? process.env.DYNAMO_SECRET;
const transport = new TcpTransport({
  host: args.host,
  port: Number(args.port),
  ...(secret ? { secret } : {}),
});

const seedsFile = args['seeds-file'];
const seeds = seedsFile
  ? async () => (await readFile(seedsFile, 'utf8').catch(() => '')).split(/[\s,]+/).filter(Boolean)
  : args.seeds
    ? args.seeds.split(',').filter(Boolean)
    : [];
let announced = false;
const startTimeoutMs = Number(args['start-timeout-ms']);

let node: DynamoNode<unknown>;
try {
  node = await DynamoNode.start<unknown>(
    {
      id,
      transport,
      storage,
      seeds,
      ...(args.zone ? { zone: args.zone } : {}),
      on: {
        'join:attempt': (attempt) => {
          if (!announced) {
            announced = true;
            process.send?.({ event: 'listening', address: transport.address } satisfies NodeEvent);
          }
          if (args.verbose) say({ attempt: attempt.attempt, seeds: attempt.seeds }, 'join attempt');
        },
      },
      quorum: { n: Number(args.n), r: Number(args.r), w: Number(args.w) },
      partitions,
      gossipIntervalMs: Number(args['gossip-ms']),
      requestTimeoutMs: Number(args['request-timeout-ms']),
      antiEntropy: { intervalMs: Number(args['anti-entropy-ms']) },
      waitUntilReady:
        Number(args['ready-timeout-ms']) > 0 ? { timeoutMs: Number(args['ready-timeout-ms']) } : false,
      codec,
      logger,
    },
    startTimeoutMs > 0 ? { timeoutMs: startTimeoutMs } : {},
  );
} catch (err) {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown }).code;
  console.error(`[${id}] failed to start: ${message}`);
  const event: NodeEvent = { event: 'failed', message, ...(typeof code === 'string' ? { code } : {}) };
  if (process.send) await new Promise<void>((resolve) => process.send!(event, () => resolve()));
  process.exit(1);
}

const utf8 = new TextEncoder();

/** The live values this node's own storage holds for `key` (data region; hints excluded); null if absent. */
async function localValues(key: string): Promise<unknown[] | null> {
  const bytes = utf8.encode(key);
  const stored = await storage.get(dataKey(partitionOf(bytes, partitions), bytes));
  if (!stored) return null;
  return decodeObject(stored)
    .siblings.filter((s) => s.value !== null)
    .map((s) => codec.decode(s.value!));
}

let stopping: Promise<void> | undefined;
// A node that left the cluster (`dynamo-engine leave`) has stopped itself: the process ends too.
node.on('status', ({ status }) => {
  if (status === 'stopped' && !stopping) process.exit(0);
});
function shutdown(code = 0): Promise<void> {
  stopping ??= node.stop().then(
    () => process.exit(code),
    (err) => {
      console.error(`[${id}] stop failed:`, err);
      process.exit(1);
    },
  );
  return stopping;
}

async function run(c: Command): Promise<unknown> {
  switch (c.cmd) {
    case 'put':
      return node.put(c.key, c.value, {
        ...(c.context !== undefined ? { context: c.context } : {}),
        ...(c.w !== undefined ? { w: c.w } : {}),
      });
    case 'get':
      return node.get(c.key, c.r !== undefined ? { r: c.r } : {});
    case 'local':
      return Promise.all(c.keys.map(localValues));
    case 'preferenceList':
      return c.keys.map((k) => node.preferenceList(k));
    case 'members':
      return node.members();
    case 'ringStatus':
      return node.ringStatus();
    case 'stats':
      return { node: node.stats(), transport: transport.stats(), storage: storage.stats };
    case 'remove':
      node.removeMember(c.id);
      return null;
    case 'leave':
      // The node stops once it has left; the status listener above then ends the process.
      stopping ??= node.leave();
      await stopping;
      return null;
    case 'stop':
      stopping ??= node.stop();
      await stopping;
      return null;
  }
}

if (process.send) {
  const send = process.send.bind(process);
  process.on('message', (c: Command) => {
    run(c).then(
      (result) => {
        const reply: Reply = { seq: c.seq, ok: true, result: result ?? null };
        if (c.cmd === 'stop' || c.cmd === 'leave') send(reply, () => process.exit(0));
        else send(reply);
      },
      (err: unknown) => {
        const e = err instanceof Error ? err : new Error(String(err));
        const code = (e as { code?: unknown }).code;
        send({
          seq: c.seq,
          ok: false,
          error: { name: e.name, message: e.message, ...(typeof code === 'string' ? { code } : {}) },
        } satisfies Reply);
      },
    );
  });
  // The parent went away: do not linger as an orphan.
  process.on('disconnect', () => void shutdown(0));
  send({ event: 'ready', id, address: node.address, pid: process.pid } satisfies NodeEvent);
} else {
  console.log(`node ${id} serving at ${node.address} (data in ${args.data}); Ctrl-C stops it`);
}
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));
