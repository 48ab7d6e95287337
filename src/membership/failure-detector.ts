/**
 * Local failure detection (Dynamo § 4.8.3): a peer that fails a request is marked down and routed
 * around; it is probed in the background and marked up as soon as it answers anything (a probe,
 * a gossip exchange, any request). Down is a local opinion, never gossiped, and never removes a
 * member.
 *
 * The probe rule is what bounds how long a healed peer still looks down:
 * - Probes of a down peer start `initialProbeMs` after it went down and their spacing doubles up
 *   to `maxProbeMs`, whatever became of the previous probe: a probe lost in a partition waits for
 *   its timeout, but the next one is not held behind it. So once the network heals, the peer is
 *   seen up within `maxProbeMs` plus a round trip. At most `MAX_PROBES_IN_FLIGHT` probes of one
 *   peer await their answer at once (bounded even when the probe's timeout is long).
 * - `heardFrom(id)`: a request arrived from a peer believed down. That is no proof that our
 *   answers reach it (a one-way partition), so it does not mark the peer up; it probes at once
 *   (at most once per `initialProbeMs`), and the answer does. After a heal both sides' probes
 *   cross, so each side learns from the other's first probe rather than waiting for its own.
 * At most one probe timer per down peer.
 */
import type { Clock, Timer } from '../util/clock.js';

/** Probes of one peer awaiting their answer at once. */
export const MAX_PROBES_IN_FLIGHT = 4;

export interface FailureDetectorOptions {
  clock: Clock;
  /** Sends a liveness probe; resolves when the peer answered. */
  probe: (id: string) => Promise<void>;
  /** First probe delay after a peer goes down, ms; also the least spacing of prompted probes. */
  initialProbeMs: number;
  /** Longest probe spacing, ms (the spacing doubles up to it). */
  maxProbeMs: number;
  onDown: (id: string, reason: string) => void;
  onUp: (id: string) => void;
}

interface DownPeer {
  since: number;
  delayMs: number;
  timer: Timer | undefined;
  inFlight: number;
  /** When the last probe prompted by `heardFrom` went out (ms); -Infinity: never. */
  promptedAt: number;
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
      delayMs: Math.min(this.options.initialProbeMs, this.options.maxProbeMs),
      timer: undefined,
      inFlight: 0,
      promptedAt: Number.NEGATIVE_INFINITY,
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

  /**
   * A message arrived from `id` (it can reach us). A peer believed down is probed at once, at most
   * once per `initialProbeMs`; its answer, not the message, marks it up.
   */
  heardFrom(id: string): void {
    const peer = this.down.get(id);
    if (!peer || this.stopped) return;
    const now = this.options.clock.now();
    if (now - peer.promptedAt < this.options.initialProbeMs) return;
    peer.promptedAt = now;
    this.probe(id, peer);
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

  /** The next probe, `delayMs` from now; the spacing after it doubles up to `maxProbeMs`. */
  private schedule(id: string, peer: DownPeer): void {
    peer.timer = this.options.clock.setTimeout(() => {
      peer.timer = undefined;
      if (this.stopped || this.down.get(id) !== peer) return;
      peer.delayMs = Math.min(peer.delayMs * 2, this.options.maxProbeMs);
      this.schedule(id, peer);
      this.probe(id, peer);
    }, peer.delayMs);
  }

  private probe(id: string, peer: DownPeer): void {
    if (peer.inFlight >= MAX_PROBES_IN_FLIGHT) return;
    peer.inFlight++;
    const settled = () => {
      peer.inFlight--;
    };
    this.options.probe(id).then(
      () => {
        settled();
        if (this.down.get(id) === peer) this.reportSuccess(id);
      },
      // A failed probe changes nothing: the next one is already scheduled.
      settled,
    );
  }
}
