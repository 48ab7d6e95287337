import type { PeerCertificate, SecureContextOptions } from 'node:tls';
import { type Clock, systemClock } from '../util/clock.js';
import { checkOptionNames, names } from '../util/option-names.js';
import { isLoopback } from './address.js';

/**
 * Mutual TLS: any `tls.createSecureContext` option (`key`, `cert`, `ca`, `passphrase`, `ciphers`,
 * `minVersion`...). `key` and `cert` are required: every node is both server and client, and
 * the server always requests and verifies the client's certificate against `ca`.
 */
export interface TcpTlsOptions extends SecureContextOptions {
  /**
   * Checks the server certificate's identity on outbound connections. Peers are dialled by
   * `ip:port`, which certificates rarely name, so by default only the chain is verified (against
   * `ca`): any certificate issued by your CA is accepted as a node. Pass `tls.checkServerIdentity`
   * (with `servername`) or your own check to pin names.
   */
  checkServerIdentity?: (hostname: string, cert: PeerCertificate) => Error | undefined;
  /** SNI name sent on outbound connections (and given to `checkServerIdentity`). */
  servername?: string;
}

/** `new TcpTransport(options)`; every bound has a default (TCP_DEFAULTS). Unknown names are errors. */
export interface TcpTransportOptions {
  /** Bind address. Default `'127.0.0.1'`. A non-loopback host needs `tls` or `secret` (or `insecure`). */
  host?: string;
  /** Port; default 0 (ephemeral). `address` is `${advertise ?? host}:${port}` after `start()`. */
  port?: number;
  /** Host peers should dial, when different from the bind host (e.g. bound to 0.0.0.0). */
  advertise?: string;
  /** Mutual TLS (see `TcpTlsOptions`). */
  tls?: TcpTlsOptions;
  /**
   * Shared-secret authentication: an HMAC-SHA256 challenge-response with nonces from both sides
   * on every connection. Requests from a peer that has not proved the secret never reach the
   * handler; a requester whose peer fails the proof gets `AuthError`. Works with or without `tls`
   * (it authenticates, it does not encrypt: use `tls` for confidentiality).
   */
  secret?: string | Uint8Array;
  /** Allow binding a non-loopback host with neither `tls` nor `secret`. Default false. */
  insecure?: boolean;
  /**
   * Largest frame (type + id + payload bytes), default 16 MiB. Checked on the length prefix
   * before buffering: a peer that announces more is disconnected. Outbound payloads over the
   * limit reject with `LimitError`; oversized handler responses become error responses.
   */
  maxFrameBytes?: number;
  /** TCP connect bound for outbound connections, default 1000 ms. */
  connectTimeoutMs?: number;
  /** Connections with nothing in flight and no traffic for this long are closed, default 60 000 ms. */
  idleTimeoutMs?: number;
  /**
   * Liveness of outbound connections, default 1000 ms: when a request times out on a connection
   * that has received nothing for at least this long, the connection is taken for dead and closed
   * (its other requests fail with `TransportError`, whatever it still had queued is dropped) and
   * the next request dials afresh, instead of queueing behind requests the kernel is still
   * retransmitting after a partition.
   */
  deadConnectionMs?: number;
  /**
   * Bound on the TLS + authentication handshake, both directions, default 2000 ms: a slow or
   * silent peer (slow loris) cannot hold a connection slot longer than this.
   */
  handshakeTimeoutMs?: number;
  /** Inbound connections accepted at once, default 1024; more are closed on accept. */
  maxConnections?: number;
  /**
   * Default 1024. Inbound: handler calls running at once per connection; at the bound the
   * connection stops reading (TCP backpressure reaches the sender). Outbound: requests awaiting
   * a response per peer; beyond it `request` rejects at once with `TransportError`.
   */
  maxInFlightPerConnection?: number;
  /**
   * Bytes queued for one connection but not yet accepted by the kernel, default 64 MiB.
   * Outbound: a request that would exceed it rejects with `TransportError`. Inbound: a peer that
   * stops reading its responses stops being read from, and is disconnected past this bound.
   */
  maxQueuedBytesPerPeer?: number;
  /**
   * Spacing of connection attempts to a peer after a failed one, doubling from `initial` to `max`
   * (ms), counted from the start of the failed attempt (an attempt that timed out has waited
   * already); default `{ initial: 50, max: 1000 }`. Until it has passed, requests to that peer
   * fail at once. Reset by a successful handshake, and by an inbound connection from the peer.
   */
  reconnectBackoffMs?: {
    /** First delay, ms. */
    initial: number;
    /** Largest delay, ms. */
    max: number;
  };
  /** Time source for every timeout and the backoff. Default `systemClock`. */
  clock?: Clock;
}

export interface ResolvedOptions {
  host: string;
  port: number;
  advertise: string | undefined;
  tls: TcpTlsOptions | undefined;
  secret: Buffer | undefined;
  maxFrameBytes: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  deadConnectionMs: number;
  handshakeTimeoutMs: number;
  maxConnections: number;
  maxInFlightPerConnection: number;
  maxQueuedBytesPerPeer: number;
  reconnectBackoffMs: { initial: number; max: number };
  clock: Clock;
}

/** The defaults of `TcpTransportOptions` (each documented there). */
export const TCP_DEFAULTS = {
  /** Loopback only. */
  host: '127.0.0.1',
  /** Ephemeral. */
  port: 0,
  /** 16 MiB. */
  maxFrameBytes: 16 * 1024 * 1024,
  /** One second. */
  connectTimeoutMs: 1000,
  /** One minute. */
  idleTimeoutMs: 60_000,
  /** A second of silence with a request timed out. */
  deadConnectionMs: 1000,
  /** Two seconds. */
  handshakeTimeoutMs: 2000,
  /** Inbound connections. */
  maxConnections: 1024,
  /** Per connection, each way. */
  maxInFlightPerConnection: 1024,
  /** 64 MiB. */
  maxQueuedBytesPerPeer: 64 * 1024 * 1024,
  /** 50 ms doubling to 1 s. */
  reconnectBackoffMs: { initial: 50, max: 1000 },
} as const;

function positiveInt(name: string, value: number | undefined, fallback: number, max = 2 ** 31 - 1): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(`TcpTransport: ${name} must be an integer in [1, ${max}], got ${value}`);
  }
  return value;
}

/** Every option name (the compiler keeps the listings complete): anything else is a typo. */
const TCP_OPTION_NAMES = names<keyof TcpTransportOptions>({
  host: true,
  port: true,
  advertise: true,
  tls: true,
  secret: true,
  insecure: true,
  maxFrameBytes: true,
  connectTimeoutMs: true,
  idleTimeoutMs: true,
  deadConnectionMs: true,
  handshakeTimeoutMs: true,
  maxConnections: true,
  maxInFlightPerConnection: true,
  maxQueuedBytesPerPeer: true,
  reconnectBackoffMs: true,
  clock: true,
});
const TLS_OPTION_NAMES = names<keyof TcpTlsOptions>({
  ALPNCallback: true,
  allowPartialTrustChain: true,
  ca: true,
  cert: true,
  sigalgs: true,
  ciphers: true,
  clientCertEngine: true,
  crl: true,
  dhparam: true,
  ecdhCurve: true,
  honorCipherOrder: true,
  key: true,
  privateKeyEngine: true,
  privateKeyIdentifier: true,
  maxVersion: true,
  minVersion: true,
  passphrase: true,
  pfx: true,
  secureOptions: true,
  secureProtocol: true,
  sessionIdContext: true,
  ticketKeys: true,
  sessionTimeout: true,
  checkServerIdentity: true,
  servername: true,
});
const BACKOFF_NAMES = names<keyof TcpTransportOptions['reconnectBackoffMs'] & string>({
  initial: true,
  max: true,
});

export function resolveOptions(options: TcpTransportOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object')
    throw new TypeError('TcpTransport: options must be an object');
  checkOptionNames(options, TCP_OPTION_NAMES, 'TcpTransport options');
  if (options.tls !== undefined && options.tls !== null && typeof options.tls === 'object') {
    checkOptionNames(options.tls, TLS_OPTION_NAMES, 'TcpTransport tls');
  }
  if (options.reconnectBackoffMs !== undefined && options.reconnectBackoffMs !== null) {
    checkOptionNames(options.reconnectBackoffMs, BACKOFF_NAMES, 'TcpTransport reconnectBackoffMs');
  }
  const host = options.host ?? TCP_DEFAULTS.host;
  if (typeof host !== 'string' || host.length === 0)
    throw new TypeError('TcpTransport: host must be a non-empty string');
  const port = options.port ?? TCP_DEFAULTS.port;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`TcpTransport: port must be an integer in [0, 65535], got ${port}`);
  }
  if (
    options.advertise !== undefined &&
    (typeof options.advertise !== 'string' || options.advertise.length === 0)
  ) {
    throw new TypeError('TcpTransport: advertise must be a non-empty string');
  }
  let secret: Buffer | undefined;
  if (options.secret !== undefined) {
    if (typeof options.secret === 'string') secret = Buffer.from(options.secret, 'utf8');
    else if (options.secret instanceof Uint8Array) secret = Buffer.from(options.secret);
    else throw new TypeError('TcpTransport: secret must be a string or Uint8Array');
    if (secret.length === 0) throw new RangeError('TcpTransport: secret must not be empty');
  }
  if (options.tls !== undefined) {
    if (options.tls.key === undefined || options.tls.cert === undefined) {
      throw new TypeError('TcpTransport: tls needs key and cert (mutual TLS: every node is also a client)');
    }
  }
  if (!isLoopback(host) && options.tls === undefined && secret === undefined && options.insecure !== true) {
    throw new TypeError(
      `TcpTransport: refusing to bind non-loopback host ${host} without tls or secret (pass insecure: true to allow)`,
    );
  }
  if (options.maxFrameBytes !== undefined && options.maxFrameBytes < 5) {
    throw new RangeError(
      `TcpTransport: maxFrameBytes must be >= 5 (type + id), got ${options.maxFrameBytes}`,
    );
  }
  const backoff = options.reconnectBackoffMs ?? TCP_DEFAULTS.reconnectBackoffMs;
  const initial = positiveInt(
    'reconnectBackoffMs.initial',
    backoff.initial,
    TCP_DEFAULTS.reconnectBackoffMs.initial,
  );
  const max = positiveInt('reconnectBackoffMs.max', backoff.max, TCP_DEFAULTS.reconnectBackoffMs.max);
  if (max < initial) throw new RangeError('TcpTransport: reconnectBackoffMs.max must be >= initial');
  return {
    host,
    port,
    advertise: options.advertise,
    tls: options.tls,
    secret,
    maxFrameBytes: positiveInt(
      'maxFrameBytes',
      options.maxFrameBytes,
      TCP_DEFAULTS.maxFrameBytes,
      0xffffffff,
    ),
    connectTimeoutMs: positiveInt(
      'connectTimeoutMs',
      options.connectTimeoutMs,
      TCP_DEFAULTS.connectTimeoutMs,
    ),
    idleTimeoutMs: positiveInt('idleTimeoutMs', options.idleTimeoutMs, TCP_DEFAULTS.idleTimeoutMs),
    deadConnectionMs: positiveInt(
      'deadConnectionMs',
      options.deadConnectionMs,
      TCP_DEFAULTS.deadConnectionMs,
    ),
    handshakeTimeoutMs: positiveInt(
      'handshakeTimeoutMs',
      options.handshakeTimeoutMs,
      TCP_DEFAULTS.handshakeTimeoutMs,
    ),
    maxConnections: positiveInt('maxConnections', options.maxConnections, TCP_DEFAULTS.maxConnections),
    maxInFlightPerConnection: positiveInt(
      'maxInFlightPerConnection',
      options.maxInFlightPerConnection,
      TCP_DEFAULTS.maxInFlightPerConnection,
    ),
    maxQueuedBytesPerPeer: positiveInt(
      'maxQueuedBytesPerPeer',
      options.maxQueuedBytesPerPeer,
      TCP_DEFAULTS.maxQueuedBytesPerPeer,
      Number.MAX_SAFE_INTEGER,
    ),
    reconnectBackoffMs: { initial, max },
    clock: options.clock ?? systemClock,
  };
}
