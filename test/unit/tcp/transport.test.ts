import * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { LimitError, TimeoutError, TransportError } from '../../../src/errors.js';
import { encodeFrame, FrameDecoder, FrameType } from '../../../src/tcp/frame.js';
import { encodeHello, newNonce } from '../../../src/tcp/handshake.js';
import { TcpTransport, type TcpTransportOptions } from '../../../src/tcp/index.js';
import type { RequestHandler } from '../../../src/transport/types.js';
import { VirtualClock } from '../../../src/util/clock.js';
import { closed, eventually, frameReader, portOf, rawConnect } from './helpers.js';

const made: TcpTransport[] = [];
const servers: net.Server[] = [];
function transport(options: TcpTransportOptions = {}): TcpTransport {
  const t = new TcpTransport(options);
  made.push(t);
  return t;
}
afterEach(async () => {
  await Promise.all(made.splice(0).map((t) => t.stop()));
  for (const s of servers.splice(0)) s.close();
});

const echo: RequestHandler = async (_from, payload) => payload;
const opts = { timeoutMs: 5000 };
const text = (b: Uint8Array) => Buffer.from(b).toString();
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A handler whose calls wait until the test answers them. */
function heldHandler() {
  const held: { payload: Uint8Array; answer: (r: Uint8Array) => void; fail: (e: Error) => void }[] = [];
  const handler: RequestHandler = (_from, payload) =>
    new Promise((answer, fail) => {
      held.push({ payload, answer, fail });
    });
  return { held, handler };
}

async function rawHandshake(port: number) {
  const socket = await rawConnect(port);
  const reader = frameReader(socket);
  socket.write(encodeFrame(FrameType.Hello, 0, encodeHello(false, newNonce(), '')));
  expect(await reader.waitFor(FrameType.Ready)).toBeDefined();
  return { socket, reader };
}

describe('basics', () => {
  test('address is host:actualPort, or the advertised host', async () => {
    const a = transport();
    expect(a.address).toBe('127.0.0.1:0');
    await a.start(echo);
    expect(a.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(portOf(a.address)).toBeGreaterThan(0);
    const b = transport({ advertise: 'node-b.internal' });
    await b.start(echo);
    expect(b.address).toMatch(/^node-b\.internal:\d+$/);
  });

  test('start twice, start after stop, and request after stop are refused; stop is idempotent', async () => {
    const a = transport();
    await a.start(echo);
    await expect(a.start(echo)).rejects.toThrow(TransportError);
    await Promise.all([a.stop(), a.stop()]);
    await expect(a.start(echo)).rejects.toThrow(TransportError);
    await expect(a.request('127.0.0.1:1', new Uint8Array(1), opts)).rejects.toThrow(TransportError);
  });

  test('a client that never started can send; the handler sees its ip:port', async () => {
    let seen = '';
    const server = transport();
    await server.start(async (from, p) => {
      seen = from;
      return p;
    });
    const client = transport();
    expect(text(await client.request(server.address, Buffer.from('x'), opts))).toBe('x');
    expect(seen).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  test('invalid addresses and a port already in use give TransportError', async () => {
    const client = transport();
    for (const bad of ['nope', '127.0.0.1', '127.0.0.1:0', '']) {
      await expect(client.request(bad, new Uint8Array(1), opts)).rejects.toThrow(TransportError);
    }
    const a = transport();
    await a.start(echo);
    const b = transport({ port: portOf(a.address) });
    await expect(b.start(echo)).rejects.toThrow(/cannot listen/);
  });

  test('payloads over maxFrameBytes reject with LimitError; oversized responses become errors', async () => {
    const server = transport({ maxFrameBytes: 1000 });
    await server.start(async (_f, p) => (p[0] === 1 ? new Uint8Array(2000) : p));
    const client = transport({ maxFrameBytes: 1000 });
    await expect(client.request(server.address, new Uint8Array(996), opts)).rejects.toThrow(LimitError);
    expect(client.stats().connectAttempts).toBe(0);
    expect((await client.request(server.address, new Uint8Array(995), opts)).length).toBe(995);
    await expect(client.request(server.address, new Uint8Array([1]), opts)).rejects.toThrow(
      /exceeds maxFrameBytes/,
    );
    // The connection survived both.
    expect(text(await client.request(server.address, Buffer.from('ok'), opts))).toBe('ok');
    expect(client.stats().connectAttempts).toBe(1);
  });

  test('a handler that throws synchronously or returns a non-Uint8Array gives TransportError', async () => {
    const server = transport();
    await server.start(((_f: string, p: Uint8Array) => {
      if (p[0] === 1) throw new Error('sync boom');
      return Promise.resolve('not bytes');
    }) as unknown as RequestHandler);
    const client = transport();
    await expect(client.request(server.address, new Uint8Array([1]), opts)).rejects.toThrow(/sync boom/);
    await expect(client.request(server.address, new Uint8Array([2]), opts)).rejects.toThrow(
      /other than a Uint8Array/,
    );
  });
});

describe('timeouts and aborts (virtual clock)', () => {
  test('a timeout rejects with TimeoutError and leaves no timer behind; so does an abort', async () => {
    const clock = new VirtualClock();
    const { held, handler } = heldHandler();
    const server = transport();
    await server.start((from, p) => (p[0] === 0x7a ? echo(from, p) : handler(from, p)));
    const client = transport({ clock });
    const p = client.request(server.address, Buffer.from('x'), { timeoutMs: 100 });
    const outcome = p.catch((e: unknown) => e);
    await eventually(() => held.length === 1, 'the request to arrive');
    // Only the request timer and the connection's idle timer.
    expect(clock.pending).toBe(2);
    await clock.advance(100);
    expect(await outcome).toBeInstanceOf(TimeoutError);
    expect(clock.pending).toBe(1);
    expect(client.stats().requestsInFlight).toBe(0);

    const controller = new AbortController();
    const aborted = client.request(server.address, Buffer.from('y'), {
      timeoutMs: 100,
      signal: controller.signal,
    });
    expect(clock.pending).toBe(2);
    const reason = new Error('enough');
    controller.abort(reason);
    await expect(aborted).rejects.toBe(reason);
    expect(clock.pending).toBe(1);
    // A late answer to a timed-out request is ignored.
    held[0]!.answer(Buffer.from('late'));
    expect(text(await client.request(server.address, Buffer.from('z'), { timeoutMs: 100 }))).toBe('z');
    expect(client.stats().protocolErrors).toBe(0);
  }, 10_000);

  test('each request times out after its own timeoutMs; answered ones and stop() leave no timer', async () => {
    const clock = new VirtualClock();
    const { held, handler } = heldHandler();
    const server = transport();
    await server.start(handler);
    const client = transport({ clock });
    const outcome = (p: Promise<Uint8Array>) => p.then(text, (e: unknown) => e);
    const short = outcome(client.request(server.address, Buffer.from('short'), { timeoutMs: 100 }));
    const long = outcome(client.request(server.address, Buffer.from('long'), { timeoutMs: 300 }));
    const answered = outcome(client.request(server.address, Buffer.from('answered'), { timeoutMs: 100 }));
    await eventually(() => held.length === 3, 'the requests to arrive');
    held.find((h) => text(h.payload) === 'answered')!.answer(Buffer.from('yes'));
    expect(await answered).toBe('yes');
    await clock.advance(50);
    // Started later with the same timeout: its own deadline (150), not the batch's before it.
    const later = outcome(client.request(server.address, Buffer.from('later'), { timeoutMs: 100 }));
    await eventually(() => held.length === 4, 'the later request to arrive');
    await clock.advance(49);
    expect(client.stats().requestsInFlight).toBe(3);
    await clock.advance(1);
    expect(await short).toBeInstanceOf(TimeoutError);
    expect(((await short) as Error).message).toMatch(/timed out after 100 ms/);
    expect(client.stats().requestsInFlight).toBe(2);
    await clock.advance(49);
    expect(client.stats().requestsInFlight).toBe(2);
    await clock.advance(1);
    expect(await later).toBeInstanceOf(TimeoutError);
    await clock.advance(149);
    expect(client.stats().requestsInFlight).toBe(1);
    await clock.advance(1);
    expect(await long).toBeInstanceOf(TimeoutError);
    // Only the connection's idle timer is left.
    expect(clock.pending).toBe(1);

    // Requests still in flight at stop() reject, and take their timers with them.
    const inFlight = [1, 2, 3].map((i) =>
      outcome(client.request(server.address, new Uint8Array([i]), { timeoutMs: 100 * i })),
    );
    await clock.advance(1);
    expect(clock.pending).toBe(4);
    await client.stop();
    for (const r of await Promise.all(inFlight)) expect(r).toBeInstanceOf(TransportError);
    expect(clock.pending).toBe(0);
    expect(client.stats().requestsInFlight).toBe(0);
  }, 10_000);
});

describe('coalescing', () => {
  test('requests issued in one turn go out in far fewer writes; so do the responses', async () => {
    const server = transport();
    await server.start(echo);
    const client = transport();
    await client.request(server.address, Buffer.from('warm'), opts);
    const c0 = client.stats();
    const s0 = server.stats();
    const n = 1000;
    const payloads = Array.from({ length: n }, (_, i) => Buffer.from(`request ${i} `.padEnd(100, '.')));
    const responses = await Promise.all(payloads.map((p) => client.request(server.address, p, opts)));
    responses.forEach((r, i) => {
      expect(Buffer.from(r).equals(payloads[i]!)).toBe(true);
    });
    const c1 = client.stats();
    const s1 = server.stats();
    expect(c1.framesSent - c0.framesSent).toBe(n);
    expect(c1.writes - c0.writes).toBe(1);
    expect(s1.framesSent - s0.framesSent).toBe(n);
    expect(s1.writes - s0.writes).toBeLessThan(n / 20);
    expect(c1.bytesSent - c0.bytesSent).toBe(n * (9 + 100));
  });
});

describe('bounds and backpressure', () => {
  test('outbound queue bound: a request that would exceed maxQueuedBytesPerPeer rejects at once', async () => {
    const server = transport();
    await server.start(echo);
    const client = transport({ maxQueuedBytesPerPeer: 100_000 });
    const payload = new Uint8Array(30_000);
    const ok = [1, 2, 3].map(() => client.request(server.address, payload, opts));
    await expect(client.request(server.address, payload, opts)).rejects.toThrow(/queue full/);
    for (const r of await Promise.all(ok)) expect(r.length).toBe(30_000);
    // Drained: room again.
    expect((await client.request(server.address, payload, opts)).length).toBe(30_000);
  });

  test('outbound in-flight bound: beyond maxInFlightPerConnection requests reject at once', async () => {
    const { held, handler } = heldHandler();
    const server = transport();
    await server.start(handler);
    const client = transport({ maxInFlightPerConnection: 3 });
    const inFlight = [1, 2, 3].map((i) => client.request(server.address, new Uint8Array([i]), opts));
    await expect(client.request(server.address, new Uint8Array([4]), opts)).rejects.toThrow(
      /maxInFlightPerConnection/,
    );
    await eventually(() => held.length === 3, 'three requests at the handler');
    for (const h of held) h.answer(h.payload);
    expect((await Promise.all(inFlight)).map((r) => r[0])).toEqual([1, 2, 3]);
  });

  test('inbound in-flight bound: the server stops reading at maxInFlightPerConnection, then resumes', async () => {
    const { held, handler } = heldHandler();
    const server = transport({ maxInFlightPerConnection: 2 });
    await server.start(handler);
    const client = transport();
    const requests = Array.from({ length: 10 }, (_, i) =>
      client.request(server.address, new Uint8Array([i]), opts),
    );
    // Every byte has arrived, yet only two calls run.
    const expected = 10 * 10 + 9 + 36;
    await eventually(
      () => server.stats().bytesReceived >= expected && held.length === 2,
      'all bytes in, two calls',
    );
    for (let i = 0; i < 5; i++) await turn();
    expect(held.length).toBe(2);
    expect(server.stats().handlersInFlight).toBe(2);
    let answered = 0;
    await eventually(() => {
      while (answered < held.length) {
        const h = held[answered++]!;
        h.answer(h.payload);
      }
      return answered === 10;
    }, 'every request to reach the handler');
    expect((await Promise.all(requests)).map((r) => r[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test('a client that does not read its responses is cut off past maxQueuedBytesPerPeer', async () => {
    const server = transport({ maxQueuedBytesPerPeer: 1 << 20 });
    await server.start(async () => new Uint8Array(64 * 1024));
    const { socket } = await rawHandshake(portOf(server.address));
    socket.pause();
    const frames = Array.from({ length: 100 }, (_, i) =>
      encodeFrame(FrameType.Request, i + 1, Buffer.from('give')),
    );
    socket.write(Buffer.concat(frames));
    socket.resume();
    await closed(socket);
    await eventually(() => server.stats().inboundConnections === 0, 'the server to drop it');
  });

  test('maxConnections is enforced on accept', async () => {
    const server = transport({ maxConnections: 2 });
    await server.start(echo);
    const port = portOf(server.address);
    const a = await rawConnect(port);
    const b = await rawConnect(port);
    await eventually(() => server.stats().inboundConnections === 2, 'two accepted');
    const c = await rawConnect(port);
    await closed(c);
    expect(server.stats().connectionsRejected).toBe(1);
    expect(a.closed || b.closed).toBe(false);
    a.destroy();
    await eventually(() => server.stats().inboundConnections === 1, 'a slot to free up');
    const { socket: d } = await rawHandshake(port);
    expect(d.closed).toBe(false);
    b.destroy();
    d.destroy();
  });

  test('a handler answering after its connection closed is discarded', async () => {
    const { held, handler } = heldHandler();
    const server = transport();
    await server.start(handler);
    const { socket } = await rawHandshake(portOf(server.address));
    socket.write(encodeFrame(FrameType.Request, 1, Buffer.from('x')));
    await eventually(() => held.length === 1, 'the call');
    socket.destroy();
    await eventually(() => server.stats().inboundConnections === 0, 'the close');
    const sent = server.stats().framesSent;
    held[0]!.answer(Buffer.from('too late'));
    held.length = 0;
    await turn();
    await turn();
    expect(server.stats().handlersInFlight).toBe(0);
    expect(server.stats().framesSent).toBe(sent);
  });
});

describe('idle connections (virtual clock)', () => {
  test('an idle outbound connection is closed after idleTimeoutMs; the next request dials again', async () => {
    const clock = new VirtualClock();
    const server = transport();
    await server.start(echo);
    const client = transport({ clock, idleTimeoutMs: 1000 });
    await client.request(server.address, Buffer.from('x'), opts);
    await clock.advance(999);
    expect(client.stats().outboundConnections).toBe(1);
    await clock.advance(1);
    await eventually(
      () => client.stats().outboundConnections === 0 && server.stats().inboundConnections === 0,
      'both sides closed',
    );
    expect(text(await client.request(server.address, Buffer.from('again'), opts))).toBe('again');
    expect(client.stats().connectAttempts).toBe(2);
  });

  test('an idle inbound connection gets GoAway, then is closed; our client leaves cleanly on GoAway', async () => {
    const clock = new VirtualClock();
    const server = transport({ clock, idleTimeoutMs: 1000, handshakeTimeoutMs: 100 });
    await server.start(echo);
    // A raw client that ignores GoAway is closed after the grace period.
    const { socket, reader } = await rawHandshake(portOf(server.address));
    await clock.advance(1000);
    expect(await reader.waitFor(FrameType.GoAway)).toBeDefined();
    expect(socket.closed).toBe(false);
    await clock.advance(100);
    await closed(socket);

    // Our client (longer idle timeout than the server) closes on GoAway; the next request reconnects.
    const client = transport({ idleTimeoutMs: 60_000 });
    await client.request(server.address, Buffer.from('x'), opts);
    await clock.advance(1000);
    await eventually(() => client.stats().outboundConnections === 0, 'the client to leave');
    await eventually(() => server.stats().inboundConnections === 0, 'the server to see it');
    expect(text(await client.request(server.address, Buffer.from('y'), opts))).toBe('y');
  });
});

describe('reconnect and backoff (virtual clock)', () => {
  test('a broken connection fails in-flight requests; failed dials back off; a new server is found', async () => {
    const clock = new VirtualClock(1_000);
    const { held, handler } = heldHandler();
    const server = transport();
    await server.start(async (from, p) => (p[0] === 0 ? handler(from, p) : p));
    const port = portOf(server.address);
    const client = transport({ clock, reconnectBackoffMs: { initial: 100, max: 300 } });
    expect(text(await client.request(server.address, Buffer.from('a'), opts))).toBe('a');

    const hanging = client.request(server.address, new Uint8Array([0]), opts).catch((e: unknown) => e);
    await eventually(() => held.length === 1, 'the request to be handled');
    await server.stop();
    const broken = await hanging;
    expect(broken).toBeInstanceOf(TransportError);
    expect((broken as Error).message).toMatch(/connection lost/);

    // A broken established connection does not back off: the next request dials (and fails).
    const failDial = () =>
      client.request(`127.0.0.1:${port}`, Buffer.from('b'), opts).catch((e: unknown) => e);
    expect(await failDial()).toBeInstanceOf(TransportError);
    expect(client.stats().connectAttempts).toBe(2);
    // Backing off: fail fast, no dial.
    const fast = await failDial();
    expect((fast as Error).message).toMatch(/retrying in 100 ms/);
    expect(client.stats().connectAttempts).toBe(2);
    await clock.advance(100);
    expect(await failDial()).toBeInstanceOf(TransportError);
    expect(client.stats().connectAttempts).toBe(3);
    expect(((await failDial()) as Error).message).toMatch(/retrying in 200 ms/);
    await clock.advance(200);
    await failDial();
    await clock.advance(299);
    expect(((await failDial()) as Error).message).toMatch(/retrying in 1 ms/);
    await clock.advance(1);
    await failDial();
    expect(((await failDial()) as Error).message).toMatch(/retrying in 300 ms/); // capped at max

    // A replacement on the same port is reached once the backoff has run out.
    const replacement = transport({ port });
    await replacement.start(echo);
    expect(await failDial()).toBeInstanceOf(TransportError);
    await clock.advance(300);
    expect(text(await client.request(replacement.address, Buffer.from('back'), opts))).toBe('back');
    // Success resets the backoff.
    await replacement.stop();
    await eventually(() => client.stats().outboundConnections === 0, 'the client to notice');
    await failDial();
    expect(((await failDial()) as Error).message).toMatch(/retrying in 100 ms/);
  }, 15_000);

  test('a server that breaks the protocol fails the request with TransportError, nothing else', async () => {
    const badServer = net.createServer((socket) => {
      const decoder = new FrameDecoder(1 << 20);
      socket.on('error', () => {});
      socket.on('data', (chunk: Buffer) => {
        decoder.push(chunk);
        for (let f = decoder.next(); f; f = decoder.next()) {
          if (f.type === FrameType.Hello) socket.write(encodeFrame(FrameType.Ready, 0));
          else if (f.payload[0] === 1) socket.write(encodeFrame(0x7f, f.id, Buffer.from('??')));
          else if (f.payload[0] === 2) socket.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
          else socket.write(encodeFrame(FrameType.Response, f.id + 1000, f.payload)); // unknown id: ignored
        }
      });
    });
    servers.push(badServer);
    await new Promise<void>((resolve) => badServer.listen(0, '127.0.0.1', () => resolve()));
    const address = `127.0.0.1:${(badServer.address() as net.AddressInfo).port}`;
    const client = transport();
    await expect(client.request(address, new Uint8Array([1]), opts)).rejects.toThrow(/unexpected frame type/);
    await expect(client.request(address, new Uint8Array([2]), opts)).rejects.toThrow(/exceeds maxFrameBytes/);
    await expect(client.request(address, new Uint8Array([3]), { timeoutMs: 50 })).rejects.toThrow(
      TimeoutError,
    );
    expect(client.stats().protocolErrors).toBe(2);
  });
});
