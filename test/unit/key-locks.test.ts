import { describe, expect, it } from 'vitest';
import { KeyLocks } from '../../src/replica/lock.js';

describe('KeyLocks', () => {
  it('starts a free key at once and holds it until released', () => {
    const locks = new KeyLocks();
    const started: string[] = [];
    locks.acquire('a', () => started.push('first'));
    expect(started).toEqual(['first']);
    expect(locks.isHeld('a')).toBe(true);
    locks.releaseAll(['a']);
    expect(locks.isHeld('a')).toBe(false);
    expect(locks.size).toBe(0);
  });

  it('runs waiters one at a time, in order, each once the previous holder released', () => {
    const locks = new KeyLocks();
    const started: string[] = [];
    expect(locks.tryHold('a') && locks.tryHold('b')).toBe(true);
    expect(locks.tryHold('a')).toBe(false);
    locks.acquire('a', () => started.push('a1'));
    locks.acquire('a', () => started.push('a2'));
    locks.acquire('b', () => started.push('b1'));
    expect(started).toEqual([]);
    locks.releaseAll(['a', 'b']);
    expect(started).toEqual(['a1', 'b1']);
    expect(locks.isHeld('a') && locks.isHeld('b')).toBe(true);
    locks.releaseAll(['b']);
    expect(locks.isHeld('b')).toBe(false);
    locks.releaseAll(['a']);
    expect(started).toEqual(['a1', 'b1', 'a2']);
    locks.releaseAll(['a']);
    expect(locks.size).toBe(0);
  });

  it('lets a starter see every released lock in its new state', () => {
    const locks = new KeyLocks();
    locks.tryHold('a');
    locks.tryHold('b');
    let bHeldWhenAStarted: boolean | undefined;
    locks.acquire('a', () => {
      bHeldWhenAStarted = locks.isHeld('b');
    });
    locks.releaseAll(['a', 'b']);
    expect(bHeldWhenAStarted).toBe(false);
  });
});
