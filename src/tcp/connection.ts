/**
 * One socket with framing on both directions: a decoder on the read side, and on the write side a
 * per-turn queue flushed as a single `socket.write` (coalescing) that honours backpressure.
 * Shared by inbound and outbound connections; the protocol lives in the owner's `onFrame`.
 */
import type { Socket } from 'node:net';
import type { Clock, Timer } from '../util/clock.js';
import { nextTurn } from '../util/clock.js';
import {
  encodeFrame,
  encodeFrames,
  type Frame,
  FrameDecoder,
  HEADER_BYTES,
  type OutFrame,
  ProtocolError,
} from './frame.js';

/** Counters shared by every connection of one transport (see `TcpTransportStats`). */
export interface Counters {
  framesSent: number;
  framesReceived: number;
  writes: number;
  bytesSent: number;
  bytesReceived: number;
  protocolErrors: number;
}

export interface FramedSocketOptions {
  socket: Socket;
  clock: Clock;
  counters: Counters;
  /** Initial decoder limit (the handshake limit); raise with `setMaxFrameBytes`. */
  maxFrameBytes: number;
  idleTimeoutMs: number;
  /** Called for each frame, in order. Throwing `ProtocolError` (or anything) closes the connection. */
  onFrame(frame: Frame): void;
  /** Called once, after the socket closed; `error` is the first failure seen, if any. */
  onClose(error: Error | undefined): void;
  /** A connection with work in flight is never idle. */
  isBusy(): boolean;
  /** Called when the connection has been idle for `idleTimeoutMs`. */
  onIdle(): void;
  /** Called when a write backlog drained (the owner may resume reading). */
  onDrain?(): void;
}

export class FramedSocket {
  readonly socket: Socket;
  /** Resolves once the socket has closed and `onClose` ran. */
  readonly closed: Promise<void>;
  private readonly opts: FramedSocketOptions;
  private readonly decoder: FrameDecoder;
  private queue: OutFrame[] = [];
  private queueBytes = 0;
  private flushScheduled = false;
  private waitingDrain = false;
  /** Application frames are held until the handshake completed (`open()`). */
  private isOpen = false;
  private readPaused = false;
  private isClosed = false;
  private error: Error | undefined;
  private lastActivity: number;
  private lastReceived: number;
  private idleTimer: Timer | undefined;
  private resolveClosed!: () => void;

  constructor(opts: FramedSocketOptions) {
    this.opts = opts;
    this.socket = opts.socket;
    this.decoder = new FrameDecoder(opts.maxFrameBytes);
    this.lastActivity = opts.clock.now();
    this.lastReceived = this.lastActivity;
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    const socket = this.socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      this.error ??= err;
    });
    socket.on('close', () => this.onSocketClose());
    socket.on('drain', () => this.onSocketDrain());
    this.armIdle(opts.idleTimeoutMs);
  }

  get closedOrClosing(): boolean {
    return this.isClosed || this.socket.destroyed || this.socket.writableEnded;
  }

  /** Bytes queued here or in the socket, not yet handed to the kernel. */
  get pendingBytes(): number {
    return this.queueBytes + this.socket.writableLength;
  }

  /** When bytes last arrived (the socket's creation until then), clock ms. */
  get lastReceivedAt(): number {
    return this.lastReceived;
  }

  /** Backlog is waiting for 'drain'. */
  get congested(): boolean {
    return this.waitingDrain;
  }

  setMaxFrameBytes(n: number): void {
    this.decoder.maxFrameBytes = n;
  }

  /** Writes a handshake frame at once (ahead of any queued application frame). */
  sendNow(type: number, id: number, payload?: Uint8Array): void {
    if (this.closedOrClosing) return;
    const buf = encodeFrame(type, id, payload);
    this.count(1, buf.length);
    this.socket.write(buf);
  }

  /** Queues an application frame; frames queued in one turn go out in one write. */
  send(type: number, id: number, payload: Uint8Array): void {
    if (this.isClosed) return;
    this.queue.push({ type, id, payload });
    this.queueBytes += HEADER_BYTES + payload.length;
    this.scheduleFlush();
  }

  /** Handshake done: application frames may flow. */
  open(): void {
    this.isOpen = true;
    this.scheduleFlush();
  }

  /** Stops reading (inbound backpressure); frames already buffered stay buffered. */
  pauseReading(): void {
    if (this.readPaused) return;
    this.readPaused = true;
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.readPaused || this.isClosed) return;
    this.readPaused = false;
    this.drainFrames();
    if (!this.readPaused && !this.isClosed) this.socket.resume();
  }

  /** Closes at once; `error` (if given and none was seen) is what `onClose` reports. */
  destroy(error?: Error): void {
    this.error ??= error;
    this.socket.destroy();
  }

  private count(frames: number, bytes: number): void {
    const c = this.opts.counters;
    c.framesSent += frames;
    c.writes++;
    c.bytesSent += bytes;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.waitingDrain || !this.isOpen || this.queue.length === 0) return;
    this.flushScheduled = true;
    nextTurn(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.closedOrClosing || this.waitingDrain || this.queue.length === 0) return;
    const frames = this.queue;
    const buf = encodeFrames(frames, this.queueBytes);
    this.queue = [];
    this.queueBytes = 0;
    this.count(frames.length, buf.length);
    this.lastActivity = this.opts.clock.now();
    if (!this.socket.write(buf)) this.waitingDrain = true;
  };

  private onSocketDrain(): void {
    if (!this.waitingDrain) return;
    this.waitingDrain = false;
    this.scheduleFlush();
    this.opts.onDrain?.();
  }

  private onData(chunk: Buffer): void {
    this.opts.counters.bytesReceived += chunk.length;
    this.lastActivity = this.opts.clock.now();
    this.lastReceived = this.lastActivity;
    this.decoder.push(chunk);
    this.drainFrames();
  }

  private drainFrames(): void {
    try {
      // Stop at once when a frame's handling closed the connection: nothing after it counts.
      while (!this.readPaused && !this.isClosed && !this.socket.destroyed) {
        const frame = this.decoder.next();
        if (!frame) return;
        this.opts.counters.framesReceived++;
        this.opts.onFrame(frame);
      }
    } catch (err) {
      // Never let a peer's bytes throw out of an event handler: close this connection only.
      this.opts.counters.protocolErrors++;
      this.decoder.clear();
      this.destroy(err instanceof Error ? err : new ProtocolError(String(err)));
    }
  }

  private armIdle(delayMs: number): void {
    this.idleTimer = this.opts.clock.setTimeout(() => {
      if (this.isClosed) return;
      const idleFor = this.opts.clock.now() - this.lastActivity;
      const timeout = this.opts.idleTimeoutMs;
      if (this.opts.isBusy() || this.queue.length > 0 || idleFor < timeout) {
        this.armIdle(this.opts.isBusy() ? timeout : timeout - Math.max(0, idleFor));
        return;
      }
      this.opts.onIdle();
    }, delayMs);
  }

  private onSocketClose(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.idleTimer?.cancel();
    this.queue = [];
    this.queueBytes = 0;
    this.decoder.clear();
    try {
      this.opts.onClose(this.error);
    } finally {
      this.resolveClosed();
    }
  }
}
