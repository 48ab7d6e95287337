/**
 * Local failure detection (Dynamo § 4.8.3): a peer that fails a request is marked down and routed
 * around; it is probed in the background with exponential backoff and marked up as soon as it
 * answers anything. Down is a local opinion, never gossiped, and never removes a member.
 * At most one probe timer per down peer.
 */
import type { Clock, Timer } from '../util/clock.js';

export interface FailureDetectorOptions {
  clock: Clock;
  /** Sends a liveness probe; resolves when the peer answered. */
  probe: (id: string) => Promise<void>;
  /** First probe delay after a peer goes down, ms. */
  initialProbeMs: number;
  /** Longest probe delay, ms (backoff doubles up to it). */
  maxProbeMs: number;
  onDown: (id: string, reason: string) => void;
  onUp: (id: string) => void;
}

interface DownPeer {
  since: number;
  delayMs: number;
  timer: Timer | undefined;
}

export class FailureDetector {
  private readonly down = new Map<string, DownPeer>();
  private stopped = false;
  /** Grows on every change, so callers can cache what depends on the down set. */
  epoch = 0;

  constructor(private readonly options: FailureDetectorOptions) {}

  isUp(id: string): boolean {
    return !this.down.has(id);
  }

  get downCount(): number {
    return this.down.size;
  }

  downIds(): string[] {
    return [...this.down.keys()];
  }

  reportFailure(id: string, reason: string): void {
    if (this.stopped || this.down.has(id)) return;
    const peer: DownPeer = {
      since: this.options.clock.now(),
      delayMs: this.options.initialProbeMs,
      timer: undefined,
    };
    this.down.set(id, peer);
    this.epoch++;
    this.options.onDown(id, reason);
    this.schedule(id, peer);
  }

  reportSuccess(id: string): void {
    const peer = this.down.get(id);
    if (!peer) return;
    peer.timer?.cancel();
    this.down.delete(id);
    this.epoch++;
    if (!this.stopped) this.options.onUp(id);
  }

  /** Forget a peer entirely (removed from the cluster). */
  forget(id: string): void {
    const peer = this.down.get(id);
    if (!peer) return;
    peer.timer?.cancel();
    this.down.delete(id);
    this.epoch++;
  }

  stop(): void {
    this.stopped = true;
    for (const peer of this.down.values()) peer.timer?.cancel();
  }

  private schedule(id: string, peer: DownPeer): void {
    peer.timer = this.options.clock.setTimeout(() => {
      peer.timer = undefined;
      if (this.stopped || this.down.get(id) !== peer) return;
      this.options.probe(id).then(
        () => this.reportSuccess(id),
        () => {
          if (this.stopped || this.down.get(id) !== peer) return;
          peer.delayMs = Math.min(peer.delayMs * 2, this.options.maxProbeMs);
          this.schedule(id, peer);
        },
      );
    }, peer.delayMs);
  }
}
