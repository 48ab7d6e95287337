import { describe, expect, it } from 'vitest';
import { TransferProgress } from '../../src/membership/progress.js';
import { isReady, isSettled, ringStatus, tooFewOwners } from '../../src/membership/status.js';
import type { ClusterState, MemberRecord } from '../../src/membership/types.js';

const member = (id: string, state: MemberRecord['state'] = 'valid', weight = 1): MemberRecord => ({
  id,
  address: `${id}:1`,
  weight,
  state,
  version: 1,
});

/** 8 partitions dealt round-robin over `owners`. */
function stateOf(members: MemberRecord[], owners: string[], pending: string[] | null = null): ClusterState {
  const ring = Array.from({ length: 8 }, (_, k) => owners[k % owners.length]!);
  return {
    members,
    ring: {
      version: 3,
      owners: ring,
      claimant: 'a',
      pending: pending
        ? { owners: Array.from({ length: 8 }, (_, k) => pending[k % pending.length]!), done: [] }
        : null,
    },
  };
}

describe('isSettled / isReady', () => {
  it('is settled when every valid member owns its share and nothing is pending', () => {
    const s = stateOf([member('a'), member('b')], ['a', 'b']);
    expect(isSettled(s)).toBe(true);
    expect(isReady(s, 'a')).toBe(true);
    // Not a member (or not valid): not ready, though the ring is settled.
    expect(isReady(s, 'z')).toBe(false);
  });

  it('is not settled with a pending ring, a joining or leaving member, or no ring', () => {
    expect(isSettled(stateOf([member('a'), member('b')], ['a'], ['a', 'b']))).toBe(false);
    expect(isSettled(stateOf([member('a'), member('b', 'joining')], ['a']))).toBe(false);
    expect(isSettled(stateOf([member('a'), member('b', 'leaving')], ['a', 'b']))).toBe(false);
    expect(
      isSettled({ members: [member('a')], ring: { version: 0, owners: [], claimant: '', pending: null } }),
    ).toBe(false);
  });

  it('is not settled when an owner is removed or a valid member owns less than ⌊Q·w/Σw⌋', () => {
    expect(isSettled(stateOf([member('a'), member('b', 'removed')], ['a', 'b']))).toBe(false);
    expect(isSettled(stateOf([member('a'), member('b')], ['a']))).toBe(false);
    // b has weight 3 of 4: it needs ⌊8·3/4⌋ = 6 partitions, round-robin gives it 4.
    expect(isSettled(stateOf([member('a'), member('b', 'valid', 3)], ['a', 'b']))).toBe(false);
    expect(isSettled(stateOf([member('a'), member('b', 'valid', 3)], ['a', 'b', 'b', 'b']))).toBe(true);
    // Removed members that own nothing do not matter.
    expect(isSettled(stateOf([member('a'), member('c', 'removed')], ['a']))).toBe(true);
  });
});

describe('tooFewOwners', () => {
  it('names the owner count and n, and a rebalance in progress', () => {
    const one = stateOf([member('a')], ['a']);
    expect(tooFewOwners(one, 3, 1)).toBeUndefined();
    expect(tooFewOwners(one, 3, 2)).toBe('cluster has 1 node that owns partitions; n = 3');
    const growing = stateOf([member('a'), member('b'), member('c')], ['a', 'b'], ['a', 'b', 'c']);
    expect(tooFewOwners(growing, 3, 2)).toBeUndefined();
    expect(tooFewOwners(growing, 3, 3)).toBe(
      'cluster has 2 nodes that own partitions; n = 3 (a rebalance to 3 nodes is in progress: node.ready() waits for it)',
    );
  });
});

describe('TransferProgress', () => {
  const task = { partition: 2, source: 'a', target: 'c' };

  it('keeps the larger count per task and reports it in ringStatus', () => {
    const p = new TransferProgress(16);
    p.forRing(3);
    p.record(2, 'c', 128, 300);
    p.record(2, 'c', 100, 300);
    expect(p.get(task)).toEqual({ keysSent: 128, total: 300 });
    const s = stateOf([member('a'), member('b'), member('c')], ['a', 'b'], ['a', 'b', 'c']);
    const status = ringStatus(
      s,
      'a',
      () => true,
      [task, { partition: 5, source: 'b', target: 'c' }],
      (t) => p.get(t),
    );
    expect(status.settled).toBe(false);
    expect(status.pending).toEqual([
      { partition: 2, from: 'a', to: 'c', keysSent: 128, total: 300 },
      { partition: 5, from: 'b', to: 'c', keysSent: 0, total: null },
    ]);
  });

  it('merges a peer’s progress of the same ring only, and forgets it when the ring changes', () => {
    const mine = new TransferProgress(16);
    const peer = new TransferProgress(16);
    mine.forRing(3);
    peer.forRing(3);
    peer.record(2, 'c', 256, 300);
    mine.check(peer.toWire(), 8)();
    expect(mine.get(task)).toEqual({ keysSent: 256, total: 300 });
    const other = new TransferProgress(16);
    other.forRing(4);
    other.record(2, 'c', 300, 300);
    mine.check(other.toWire(), 8)();
    expect(mine.get(task)?.keysSent).toBe(256);
    mine.forRing(5);
    expect(mine.get(task)).toBeUndefined();
    // A peer that sends no progress merges nothing.
    mine.check(undefined, 8)();
  });

  it('refuses malformed progress whole, before merging any of it', () => {
    const p = new TransferProgress(2);
    p.forRing(1);
    const bad: unknown[] = [
      'x',
      [1],
      [1.5, []],
      [1, 'entries'],
      [
        1,
        [
          [0, 'c', 1, 1],
          [0, 'd', 1, 1],
          [0, 'e', 1, 1],
        ],
      ],
      [1, [[8, 'c', 1, 1]]],
      [1, [[-1, 'c', 1, 1]]],
      [1, [[0, 7, 1, 1]]],
      [1, [[0, 'c', -1, 1]]],
      [1, [[0, 'c', 1, 'all']]],
      [
        1,
        [
          [0, 'c', 1, 1],
          [0, 'c', 1],
        ],
      ],
    ];
    for (const value of bad) expect(() => p.check(value, 8), JSON.stringify(value)).toThrow(TypeError);
    expect(p.get({ partition: 0, source: 'a', target: 'c' })).toBeUndefined();
  });

  it('holds at most maxEntries tasks', () => {
    const p = new TransferProgress(2);
    p.forRing(1);
    for (let k = 0; k < 5; k++) p.record(k, 'c', 1, 1);
    expect([0, 1, 2, 3, 4].filter((k) => p.get({ partition: k, source: 'a', target: 'c' })).length).toBe(2);
  });
});
