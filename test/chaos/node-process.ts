/**
 * One node of the fault harness, as its own process (started by `run.ts` inside a network
 * namespace): a DynamoNode on TcpTransport and LevelStorage (or MemoryStorage), driven over
 * stdin/stdout, one JSON object a line. Requests carry an `id`; each reply repeats it. Logs go to
 * stderr. The process stops its node and exits when stdin closes, so it never outlives the
 * harness that started it, however that one ended.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { DynamoError, DynamoNode, MemoryStorage, resolvers } from '../../src/index.js';
import { LevelStorage } from '../../src/level/index.js';
import { dataKey } from '../../src/replica/layout.js';
import { loadHasher, partitionOf } from '../../src/ring/index.js';
import type { Storage } from '../../src/storage/types.js';
import { TcpTransport } from '../../src/tcp/index.js';
import { decodeObject } from '../../src/versioning/index.js';
import { decodeSet, type Reply, type Request, type Snapshot, union } from './protocol.js';

const { values: args } = parseArgs({
  options: {
    id: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    seeds: { type: 'string', default: '' },
    data: { type: 'string' },
    storage: { type: 'string', default: 'level' },
    secret: { type: 'string' },
    'request-timeout-ms': { type: 'string', default: '1000' },
    'probe-interval-ms': { type: 'string', default: '500' },
    'dead-connection-ms': { type: 'string' },
    /** `union`: the set workload's merge; `none`: reads return every sibling (registers). */
    resolver: { type: 'string', default: 'union' },
    /** First start of the cluster: return once the ring includes this node. */
    'wait-ready': { type: 'boolean', default: false },
  },
});

function required(name: keyof typeof args): string {
  const v = args[name];
  if (typeof v !== 'string' || v === '') throw new Error(`--${name} is required`);
  return v;
}

const utf8 = new TextEncoder();
function log(level: string, obj: object, msg?: string): void {
  const err = (obj as { err?: unknown }).err;
  const detail = err instanceof Error ? ` ${err.message}` : '';
  process.stderr.write(`${new Date().toISOString()} ${level} ${msg ?? ''}${detail}\n`);
}
const storage: Storage =
  args.storage === 'memory' ? new MemoryStorage() : new LevelStorage({ path: required('data') });
const transport = new TcpTransport({
  host: required('host'),
  port: Number(required('port')),
  secret: required('secret'),
  ...(args['dead-connection-ms'] ? { deadConnectionMs: Number(args['dead-connection-ms']) } : {}),
});
const node = await DynamoNode.start<number[] | string>({
  id: required('id'),
  transport,
  storage,
  seeds: (args.seeds ?? '').split(',').filter((s) => s !== ''),
  quorum: { n: 3, r: 2, w: 2 },
  ...(args.resolver === 'none'
    ? {}
    : { resolver: resolvers.merge((a, b) => union(a as number[], b as number[])) }),
  requestTimeoutMs: Number(args['request-timeout-ms']),
  probeIntervalMs: Number(args['probe-interval-ms']),
  antiEntropy: { intervalMs: 10_000 },
  logger: {
    debug() {},
    info: (obj, msg) => log('info', obj, msg),
    warn: (obj, msg) => log('warn', obj, msg),
    error: (obj, msg) => log('error', obj, msg),
  },
  ...(args['wait-ready'] ? { waitUntilReady: { timeoutMs: 60_000 } } : {}),
});
await loadHasher();
const partitions = 256;

function failure(err: unknown): Reply {
  const code = err instanceof DynamoError ? err.code : err instanceof Error ? err.name : String(err);
  return { ok: false, error: code, message: err instanceof Error ? err.message : String(err) };
}

async function handle(req: Request): Promise<Reply> {
  const started = performance.now();
  const ms = () => performance.now() - started;
  switch (req.cmd) {
    case 'update': {
      // The everyday path: read, let the resolver merge the siblings, add, write back.
      try {
        await node.update(req.key, (cur) => union((cur as number[] | undefined) ?? [], [req.element]));
        return { ok: true, ms: ms() };
      } catch (err) {
        return { ...failure(err), ms: ms() };
      }
    }
    case 'getput': {
      // The same add as an explicit get, then a put with the get's context.
      let getMs: number | undefined;
      try {
        const read = await node.get(req.key);
        getMs = ms();
        const putStarted = performance.now();
        await node.put(req.key, union((read.values[0] as number[] | undefined) ?? [], [req.element]), {
          context: read.context,
        });
        return { ok: true, ms: ms(), getMs, putMs: performance.now() - putStarted };
      } catch (err) {
        // A failed get wrote nothing: the add certainly did not happen.
        return { ...failure(err), ms: ms(), getMs, definite: getMs === undefined };
      }
    }
    case 'write': {
      // A register write that supersedes exactly what its read showed.
      let read: { values: unknown[]; context: string } | undefined;
      try {
        read = await node.get(req.key);
        const result = await node.put(req.key, req.value, { context: read.context });
        return {
          ok: true,
          ms: ms(),
          context: read.context,
          resultContext: result.context,
          observed: read.values,
        };
      } catch (err) {
        return {
          ...failure(err),
          ms: ms(),
          definite: read === undefined,
          ...(read ? { context: read.context, observed: read.values } : {}),
        };
      }
    }
    case 'read': {
      try {
        const read = await node.get(req.key, { r: req.r });
        return { ok: true, ms: ms(), values: read.values };
      } catch (err) {
        return failure(err);
      }
    }
    case 'members':
      return { ok: true, members: node.members().map((m) => [m.id, m.status]) };
    case 'state': {
      const stats = node.stats();
      return {
        ok: true,
        hintsPending: stats.hints.pending,
        readRepairs: stats.readRepairs,
        forwarded: stats.forwarded,
        deadConnections: (transport.stats().deadConnections as number | undefined) ?? 0,
      };
    }
    case 'primaries':
      return {
        ok: true,
        primaries: req.keys.map((k) =>
          node
            .preferenceList(k)
            .filter((e) => e.kind === 'primary')
            .map((e) => e.id),
        ),
      };
    case 'snapshot': {
      const out: (Snapshot | null)[] = [];
      for (const key of req.keys) {
        const bytes = utf8.encode(key);
        const stored = await storage.get(dataKey(partitionOf(bytes, partitions), bytes));
        if (!stored) {
          out.push(null);
          continue;
        }
        const object = decodeObject(stored);
        out.push({
          encoded: Buffer.from(stored).toString('base64'),
          ctx: [...object.ctx].map(([a, c]) => [a, c] as [string, number]),
          siblings: object.siblings.map((s) => ({
            dot: [s.dot[0], s.dot[1]] as [string, number],
            timestamp: s.timestamp,
            tombstone: s.value === null,
            ...(s.value === null ? {} : { value: decodeSet(s.value) }),
          })),
        });
      }
      return { ok: true, snapshots: out };
    }
    case 'stop':
      await node.stop();
      return { ok: true };
  }
}

function send(line: object): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const input = createInterface({ input: process.stdin });
input.on('line', (line) => {
  let req: Request & { id: number };
  try {
    req = JSON.parse(line);
  } catch {
    process.stderr.write(`bad request line: ${line.slice(0, 200)}\n`);
    return;
  }
  handle(req).then(
    (reply) => send({ id: req.id, ...reply }),
    (err) => send({ id: req.id, ...failure(err) }),
  );
});
input.on('close', () => {
  node.stop().finally(() => process.exit(0));
});
node.on('member:down', (e) => process.stderr.write(`${node.id}: ${e.id} down (${e.reason})\n`));
send({ id: 0, ok: true, ready: node.id, address: node.address });
