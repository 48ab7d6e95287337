/**
 * Hostile bytes over real sockets into a live TcpTransport: random and mutated frames must only
 * ever close the connection that carried them, while a proper client keeps being served, memory
 * stays bounded and every connection is released. Seeded: a failure replays exactly.
 */
import { afterEach, expect, test } from 'vitest';
import { encodeFrame, FrameType } from '../../../src/tcp/frame.js';
import { encodeHello, newNonce } from '../../../src/tcp/handshake.js';
import { TcpTransport, type TcpTransportOptions } from '../../../src/tcp/index.js';
import { type Random, seededRandom } from '../../../src/util/random.js';
import { closed, eventually, portOf, rawConnect } from './helpers.js';

const MAX_FRAME = 64 * 1024;
const made: TcpTransport[] = [];
afterEach(async () => {
  await Promise.all(made.splice(0).map((t) => t.stop()));
});

function bytes(rnd: Random, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = rnd.int(256);
  return b;
}

const KNOWN_TYPES = new Set<number>(Object.values(FrameType));
const WRONG_DIRECTION = [
  FrameType.Response,
  FrameType.Error,
  FrameType.Hello,
  FrameType.Challenge,
  FrameType.Proof,
  FrameType.Ready,
  FrameType.Reject,
  FrameType.GoAway,
];

function validRequest(rnd: Random, maxPayload = 64): Buffer {
  return encodeFrame(FrameType.Request, rnd.uint32(), bytes(rnd, rnd.int(maxPayload + 1)));
}

/** One hostile (or, sometimes, valid) frame's bytes. */
function fuzzFrame(rnd: Random): Buffer {
  switch (rnd.int(10)) {
    case 0:
      return validRequest(rnd);
    case 1: {
      const f = validRequest(rnd);
      for (let flips = 1 + rnd.int(8); flips > 0; flips--) {
        const at = rnd.next() < 0.5 ? rnd.int(Math.min(9, f.length)) : rnd.int(f.length);
        f[at]! ^= 1 << rnd.int(8);
      }
      return f;
    }
    case 2: {
      const f = validRequest(rnd, 200);
      return f.subarray(0, rnd.int(f.length));
    }
    case 3: {
      const head = Buffer.alloc(9);
      const lengths = [MAX_FRAME + 1, MAX_FRAME * 2, 0x7fffffff, 0xffffffff, 0x80000000 + rnd.int(1 << 30)];
      head.writeUInt32BE(lengths[rnd.int(lengths.length)]!);
      head[4] = FrameType.Request;
      return Buffer.concat([head, bytes(rnd, rnd.int(32))]);
    }
    case 4:
      return bytes(rnd, 1 + rnd.int(200));
    case 5: {
      const head = Buffer.alloc(4);
      head.writeUInt32BE(rnd.int(5));
      return Buffer.concat([head, bytes(rnd, rnd.int(16))]);
    }
    case 6: {
      let type = rnd.int(256);
      while (KNOWN_TYPES.has(type)) type = rnd.int(256);
      return encodeFrame(type, rnd.uint32(), bytes(rnd, rnd.int(64)));
    }
    case 7:
      return encodeFrame(FrameType.Request, rnd.uint32(), bytes(rnd, rnd.int(2048)));
    case 8:
      return encodeFrame(
        WRONG_DIRECTION[rnd.int(WRONG_DIRECTION.length)]!,
        rnd.uint32(),
        bytes(rnd, rnd.int(80)),
      );
    default: {
      // A damaged hello (mostly meaningful before the handshake).
      const hello = encodeFrame(FrameType.Hello, 0, encodeHello(rnd.next() < 0.5, newNonce(), '127.0.0.1:1'));
      hello[rnd.int(hello.length)]! ^= 1 << rnd.int(8);
      return hello;
    }
  }
}

/**
 * One raw connection: usually a proper hello and a few valid requests (so the hostile frame is
 * parsed in the post-handshake state), then 1-3 fuzz frames, sent in 1-3 writes. Returns the
 * number of fuzz frames sent. Connections are short on purpose: the first hostile frame usually
 * closes the connection, and what follows it is never parsed.
 */
async function attack(port: number, rnd: Random): Promise<number> {
  const socket = await rawConnect(port);
  socket.on('error', () => {});
  socket.resume(); // read and drop whatever the server answers
  const parts: Buffer[] = [];
  if (rnd.next() < 0.85) parts.push(encodeFrame(FrameType.Hello, 0, encodeHello(false, newNonce(), '')));
  for (let i = rnd.int(4); i > 0; i--) parts.push(validRequest(rnd));
  const n = 1 + rnd.int(3);
  for (let i = 0; i < n; i++) parts.push(fuzzFrame(rnd));
  const wire = Buffer.concat(parts);
  const writes = 1 + rnd.int(3);
  const step = Math.ceil(wire.length / writes);
  for (let at = 0; at < wire.length && !socket.destroyed; at += step)
    socket.write(wire.subarray(at, at + step));
  socket.end();
  await closed(socket);
  return n;
}

async function runFuzz(options: TcpTransportOptions, seed: string, connections: number) {
  const rnd = seededRandom(seed);
  let rawCalls = 0;
  let clientCalls = 0;
  const server = new TcpTransport({ ...options, maxFrameBytes: MAX_FRAME, handshakeTimeoutMs: 1000 });
  made.push(server);
  const client = new TcpTransport({ ...options, maxFrameBytes: MAX_FRAME });
  made.push(client);
  await client.start(async (_f, p) => p);
  await server.start(async (from, payload) => {
    if (from === client.address) clientCalls++;
    else rawCalls++;
    const out = Buffer.allocUnsafe(payload.length + 4);
    out.writeUInt32BE(rawCalls + clientCalls);
    out.set(payload, 4);
    return out;
  });
  const port = portOf(server.address);

  let checks = 0;
  const check = async () => {
    const payload = Buffer.from(`check ${checks++}`);
    const r = Buffer.from(await client.request(server.address, payload, { timeoutMs: 5000 }));
    expect(r.subarray(4).equals(payload)).toBe(true);
  };
  await check();
  const heapBefore = process.memoryUsage().heapUsed;

  let frames = 0;
  const concurrency = 32;
  let next = 0;
  const worker = async (w: number) => {
    const wrnd = rnd.fork(`worker ${w}`);
    while (next < connections) {
      next++;
      const sent = await attack(port, wrnd);
      frames += sent;
      // The proper client is served during the attack.
      if (next % 100 === 0) await check();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));

  await eventually(
    () => server.stats().inboundConnections === 1,
    'every attacking connection to be released',
  );
  expect(server.stats().handlersInFlight).toBe(0);
  for (let i = 0; i < 50; i++) await check();
  (globalThis as { gc?: () => void }).gc?.();
  const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
  return { server, client, frames, rawCalls, clientCalls, heapGrowth, checks };
}

test('fuzz: >= 10,000 hostile frames never crash the transport or starve a proper client', async () => {
  const { server, frames, rawCalls, clientCalls, heapGrowth, checks } = await runFuzz({}, 'tcp-fuzz-1', 6000);
  const stats = server.stats();
  expect(frames).toBeGreaterThanOrEqual(10_000);
  // Most connections die on their first hostile frame; each of those was parsed.
  expect(stats.protocolErrors).toBeGreaterThan(4000);
  expect(stats.connectionsAccepted).toBe(6001);
  expect(clientCalls).toBe(checks);
  // Valid requests after a valid hello do reach the handler; everything else closes its connection.
  expect(rawCalls).toBeGreaterThan(0);
  expect(heapGrowth).toBeLessThan(64 * 1024 * 1024);
  await server.stop();
  expect(server.stats().inboundConnections).toBe(0);
}, 60_000);

test('fuzz: with a shared secret, no raw frame ever reaches the handler', async () => {
  const { server, frames, rawCalls, clientCalls, checks } = await runFuzz(
    { secret: 'fuzz secret' },
    'tcp-fuzz-2',
    1500,
  );
  expect(frames).toBeGreaterThanOrEqual(2_500);
  expect(rawCalls).toBe(0);
  expect(clientCalls).toBe(checks);
  await server.stop();
}, 60_000);

test('an oversized length prefix closes the connection at once, before any body arrives', async () => {
  const server = new TcpTransport({ maxFrameBytes: MAX_FRAME });
  made.push(server);
  await server.start(async (_f, p) => p);
  for (const length of [MAX_FRAME + 1, 0x7fffffff, 0xffffffff]) {
    const socket = await rawConnect(portOf(server.address));
    socket.on('error', () => {});
    socket.write(encodeFrame(FrameType.Hello, 0, encodeHello(false, newNonce(), '')));
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(length);
    socket.write(prefix); // only the prefix: a server that waited for the body would hang here
    await closed(socket);
  }
  // Before the handshake the limit is far lower: unauthenticated peers cannot make us buffer 64 KiB.
  const early = await rawConnect(portOf(server.address));
  early.on('error', () => {});
  early.write(Buffer.from([0, 0, 0x10, 0])); // 4 KiB
  await closed(early);
  await eventually(() => server.stats().inboundConnections === 0, 'all closed');
  expect(server.stats().protocolErrors).toBe(4);
});
