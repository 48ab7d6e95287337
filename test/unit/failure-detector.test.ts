/**
 * The failure detector's probe rule on a VirtualClock: probe spacing bounded by maxProbeMs and
 * independent of probes still awaiting their answer, at most MAX_PROBES_IN_FLIGHT of them, and a
 * message from a down peer prompting a probe at once (rate-limited), its answer marking it up.
 */
import { describe, expect, it } from 'vitest';
import { FailureDetector, MAX_PROBES_IN_FLIGHT } from '../../src/membership/failure-detector.js';
import { VirtualClock } from '../../src/util/clock.js';

function detector(clock: VirtualClock) {
  const probes: { at: number; answer: () => void; fail: () => void }[] = [];
  const events: string[] = [];
  const fd = new FailureDetector({
    clock,
    probe: () =>
      new Promise<void>((answer, reject) => {
        probes.push({ at: clock.now(), answer, fail: () => reject(new Error('lost')) });
      }),
    initialProbeMs: 200,
    maxProbeMs: 500,
    onDown: (id) => events.push(`down ${id}`),
    onUp: (id) => events.push(`up ${id}`),
  });
  return { fd, probes, events };
}

describe('failure detector', () => {
  it('probes at 200, 400, then every 500 ms, whether or not earlier probes were answered', async () => {
    const clock = new VirtualClock();
    const { fd, probes } = detector(clock);
    fd.reportFailure('b', 'DYNAMO_TIMEOUT');
    await clock.advance(3000);
    // Unanswered probes do not hold the next one back, up to MAX_PROBES_IN_FLIGHT of them.
    expect(probes.map((p) => p.at)).toEqual([200, 600, 1100, 1600]);
    expect(probes).toHaveLength(MAX_PROBES_IN_FLIGHT);
    for (const p of probes.splice(0)) p.fail();
    await clock.advance(1000);
    expect(probes.map((p) => p.at)).toEqual([3100, 3600]);
    expect(fd.isUp('b')).toBe(false);
    probes[1]!.answer();
    await clock.advance(0);
    expect(fd.isUp('b')).toBe(true);
    // No timer left once the peer is up.
    expect(clock.pending).toBe(0);
  });

  it('a message from a down peer prompts a probe at once, at most one per initialProbeMs; only its answer marks the peer up', async () => {
    const clock = new VirtualClock();
    const { fd, probes, events } = detector(clock);
    fd.reportFailure('b', 'DYNAMO_TIMEOUT');
    await clock.advance(50);
    fd.heardFrom('b');
    fd.heardFrom('b');
    expect(probes.map((p) => p.at)).toEqual([50]);
    expect(fd.isUp('b')).toBe(false);
    await clock.advance(200);
    fd.heardFrom('b');
    expect(probes.map((p) => p.at)).toEqual([50, 200, 250]);
    probes[2]!.answer();
    await clock.advance(0);
    expect(events).toEqual(['down b', 'up b']);
    // Heard from a peer that is up: nothing to do.
    fd.heardFrom('b');
    expect(probes).toHaveLength(3);
  });
});
