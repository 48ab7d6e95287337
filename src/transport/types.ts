/**
 * Moves opaque request/response payloads between nodes. Implementations: `MemoryNetwork.connect()`
 * (in-process, fault injection) and `TcpTransport` (`dynamo-engine/tcp`). Third parties prove
 * theirs with `transportComplianceSuite` from `dynamo-engine/testing`.
 *
 * Contract:
 * - `start(handler)` begins accepting requests; each request's payload is passed to `handler`
 *   with the sender's address, and its resolved bytes are the response. Handlers may run
 *   concurrently. If the handler rejects, the requester's promise rejects with a `TransportError`.
 * - `request` rejects with `TimeoutError` after `timeoutMs`, with `TransportError` when the peer
 *   is unreachable or the connection fails, and with `signal.reason` when `signal` aborts.
 *   A request to a peer that never answers must not leak memory or timers past its timeout.
 * - `stop()` stops accepting, rejects every request in flight with `TransportError`, and resolves
 *   once resources are released. `request` after `stop` rejects with `TransportError`.
 */
export type RequestHandler = (from: string, payload: Uint8Array) => Promise<Uint8Array>;

/** Options of one `Transport.request`. */
export interface RequestOptions {
  /** Reject with `TimeoutError` when no response came within this many ms. */
  timeoutMs: number;
  /** Aborting rejects the request with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Moves request/response payloads between nodes (see the contract at the top of this module:
 * errors, concurrency, what `stop` does).
 */
export interface Transport {
  /** This endpoint's address, as peers dial it (valid after `start` for transports that bind). */
  readonly address: string;
  /** Begins accepting requests; `handler` answers each one. */
  start(handler: RequestHandler): Promise<void>;
  /** Sends `payload` to the peer at address `to` and resolves with its handler's response. */
  request(to: string, payload: Uint8Array, options: RequestOptions): Promise<Uint8Array>;
  /** Stops accepting, rejects requests in flight with `TransportError`, releases resources. */
  stop(): Promise<void>;
  /**
   * True when every request that reaches the handler comes from a peer that proved its identity
   * (`TcpTransport` with `secret` or `tls`; a `MemoryNetwork` endpoint, whose peers are code in the
   * same process). Admin actions (leave, remove) are refused on transports that are not. Default false.
   */
  readonly authenticated?: boolean;
  /** Byte counters since creation, for metrics (`dynamo_transport_bytes_total`). Optional. */
  stats?(): TransportByteStats;
}

/** Payload and framing bytes a transport moved, both directions (counters: they only grow). */
export interface TransportByteStats {
  /** Bytes written to peers. */
  bytesSent: number;
  /** Bytes read from peers. */
  bytesReceived: number;
}
