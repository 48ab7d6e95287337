/**
 * One dynamo-engine node in its own process: `TcpTransport` for the network, `LevelStorage` for
 * the data. Run one per terminal (or machine) to build a cluster:
 *
 *   npx tsx examples/tcp-node.ts --id a --port 7001 --data ./data/a
 *   npx tsx examples/tcp-node.ts --id b --port 7002 --data ./data/b --seeds 127.0.0.1:7001
 *   npx tsx examples/tcp-node.ts --id c --port 7003 --data ./data/c --seeds 127.0.0.1:7001
 *
 * Each waits until the cluster's ring is settled with it in it (`waitUntilReady`) before it says
 * it is serving, so the first write through any of them finds every replica in place. Then it
 * prints one line, `node <id> serving at <host:port>`, and serves until SIGINT / SIGTERM, when it
 * stops cleanly: data and membership stay on disk, and started again with the same --id and
 * --data it rejoins with its partitions and data. After `dynamo-engine leave` it exits by itself.
 * `--secret` (or DYNAMO_SECRET) makes every connection prove it knows a shared secret; `--zone NAME`
 * places the node in a failure domain (docs/operating/zones.md).
 */
import { parseArgs } from 'node:util';
import { DynamoNode, type Logger } from 'dynamo-engine';
import { LevelStorage } from 'dynamo-engine/level';
import { TcpTransport } from 'dynamo-engine/tcp';

const { values: args } = parseArgs({
  options: {
    id: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    data: { type: 'string' },
    seeds: { type: 'string', default: '' },
    secret: { type: 'string', default: process.env.DYNAMO_SECRET },
    // Failure domain (availability zone, rack): every key's replicas span min(N, zones) zones.
    zone: { type: 'string' },
    n: { type: 'string', default: '3' },
    r: { type: 'string', default: '2' },
    w: { type: 'string', default: '2' },
    'gossip-ms': { type: 'string', default: '1000' },
    verbose: { type: 'boolean', default: false },
  },
});
if (!args.id || !args.data) {
  console.error(
    'usage: tcp-node.ts --id ID --data DIR [--host 127.0.0.1] [--port 0] [--seeds host:port,...] [--secret S] [--zone Z] [--n 3 --r 2 --w 2]',
  );
  process.exit(2);
}
const id = args.id;

const say = (fields: object, msg?: string) => console.error(`[${id}] ${msg ?? ''} ${JSON.stringify(fields)}`);
const quiet = () => {};
const logger: Logger = args.verbose
  ? { debug: quiet, info: say, warn: say, error: say }
  : { debug: quiet, info: quiet, warn: quiet, error: say };

const node = await DynamoNode.start<unknown>({
  id,
  transport: new TcpTransport({
    host: args.host,
    port: Number(args.port),
    ...(args.secret ? { secret: args.secret } : {}),
  }),
  storage: new LevelStorage({ path: args.data }),
  seeds: args.seeds.split(',').filter(Boolean),
  ...(args.zone ? { zone: args.zone } : {}),
  quorum: { n: Number(args.n), r: Number(args.r), w: Number(args.w) },
  gossipIntervalMs: Number(args['gossip-ms']),
  waitUntilReady: { timeoutMs: 60_000 },
  logger,
});
console.log(`node ${id} serving at ${node.address}`);

let stopping = false;
function shutdown(): void {
  if (stopping) return;
  stopping = true;
  node.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(`[${id}] stop failed:`, err);
      process.exit(1);
    },
  );
}
// A node that left the cluster (`dynamo-engine leave`) has stopped itself: the process ends too.
node.on('status', ({ status }) => {
  if (status === 'stopped' && !stopping) process.exit(0);
});
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
