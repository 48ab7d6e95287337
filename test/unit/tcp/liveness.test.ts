/**
 * The TCP transport's liveness rule and queue bound, on real loopback sockets (time on a
 * VirtualClock): a connection that received nothing while a request timed out is closed and the
 * next request dials afresh; a connection that is answering is kept; the bytes queued for a peer
 * are bounded, with a typed error for what is refused.
 */
import * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { LimitError, TimeoutError, TransportError } from '../../../src/errors.js';
import { encodeFrame, FrameDecoder, FrameType } from '../../../src/tcp/frame.js';
import { encodeHello, newNonce } from '../../../src/tcp/handshake.js';
import { TcpTransport, type TcpTransportOptions } from '../../../src/tcp/index.js';
import type { RequestHandler } from '../../../src/transport/types.js';
import { VirtualClock } from '../../../src/util/clock.js';
import { eventually, frameReader, portOf, rawConnect } from './helpers.js';

const made: TcpTransport[] = [];
const servers: net.Server[] = [];
const sockets: net.Socket[] = [];
function transport(options: TcpTransportOptions = {}): TcpTransport {
  const t = new TcpTransport(options);
  made.push(t);
  return t;
}
afterEach(async () => {
  await Promise.all(made.splice(0).map((t) => t.stop()));
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) s.close();
});

const echo: RequestHandler = async (_from, payload) => payload;
const text = (b: Uint8Array) => Buffer.from(b).toString();
const outcome = (p: Promise<Uint8Array>) => p.then(text, (e: unknown) => e);

/**
 * A peer that completes the handshake and then, on its first `frozen` connections, never answers
 * (a partition that drops everything after the connection was made: the kernel keeps accepting
 * our bytes, nothing comes back); `paused` also stops reading them. Later connections echo.
 */
async function freezingPeer(options: { frozen: number; paused?: boolean; stallHandshake?: boolean }) {
  let accepted = 0;
  const requestsSeen: number[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    const index = accepted++;
    const frozen = index < options.frozen;
    const decoder = new FrameDecoder(1 << 24);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      for (let f = decoder.next(); f; f = decoder.next()) {
        if (f.type === FrameType.Hello) {
          // A stalled handshake: the connection attempt never completes (as when the SYN-ACK is lost).
          if (frozen && options.stallHandshake) continue;
          socket.write(encodeFrame(FrameType.Ready, 0));
          if (frozen && options.paused) socket.pause();
        } else if (f.type === FrameType.Request) {
          requestsSeen[index] = (requestsSeen[index] ?? 0) + 1;
          if (!frozen) socket.write(encodeFrame(FrameType.Response, f.id, f.payload));
        }
      }
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return { address, requestsSeen, accepted: () => accepted };
}

describe('liveness: dead connections are closed and redialled', () => {
  test('a request that times out on a connection silent for deadConnectionMs closes it; the next request dials afresh', async () => {
    const clock = new VirtualClock();
    const peer = await freezingPeer({ frozen: 1 });
    const client = transport({ clock, deadConnectionMs: 500 });
    const early = outcome(client.request(peer.address, Buffer.from('early'), { timeoutMs: 1000 }));
    const stale = outcome(client.request(peer.address, Buffer.from('stale'), { timeoutMs: 10_000 }));
    await eventually(() => peer.requestsSeen[0] === 2, 'the requests to reach the frozen peer');
    await clock.advance(1000);
    expect(await early).toBeInstanceOf(TimeoutError);
    // The other request on the dead connection does not wait out its own 10 s: dropped with it.
    const dropped = await stale;
    expect(dropped).toBeInstanceOf(TransportError);
    expect((dropped as Error).message).toMatch(/nothing received for 1000 ms/);
    expect(client.stats().deadConnections).toBe(1);
    // A fresh connection (no backoff: the dead one had been established), answered at once.
    expect(await outcome(client.request(peer.address, Buffer.from('fresh'), { timeoutMs: 1000 }))).toBe(
      'fresh',
    );
    expect(client.stats().connectAttempts).toBe(2);
    expect(peer.accepted()).toBe(2);
  }, 10_000);

  test('a connection that keeps answering is kept when one slow request times out (no flapping)', async () => {
    const clock = new VirtualClock();
    const held: ((r: Uint8Array) => void)[] = [];
    const server = transport();
    await server.start((_from, p) =>
      text(p) === 'slow' ? new Promise<Uint8Array>((resolve) => held.push(resolve)) : echo('', p),
    );
    const client = transport({ clock, deadConnectionMs: 500 });
    const slow = outcome(client.request(server.address, Buffer.from('slow'), { timeoutMs: 1000 }));
    for (let t = 0; t < 1000; t += 200) {
      expect(await outcome(client.request(server.address, Buffer.from('fast'), { timeoutMs: 1000 }))).toBe(
        'fast',
      );
      await clock.advance(200);
    }
    expect(await slow).toBeInstanceOf(TimeoutError);
    expect(client.stats().deadConnections).toBe(0);
    expect(client.stats().connectAttempts).toBe(1);
    expect(client.stats().outboundConnections).toBe(1);
  }, 10_000);

  test('by default a request timing out after 1 s of silence closes its connection', async () => {
    const clock = new VirtualClock();
    const peer = await freezingPeer({ frozen: 1 });
    const client = transport({ clock });
    const short = outcome(client.request(peer.address, Buffer.from('a'), { timeoutMs: 400 }));
    await eventually(() => peer.requestsSeen[0] === 1, 'the request to arrive');
    await clock.advance(400);
    expect(await short).toBeInstanceOf(TimeoutError);
    // 400 ms of silence is not enough by default (deadConnectionMs 1000).
    expect(client.stats().deadConnections).toBe(0);
    const long = outcome(client.request(peer.address, Buffer.from('b'), { timeoutMs: 1000 }));
    await eventually(() => peer.requestsSeen[0] === 2, 'the second request to arrive');
    await clock.advance(1000);
    expect(await long).toBeInstanceOf(TimeoutError);
    expect(client.stats().deadConnections).toBe(1);
  }, 10_000);

  test('an inbound connection from a peer we back off from lets our next request dial it at once', async () => {
    const clock = new VirtualClock();
    // Reserve a port, then free it: the peer is down there.
    const probe = transport();
    await probe.start(echo);
    const port = portOf(probe.address);
    await probe.stop();
    const a = transport({ clock, reconnectBackoffMs: { initial: 60_000, max: 60_000 } });
    await a.start(echo);
    const peerAddress = `127.0.0.1:${port}`;
    expect(await outcome(a.request(peerAddress, Buffer.from('x'), { timeoutMs: 1000 }))).toBeInstanceOf(
      TransportError,
    );
    expect(
      ((await outcome(a.request(peerAddress, Buffer.from('x'), { timeoutMs: 1000 }))) as Error).message,
    ).toMatch(/retrying in/);
    // The peer comes back on its port and talks to us first.
    const b = transport({ port });
    await b.start(echo);
    expect(text(await b.request(a.address, Buffer.from('hello'), { timeoutMs: 1000 }))).toBe('hello');
    expect(await outcome(a.request(peerAddress, Buffer.from('back'), { timeoutMs: 1000 }))).toBe('back');
  }, 10_000);
});

describe('an inbound connection from a peer restarts our attempt to reach it', () => {
  test('a connection attempt still pending when the peer connects to us is dropped; the next request dials afresh', async () => {
    const clock = new VirtualClock();
    const peer = await freezingPeer({ frozen: 1, stallHandshake: true });
    const a = transport({ clock });
    await a.start(echo);
    const stuck = outcome(a.request(peer.address, Buffer.from('lost'), { timeoutMs: 60_000 }));
    await eventually(() => peer.accepted() === 1, 'the first attempt to reach the peer');
    await clock.advance(300);
    // The peer reaches us (the network is back): it announces its address in its Hello.
    const socket = await rawConnect(portOf(a.address));
    sockets.push(socket);
    const reader = frameReader(socket);
    socket.write(encodeFrame(FrameType.Hello, 0, encodeHello(false, newNonce(), peer.address)));
    expect(await reader.waitFor(FrameType.Ready)).toBeDefined();
    const dropped = await stuck;
    expect(dropped).toBeInstanceOf(TransportError);
    expect((dropped as Error).message).toMatch(/redialling/);
    // No backoff after the dropped attempt: the next request dials at once and is answered.
    expect(await outcome(a.request(peer.address, Buffer.from('fresh'), { timeoutMs: 1000 }))).toBe('fresh');
    expect(peer.accepted()).toBe(2);
  }, 10_000);

  test('an attempt younger than a round of SYN retries is kept when the peer connects to us (both dialling at once)', async () => {
    const clock = new VirtualClock();
    const peer = await freezingPeer({ frozen: 1, stallHandshake: true });
    const a = transport({ clock });
    await a.start(echo);
    const pending = outcome(a.request(peer.address, Buffer.from('kept'), { timeoutMs: 5000 }));
    await eventually(() => peer.accepted() === 1, 'the attempt to reach the peer');
    await clock.advance(100);
    const socket = await rawConnect(portOf(a.address));
    sockets.push(socket);
    const reader = frameReader(socket);
    socket.write(encodeFrame(FrameType.Hello, 0, encodeHello(false, newNonce(), peer.address)));
    expect(await reader.waitFor(FrameType.Ready)).toBeDefined();
    expect(a.stats().outboundConnections).toBe(1);
    // Still the first attempt: its handshake timeout ends it, not the peer's connection.
    await clock.advance(2000);
    expect(((await pending) as Error).message).toMatch(/handshake .* timed out/);
  }, 10_000);
});

describe('bounded send queue', () => {
  test('a peer that stops reading fills the queue to maxQueuedBytesPerPeer; what is refused gets LimitError; the liveness rule then drops the rest', async () => {
    const clock = new VirtualClock();
    const peer = await freezingPeer({ frozen: 1, paused: true });
    const maxQueuedBytesPerPeer = 1 << 20;
    const client = transport({ clock, maxQueuedBytesPerPeer, deadConnectionMs: 500 });
    const payload = new Uint8Array(64 * 1024);
    const queued: Promise<unknown>[] = [];
    let refused: unknown;
    // The kernel's buffers take the first megabytes; then the transport's own queue fills.
    for (let i = 0; i < 2000 && refused === undefined; i++) {
      const r = outcome(client.request(peer.address, payload, { timeoutMs: 1000 }));
      const settledAtOnce = await Promise.race([
        r,
        new Promise((resolve) => setImmediate(() => resolve('pending'))),
      ]);
      if (settledAtOnce instanceof LimitError) refused = settledAtOnce;
      else queued.push(r);
    }
    expect(refused).toBeInstanceOf(LimitError);
    expect((refused as LimitError).limit).toBe('maxQueuedBytesPerPeer');
    expect((refused as LimitError).max).toBe(maxQueuedBytesPerPeer);
    expect((refused as Error).message).toMatch(/queue full/);
    await clock.advance(1000);
    const results = await Promise.all(queued);
    expect(results.every((r) => r instanceof TimeoutError || r instanceof TransportError)).toBe(true);
    expect(client.stats().deadConnections).toBe(1);
    expect(client.stats().requestsInFlight).toBe(0);
    // Room again, on a fresh connection.
    expect(await outcome(client.request(peer.address, Buffer.from('after'), { timeoutMs: 1000 }))).toBe(
      'after',
    );
  }, 20_000);
});
