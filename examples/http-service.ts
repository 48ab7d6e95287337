/**
 * A small HTTP key-value service: each process embeds one dynamo-engine node (TcpTransport +
 * LevelStorage) and serves
 *
 *   GET    /kv/:key   200 the value | 300 JSON array of siblings | 404; context in X-Dynamo-Context
 *   PUT    /kv/:key   body = the value (text); send the X-Dynamo-Context of the read it is based on,
 *                      and X-Dynamo-Ttl-Ms for a value that expires (1 ms .. 20 years; else 400)
 *   DELETE /kv/:key   with the X-Dynamo-Context of the read; without it, deletes what a read finds
 *   GET    /health    200 when requests can succeed: the ring settled with this node in it and at
 *                     least max(r, w) nodes owning partitions; else 503 with the reason; JSON either way
 *   GET    /metrics   Prometheus text (dynamo-engine/metrics + the process's default metrics)
 *
 * The context travels like Riak's X-Riak-Vclock: a write without one never overwrites, it becomes
 * a sibling; a write with the context of a read supersedes exactly what that read saw.
 *
 *   npx tsx examples/http-service.ts --id a --port 7001 --http-port 8001 --data ./data/a --secret s3cret
 *   npx tsx examples/http-service.ts --id b --port 7002 --http-port 8002 --data ./data/b --secret s3cret --seeds 127.0.0.1:7001
 *   npx tsx examples/http-service.ts --id c --port 7003 --http-port 8003 --data ./data/c --secret s3cret --seeds 127.0.0.1:7001
 *
 * Every flag can also come from the environment (DYNAMO_ID, DYNAMO_HOST, DYNAMO_PORT,
 * DYNAMO_HTTP_PORT, DYNAMO_DATA, DYNAMO_SEEDS, DYNAMO_SECRET, DYNAMO_N, DYNAMO_R, DYNAMO_W). `--n`,
 * `--r`, `--w` set the quorum (default 3, 2, 2: run at least 3 services, or lower them). Once listening it prints one JSON
 * line, `{"event":"listening","id":...,"http":"host:port","node":"host:port"}`. SIGINT / SIGTERM
 * stop it cleanly; after `dynamo-engine leave` the node stops and so does the process.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { DEFAULTS, DynamoError, DynamoNode, LimitError } from 'dynamo-engine';
import { LevelStorage } from 'dynamo-engine/level';
import { registerMetrics } from 'dynamo-engine/metrics';
import { TcpTransport } from 'dynamo-engine/tcp';
import { collectDefaultMetrics, Registry } from 'prom-client';

const CONTEXT_HEADER = 'x-dynamo-context';
const TTL_HEADER = 'x-dynamo-ttl-ms';
const env = process.env;
const { values: args } = parseArgs({
  options: {
    id: { type: 'string', default: env.DYNAMO_ID },
    host: { type: 'string', default: env.DYNAMO_HOST ?? '127.0.0.1' },
    port: { type: 'string', default: env.DYNAMO_PORT ?? '0' },
    'http-port': { type: 'string', default: env.DYNAMO_HTTP_PORT ?? '0' },
    data: { type: 'string', default: env.DYNAMO_DATA },
    seeds: { type: 'string', default: env.DYNAMO_SEEDS ?? '' },
    secret: { type: 'string', default: env.DYNAMO_SECRET },
    'gossip-ms': { type: 'string', default: '1000' },
    n: { type: 'string', default: env.DYNAMO_N ?? '3' },
    r: { type: 'string', default: env.DYNAMO_R ?? '2' },
    w: { type: 'string', default: env.DYNAMO_W ?? '2' },
  },
});
if (!args.id || !args.data) {
  console.error(
    'usage: http-service.ts --id ID --data DIR [--host 127.0.0.1] [--port 0] [--http-port 0] [--seeds host:port,...] [--secret S] [--n 3 --r 2 --w 2]',
  );
  process.exit(2);
}

const node = await DynamoNode.start<string>({
  id: args.id,
  transport: new TcpTransport({
    host: args.host,
    port: Number(args.port),
    ...(args.secret ? { secret: args.secret } : {}),
  }),
  storage: new LevelStorage({ path: args.data }),
  seeds: args.seeds.split(',').filter(Boolean),
  gossipIntervalMs: Number(args['gossip-ms']),
  quorum: { n: Number(args.n), r: Number(args.r), w: Number(args.w) },
});
const quorum = { n: Number(args.n), r: Number(args.r), w: Number(args.w) };

const registry = new Registry();
collectDefaultMetrics({ register: registry });
registerMetrics(node, registry);

/** An HTTP answer: status, headers, body. */
interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}
const json = (status: number, value: unknown, headers: Record<string, string> = {}): Answer => ({
  status,
  headers: { 'content-type': 'application/json', ...headers },
  body: `${JSON.stringify(value)}\n`,
});

async function route(req: IncomingMessage): Promise<Answer> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/health' && req.method === 'GET') {
    const ring = node.ringStatus();
    const self = ring.members.find((m) => m.id === node.id);
    // Ready means a request with the service's r and w can succeed: a key's replicas are distinct
    // nodes, so at least max(r, w) of them must own partitions.
    const owners = ring.members.filter((m) => m.partitions > 0).length;
    const needed = Math.max(quorum.r, quorum.w);
    const reason =
      node.status !== 'running'
        ? `node is ${node.status}`
        : !ring.settled
          ? 'ring not settled (a join, leave or rebalance is in progress)'
          : self === undefined || self.partitions === 0
            ? 'this node owns no partitions yet'
            : owners < needed
              ? `${owners} node${owners === 1 ? '' : 's'} own${owners === 1 ? 's' : ''} partitions; r = ${quorum.r} and w = ${quorum.w} need ${needed}`
              : undefined;
    const ready = reason === undefined;
    return json(ready ? 200 : 503, {
      id: node.id,
      status: node.status,
      ready,
      ...(reason !== undefined ? { reason } : {}),
      quorum,
      settled: ring.settled,
      ringVersion: ring.version,
      pendingTransfers: ring.pending.length,
      members: ring.members.map((m) => ({ id: m.id, status: m.status, partitions: m.partitions })),
    });
  }
  if (url.pathname === '/metrics' && req.method === 'GET') {
    return { status: 200, headers: { 'content-type': registry.contentType }, body: await registry.metrics() };
  }
  const match = /^\/kv\/(.+)$/.exec(url.pathname);
  if (!match) return json(404, { error: 'not found: use /kv/:key, /health or /metrics' });
  const key = decodeURIComponent(match[1]!);
  const header = req.headers[CONTEXT_HEADER];
  const context = typeof header === 'string' && header !== '' ? { context: header } : {};
  switch (req.method) {
    case 'GET': {
      const { values, context: read } = await node.get(key);
      const headers = { [CONTEXT_HEADER]: read };
      if (values.length === 0) return json(404, { error: 'not found' }, headers);
      if (values.length === 1)
        return { status: 200, headers: { ...headers, 'content-type': 'text/plain' }, body: values[0] };
      // Concurrent writes: every sibling; a PUT with this context resolves them.
      return json(300, values, headers);
    }
    case 'PUT': {
      const body = await readBody(req, DEFAULTS.limits.maxValueBytes);
      const ttl = req.headers[TTL_HEADER];
      // A malformed TTL becomes NaN: put refuses it with a RangeError (400), nothing written.
      const expiry = typeof ttl === 'string' ? { ttlMs: /^\d+$/.test(ttl) ? Number(ttl) : Number.NaN } : {};
      const { context: written } = await node.put(key, body, { ...context, ...expiry });
      return { status: 204, headers: { [CONTEXT_HEADER]: written } };
    }
    case 'DELETE': {
      const { context: written } = await node.delete(key, context);
      return { status: 204, headers: { [CONTEXT_HEADER]: written } };
    }
    default:
      return json(405, { error: `${req.method} not allowed on /kv/:key` }, { allow: 'GET, PUT, DELETE' });
  }
}

/** The request body as text, refused past `maxBytes` (LimitError: 413). */
async function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new LimitError('maxValueBytes', size, maxBytes);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Typed engine errors to HTTP statuses. */
function failure(err: unknown): Answer {
  const message = err instanceof Error ? err.message : String(err);
  if (!(err instanceof DynamoError)) {
    return json(err instanceof TypeError || err instanceof RangeError ? 400 : 500, { error: message });
  }
  const status: Record<string, number> = {
    DYNAMO_INVALID_CONTEXT: 400,
    DYNAMO_LIMIT: 413,
    DYNAMO_QUORUM: 503,
    DYNAMO_NOT_RUNNING: 503,
    DYNAMO_TIMEOUT: 504,
  };
  return json(status[err.code] ?? 500, { error: message, code: err.code });
}

function send(res: ServerResponse, answer: Answer): void {
  res.writeHead(answer.status, answer.headers);
  res.end(answer.body);
}

const server = createServer((req, res) => {
  route(req).then(
    (answer) => send(res, answer),
    (err: unknown) => send(res, failure(err)),
  );
});
await new Promise<void>((resolve) => server.listen(Number(args['http-port']), args.host, resolve));
const http = server.address() as AddressInfo;
console.log(
  JSON.stringify({ event: 'listening', id: node.id, http: `${args.host}:${http.port}`, node: node.address }),
);

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  server.close();
  server.closeAllConnections();
  await node.stop();
  process.exit(0);
}
// After `dynamo-engine leave` the node stops by itself: so does the service.
node.on('status', ({ status }) => {
  if (status === 'stopped') void shutdown();
});
process.on('SIGINT', () => void shutdown());
process.on('SIGTERM', () => void shutdown());
