import { describe, expect, test } from 'vitest';
import { type Clock, VirtualClock } from '../../src/util/clock.js';
import { RequestTimeouts, type TimeoutBatch, type TimeoutLinks } from '../../src/util/timeouts.js';

class Entry implements TimeoutLinks<Entry> {
  timeoutBatch: TimeoutBatch<Entry> | undefined = undefined;
  timeoutPrev: Entry | undefined = undefined;
  timeoutNext: Entry | undefined = undefined;
  constructor(readonly name: string) {}
}

function setup(clock: Clock = new VirtualClock()) {
  const expired: { name: string; timeoutMs: number; at: number }[] = [];
  const timeouts: RequestTimeouts<Entry> = new RequestTimeouts<Entry>(clock, (entry, timeoutMs) => {
    expired.push({ name: entry.name, timeoutMs, at: clock.now() });
    timeouts.remove(entry); // harmless: already removed
  });
  return { timeouts, expired };
}

describe('RequestTimeouts (virtual clock)', () => {
  test('an entry expires exactly timeoutMs after it started; other timeouts are unaffected', async () => {
    const clock = new VirtualClock();
    const { timeouts, expired } = setup(clock);
    timeouts.add(new Entry('a100'), 100);
    timeouts.add(new Entry('b300'), 300);
    timeouts.add(new Entry('c100'), 100);
    await clock.advance(99);
    expect(expired).toEqual([]);
    await clock.advance(1);
    expect(expired).toEqual([
      { name: 'a100', timeoutMs: 100, at: 100 },
      { name: 'c100', timeoutMs: 100, at: 100 },
    ]);
    expect(timeouts.size).toBe(1);
    await clock.advance(199);
    expect(expired).toHaveLength(2);
    await clock.advance(1);
    expect(expired[2]).toEqual({ name: 'b300', timeoutMs: 300, at: 300 });
    expect(timeouts.size).toBe(0);
    expect(clock.pending).toBe(0);
  });

  test('entries started in one turn share one timer; a later entry gets its own deadline', async () => {
    const clock = new VirtualClock();
    const { timeouts, expired } = setup(clock);
    for (let i = 0; i < 1000; i++) timeouts.add(new Entry(`early${i}`), 100);
    expect(clock.pending).toBe(1);
    await clock.advance(40);
    timeouts.add(new Entry('late'), 100);
    await clock.advance(60);
    expect(expired).toHaveLength(1000);
    expect(expired.every((e) => e.at === 100 && e.name.startsWith('early'))).toBe(true);
    await clock.advance(39);
    expect(expired).toHaveLength(1000);
    await clock.advance(1);
    expect(expired.at(-1)).toEqual({ name: 'late', timeoutMs: 100, at: 140 });
    expect(clock.pending).toBe(0);
  });

  test('batches of different timeouts share the closing timer, then hold one timer each', async () => {
    const clock = new VirtualClock();
    const { timeouts } = setup(clock);
    const entries = [10, 20, 30, 30].map((ms) => {
      const e = new Entry(`${ms}`);
      timeouts.add(e, ms);
      return e;
    });
    expect(clock.pending).toBe(1);
    await clock.advance(0);
    expect(clock.pending).toBe(3);
    for (const e of entries) timeouts.remove(e);
    expect(clock.pending).toBe(0);
    // Emptying one open batch keeps the closing timer while another batch is open.
    const a = new Entry('a');
    timeouts.add(a, 10);
    timeouts.add(new Entry('b'), 20);
    timeouts.remove(a);
    expect(clock.pending).toBe(1);
    await clock.advance(0);
    expect(clock.pending).toBe(1);
    expect(timeouts.size).toBe(1);
  });

  test('removing every entry cancels the timer, before and after the batch closed', async () => {
    const clock = new VirtualClock();
    const { timeouts, expired } = setup(clock);
    const open = [new Entry('a'), new Entry('b')];
    for (const e of open) timeouts.add(e, 100);
    timeouts.remove(open[1]!);
    timeouts.remove(open[0]!);
    timeouts.remove(open[0]!); // not tracked any more: a no-op
    expect(clock.pending).toBe(0);
    expect(timeouts.size).toBe(0);

    const closed = [new Entry('c'), new Entry('d'), new Entry('e')];
    for (const e of closed) timeouts.add(e, 100);
    await clock.advance(10); // the batch closed: its expiry timer is armed
    expect(clock.pending).toBe(1);
    timeouts.remove(closed[1]!); // from the middle
    timeouts.remove(closed[0]!);
    expect(clock.pending).toBe(1);
    timeouts.remove(closed[2]!);
    expect(clock.pending).toBe(0);
    await clock.runUntilIdle();
    expect(expired).toEqual([]);
    expect(timeouts.size).toBe(0);
  });

  test('an entry removed from the middle of a batch does not expire; the rest do, in start order', async () => {
    const clock = new VirtualClock();
    const { timeouts, expired } = setup(clock);
    const entries = ['a', 'b', 'c', 'd'].map((n) => new Entry(n));
    for (const e of entries) timeouts.add(e, 50);
    timeouts.remove(entries[2]!);
    // A removed entry can be tracked again, and joins the open batch at its end.
    timeouts.add(entries[2]!, 50);
    timeouts.remove(entries[0]!);
    await clock.advance(50);
    expect(expired.map((e) => e.name)).toEqual(['b', 'd', 'c']);
    expect(clock.pending).toBe(0);
  });

  test('a 0 ms timeout expires at the same virtual time', async () => {
    const clock = new VirtualClock(1_000);
    const { timeouts, expired } = setup(clock);
    timeouts.add(new Entry('now'), 0);
    await clock.advance(0);
    expect(expired).toEqual([{ name: 'now', timeoutMs: 0, at: 1_000 }]);
  });

  test('only relative timers are used: the wall clock is never read, so a clock step changes nothing', async () => {
    const base = new VirtualClock();
    const noWallClock: Clock = {
      now: () => {
        throw new Error('now() must not be called');
      },
      setTimeout: (fn, delayMs) => base.setTimeout(fn, delayMs),
    };
    const expired: string[] = [];
    const timeouts = new RequestTimeouts<Entry>(noWallClock, (e) => expired.push(e.name));
    timeouts.add(new Entry('x'), 20);
    await base.advance(20);
    expect(expired).toEqual(['x']);
  });
});
