/**
 * `TcpTransport`: the `Transport` contract over TCP (optionally TLS), with length-prefixed frames,
 * one pooled persistent connection per peer, per-turn write coalescing, reconnect backoff, an
 * optional shared-secret handshake, and a bound on every queue.
 *
 * Connections are one-directional: the dialling side sends requests, the accepting side answers.
 * Two nodes that talk both ways hold two connections (simpler than sharing one, and each side's
 * bounds then apply to exactly one role).
 *
 * Request timeouts share timers (`RequestTimeouts`): a request rejects with `TimeoutError` no
 * earlier than its `timeoutMs` and at most one clock timer turn later (about 1 ms on the system
 * clock, none on a `VirtualClock`).
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { AuthError, LimitError, TimeoutError, TransportError } from '../errors.js';
import type { RequestHandler, RequestOptions, Transport } from '../transport/types.js';
import { onAbort } from '../util/abort.js';
import type { Timer } from '../util/clock.js';
import { RequestTimeouts, type TimeoutBatch, type TimeoutLinks } from '../util/timeouts.js';
import { formatAddress, parseAddress } from './address.js';
import { type Counters, FramedSocket } from './connection.js';
import { encodeFrame, type Frame, FrameType, MIN_FRAME_LENGTH, ProtocolError } from './frame.js';
import {
  computeMac,
  decodeChallenge,
  decodeHello,
  encodeChallenge,
  encodeHello,
  HANDSHAKE_MAX_FRAME_BYTES,
  type Hello,
  macEquals,
  newNonce,
} from './handshake.js';
import { type ResolvedOptions, resolveOptions, type TcpTransportOptions } from './options.js';

/** Counters and gauges, for monitoring and tests. Counters only grow; gauges are current values. */
export interface TcpTransportStats {
  /** Frames written (requests, responses, handshake). */
  framesSent: number;
  /** Frames read. */
  framesReceived: number;
  /** `socket.write` calls: far fewer than `framesSent` under load thanks to per-turn coalescing. */
  writes: number;
  /** Bytes written to sockets. */
  bytesSent: number;
  /** Bytes read from sockets. */
  bytesReceived: number;
  /** Gauge: accepted sockets currently open (including ones still in their handshake). */
  inboundConnections: number;
  /** Gauge: outbound sockets currently open or connecting. */
  outboundConnections: number;
  /** Gauge: outbound requests awaiting a response. */
  requestsInFlight: number;
  /** Gauge: handler calls running. */
  handlersInFlight: number;
  /** Inbound connections accepted. */
  connectionsAccepted: number;
  /** Inbound connections closed on accept because `maxConnections` was reached. */
  connectionsRejected: number;
  /** Outbound connection attempts. */
  connectAttempts: number;
  /** Handshakes that failed authentication (secret or certificate), either direction. */
  authFailures: number;
  /** Connections closed because the peer broke the protocol (malformed, oversized, unexpected frames). */
  protocolErrors: number;
  /** Outbound connections closed by the liveness rule (see `deadConnectionMs`). */
  deadConnections: number;
}

/** An outbound request awaiting its response. A class: one allocation, one shape, per request. */
class Pending implements TimeoutLinks<Pending> {
  /** Removes the abort listener; `noop` without a signal. */
  unabort: () => void = noop;
  timeoutBatch: TimeoutBatch<Pending> | undefined = undefined;
  timeoutPrev: Pending | undefined = undefined;
  timeoutNext: Pending | undefined = undefined;

  constructor(
    readonly conn: Outbound,
    readonly id: number,
    readonly resolve: (payload: Uint8Array) => void,
    readonly reject: (error: unknown) => void,
  ) {}
}

interface Peer {
  address: string;
  host: string;
  port: number;
  /** The connection new requests go to (connecting or ready). */
  conn: Outbound | undefined;
  /** Consecutive failed connection attempts. */
  failures: number;
  backoffUntil: number;
  lastError: Error | undefined;
}

interface Outbound {
  peer: Peer;
  fs: FramedSocket;
  state: 'connecting' | 'handshake' | 'ready' | 'draining' | 'closed';
  pending: Map<number, Pending>;
  nextId: number;
  nonce: Buffer;
  /** The address announced in our Hello, exactly as bound into the MACs. */
  advertised: Buffer;
  gotChallenge: boolean;
  timer: Timer | undefined;
  /** When the connection attempt began (clock ms): reconnect backoff counts from it. */
  startedAt: number;
  /** Dropped unfinished because the peer reached us meanwhile: its close does not back off. */
  superseded: boolean;
}

interface Inbound {
  fs: FramedSocket;
  state: 'hello' | 'proof' | 'ready' | 'draining' | 'rejected';
  from: string;
  inFlight: number;
  hello: Hello | undefined;
  nonce: Buffer | undefined;
  timer: Timer | undefined;
}

// Certificate-verification failures, reported by OpenSSL / node:tls: surfaced as AuthError.
const CERT_ERROR_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Errors returned by the user's `checkServerIdentity`: also authentication failures. */
const identityErrors = new WeakSet<object>();

function isTlsAuthError(err: unknown): boolean {
  if (typeof err === 'object' && err !== null && identityErrors.has(err)) return true;
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && (CERT_ERROR_CODES.has(code) || code.startsWith('ERR_SSL_'));
}

const MAX_ERROR_MESSAGE_BYTES = 1024;
/**
 * An unfinished connection attempt older than this is dropped when the peer connects to us (see
 * `peerReachedUs`), ms: long enough that two nodes dialling each other at once on a healthy
 * network do not cancel each other's attempts, short against the kernel's first SYN retry (1 s).
 */
const STALE_ATTEMPT_MS = 250;

/**
 * The production transport: length-prefixed frames over `node:net` / `node:tls`, one pooled
 * connection per peer, per-turn write coalescing, optional mutual TLS and shared-secret
 * authentication, a bound on every frame, queue and connection (docs/tcp.md).
 */
export class TcpTransport implements Transport {
  private readonly o: ResolvedOptions;
  private state: 'new' | 'running' | 'stopped' = 'new';
  private listenPort: number;
  /** `address`, kept: callers read it per request, and a fresh string each time costs a hash per lookup. */
  private advertisedAddress: string;
  private listening = false;
  private handler: RequestHandler | undefined;
  private server: net.Server | undefined;
  private readonly clientContext: tls.SecureContext | undefined;
  private readonly peers = new Map<string, Peer>();
  private readonly outbound = new Set<Outbound>();
  private readonly inbound = new Set<Inbound>();
  private readonly rawInbound = new Set<net.Socket>();
  private stopPromise: Promise<void> | undefined;
  private requestsInFlight = 0;
  private handlersInFlight = 0;
  private readonly counters: Counters = {
    framesSent: 0,
    framesReceived: 0,
    writes: 0,
    bytesSent: 0,
    bytesReceived: 0,
    protocolErrors: 0,
  };
  private connectionsAccepted = 0;
  private connectionsRejected = 0;
  private connectAttempts = 0;
  private authFailures = 0;
  private deadConnections = 0;
  /** Every outbound request's timeout (one timer per batch of requests, not one per request). */
  private readonly timeouts: RequestTimeouts<Pending>;

  constructor(options: TcpTransportOptions = {}) {
    this.o = resolveOptions(options);
    this.listenPort = this.o.port;
    this.advertisedAddress = formatAddress(this.o.advertise ?? this.o.host, this.listenPort);
    this.timeouts = new RequestTimeouts(this.o.clock, (p, timeoutMs) => {
      if (this.settle(p.conn, p.id))
        p.reject(new TimeoutError(`request to ${p.conn.peer.address} timed out after ${timeoutMs} ms`));
      this.checkLiveness(p.conn);
    });
    if (this.o.tls) {
      const { checkServerIdentity: _c, servername: _s, ...contextOptions } = this.o.tls;
      // One context for every outbound connection: parsing keys per connect would be wasteful.
      this.clientContext = tls.createSecureContext(contextOptions);
    }
  }

  /** `host:port` peers dial (`[v6]:port` for IPv6); the real port once `start` resolved. */
  get address(): string {
    return this.advertisedAddress;
  }

  /** Every inbound peer proved the shared secret or a certificate from `ca` (see `Transport.authenticated`). */
  get authenticated(): boolean {
    return this.o.secret !== undefined || this.o.tls !== undefined;
  }

  private isStopped(): boolean {
    return this.state === 'stopped';
  }

  stats(): TcpTransportStats {
    return {
      ...this.counters,
      inboundConnections: this.rawInbound.size,
      outboundConnections: this.outbound.size,
      requestsInFlight: this.requestsInFlight,
      handlersInFlight: this.handlersInFlight,
      connectionsAccepted: this.connectionsAccepted,
      connectionsRejected: this.connectionsRejected,
      connectAttempts: this.connectAttempts,
      authFailures: this.authFailures,
      deadConnections: this.deadConnections,
    };
  }

  /** Binds the port (then `address` is known) and serves requests with `handler`. */
  async start(handler: RequestHandler): Promise<void> {
    if (typeof handler !== 'function') throw new TypeError('TcpTransport.start: handler must be a function');
    if (this.state === 'stopped') throw new TransportError('TcpTransport: stopped; create a new transport');
    if (this.state === 'running' || this.server) throw new TransportError('TcpTransport: already started');
    this.handler = handler;
    const o = this.o;
    const server = o.tls
      ? tls.createServer({
          ...o.tls,
          requestCert: true,
          // Client certificates ARE verified (against `ca`): `onSecureConnection` refuses any
          // socket whose verification failed before reading a byte from it. Doing it there rather
          // than with rejectUnauthorized lets us tell the client why (a Reject frame, so it gets
          // an AuthError) instead of a bare close, which TLS 1.3 clients cannot tell from a crash.
          rejectUnauthorized: false,
          // Bounds the TLS part of the handshake; the clock-driven timer bounds the rest.
          handshakeTimeout: o.handshakeTimeoutMs,
        })
      : net.createServer();
    this.server = server;
    server.on('connection', (raw: net.Socket) => this.onRawConnection(raw));
    if (o.tls) {
      server.on('secureConnection', (socket: tls.TLSSocket) => this.onSecureConnection(socket));
      server.on('tlsClientError', (err: Error) => {
        if (isTlsAuthError(err)) this.authFailures++;
      });
    }
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port: o.port, host: o.host }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.server = undefined;
      server.close();
      throw new TransportError(
        `TcpTransport: cannot listen on ${formatAddress(o.host, o.port)}: ${errorMessage(err)}`,
        {
          cause: err,
        },
      );
    }
    // Accept errors (e.g. EMFILE) must not crash the process; the server keeps listening.
    server.on('error', () => {});
    const bound = server.address();
    if (bound && typeof bound === 'object') {
      this.listenPort = bound.port;
      this.advertisedAddress = formatAddress(o.advertise ?? o.host, this.listenPort);
    }
    this.listening = true;
    if (this.isStopped()) {
      // stop() raced with start(): release the port again.
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw new TransportError('TcpTransport: stopped during start');
    }
    this.state = 'running';
  }

  /** Sends a request to the peer at `to` (`host:port`) over its pooled connection. */
  request(to: string, payload: Uint8Array, options: RequestOptions): Promise<Uint8Array> {
    return new Promise<Uint8Array>((resolve, reject) => {
      const { timeoutMs, signal } = options;
      if (signal?.aborted) return reject(signal.reason);
      if (this.state === 'stopped') return reject(new TransportError('TcpTransport: stopped'));
      if (!(payload instanceof Uint8Array))
        return reject(new TypeError('request: payload must be a Uint8Array'));
      if (!(timeoutMs >= 0) || !Number.isFinite(timeoutMs)) {
        return reject(new RangeError(`request: timeoutMs must be a finite number >= 0, got ${timeoutMs}`));
      }
      if (MIN_FRAME_LENGTH + payload.length > this.o.maxFrameBytes) {
        return reject(
          new LimitError('maxFrameBytes', MIN_FRAME_LENGTH + payload.length, this.o.maxFrameBytes),
        );
      }
      const peer = this.peerFor(to);
      if (!peer) return reject(new TransportError(`TcpTransport: invalid address ${JSON.stringify(to)}`));
      let conn = peer.conn;
      if (!conn) {
        const now = this.o.clock.now();
        if (now < peer.backoffUntil) return reject(this.backoffError(peer, peer.backoffUntil - now));
        conn = this.connect(peer);
      }
      if (conn.pending.size >= this.o.maxInFlightPerConnection) {
        return reject(
          new TransportError(
            `${peer.address}: ${conn.pending.size} requests in flight (maxInFlightPerConnection)`,
          ),
        );
      }
      const queued = conn.fs.pendingBytes + 9 + payload.length;
      if (queued > this.o.maxQueuedBytesPerPeer) {
        return reject(
          new LimitError(
            'maxQueuedBytesPerPeer',
            queued,
            this.o.maxQueuedBytesPerPeer,
            `${peer.address}: outbound queue full (maxQueuedBytesPerPeer ${this.o.maxQueuedBytesPerPeer} bytes): request not sent`,
          ),
        );
      }
      const id = this.allocateId(conn);
      const out = conn;
      const p = new Pending(out, id, resolve, reject);
      out.pending.set(id, p);
      this.requestsInFlight++;
      this.timeouts.add(p, timeoutMs);
      if (signal) {
        p.unabort = onAbort(signal, (reason) => {
          if (this.settle(out, id)) reject(reason);
        });
      }
      out.fs.send(FrameType.Request, id, payload);
    });
  }

  /** Closes the server and every connection; requests in flight reject with `TransportError`. */
  stop(): Promise<void> {
    this.stopPromise ??= this.doStop();
    return this.stopPromise;
  }

  private async doStop(): Promise<void> {
    this.state = 'stopped';
    this.listening = false;
    const waits: Promise<unknown>[] = [];
    const server = this.server;
    if (server) waits.push(new Promise<void>((resolve) => server.close(() => resolve())));
    const stopped = () => new TransportError('TcpTransport: stopped');
    for (const conn of this.outbound) {
      this.failAll(conn, stopped);
      waits.push(conn.fs.closed);
      conn.fs.destroy();
    }
    for (const conn of this.inbound) {
      waits.push(conn.fs.closed);
      conn.fs.destroy();
    }
    for (const raw of this.rawInbound) {
      waits.push(
        new Promise<void>((resolve) => (raw.destroyed ? resolve() : raw.once('close', () => resolve()))),
      );
      raw.destroy();
    }
    this.peers.clear();
    await Promise.all(waits);
  }

  // ---------------------------------------------------------------- outbound

  private peerFor(address: string): Peer | undefined {
    let peer = this.peers.get(address);
    if (peer) return peer;
    if (typeof address !== 'string') return undefined;
    const hp = parseAddress(address);
    if (!hp) return undefined;
    peer = {
      address,
      host: hp.host,
      port: hp.port,
      conn: undefined,
      failures: 0,
      backoffUntil: 0,
      lastError: undefined,
    };
    this.peers.set(address, peer);
    return peer;
  }

  private backoffError(peer: Peer, remainingMs: number): Error {
    const cause = peer.lastError;
    const message = `${peer.address} unreachable, retrying in ${remainingMs} ms${cause ? ` (last error: ${cause.message})` : ''}`;
    // Keep the class of the failure: an authentication problem stays an AuthError while backing off.
    return cause instanceof AuthError
      ? new AuthError(message, { cause })
      : new TransportError(message, { cause });
  }

  private allocateId(conn: Outbound): number {
    // u32 ids, wrapping; skip ids still awaiting a response (only possible after 2^32 requests).
    let id = conn.nextId;
    while (conn.pending.has(id)) id = (id + 1) >>> 0;
    conn.nextId = (id + 1) >>> 0;
    return id;
  }

  /** Removes a pending request; returns it if it was still pending. */
  private settle(conn: Outbound, id: number): Pending | undefined {
    const p = conn.pending.get(id);
    if (!p) return undefined;
    conn.pending.delete(id);
    this.requestsInFlight--;
    this.timeouts.remove(p);
    p.unabort();
    // A connection the server asked us to leave closes once its last answer is in.
    if (conn.state === 'draining' && conn.pending.size === 0) conn.fs.destroy();
    return p;
  }

  /**
   * The liveness rule, run when one of the connection's requests timed out: a connection that has
   * received nothing for `deadConnectionMs` is dead (a partition, a peer that froze): it is closed,
   * its other requests fail and what it still had queued is dropped, so the next request (a
   * failure detector's probe, say) dials afresh rather than queueing behind them.
   */
  private checkLiveness(conn: Outbound): void {
    if (conn.state === 'closed' || conn.fs.closedOrClosing) return;
    const silentMs = this.o.clock.now() - conn.fs.lastReceivedAt;
    if (silentMs < this.o.deadConnectionMs) return;
    this.deadConnections++;
    if (conn.peer.conn === conn) conn.peer.conn = undefined;
    conn.fs.destroy(
      new TransportError(
        `${conn.peer.address}: nothing received for ${silentMs} ms and a request timed out: connection closed`,
      ),
    );
  }

  private failAll(conn: Outbound, error: () => Error): void {
    for (const id of [...conn.pending.keys()]) this.settle(conn, id)?.reject(error());
  }

  private connect(peer: Peer): Outbound {
    const o = this.o;
    this.connectAttempts++;
    const startedAt = o.clock.now();
    let socket: net.Socket;
    if (o.tls) {
      socket = tls.connect({
        host: peer.host,
        port: peer.port,
        secureContext: this.clientContext,
        rejectUnauthorized: true,
        // Peers are dialled by ip:port; the chain is verified against `ca` (see TcpTlsOptions).
        checkServerIdentity: (hostname, cert) => {
          const check = o.tls?.checkServerIdentity;
          const err = check ? check(hostname, cert) : undefined;
          if (err) identityErrors.add(err);
          return err;
        },
        ...(o.tls.servername !== undefined ? { servername: o.tls.servername } : {}),
      });
    } else {
      socket = net.connect({ host: peer.host, port: peer.port });
    }
    socket.setNoDelay(true);
    const conn: Outbound = {
      peer,
      fs: undefined as unknown as FramedSocket,
      state: 'connecting',
      pending: new Map(),
      nextId: 1,
      nonce: newNonce(),
      advertised: Buffer.alloc(0),
      gotChallenge: false,
      timer: undefined,
      startedAt,
      superseded: false,
    };
    conn.fs = new FramedSocket({
      socket,
      clock: o.clock,
      counters: this.counters,
      maxFrameBytes: HANDSHAKE_MAX_FRAME_BYTES,
      idleTimeoutMs: o.idleTimeoutMs,
      onFrame: (frame) => this.onClientFrame(conn, frame),
      onClose: (err) => this.onClientClose(conn, err),
      isBusy: () => conn.pending.size > 0 || conn.state !== 'ready',
      onIdle: () => {
        // Nothing in flight: close; the next request dials again.
        if (peer.conn === conn) peer.conn = undefined;
        conn.fs.destroy();
      },
    });
    conn.timer = o.clock.setTimeout(() => {
      conn.fs.destroy(
        new TransportError(`connect to ${peer.address} timed out after ${o.connectTimeoutMs} ms`),
      );
    }, o.connectTimeoutMs);
    socket.once('connect', () => {
      if (conn.state !== 'connecting') return;
      conn.state = 'handshake';
      conn.timer?.cancel();
      conn.timer = o.clock.setTimeout(() => {
        conn.fs.destroy(
          new TransportError(`handshake with ${peer.address} timed out after ${o.handshakeTimeoutMs} ms`),
        );
      }, o.handshakeTimeoutMs);
      if (!o.tls) this.sendHello(conn);
    });
    if (o.tls) socket.once('secureConnect', () => this.sendHello(conn));
    peer.conn = conn;
    this.outbound.add(conn);
    return conn;
  }

  private sendHello(conn: Outbound): void {
    const advertised = this.listening ? this.address : '';
    conn.advertised = Buffer.from(advertised, 'utf8');
    conn.fs.sendNow(FrameType.Hello, 0, encodeHello(this.o.secret !== undefined, conn.nonce, advertised));
  }

  private authFail(conn: Outbound, message: string): void {
    this.authFailures++;
    conn.fs.destroy(new AuthError(`${conn.peer.address}: ${message}`));
  }

  private onClientFrame(conn: Outbound, frame: Frame): void {
    const secret = this.o.secret;
    if (conn.state === 'ready' || conn.state === 'draining') {
      switch (frame.type) {
        case FrameType.Response:
          this.settle(conn, frame.id)?.resolve(frame.payload);
          return;
        case FrameType.Error: {
          const p = this.settle(conn, frame.id);
          // Capped: the message is the peer's text and ends up in logs.
          const message = frame.payload.subarray(0, MAX_ERROR_MESSAGE_BYTES).toString('utf8');
          p?.reject(new TransportError(`${conn.peer.address}: handler failed: ${message}`));
          return;
        }
        case FrameType.GoAway:
          conn.state = 'draining';
          if (conn.peer.conn === conn) conn.peer.conn = undefined;
          if (conn.pending.size === 0) conn.fs.destroy();
          return;
        default:
          throw new ProtocolError(`unexpected frame type ${frame.type}`);
      }
    }
    if (conn.state !== 'handshake') throw new ProtocolError(`frame before handshake`);
    switch (frame.type) {
      case FrameType.Challenge: {
        if (!secret) {
          this.authFail(conn, 'peer requires a shared secret and none is configured');
          return;
        }
        if (conn.gotChallenge) throw new ProtocolError('second challenge');
        const { nonce, mac } = decodeChallenge(frame.payload);
        const address = conn.advertised;
        if (!macEquals(computeMac(secret, 'server', conn.nonce, nonce, address), mac)) {
          this.authFail(conn, 'peer failed shared-secret authentication (wrong secret?)');
          return;
        }
        conn.gotChallenge = true;
        conn.fs.sendNow(FrameType.Proof, 0, computeMac(secret, 'client', conn.nonce, nonce, address));
        return;
      }
      case FrameType.Ready: {
        if (secret && !conn.gotChallenge) {
          this.authFail(conn, 'peer did not prove the shared secret');
          return;
        }
        conn.state = 'ready';
        conn.timer?.cancel();
        conn.timer = undefined;
        conn.peer.failures = 0;
        conn.peer.backoffUntil = 0;
        conn.peer.lastError = undefined;
        conn.fs.setMaxFrameBytes(this.o.maxFrameBytes);
        conn.fs.open();
        return;
      }
      case FrameType.Reject:
        this.authFail(conn, `peer refused the connection: ${frame.payload.toString('utf8')}`);
        return;
      default:
        throw new ProtocolError(`unexpected frame type ${frame.type} during handshake`);
    }
  }

  private onClientClose(conn: Outbound, err: Error | undefined): void {
    const peer = conn.peer;
    const wasOpen = conn.state === 'ready' || conn.state === 'draining';
    conn.state = 'closed';
    conn.timer?.cancel();
    this.outbound.delete(conn);
    if (peer.conn === conn) peer.conn = undefined;
    const failure = this.classify(peer, err, wasOpen);
    this.failAll(conn, () => failure);
    if (this.state === 'stopped') return;
    if (!wasOpen && !conn.superseded) {
      // A failed attempt: back off exponentially. A broken established connection does not (the
      // peer was healthy a moment ago): the next request dials at once, and backs off if that fails.
      peer.failures++;
      const { initial, max } = this.o.reconnectBackoffMs;
      const delay = Math.min(max, initial * 2 ** Math.min(peer.failures - 1, 30));
      // Counted from the attempt's start: one that timed out (packets silently dropped) has
      // waited its connectTimeoutMs already, and the next may go at once.
      peer.backoffUntil = conn.startedAt + delay;
      peer.lastError = failure;
    } else if (!peer.conn && this.peers.get(peer.address) === peer) {
      // Forget healthy idle peers, so the table only holds peers we talk to or back off from.
      this.peers.delete(peer.address);
    }
  }

  private classify(peer: Peer, err: Error | undefined, wasOpen: boolean): Error {
    if (this.state === 'stopped') return new TransportError('TcpTransport: stopped');
    if (err instanceof AuthError) return err;
    if (this.o.tls && isTlsAuthError(err)) {
      if (!wasOpen) this.authFailures++;
      return new AuthError(`${peer.address}: TLS authentication failed: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    if (err instanceof TransportError) return err;
    const what = wasOpen ? 'connection lost' : 'connection failed';
    return new TransportError(`${peer.address}: ${what}: ${err ? errorMessage(err) : 'closed by peer'}`, {
      cause: err,
    });
  }

  // ---------------------------------------------------------------- inbound

  private onRawConnection(raw: net.Socket): void {
    // Raw sockets outlive nothing: errors here are reported through the framed socket (plain)
    // or the TLS socket; this listener only keeps an unhandled 'error' from crashing the process.
    raw.on('error', noop);
    if (this.state === 'stopped' || this.rawInbound.size >= this.o.maxConnections) {
      this.connectionsRejected++;
      raw.destroy();
      return;
    }
    this.connectionsAccepted++;
    this.rawInbound.add(raw);
    raw.once('close', () => this.rawInbound.delete(raw));
    raw.setNoDelay(true);
    if (!this.o.tls) this.acceptInbound(raw);
  }

  private onSecureConnection(socket: tls.TLSSocket): void {
    if (socket.authorized) {
      this.acceptInbound(socket);
      return;
    }
    // Unverified client certificate: never read from it; say why, close, and bound the wait.
    this.authFailures++;
    socket.on('error', noop);
    // Discard (never parse) what it sends, so its close is noticed.
    socket.resume();
    const reason = `client certificate rejected: ${String(socket.authorizationError ?? 'no certificate')}`;
    socket.end(encodeFrame(FrameType.Reject, 0, Buffer.from(reason, 'utf8')));
    const timer = this.o.clock.setTimeout(() => socket.destroy(), this.o.handshakeTimeoutMs);
    socket.once('close', () => timer.cancel());
  }

  private acceptInbound(socket: net.Socket): void {
    if (this.state === 'stopped') {
      socket.destroy();
      return;
    }
    const o = this.o;
    const conn: Inbound = {
      fs: undefined as unknown as FramedSocket,
      state: 'hello',
      from: '',
      inFlight: 0,
      hello: undefined,
      nonce: undefined,
      timer: undefined,
    };
    conn.fs = new FramedSocket({
      socket,
      clock: o.clock,
      counters: this.counters,
      maxFrameBytes: HANDSHAKE_MAX_FRAME_BYTES,
      idleTimeoutMs: o.idleTimeoutMs,
      onFrame: (frame) => this.onServerFrame(conn, frame),
      onClose: () => {
        conn.timer?.cancel();
        this.inbound.delete(conn);
      },
      isBusy: () => conn.inFlight > 0 || conn.state !== 'ready',
      onIdle: () => this.goAway(conn),
      onDrain: () => this.maybeResume(conn),
    });
    this.inbound.add(conn);
    // Slow-loris bound: the handshake must finish in time or the slot is freed.
    conn.timer = o.clock.setTimeout(() => {
      if (conn.state !== 'ready') conn.fs.destroy();
    }, o.handshakeTimeoutMs);
  }

  private onServerFrame(conn: Inbound, frame: Frame): void {
    const secret = this.o.secret;
    switch (conn.state) {
      case 'ready':
      case 'draining':
        if (frame.type !== FrameType.Request) throw new ProtocolError(`unexpected frame type ${frame.type}`);
        this.dispatch(conn, frame);
        return;
      case 'hello': {
        if (frame.type !== FrameType.Hello) throw new ProtocolError('expected hello');
        const hello = decodeHello(frame.payload);
        const socket = conn.fs.socket;
        conn.from = hello.address || formatAddress(socket.remoteAddress ?? 'unknown', socket.remotePort ?? 0);
        if (!secret) {
          this.serverReady(conn);
          return;
        }
        if (!hello.secret) {
          this.refuse(conn, 'shared secret required');
          return;
        }
        conn.hello = hello;
        conn.nonce = newNonce();
        const mac = computeMac(secret, 'server', hello.nonce, conn.nonce, hello.addressBytes);
        conn.fs.sendNow(FrameType.Challenge, 0, encodeChallenge(conn.nonce, mac));
        conn.state = 'proof';
        return;
      }
      case 'proof': {
        if (frame.type !== FrameType.Proof) throw new ProtocolError('expected proof');
        const hello = conn.hello!;
        const expected = computeMac(secret!, 'client', hello.nonce, conn.nonce!, hello.addressBytes);
        if (!macEquals(expected, frame.payload)) {
          this.authFailures++;
          this.refuse(conn, 'authentication failed');
          return;
        }
        conn.hello = undefined;
        this.serverReady(conn);
        return;
      }
      default:
        // 'rejected': ignore whatever follows; the connection is closing.
        return;
    }
  }

  private serverReady(conn: Inbound): void {
    this.peerReachedUs(conn.from);
    conn.state = 'ready';
    conn.timer?.cancel();
    conn.timer = undefined;
    conn.fs.setMaxFrameBytes(this.o.maxFrameBytes);
    conn.fs.sendNow(FrameType.Ready, 0);
    conn.fs.open();
  }

  /**
   * A peer completed a handshake with us, so the network between us works now. Our own way to it
   * need not wait: the reconnect backoff is cleared, and an attempt of ours still unfinished after
   * `STALE_ATTEMPT_MS` (its SYN most likely lost in a partition that has since healed, the kernel
   * retrying only after a second or more) is dropped, so the next request dials afresh.
   */
  private peerReachedUs(address: string): void {
    const peer = this.peers.get(address);
    if (!peer) return;
    const attempt = peer.conn;
    if (
      attempt &&
      (attempt.state === 'connecting' || attempt.state === 'handshake') &&
      this.o.clock.now() - attempt.startedAt >= STALE_ATTEMPT_MS
    ) {
      attempt.superseded = true;
      peer.conn = undefined;
      attempt.fs.destroy(
        new TransportError(
          `${peer.address}: connection attempt superseded (the peer reached us): redialling`,
        ),
      );
    }
    if (!peer.conn) peer.backoffUntil = 0;
  }

  /** Tells the client why, then closes; nothing it sends meanwhile is processed. */
  private refuse(conn: Inbound, reason: string): void {
    conn.state = 'rejected';
    conn.fs.pauseReading();
    conn.fs.sendNow(FrameType.Reject, 0, Buffer.from(reason, 'utf8'));
    conn.fs.socket.end();
  }

  private dispatch(conn: Inbound, frame: Frame): void {
    const handler = this.handler;
    if (!handler) throw new ProtocolError('no handler');
    const id = frame.id;
    conn.inFlight++;
    this.handlersInFlight++;
    // Backpressure: stop reading new requests while at the bound or while responses wait on the kernel.
    if (conn.inFlight >= this.o.maxInFlightPerConnection || conn.fs.congested) conn.fs.pauseReading();
    let result: Promise<Uint8Array>;
    try {
      result = Promise.resolve(handler(conn.from, frame.payload));
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (response) => this.respond(conn, id, response),
      (err) => this.respondError(conn, id, err),
    );
  }

  private finishCall(conn: Inbound): boolean {
    conn.inFlight--;
    this.handlersInFlight--;
    // The connection closed meanwhile: the answer has nowhere to go.
    return !conn.fs.closedOrClosing;
  }

  private respond(conn: Inbound, id: number, response: Uint8Array): void {
    if (!this.finishCall(conn)) return;
    if (!(response instanceof Uint8Array)) {
      this.sendError(conn, id, 'handler resolved with something other than a Uint8Array');
    } else if (MIN_FRAME_LENGTH + response.length > this.o.maxFrameBytes) {
      this.sendError(conn, id, `response of ${response.length} bytes exceeds maxFrameBytes`);
    } else {
      conn.fs.send(FrameType.Response, id, response);
    }
    this.afterSend(conn);
  }

  private respondError(conn: Inbound, id: number, err: unknown): void {
    if (!this.finishCall(conn)) return;
    this.sendError(conn, id, errorMessage(err));
    this.afterSend(conn);
  }

  private sendError(conn: Inbound, id: number, message: string): void {
    let bytes = Buffer.from(message, 'utf8');
    if (bytes.length > MAX_ERROR_MESSAGE_BYTES) bytes = bytes.subarray(0, MAX_ERROR_MESSAGE_BYTES);
    conn.fs.send(FrameType.Error, id, bytes);
  }

  private afterSend(conn: Inbound): void {
    // A client that does not read its responses is cut off rather than buffered without bound.
    if (conn.fs.pendingBytes > this.o.maxQueuedBytesPerPeer) {
      conn.fs.destroy();
      return;
    }
    this.maybeResume(conn);
  }

  private maybeResume(conn: Inbound): void {
    if (conn.state !== 'ready' && conn.state !== 'draining') return;
    if (conn.inFlight < this.o.maxInFlightPerConnection && !conn.fs.congested) conn.fs.resumeReading();
  }

  /**
   * Idle inbound connection: ask the client to leave rather than cut it, so a request crossing
   * our close on the wire is still answered. The client closes once its in-flight requests are
   * done; a client that does not is closed after `handshakeTimeoutMs` with nothing in flight.
   */
  private goAway(conn: Inbound): void {
    if (conn.state !== 'ready') return;
    conn.state = 'draining';
    conn.fs.sendNow(FrameType.GoAway, 0);
    const check = () => {
      if (conn.fs.closedOrClosing) return;
      if (conn.inFlight === 0) conn.fs.destroy();
      else conn.timer = this.o.clock.setTimeout(check, this.o.handshakeTimeoutMs);
    };
    conn.timer = this.o.clock.setTimeout(check, this.o.handshakeTimeoutMs);
  }
}

function noop(): void {}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
