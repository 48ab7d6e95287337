import * as tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { AuthError, TransportError } from '../../../src/errors.js';
import { encodeFrame, FrameType } from '../../../src/tcp/frame.js';
import { decodeChallenge, encodeHello, newNonce } from '../../../src/tcp/handshake.js';
import { TcpTransport, type TcpTransportOptions } from '../../../src/tcp/index.js';
import { closed, eventually, frameReader, makePki, portOf, rawConnect, type TestPki } from './helpers.js';

const made: TcpTransport[] = [];
function transport(options: TcpTransportOptions): TcpTransport {
  const t = new TcpTransport(options);
  made.push(t);
  return t;
}
afterEach(async () => {
  await Promise.all(made.splice(0).map((t) => t.stop()));
});

/** A started server whose handler echoes and counts calls. */
async function echoServer(options: TcpTransportOptions) {
  const server = transport(options);
  const calls: { from: string; payload: Buffer }[] = [];
  await server.start(async (from, payload) => {
    calls.push({ from, payload: Buffer.from(payload) });
    return payload;
  });
  return { server, calls };
}

const opts = { timeoutMs: 2000 };

describe('shared secret', () => {
  test('the right secret works and `from` is the client address', async () => {
    const { server, calls } = await echoServer({ secret: 'correct horse' });
    const client = transport({ secret: 'correct horse' });
    await client.start(async () => new Uint8Array());
    const r = await client.request(server.address, Buffer.from('ping'), opts);
    expect(Buffer.from(r).toString()).toBe('ping');
    expect(calls).toEqual([{ from: client.address, payload: Buffer.from('ping') }]);
    // Uint8Array secrets are the same secret as the equal string.
    const bytes = transport({ secret: new TextEncoder().encode('correct horse') });
    expect(Buffer.from(await bytes.request(server.address, Buffer.from('x'), opts)).toString()).toBe('x');
  });

  test('a wrong secret rejects with AuthError and the handler is never called', async () => {
    const { server, calls } = await echoServer({ secret: 'right' });
    const client = transport({ secret: 'wrong' });
    const err = await client.request(server.address, Buffer.from('x'), opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as AuthError).code).toBe('DYNAMO_AUTH');
    // While backing off, the same class of error is reported at once.
    const again = await client.request(server.address, Buffer.from('x'), opts).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(AuthError);
    expect(calls).toHaveLength(0);
    expect(client.stats().authFailures).toBe(1);
    await eventually(() => server.stats().inboundConnections === 0, 'the refused connection to close');
  });

  test('a client without the secret is refused by a server that has one (AuthError)', async () => {
    const { server, calls } = await echoServer({ secret: 'right' });
    const client = transport({});
    const err = await client.request(server.address, Buffer.from('x'), opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as Error).message).toMatch(/shared secret required/);
    expect(calls).toHaveLength(0);
  });

  test('a client with a secret refuses a server that cannot prove it (AuthError)', async () => {
    const { server, calls } = await echoServer({});
    const client = transport({ secret: 'mine' });
    const err = await client.request(server.address, Buffer.from('x'), opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as Error).message).toMatch(/did not prove/);
    expect(calls).toHaveLength(0);
  });

  test('a raw socket that skips the handshake and sends requests is closed; handler never called', async () => {
    const { server, calls } = await echoServer({ secret: 's' });
    const port = portOf(server.address);

    // No hello at all.
    const a = await rawConnect(port);
    a.write(
      Buffer.concat([encodeFrame(FrameType.Request, 1, Buffer.from('x')), encodeFrame(FrameType.Request, 2)]),
    );
    await closed(a);

    // A hello, then requests instead of the proof.
    const b = await rawConnect(port);
    const reader = frameReader(b);
    b.write(encodeFrame(FrameType.Hello, 0, encodeHello(true, newNonce(), '')));
    expect(await reader.waitFor(FrameType.Challenge)).toBeDefined();
    b.write(encodeFrame(FrameType.Request, 1, Buffer.from('sneaky')));
    await closed(b);

    // A hello and a forged proof: refused with a reason, then closed.
    const c = await rawConnect(port);
    const cr = frameReader(c);
    c.write(encodeFrame(FrameType.Hello, 0, encodeHello(true, newNonce(), '')));
    const challenge = await cr.waitFor(FrameType.Challenge);
    expect(decodeChallenge(challenge!.payload).nonce).toHaveLength(32);
    c.write(
      Buffer.concat([
        encodeFrame(FrameType.Proof, 0, Buffer.alloc(32, 1)),
        encodeFrame(FrameType.Request, 1, Buffer.from('sneaky')),
      ]),
    );
    const reject = await cr.waitFor(FrameType.Reject);
    expect(reject?.payload.toString()).toMatch(/authentication failed/);
    await closed(c);

    expect(calls).toHaveLength(0);
    expect(server.stats().authFailures).toBe(1);
    await eventually(() => server.stats().inboundConnections === 0, 'every raw connection to close');
  });

  test('a silent connection (slow loris) is closed after handshakeTimeoutMs', async () => {
    const { server } = await echoServer({ secret: 's', handshakeTimeoutMs: 50 });
    const socket = await rawConnect(portOf(server.address));
    await closed(socket);
    await eventually(() => server.stats().inboundConnections === 0, 'the server to drop it');
  });
});

describe('mutual TLS', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makePki();
  });
  afterAll(() => pki.cleanup());

  const node = (
    pair: 'nodeA' | 'nodeB' | 'rogue',
    ca: 'ca' | 'rogueCa' = 'ca',
    extra: TcpTransportOptions = {},
  ) => ({
    ...extra,
    tls: { ca: pki[ca], key: pki[pair].key, cert: pki[pair].cert, ...extra.tls },
  });

  test('a peer with a certificate from the CA is accepted, both ways', async () => {
    const { server, calls } = await echoServer(node('nodeA'));
    const client = transport(node('nodeB'));
    await client.start(async (_f, p) => p);
    expect(Buffer.from(await client.request(server.address, Buffer.from('hi'), opts)).toString()).toBe('hi');
    expect(Buffer.from(await server.request(client.address, Buffer.from('yo'), opts)).toString()).toBe('yo');
    expect(calls).toEqual([{ from: client.address, payload: Buffer.from('hi') }]);
  });

  test('a client certificate from another CA is rejected (AuthError); handler never called', async () => {
    const { server, calls } = await echoServer(node('nodeA'));
    // Trusts the right CA, but presents a certificate the server cannot verify.
    const client = transport(node('rogue'));
    const err = await client.request(server.address, Buffer.from('x'), opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as Error).message).toMatch(/client certificate rejected/);
    expect(calls).toHaveLength(0);
    expect(server.stats().authFailures).toBe(1);
    await eventually(() => server.stats().inboundConnections === 0, 'the refused connection to close');
  });

  test('a server whose certificate does not verify is refused by the client (AuthError)', async () => {
    const { server, calls } = await echoServer(node('nodeA'));
    const client = transport(node('rogue', 'rogueCa'));
    const err = await client.request(server.address, Buffer.from('x'), opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect(calls).toHaveLength(0);
  });

  test('a TLS client without any certificate is refused; a plain client fails; handler never called', async () => {
    const { server, calls } = await echoServer(node('nodeA'));
    const port = portOf(server.address);
    const bare = tls.connect({ host: '127.0.0.1', port, ca: pki.ca, checkServerIdentity: () => undefined });
    bare.on('error', () => {});
    const reader = frameReader(bare);
    await new Promise<void>((resolve) => bare.once('secureConnect', () => resolve()));
    bare.write(encodeFrame(FrameType.Hello, 0, encodeHello(false, newNonce(), '')));
    bare.write(encodeFrame(FrameType.Request, 1, Buffer.from('x')));
    const reject = await reader.waitFor(FrameType.Reject);
    expect(reject?.payload.toString()).toMatch(/client certificate rejected/);
    await closed(bare);

    const plain = transport({});
    const err = await plain.request(server.address, Buffer.from('x'), opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect(calls).toHaveLength(0);
  });

  test('checkServerIdentity is consulted; an error from it is an AuthError', async () => {
    const { server } = await echoServer(node('nodeA'));
    const seen: string[] = [];
    const strict = transport(
      node('nodeB', 'ca', {
        tls: {
          servername: 'node-x.internal',
          checkServerIdentity: (host, cert) => {
            seen.push(`${host} ${cert.subject.CN}`);
            return host === 'node-a' ? undefined : new Error(`unexpected host ${host}`);
          },
        },
      }),
    );
    const err = await strict.request(server.address, Buffer.from('x'), opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect(seen).toEqual(['node-x.internal node-a']);
  });
});

describe('binding', () => {
  test('a non-loopback host without tls or secret is refused unless insecure: true', () => {
    expect(() => new TcpTransport({ host: '0.0.0.0' })).toThrow(TypeError);
    expect(() => new TcpTransport({ host: '::' })).toThrow(/insecure/);
    expect(() => new TcpTransport({ host: '10.1.2.3' })).toThrow(TypeError);
    // Construction only: nothing binds until start().
    expect(() => new TcpTransport({ host: '0.0.0.0', insecure: true })).not.toThrow();
    expect(() => new TcpTransport({ host: '0.0.0.0', secret: 's' })).not.toThrow();
    expect(() => new TcpTransport({ host: 'localhost' })).not.toThrow();
    expect(() => new TcpTransport({ host: '127.0.0.2' })).not.toThrow();
  });

  test('invalid options throw at construction', () => {
    expect(() => new TcpTransport({ secret: '' })).toThrow(RangeError);
    expect(() => new TcpTransport({ port: 70000 })).toThrow(RangeError);
    expect(() => new TcpTransport({ maxFrameBytes: 0 })).toThrow(RangeError);
    expect(() => new TcpTransport({ reconnectBackoffMs: { initial: 100, max: 10 } })).toThrow(RangeError);
    expect(() => new TcpTransport({ tls: { ca: 'x' } })).toThrow(/key and cert/);
  });
});
