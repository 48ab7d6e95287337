/**
 * Request/reply between nodes on top of a Transport: encodes messages, decodes replies, applies
 * timeouts, and tells the failure detector what it learnt (a timeout or a broken connection
 * marks the peer down; any reply, even an error, proves it is up).
 *
 * Replication and replica reads are batched: the Read and Store messages for one peer made during
 * one cascade of promise continuations (`afterMicrotasks`) travel as one Batch message and come
 * back as one reply. Under load a put's two Store messages share a request with ~100 others, which
 * saves a request's fixed cost (framing, correlation, timeout, a handler run, msgpack calls) per
 * message; alone, a message goes as it is, with no added wait.
 */
import { TimeoutError, TransportError } from '../errors.js';
import { afterMicrotasks, type Clock } from '../util/clock.js';
import type { Transport } from './types.js';
import {
  decodeReply,
  encodeMessage,
  isBatchable,
  MessageType,
  RemoteError,
  replyFields,
  WireError,
} from './wire.js';

export interface RpcHealth {
  reportFailure(id: string, reason: string): void;
  reportSuccess(id: string): void;
}

export interface RpcOptions {
  /** Most messages in one Batch (default 256; the receiver accepts up to `MAX_BATCH_MESSAGES`). */
  maxBatchMessages?: number;
  /**
   * Estimated encoded size at which a Batch is closed (default 1 MiB, well under any frame limit);
   * a message estimated larger than this is sent on its own.
   */
  maxBatchBytes?: number;
  /**
   * Told the round trip of every request a member answers by itself (see ANSWERED_DIRECTLY), ms,
   * a timeout as its `timeoutMs`: feeds the latency estimates of latency-aware routing.
   */
  roundTrips?: { clock: Clock; record(id: string, ms: number): void };
}

/**
 * Messages the receiver answers without asking another node: their round trips measure the peer.
 * (A CoordinatePut or Join waits on other nodes, so its time says little about the one asked.)
 */
const ANSWERED_DIRECTLY = new Set<number>([
  MessageType.Read,
  MessageType.Store,
  MessageType.Batch,
  MessageType.Ping,
  MessageType.Gossip,
  MessageType.State,
]);

/** What a receiver accepts in one Batch; larger batches are refused whole. */
export const MAX_BATCH_MESSAGES = 1024;

/** Who hears how a call ended, for callers that want no promise per call (`Rpc.callWith`). */
export interface RpcReplyHandler {
  replied(fields: unknown[]): void;
  failed(error: unknown): void;
}

interface Queued {
  id: string;
  message: readonly unknown[];
  bytes: number;
  handler: RpcReplyHandler;
}

interface Outbox {
  address: string;
  timeoutMs: number;
  calls: Queued[];
}

export class Rpc {
  private readonly maxBatchMessages: number;
  private readonly maxBatchBytes: number;
  private readonly roundTrips: RpcOptions['roundTrips'];
  /** Batchable calls of this cascade, per timeout and destination address (no key string to build per call). */
  private outboxes = new Map<number, Map<string, Outbox>>();

  constructor(
    private readonly transport: Transport,
    private readonly addressOf: (id: string) => string | undefined,
    private readonly health: RpcHealth,
    options: RpcOptions = {},
  ) {
    this.maxBatchMessages = Math.min(options.maxBatchMessages ?? 256, MAX_BATCH_MESSAGES);
    this.maxBatchBytes = options.maxBatchBytes ?? 1024 * 1024;
    this.roundTrips = options.roundTrips;
  }

  /** Sends to a member by id. Rejects with TransportError when the id has no known address. */
  call(id: string, message: readonly unknown[], timeoutMs: number, signal?: AbortSignal): Promise<unknown[]> {
    return new Promise((resolve, reject) =>
      this.callWith(id, message, timeoutMs, { replied: resolve, failed: reject }, signal),
    );
  }

  /**
   * As `call`, but tells `handler` instead of settling a promise: the coordinator's fan-out makes
   * one of these per replica of every operation. The handler is always called later, never from
   * within this call (a failure known at once is reported from a microtask, as a rejection would).
   */
  callWith(
    id: string,
    message: readonly unknown[],
    timeoutMs: number,
    handler: RpcReplyHandler,
    signal?: AbortSignal,
  ): void {
    const address = this.addressOf(id);
    if (address === undefined) {
      const error = new TransportError(`no address known for member ${id}`);
      queueMicrotask(() => handler.failed(error));
      return;
    }
    // A call with its own abort signal cannot share a request with others.
    if (signal === undefined && isBatchable(message[0])) {
      const bytes = estimateBytes(message, 0);
      if (bytes <= this.maxBatchBytes) {
        this.enqueue(id, address, message, bytes, timeoutMs, handler);
        return;
      }
    }
    this.send(id, address, message, timeoutMs, signal).then(
      (fields) => handler.replied(fields),
      (err: unknown) => handler.failed(err),
    );
  }

  /** Sends to an address whose member id is not known yet (seeds). */
  async callAddress(address: string, message: readonly unknown[], timeoutMs: number): Promise<unknown[]> {
    const reply = await this.transport.request(address, encodeMessage(message), { timeoutMs });
    return decodeReply(reply);
  }

  /** Promise callbacks rather than an async function: every request and batch goes through here. */
  private send(
    id: string,
    address: string,
    message: readonly unknown[],
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<unknown[]> {
    const trips = ANSWERED_DIRECTLY.has(message[0] as number) ? this.roundTrips : undefined;
    const sentAt = trips ? trips.clock.now() : 0;
    let request: Promise<Uint8Array>;
    try {
      request = this.transport.request(address, encodeMessage(message), { timeoutMs, signal });
    } catch (err) {
      if (trips && err instanceof TimeoutError) trips.record(id, timeoutMs);
      this.observe(id, err);
      return Promise.reject(err);
    }
    return request.then(
      (reply) => {
        trips?.record(id, trips.clock.now() - sentAt);
        this.health.reportSuccess(id);
        try {
          return decodeReply(reply);
        } catch (err) {
          this.observe(id, err);
          throw err;
        }
      },
      (err: unknown) => {
        if (trips && err instanceof TimeoutError) trips.record(id, timeoutMs);
        this.observe(id, err);
        throw err;
      },
    );
  }

  private observe(id: string, err: unknown): void {
    if (err instanceof RemoteError) this.health.reportSuccess(id);
    else if (err instanceof TimeoutError || err instanceof TransportError) {
      this.health.reportFailure(id, err.code);
    }
  }

  private enqueue(
    id: string,
    address: string,
    message: readonly unknown[],
    bytes: number,
    timeoutMs: number,
    handler: RpcReplyHandler,
  ): void {
    if (this.outboxes.size === 0) afterMicrotasks(() => this.flush());
    let byAddress = this.outboxes.get(timeoutMs);
    if (!byAddress) {
      byAddress = new Map();
      this.outboxes.set(timeoutMs, byAddress);
    }
    let outbox = byAddress.get(address);
    if (!outbox) {
      outbox = { address, timeoutMs, calls: [] };
      byAddress.set(address, outbox);
    }
    outbox.calls.push({ id, message, bytes, handler });
  }

  private flush(): void {
    const outboxes = this.outboxes;
    this.outboxes = new Map();
    for (const byAddress of outboxes.values())
      for (const outbox of byAddress.values()) this.flushOutbox(outbox);
  }

  /** One outbox's calls as batches of at most maxBatchMessages / maxBatchBytes. */
  private flushOutbox({ address, timeoutMs, calls }: Outbox): void {
    let start = 0;
    while (start < calls.length) {
      let end = start;
      let bytes = 0;
      while (
        end < calls.length &&
        end - start < this.maxBatchMessages &&
        (end === start || bytes + calls[end]!.bytes <= this.maxBatchBytes)
      ) {
        bytes += calls[end]!.bytes;
        end++;
      }
      this.sendBatch(address, timeoutMs, calls.slice(start, end));
      start = end;
    }
  }

  private sendBatch(address: string, timeoutMs: number, calls: Queued[]): void {
    const id = calls[0]!.id;
    if (calls.length === 1) {
      const { handler } = calls[0]!;
      this.send(id, address, calls[0]!.message, timeoutMs).then(
        (fields) => handler.replied(fields),
        (err: unknown) => handler.failed(err),
      );
      return;
    }
    const batch = [MessageType.Batch, calls.map((c) => c.message)];
    this.send(id, address, batch, timeoutMs).then(
      (fields) => {
        const replies = fields[0];
        if (!Array.isArray(replies) || replies.length !== calls.length) {
          const error = new WireError(`batch of ${calls.length} answered with a malformed reply`);
          for (const c of calls) tell(c.handler, undefined, error);
          return;
        }
        for (let i = 0; i < calls.length; i++) {
          let result: unknown[];
          try {
            result = replyFields(replies[i]);
          } catch (err) {
            tell(calls[i]!.handler, undefined, err);
            continue;
          }
          tell(calls[i]!.handler, result, undefined);
        }
      },
      (err: unknown) => {
        for (const c of calls) tell(c.handler, undefined, err);
      },
    );
  }
}

/**
 * Tells one handler of a batch how its call ended. A handler that throws must not keep the rest
 * of the batch from hearing theirs, so its error is rethrown on its own (as an unhandled rejection
 * of a promise-based caller would surface).
 */
function tell(handler: RpcReplyHandler, fields: unknown[] | undefined, error: unknown): void {
  try {
    if (fields === undefined) handler.failed(error);
    else handler.replied(fields);
  } catch (thrown) {
    queueMicrotask(() => {
      throw thrown;
    });
  }
}

/**
 * Rough encoded size of a message (bytes and strings dominate); only used to keep batches well
 * under frame limits, so it errs on the large side and stops descending past a few levels.
 */
function estimateBytes(value: unknown, depth: number): number {
  if (value instanceof Uint8Array) return value.byteLength + 5;
  if (typeof value === 'string') return value.length * 3 + 5;
  if (Array.isArray(value)) {
    if (depth >= 4) return value.length * 16 + 5;
    let sum = 5;
    for (const v of value) sum += estimateBytes(v, depth + 1);
    return sum;
  }
  return 9;
}

/** Short reason for a replica failure, for QuorumError.failures. */
export function reasonOf(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') {
    return err instanceof RemoteError ? `${err.code}: ${err.message}` : err.code;
  }
  return err instanceof Error ? err.message : String(err);
}
