/**
 * An in-process network with fault injection: the transport of the deterministic simulator and of
 * in-process clusters and benchmarks.
 *
 * Every choice (drop, duplicate, latency) comes from one seeded generator and every delay from the
 * injected clock, so on a `VirtualClock` a run is a pure function of its seed: same deliveries, in
 * the same order.
 */
import { TimeoutError, TransportError } from '../errors.js';
import { onAbort } from '../util/abort.js';
import { type Clock, systemClock } from '../util/clock.js';
import { checkOptionNames, names } from '../util/option-names.js';
import { type Random, seededRandom } from '../util/random.js';
import { RequestTimeouts, type TimeoutBatch, type TimeoutLinks } from '../util/timeouts.js';
import type { RequestHandler, RequestOptions, Transport, TransportByteStats } from './types.js';

/** One-way delay of each message, drawn uniformly in [min, max] milliseconds. */
export interface LatencyRange {
  /** Shortest delay, ms. */
  min: number;
  /** Longest delay, ms. */
  max: number;
}

/** Options of `new MemoryNetwork()`. Unknown names are errors. */
export interface MemoryNetworkOptions {
  /** Seeds drop, duplicate and latency choices. Default 0. */
  seed?: number | string;
  /** Time source for latency and request timeouts. Default `systemClock`. */
  clock?: Clock;
  /** One-way latency of every message. Default `{ min: 0, max: 0 }` (delivered on a microtask). */
  latencyMs?: LatencyRange;
  /** Probability in [0, 1] that a message is lost; requests and responses are drawn independently. */
  dropRate?: number;
  /** Probability in [0, 1] that a request reaches the handler twice (the second response is ignored). */
  duplicateRate?: number;
  /**
   * Bound on undelivered messages network-wide; beyond it messages are dropped (counted in
   * `dropped` and `overflowed`), so a runaway test fails instead of exhausting memory. Default 1,000,000.
   */
  maxInFlight?: number;
}

/**
 * Message counters since creation or the last `resetCounters()`. Messages are requests, responses
 * and error replies. Once the network is idle:
 * `sent + duplicated = delivered + dropped + refused`.
 */
export interface MemoryNetworkCounters {
  /** Messages handed to the network (extra duplicate copies not included). */
  sent: number;
  /** Messages that reached a running endpoint (duplicate copies included). */
  delivered: number;
  /** Messages lost to a partition, `dropRate` or the `maxInFlight` bound. */
  dropped: number;
  /** Extra request copies made by `duplicateRate`. */
  duplicated: number;
  /** Messages that arrived at an address with no running endpoint (connection refused). */
  refused: number;
  /** Of `dropped`: messages lost because `maxInFlight` messages were already undelivered. */
  overflowed: number;
  /** Payload bytes of the messages sent (extra duplicate copies not included). */
  bytes: number;
}

const zeroCounters = (): MemoryNetworkCounters => ({
  sent: 0,
  delivered: 0,
  dropped: 0,
  duplicated: 0,
  refused: 0,
  overflowed: 0,
  bytes: 0,
});

interface RequestMessage {
  readonly kind: 'request';
  readonly sender: MemoryEndpoint;
  readonly to: string;
  readonly id: number;
  payload: Uint8Array;
}

interface ResponseMessage {
  readonly kind: 'response';
  readonly from: string;
  /** The endpoint object, not the address: a restarted endpoint on the same address must not get its predecessor's responses. */
  readonly requester: MemoryEndpoint;
  readonly id: number;
  payload: Uint8Array;
  /** Set when the reply is a failure; becomes the caller's `TransportError` message. */
  readonly error: string | undefined;
}

type Message = RequestMessage | ResponseMessage;

/** A request waiting for its reply; its timeout is tracked by the endpoint's RequestTimeouts. */
class Pending implements TimeoutLinks<Pending> {
  timeoutBatch: TimeoutBatch<Pending> | undefined = undefined;
  timeoutPrev: Pending | undefined = undefined;
  timeoutNext: Pending | undefined = undefined;
  unlisten: (() => void) | undefined = undefined;

  constructor(
    readonly id: number,
    readonly to: string,
    readonly resolve: (value: Uint8Array) => void,
    readonly reject: (reason: unknown) => void,
  ) {}
}

const EMPTY = new Uint8Array(0);

function checkRate(name: string, rate: number): number {
  if (!(rate >= 0 && rate <= 1))
    throw new RangeError(`MemoryNetwork: ${name} must be in [0, 1], got ${rate}`);
  return rate;
}

function checkLatency(l: LatencyRange): LatencyRange {
  if (!(Number.isFinite(l.min) && Number.isFinite(l.max) && l.min >= 0 && l.max >= l.min)) {
    throw new RangeError(
      `MemoryNetwork: latencyMs needs finite 0 <= min <= max, got {min: ${l.min}, max: ${l.max}}`,
    );
  }
  return { min: l.min, max: l.max };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The shared state behind a `MemoryNetwork` and its endpoints, kept out of the public class so
 * that its type shows only the documented API.
 */
class Fabric {
  readonly clock: Clock;
  private readonly dropRandom: Random;
  private readonly duplicateRandom: Random;
  private readonly latencyRandom: Random;
  latency: LatencyRange;
  /** Per-address latency (`setNodeLatency`): applies to messages from or to that address. */
  readonly nodeLatency = new Map<string, LatencyRange>();
  dropRate: number;
  duplicateRate: number;
  readonly maxInFlight: number;
  readonly endpoints = new Map<string, MemoryEndpoint>();
  counters = zeroCounters();
  inFlight = 0;

  // Partitions: checked on every message only when one exists (`anyPartition`), so the fast path stays cheap.
  private readonly twoWay: [ReadonlySet<string>, ReadonlySet<string>][] = [];
  private readonly isolated: ReadonlySet<string>[] = [];
  private readonly oneWay = new Map<string, Set<string>>();
  private anyPartition = false;

  constructor(options: MemoryNetworkOptions) {
    const random = seededRandom(options.seed ?? 0);
    // Independent streams: changing one fault's rate leaves the other faults' choices unchanged.
    this.dropRandom = random.fork('drop');
    this.duplicateRandom = random.fork('duplicate');
    this.latencyRandom = random.fork('latency');
    this.clock = options.clock ?? systemClock;
    this.latency = checkLatency(options.latencyMs ?? { min: 0, max: 0 });
    this.dropRate = checkRate('dropRate', options.dropRate ?? 0);
    this.duplicateRate = checkRate('duplicateRate', options.duplicateRate ?? 0);
    const maxInFlight = options.maxInFlight ?? 1_000_000;
    if (!(Number.isInteger(maxInFlight) && maxInFlight >= 0)) {
      throw new RangeError(`MemoryNetwork: maxInFlight must be an integer >= 0, got ${maxInFlight}`);
    }
    this.maxInFlight = maxInFlight;
  }

  partition(groupA: readonly string[], groupB: readonly string[] | undefined): void {
    if (groupB === undefined) this.isolated.push(new Set(groupA));
    else this.twoWay.push([new Set(groupA), new Set(groupB)]);
    this.anyPartition = true;
  }

  partitionOneWay(from: string, to: string): void {
    const targets = this.oneWay.get(from) ?? new Set<string>();
    targets.add(to);
    this.oneWay.set(from, targets);
    this.anyPartition = true;
  }

  heal(): void {
    this.twoWay.length = 0;
    this.isolated.length = 0;
    this.oneWay.clear();
    this.anyPartition = false;
  }

  blocked(from: string, to: string): boolean {
    if (!this.anyPartition) return false;
    if (this.oneWay.get(from)?.has(to)) return true;
    for (const [a, b] of this.twoWay) {
      if ((a.has(from) && b.has(to)) || (b.has(from) && a.has(to))) return true;
    }
    for (const group of this.isolated) if (group.has(from) !== group.has(to)) return true;
    return false;
  }

  /** Puts a message on the wire: counts it, decides its fate, schedules its arrival (and a duplicate's). */
  transmit(message: Message, from: string, to: string): void {
    const c = this.counters;
    c.sent++;
    c.bytes += message.payload.byteLength;
    if (this.blocked(from, to) || (this.dropRate > 0 && this.dropRandom.next() < this.dropRate)) {
      c.dropped++;
      return;
    }
    const source = message.payload;
    const latency = this.nodeLatency.size === 0 ? this.latency : this.linkLatency(from, to);
    this.schedule(message, source, latency);
    if (
      message.kind === 'request' &&
      this.duplicateRate > 0 &&
      this.duplicateRandom.next() < this.duplicateRate
    ) {
      c.duplicated++;
      // A distinct message object, so each delivery is answered (and tracked by `stop`) on its own.
      this.schedule({ ...message, payload: EMPTY }, source, latency);
    }
  }

  /** The slowest of the network's latency and the two endpoints' own (a slow node slows both ways). */
  private linkLatency(from: string, to: string): LatencyRange {
    let l = this.latency;
    for (const own of [this.nodeLatency.get(from), this.nodeLatency.get(to)]) {
      if (own && own.max + own.min > l.max + l.min) l = own;
    }
    return l;
  }

  private schedule(message: Message, source: Uint8Array, latency: LatencyRange): void {
    if (this.inFlight >= this.maxInFlight) {
      this.counters.dropped++;
      this.counters.overflowed++;
      return;
    }
    this.inFlight++;
    // Copied when sent: the sender may reuse its buffer at once, and each delivery owns its bytes.
    message.payload = source.slice();
    const { min, max } = latency;
    if (max === 0) {
      // A 0-ms timer on the system clock costs >= 1 ms; a microtask keeps in-process clusters fast
      // and is still deterministic (single thread, FIFO queue).
      this.arrivals.push(message);
      if (this.arrivals.length === 1) queueMicrotask(this.drainArrivals);
    } else {
      const delayMs = min === max ? min : min + this.latencyRandom.next() * (max - min);
      this.clock.setTimeout(() => this.arrive(message), delayMs);
    }
  }

  /** Zero-latency messages waiting for the microtask that delivers them in FIFO order. */
  private readonly arrivals: Message[] = [];
  // One microtask per burst rather than per message: queueMicrotask costs an async-hooks scope each.
  private readonly drainArrivals = (): void => {
    for (let i = 0; i < this.arrivals.length; i++) this.arrive(this.arrivals[i]!);
    this.arrivals.length = 0;
  };

  private arrive(message: Message): void {
    this.inFlight--;
    const c = this.counters;
    if (message.kind === 'request') {
      // A partition made while the message was on the wire loses it too.
      if (this.blocked(message.sender.address, message.to)) {
        c.dropped++;
        return;
      }
      const target = this.endpoints.get(message.to);
      if (!target?.running) {
        c.refused++;
        message.sender.settle(
          message.id,
          undefined,
          new TransportError(`connection refused: no endpoint listening at ${message.to}`),
        );
        return;
      }
      c.delivered++;
      target.handle(message);
    } else {
      if (this.blocked(message.from, message.requester.address)) {
        c.dropped++;
        return;
      }
      if (message.requester.stopped) {
        c.refused++;
        return;
      }
      c.delivered++;
      message.requester.bytesReceived += message.payload.byteLength;
      message.requester.settle(
        message.id,
        message.payload,
        message.error === undefined ? undefined : new TransportError(message.error),
      );
    }
  }
}

/** One address on a `MemoryNetwork`. */
class MemoryEndpoint implements Transport {
  /** Peers on a MemoryNetwork are code in this process that was handed the network. */
  readonly authenticated = true;
  /** Payload bytes of requests and responses this endpoint sent / received. */
  bytesSent = 0;
  bytesReceived = 0;
  private state: 'new' | 'running' | 'stopped' = 'new';
  private handler: RequestHandler | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  /**
   * Request timeouts on shared timers, as TcpTransport's: a clock timer armed and cancelled per
   * request is paid by every operation when a turn holds few of them (an in-process cluster at
   * low load). On a VirtualClock a request still times out exactly `timeoutMs` after it started.
   */
  private readonly timeouts: RequestTimeouts<Pending>;
  /** Requests whose handler is running; `stop` answers them with a connection reset. */
  private readonly active = new Set<RequestMessage>();

  constructor(
    private readonly fabric: Fabric,
    readonly address: string,
  ) {
    this.timeouts = new RequestTimeouts<Pending>(fabric.clock, (p, timeoutMs) =>
      this.settle(p.id, undefined, new TimeoutError(`request to ${p.to} timed out after ${timeoutMs} ms`)),
    );
  }

  get running(): boolean {
    return this.state === 'running';
  }

  stats(): TransportByteStats {
    return { bytesSent: this.bytesSent, bytesReceived: this.bytesReceived };
  }

  get stopped(): boolean {
    return this.state === 'stopped';
  }

  async start(handler: RequestHandler): Promise<void> {
    if (this.state !== 'new') {
      throw new Error(`MemoryNetwork endpoint ${this.address} is ${this.state}; connect() a new one instead`);
    }
    this.handler = handler;
    this.state = 'running';
  }

  request(to: string, payload: Uint8Array, options: RequestOptions): Promise<Uint8Array> {
    if (this.state === 'stopped') {
      return Promise.reject(new TransportError(`${this.address}: transport stopped`));
    }
    const { timeoutMs, signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (!(timeoutMs >= 0))
      return Promise.reject(new RangeError(`request: timeoutMs must be >= 0, got ${timeoutMs}`));
    return new Promise<Uint8Array>((resolve, reject) => {
      const id = this.nextId++;
      const pending = new Pending(id, to, resolve, reject);
      this.pending.set(id, pending);
      // An infinite timeout arms no timer (a system-clock timer would clamp it to 1 ms).
      if (Number.isFinite(timeoutMs)) this.timeouts.add(pending, timeoutMs);
      if (signal) pending.unlisten = onAbort(signal, (reason) => this.settle(id, undefined, reason));
      this.bytesSent += payload.byteLength;
      this.fabric.transmit({ kind: 'request', sender: this, to, id, payload }, this.address, to);
    });
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.handler = undefined;
    if (this.fabric.endpoints.get(this.address) === this) this.fabric.endpoints.delete(this.address);
    for (const id of [...this.pending.keys()]) {
      this.settle(id, undefined, new TransportError(`${this.address}: transport stopped`));
    }
    // Like a closed socket: callers waiting on this endpoint learn at once (unless partitioned or
    // dropped) instead of waiting for their timeout. The handlers' own responses are discarded.
    const active = [...this.active];
    this.active.clear();
    for (const message of active) {
      this.reply(message, EMPTY, `connection to ${this.address} reset: endpoint stopped`);
    }
  }

  /** Completes request `id` once: a response, an error, a timeout, an abort or `stop`, whichever comes first. */
  settle(id: number, payload: Uint8Array | undefined, error: unknown): void {
    const pending = this.pending.get(id);
    if (!pending) return; // already settled: late response, duplicate's response, or after timeout
    this.pending.delete(id);
    this.timeouts.remove(pending);
    pending.unlisten?.();
    if (error !== undefined) pending.reject(error);
    else pending.resolve(payload ?? EMPTY);
  }

  handle(message: RequestMessage): void {
    const handler = this.handler!;
    this.bytesReceived += message.payload.byteLength;
    this.active.add(message);
    let result: Promise<Uint8Array>;
    try {
      result = Promise.resolve(handler(message.sender.address, message.payload));
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (response) => this.complete(message, response, undefined),
      (err: unknown) =>
        this.complete(message, EMPTY, `remote handler at ${this.address} failed: ${errorMessage(err)}`),
    );
  }

  private complete(message: RequestMessage, response: Uint8Array, error: string | undefined): void {
    // Not active any more: `stop` already answered it, and a stopped endpoint's responses are discarded.
    if (!this.active.delete(message)) return;
    if (error === undefined && !(response instanceof Uint8Array)) {
      error = `remote handler at ${this.address} failed: it resolved with a non-Uint8Array`;
      response = EMPTY;
    }
    this.reply(message, response, error);
  }

  private reply(message: RequestMessage, payload: Uint8Array, error: string | undefined): void {
    const requester = message.sender;
    this.bytesSent += payload.byteLength;
    this.fabric.transmit(
      { kind: 'response', from: this.address, requester, id: message.id, payload, error },
      this.address,
      requester.address,
    );
  }
}

/**
 * An in-process network with fault injection.
 *
 * - A request is delivered to the target's handler after a one-way latency, unless a partition or
 *   `dropRate` loses it; the response travels back with its own latency and drop chance. A caller
 *   whose request or response was lost rejects with `TimeoutError` after its `timeoutMs`.
 * - A request arriving at an address with no running endpoint is refused: the caller rejects with
 *   `TransportError` when the request arrives (after one latency).
 * - Partitions apply when a message is sent and again when it arrives (a partition made while a
 *   message is on the wire loses it).
 * - Payloads are copied when sent: sender and receiver never share a buffer.
 * - `stop()` of an endpoint rejects its own pending requests with `TransportError`, refuses new
 *   requests to its address, and answers requests its handler is still running with a
 *   connection-reset `TransportError` (which travels like any reply); the handlers' later
 *   responses are discarded.
 * - With latency 0 messages are delivered on a microtask, so a cluster on a `VirtualClock` makes
 *   progress without advancing time (timeouts still need `advance`).
 */
const MEMORY_NETWORK_OPTION_NAMES = names<keyof MemoryNetworkOptions>({
  seed: true,
  clock: true,
  latencyMs: true,
  dropRate: true,
  duplicateRate: true,
  maxInFlight: true,
});

/**
 * An in-process network with fault injection: `connect(address)` gives a node its transport;
 * partitions, drops, duplicates and latency are set on the network. Delivery goes through the
 * clock, so on a VirtualClock a run is a pure function of its seed.
 */
export class MemoryNetwork {
  private readonly fabric: Fabric;

  constructor(options: MemoryNetworkOptions = {}) {
    if (options === null || typeof options !== 'object')
      throw new TypeError('MemoryNetwork: options must be an object');
    checkOptionNames(options, MEMORY_NETWORK_OPTION_NAMES, 'MemoryNetwork options');
    if (options.latencyMs !== undefined)
      checkOptionNames(options.latencyMs, ['min', 'max'], 'MemoryNetwork latencyMs');
    this.fabric = new Fabric(options);
  }

  /**
   * A new, not yet started endpoint at `address`. Throws if an endpoint at `address` is connected
   * and not stopped; once it is stopped the address may be connected again (a node restarting).
   * An endpoint may send requests before `start`; it answers none until started.
   */
  connect(address: string): Transport {
    if (typeof address !== 'string' || address === '') {
      throw new TypeError('MemoryNetwork.connect(address): address must be a non-empty string');
    }
    if (this.fabric.endpoints.has(address)) {
      throw new Error(`MemoryNetwork.connect: ${address} is already connected (stop it first)`);
    }
    const endpoint = new MemoryEndpoint(this.fabric, address);
    this.fabric.endpoints.set(address, endpoint);
    return endpoint;
  }

  /**
   * Blocks traffic both ways between `groupA` and `groupB`; with one group, isolates it from every
   * other address (including ones connected later). Accumulates with earlier partitions.
   */
  partition(groupA: readonly string[], groupB?: readonly string[]): void {
    this.fabric.partition(groupA, groupB);
  }

  /** Loses every message from `from` to `to` (its requests to `to`, and its responses to `to`'s requests). */
  partitionOneWay(from: string, to: string): void {
    this.fabric.partitionOneWay(from, to);
  }

  /** Removes every partition. */
  heal(): void {
    this.fabric.heal();
  }

  /** Whether a message from `from` to `to` would currently cross (no partition between them). */
  reachable(from: string, to: string): boolean {
    return !this.fabric.blocked(from, to);
  }

  /** Probability in [0, 1] that a message sent from now on is lost. */
  setDropRate(rate: number): void {
    this.fabric.dropRate = checkRate('dropRate', rate);
  }

  /** Probability in [0, 1] that a request sent from now on is delivered twice. */
  setDuplicateRate(rate: number): void {
    this.fabric.duplicateRate = checkRate('duplicateRate', rate);
  }

  /** Applies to messages sent from now on. */
  setLatency(latencyMs: LatencyRange): void {
    this.fabric.latency = checkLatency(latencyMs);
  }

  /**
   * Latency of every message sent from or to `address` from now on (a slow machine or link); the
   * larger of it and the network's latency applies. `undefined` removes it.
   */
  setNodeLatency(address: string, latencyMs: LatencyRange | undefined): void {
    if (latencyMs === undefined) this.fabric.nodeLatency.delete(address);
    else this.fabric.nodeLatency.set(address, checkLatency(latencyMs));
  }

  /** A snapshot of the message counters. */
  get counters(): Readonly<MemoryNetworkCounters> {
    return { ...this.fabric.counters };
  }

  /** Messages sent and not yet arrived (delivered, refused or lost on arrival). */
  get inFlight(): number {
    return this.fabric.inFlight;
  }

  /** Sets every message counter back to zero. */
  resetCounters(): void {
    this.fabric.counters = zeroCounters();
  }
}
