/**
 * Child process of the floor benchmark (`floor.ts`): the storage and network work one node of the
 * 3-process TCP benchmark does per operation, with as little JavaScript around it as possible, so
 * that its rate is what the machine allows at best, not what an engine does.
 *
 * Per put (N=3, W=2): the coordinator reads its local record, makes the new one from it (as the
 * engine makes the new version from the local object), writes it locally and sends it to the two
 * peers at once; each peer reads its record, decides whether to write (a version-vector check),
 * writes, and acks. The put resolves on 2 of the 3 acks. Per get (R=2): a local read and a Read to
 * each peer; the get resolves on 2 of the 3 replies, and every reply is compared byte-wise with
 * the first, as read repair's check does. `--blind`: puts write without reading first (a store
 * that does not merge).
 *
 * What it keeps from the engine, because the engine cannot do without it: real LevelDB reads and
 * writes (a write is acked only once its LevelDB write resolved), real sockets, request ids and
 * correlation, a per-key lock around each read-modify-write, quorum counting, the reads of a turn
 * as one `getMany`, the writes of a turn as one chained batch, the messages to a peer in a turn as
 * one batch frame in one socket write. What it leaves out: membership, routing, hinted handoff,
 * timeouts, version-vector encoding, events, stats, argument checks, backpressure (the closed loop
 * bounds what is in flight; the open loop offers a set rate, and whatever the process cannot keep
 * up with queues and shows in its latencies).
 *
 * Load, as in tcp-cluster-node.ts, generated in the process against itself when the parent says
 * so over IPC: `closed` (a fixed number of operations, a fixed number in flight) or `open` (a set
 * rate for a set time, latency from each operation's due time). Latencies go back as an encoded
 * HDR histogram, so the parent merges the raw histograms.
 *
 * Wire: `[u32 BE length][msgpack array]`. On a connection this process dialled, it sends requests
 * as a flat array `[id, storageKey, record | null, ...]` (null: a Read) and receives replies as
 * `[id, answer, ...]` (a record or null for a Read, true for a Store, false for a failure). Each
 * process dials both peers and answers on the connections they dialled, as TcpTransport does.
 *
 * Not meant to be run by hand: `npx tsx test/bench/floor.ts`.
 */
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { parseArgs } from 'node:util';
import { ClassicLevel } from 'classic-level';
import * as hdr from 'hdr-histogram-js';
import { Packr } from 'msgpackr';
import {
  type Answer,
  covers,
  type FloorDb,
  HEADER_BYTES,
  makeRecord,
  Quorum,
  R,
  Store,
  type StoreCounts,
  storageKey,
  W,
} from './floor-core.js';
import { closedLoad, type LoadResult, latencyHistogram, openLoad, profiled, serveCommands } from './load.js';
import type { BenchCommand } from './tcp-cluster-node.js';

export type FlushMode = 'tick' | 'immediate';

export type FloorCommand =
  | { seq: number; cmd: 'connect'; peers: string[] }
  | { seq: number; cmd: 'closed'; op: 'put' | 'get'; total: number; inFlight: number; prefix: string }
  /** As tcp-cluster-node.ts's: `ratePerSec` for `durationMs`, gets reading keys [0, keyCount) of `prefix`. */
  | Extract<BenchCommand, { cmd: 'open' }>
  | { seq: number; cmd: 'stop' };

export interface FloorResult extends LoadResult {
  /** Replies of a get that differed byte-wise from its first reply (should stay 0). */
  mismatches: number;
  /** Gets that found no record (should stay 0: gets read the keys just put). */
  misses: number;
  /** What the coalescing achieved during the run (counted, not timed). */
  counts: Counts;
}

export interface Counts extends StoreCounts {
  /** Requests and replies sent, and the frames (= socket writes) they took. */
  messages: number;
  frames: number;
}

/** Largest frame accepted (length prefix excluded); a larger prefix closes the connection. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;
const VALUE = new Uint8Array(100).fill(7);

const { values: args } = parseArgs({
  options: {
    data: { type: 'string' },
    actor: { type: 'string', default: '0' },
    blind: { type: 'boolean', default: false },
    'net-flush': { type: 'string', default: 'immediate' },
    'db-flush': { type: 'string', default: 'immediate' },
  },
});
const ACTOR = Number(args.actor);
const BLIND = args.blind;

/**
 * When a turn's queued work (socket writes, getMany, batch) goes out. `tick`: once the current
 * callback and its microtasks are done (what the engine's Rpc batching uses); `immediate`: in the
 * check phase, after every I/O callback of this loop iteration (what its transport and storage use),
 * so work from several socket reads and LevelDB completions shares one flush.
 */
function deferrer(mode: string | undefined): (fn: () => void) => void {
  if (mode === 'tick') return (fn) => process.nextTick(fn);
  if (mode === 'immediate') return (fn) => setImmediate(fn);
  throw new RangeError(`flush mode must be tick or immediate, got ${mode}`);
}
const netDefer = deferrer(args['net-flush']);
const dbDefer = deferrer(args['db-flush']);

const packr = new Packr({ useRecords: false, mapsAsObjects: false, moreTypes: false, int64AsType: 'number' });
let mismatches = 0;
const onMismatch = () => {
  mismatches++;
};
const counts: Counts = { reads: 0, getManys: 0, writes: 0, batches: 0, messages: 0, frames: 0 };

/**
 * LevelDB for the floor's Store. Keys and values handed in are already off the V8 heap (pool
 * buffers, socket chunks), so classic-level reads them without V8 first moving them out.
 */
function levelDb(db: ClassicLevel<Uint8Array, Uint8Array>): FloorDb {
  return {
    isOpen: () => db.status === 'open',
    getMany: (keys) => db.getMany(keys),
    putMany: (keys, values) => {
      const batch = db.batch();
      for (let i = 0; i < keys.length; i++) batch.put(keys[i]!, values[i]!);
      return batch.write();
    },
  };
}

// --- network ---

/**
 * One TCP connection: length-prefixed msgpack frames in, and out a per-turn outbox of flat
 * entries sent as one batch frame in one socket write.
 */
abstract class Link {
  protected outbox: unknown[] = [];
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes needed before the buffered chunks can yield a frame. */
  private needed = 0;

  constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {}); // 'close' follows
    socket.on('close', () => this.onClose());
  }

  /** Outbox items per message: requests `[id, key, record]`, replies `[id, answer]`. */
  protected abstract readonly stride: number;
  protected abstract onBatch(entries: unknown[]): void;
  protected onClose(): void {}

  /** Called before pushing entries: the first entry of a turn schedules the flush. */
  protected willSend(): void {
    if (this.outbox.length === 0) netDefer(this.flush);
  }

  private readonly flush = (): void => {
    const entries = this.outbox;
    this.outbox = [];
    if (this.socket.destroyed) return;
    counts.messages += entries.length / this.stride;
    counts.frames++;
    const payload = packr.pack(entries);
    const frame = Buffer.allocUnsafe(4 + payload.length);
    frame.writeUInt32BE(payload.length, 0);
    frame.set(payload, 4);
    this.socket.write(frame);
  };

  private onData(chunk: Buffer): void {
    let buf = chunk;
    if (this.buffered > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered < this.needed) return;
      buf = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [];
      this.buffered = 0;
    }
    let at = 0;
    try {
      while (buf.length - at >= 4) {
        const length = buf.readUInt32BE(at);
        if (length > MAX_FRAME_BYTES) throw new Error(`frame of ${length} bytes exceeds ${MAX_FRAME_BYTES}`);
        if (buf.length - at - 4 < length) break;
        const entries = packr.unpack(buf.subarray(at + 4, at + 4 + length));
        at += 4 + length;
        if (!Array.isArray(entries)) throw new Error('frame is not an array');
        this.onBatch(entries);
      }
    } catch {
      // A broken peer: drop the connection, as TcpTransport does.
      this.socket.destroy();
      return;
    }
    if (at < buf.length) {
      // Chunks are gathered until the frame is whole, then joined once (no quadratic re-copying).
      const rest = buf.subarray(at);
      this.chunks = [rest];
      this.buffered = rest.length;
      this.needed = rest.length >= 4 ? 4 + rest.readUInt32BE(0) : 4;
    }
  }
}

/** A connection this process dialled: requests out, replies in, correlated by request id. */
class Outbound extends Link {
  protected readonly stride = 3;
  private nextId = 0;
  private readonly pending = new Map<number, Quorum>();

  /** `record` null: a Read. */
  request(q: Quorum, key: Uint8Array, record: Uint8Array | null): void {
    this.nextId = (this.nextId + 1) >>> 0;
    const id = this.nextId;
    this.pending.set(id, q);
    this.willSend();
    this.outbox.push(id, key, record);
  }

  protected onBatch(entries: unknown[]): void {
    if (entries.length % 2 !== 0) throw new Error('malformed reply batch');
    for (let i = 0; i < entries.length; i += 2) {
      const id = entries[i] as number;
      const q = this.pending.get(id);
      if (!q) throw new Error(`reply to unknown request ${id}`);
      this.pending.delete(id);
      const answer = entries[i + 1];
      if (answer === true) q.reply(null);
      else if (answer === null || answer instanceof Uint8Array) q.reply(answer);
      else q.fail();
    }
  }

  protected override onClose(): void {
    for (const q of this.pending.values()) q.fail();
    this.pending.clear();
  }
}

/** A connection a peer dialled: requests in, answered from local storage, replies out. */
class Inbound extends Link {
  protected readonly stride = 2;
  constructor(
    socket: Socket,
    private readonly store: Store,
  ) {
    super(socket);
  }

  private answer(id: number, answer: Uint8Array | boolean | null): void {
    this.willSend();
    this.outbox.push(id, answer);
  }

  protected onBatch(entries: unknown[]): void {
    if (entries.length % 3 !== 0) throw new Error('malformed request batch');
    for (let i = 0; i < entries.length; i += 3) {
      const id = entries[i];
      const key = entries[i + 1];
      const record = entries[i + 2];
      if (typeof id !== 'number' || !(key instanceof Uint8Array)) throw new Error('malformed request');
      if (record === null) this.read(id, key);
      else if (record instanceof Uint8Array && record.length >= HEADER_BYTES) this.write(id, key, record);
      else throw new Error('malformed record');
    }
  }

  private read(id: number, key: Uint8Array): void {
    this.store.read(key, (value, error) => this.answer(id, error ? false : (value ?? null)));
  }

  private write(id: number, key: Uint8Array, record: Uint8Array): void {
    const done = (error?: unknown) => this.answer(id, !error);
    if (BLIND) this.store.write(key, record, done);
    else
      this.store.rmw({
        key,
        lock: (key as Buffer).toString('latin1'),
        next: (before) => (before && covers(before, record) ? undefined : record),
        done,
      });
  }
}

// --- the node ---

const db = new ClassicLevel<Uint8Array, Uint8Array>(args.data!, {
  keyEncoding: 'view',
  valueEncoding: 'view',
  writeBufferSize: 32 * 1024 * 1024,
});
await db.open();
const store = new Store(levelDb(db), dbDefer, counts);
const inbound = new Set<Inbound>();
const server = createServer((socket) => {
  const link = new Inbound(socket, store);
  inbound.add(link);
  socket.on('close', () => inbound.delete(link));
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as { port: number };
let peers: Outbound[] = [];

async function connectPeers(addresses: string[]): Promise<void> {
  peers = await Promise.all(
    addresses.map(
      (address) =>
        new Promise<Outbound>((resolve, reject) => {
          const [host, p] = address.split(':');
          const socket = tcpConnect({ host: host!, port: Number(p) });
          socket.once('connect', () => resolve(new Outbound(socket)));
          socket.once('error', reject);
        }),
    ),
  );
}

function put(key: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const q = new Quorum(W, resolve, reject, onMismatch);
    const skey = storageKey(key);
    const ack = (error?: unknown) => (error ? q.fail() : q.reply(null));
    if (BLIND) {
      const record = makeRecord(undefined, VALUE, ACTOR);
      for (const peer of peers) peer.request(q, skey, record);
      store.write(skey, record, ack);
      return;
    }
    // As the engine's coordinator: the new version is made from the local record, then goes to
    // the peers while the local write is under way; the local write counts once it resolved.
    store.rmw({
      key: skey,
      lock: skey.toString('latin1'),
      next: (before) => {
        const record = makeRecord(before, VALUE, ACTOR);
        for (const peer of peers) peer.request(q, skey, record);
        return record;
      },
      done: ack,
    });
  });
}

function get(key: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const q = new Quorum(R, resolve, reject, onMismatch);
    const skey = storageKey(key);
    for (const peer of peers) peer.request(q, skey, null);
    store.read(skey, (value, error) => (error ? q.fail() : q.reply(value ?? null)));
  });
}

// --- load (as tcp-cluster-node.ts) ---

const epochNow = () => performance.timeOrigin + performance.now();

type Histogram = ReturnType<typeof latencyHistogram>;

/** What a load reports; `measured` adds the time span, CPU and counters around it. */
interface Load {
  ops: number;
  failures: number;
  misses: number;
}

/** Runs `load` with a fresh histogram, and returns its result with what this process spent and counted meanwhile. */
async function measured(label: string, load: (h: Histogram) => Promise<Load>): Promise<FloorResult> {
  const h = latencyHistogram();
  const mismatches0 = mismatches;
  const counts0 = { ...counts };
  const cpu0 = process.cpuUsage();
  const startMs = epochNow();
  const { ops, failures, misses } = await profiled(`floor-${ACTOR}-${label}`, () => load(h));
  const endMs = epochNow();
  const cpu = process.cpuUsage(cpu0);
  const histogram = hdr.encodeIntoCompressedBase64(h);
  h.destroy();
  return {
    ops,
    failures,
    startMs,
    endMs,
    histogram,
    cpuMs: (cpu.user + cpu.system) / 1000,
    mismatches: mismatches - mismatches0,
    misses,
    counts: {
      reads: counts.reads - counts0.reads,
      getManys: counts.getManys - counts0.getManys,
      writes: counts.writes - counts0.writes,
      batches: counts.batches - counts0.batches,
      messages: counts.messages - counts0.messages,
      frames: counts.frames - counts0.frames,
    },
  };
}

/** A get that found nothing counts as a miss (gets read keys that were put). */
function operation(op: 'put' | 'get' | 'none', prefix: string, keyOf: (i: number) => number, load: Load) {
  if (op === 'none') return () => Promise.resolve();
  if (op === 'put') return (i: number) => put(`${prefix}-${keyOf(i)}`);
  return (i: number) =>
    get(`${prefix}-${keyOf(i)}`).then((answer) => {
      if (answer === null) load.misses++;
    });
}

function closedLoop(c: Extract<FloorCommand, { cmd: 'closed' }>): Promise<FloorResult> {
  return measured(`closed-${c.op}-${c.prefix}`, async (h) => {
    const load = { ops: c.total, failures: 0, misses: 0 };
    load.failures = await closedLoad(
      c.total,
      c.inFlight,
      operation(c.op, c.prefix, (i) => i, load),
      h,
    );
    return load;
  });
}

/** Open loop as tcp-cluster-node.ts's (see `openLoad`); gets read keys [0, keyCount) of `prefix`. */
function openLoop(c: Extract<FloorCommand, { cmd: 'open' }>): Promise<FloorResult> {
  return measured(`open-${c.op}-${Math.round(c.ratePerSec)}`, async (h) => {
    const load = { ops: 0, failures: 0, misses: 0 };
    const keyOf = c.op === 'get' ? (i: number) => i % c.keyCount : (i: number) => i;
    const { ops, failures } = await openLoad(
      c.ratePerSec,
      c.durationMs,
      operation(c.op, c.prefix, keyOf, load),
      h,
      `floor ${ACTOR} ${c.op} ${Math.round(c.ratePerSec)}/s`,
    );
    load.ops = ops;
    load.failures = failures;
    return load;
  });
}

async function stop(): Promise<void> {
  for (const peer of peers) peer.socket.destroy();
  for (const link of inbound) link.socket.destroy();
  server.close();
  await db.close();
}

async function run(c: FloorCommand): Promise<unknown> {
  switch (c.cmd) {
    case 'connect':
      return connectPeers(c.peers);
    case 'closed':
      return closedLoop(c);
    case 'open':
      return openLoop(c);
    case 'stop':
      return stop();
  }
}

serveCommands(run, stop, `127.0.0.1:${port}`);
