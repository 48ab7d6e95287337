/**
 * The node-level task without a DynamoNode: two AntiEntropy instances over MemoryStorage, their
 * RPC wired straight to each other's `handle` through the real message encoding.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { AntiEntropy, type SyncCompleteEvent } from '../../../src/anti-entropy/index.js';
import { Replica } from '../../../src/replica/replica.js';
import { loadHasher } from '../../../src/ring/index.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import type { Rpc } from '../../../src/transport/rpc.js';
import {
  decodeMessage,
  decodeReply,
  encodeMessage,
  encodeOk,
  MessageType,
} from '../../../src/transport/wire.js';
import { VirtualClock } from '../../../src/util/clock.js';
import { seededRandom } from '../../../src/util/random.js';
import { decodeObject } from '../../../src/versioning/index.js';
import { key, object } from './helpers.js';

beforeAll(async () => {
  await loadHasher();
});

const PARTITIONS = 8;
const silent = { debug() {}, info() {}, warn() {}, error() {} };

interface Side {
  ae: AntiEntropy;
  replica: Replica;
  storage: MemoryStorage;
  events: SyncCompleteEvent[];
  errors: Error[];
  load: { inFlight: number };
}

async function pair(clock: VirtualClock): Promise<{ a: Side; b: Side; calls: () => number }> {
  const sides = new Map<string, Side>();
  let calls = 0;
  const make = async (id: string): Promise<Side> => {
    const storage = new MemoryStorage();
    await storage.open();
    const replica = new Replica(storage, { maxSiblings: 100, maxClockEntries: 50 });
    const events: SyncCompleteEvent[] = [];
    const errors: Error[] = [];
    const load = { inFlight: 0 };
    const rpc = {
      async call(peer: string, message: readonly unknown[]) {
        calls++;
        const target = sides.get(peer)!;
        const decoded = decodeMessage(encodeMessage(message));
        let fields: unknown[];
        if (decoded[0] === MessageType.Store) {
          for (const [k, o] of decoded[3] as [Uint8Array, Uint8Array][]) {
            await target.replica.merge(decoded[1] as number, k, decodeObject(o), null);
          }
          fields = [];
        } else {
          fields = await target.ae.handle(decoded);
        }
        return decodeReply(encodeOk(fields));
      },
    } as unknown as Rpc;
    const ae = new AntiEntropy({
      self: id,
      storage,
      replica,
      rpc,
      clock,
      random: seededRandom(id),
      partitions: PARTITIONS,
      n: 2,
      owners: () => ['a', 'b', 'a', 'b', 'a', 'b', 'a', 'b'],
      isUp: () => true,
      intervalMs: 1000,
      enabled: true,
      tombstoneGraceMs: 10_000,
      requestTimeoutMs: 100,
      maxKeyBytes: 1024,
      maxObjectBytes: 1 << 20,
      maxClockEntries: 50,
      inFlight: () => load.inFlight,
      onSync: (e) => events.push(e),
      onError: (e) => errors.push(e),
      logger: silent,
    });
    const side = { ae, replica, storage, events, errors, load };
    sides.set(id, side);
    return side;
  };
  const a = await make('a');
  const b = await make('b');
  return { a, b, calls: () => calls };
}

async function fill(side: Side, count: number, value = 'v'): Promise<void> {
  for (let i = 0; i < count; i++) {
    await side.replica.merge(i % PARTITIONS, key(i), decodeObject(object(1, `${value}${i}`)), null);
  }
}

async function dump(storage: MemoryStorage): Promise<string[]> {
  const out: string[] = [];
  for await (const [k, v] of storage.iterate({ gte: Uint8Array.of(1), lt: Uint8Array.of(2) })) {
    out.push(Buffer.from(k).toString('hex') + Buffer.from(v).toString('hex'));
  }
  return out;
}

describe('AntiEntropy task', () => {
  it('repairs both replicas every interval and reports each exchange', async () => {
    const clock = new VirtualClock();
    const { a, b } = await pair(clock);
    await fill(a, 200);
    await fill(b, 50, 'w');
    a.ae.start();
    b.ae.start();
    await clock.advance(5_000);
    expect(await dump(a.storage)).toEqual(await dump(b.storage));
    expect(a.events.length + b.events.length).toBeGreaterThanOrEqual(PARTITIONS);
    expect(a.ae.stats().trees).toBe(PARTITIONS);
    const repaired = a.ae.stats().keysRepaired + b.ae.stats().keysRepaired;
    expect(repaired).toBe(200); // 150 keys only a had, 50 keys both had with concurrent values
    expect(a.errors.concat(b.errors)).toEqual([]);
    // Trees were kept current by the repairs' merges: nothing left to compare below the root.
    const before = a.ae.stats().bytes + b.ae.stats().bytes;
    const exchanges = a.ae.stats().exchanges + b.ae.stats().exchanges;
    await clock.advance(3_000);
    const perExchange =
      (a.ae.stats().bytes + b.ae.stats().bytes - before) /
      (a.ae.stats().exchanges + b.ae.stats().exchanges - exchanges);
    expect(perExchange).toBeLessThan(100); // one root hash each way
    a.ae.stop();
    b.ae.stop();
    await a.ae.idle();
  });

  it('yields to foreground load: no exchange while the node is busy, resumes after', async () => {
    const clock = new VirtualClock();
    const { a, b, calls } = await pair(clock);
    await fill(a, 50);
    a.load.inFlight = 1000;
    a.ae.start();
    await clock.advance(10_000);
    expect(calls()).toBe(0);
    expect(a.ae.stats().exchanges).toBe(0);
    expect(a.ae.stats().deferred).toBeGreaterThan(0);
    a.load.inFlight = 0;
    await clock.advance(12_000);
    expect(a.ae.stats().exchanges).toBeGreaterThan(0);
    expect(await dump(b.storage)).toEqual(await dump(a.storage));
    a.ae.stop();
  });

  it('answers malformed requests with an error and changes nothing', async () => {
    const clock = new VirtualClock();
    const { a } = await pair(clock);
    await fill(a, 20);
    const before = await dump(a.storage);
    const bad: unknown[][] = [
      [MessageType.AeHashes, 99, 0, []],
      [MessageType.AeHashes, 0, 7, [0]],
      [MessageType.AeHashes, 0, 2, [32]],
      [MessageType.AeHashes, 0, 1, 'x'],
      [MessageType.AeKeys, 0, 2, [5000], null, 10, 10],
      [MessageType.AeKeys, 0, 2, [1], null, 0, 10],
      [MessageType.AeKeys, 0, 2, [1], 'nope', 10, 10],
      [MessageType.AeFetch, 0, ['not bytes'], 100],
      [MessageType.AeFetch, 0, new Array(10_001).fill(new Uint8Array(1)), 100],
      [MessageType.AePurge, 0, 2, []],
      [MessageType.AePurge, 0, 1, [[new Uint8Array(1), new Uint8Array(3)]]],
    ];
    for (const m of bad) await expect(a.ae.handle(m)).rejects.toThrow(/malformed|out of range/);
    expect(await dump(a.storage)).toEqual(before);
  });

  it('purges tombstones past the grace period that both replicas hold, and nothing else', async () => {
    const clock = new VirtualClock(0);
    const { a, b } = await pair(clock);
    const dead = decodeObject(object(1, null));
    for (const side of [a, b]) {
      await side.replica.merge(0, key('dead'), dead, null);
      await side.replica.merge(0, key('alive'), decodeObject(object(1, 'x')), null);
    }
    // A tombstone only a holds: b lacks it, so it may not be purged (it spreads to b first).
    await a.replica.merge(0, key('half'), dead, null);
    a.ae.start();
    b.ae.start();
    await clock.advance(30_000);
    for (const side of [a, b]) {
      expect(await side.storage.get(Uint8Array.of(1, 0, 0, ...key('dead')))).toBeUndefined();
      expect(await side.storage.get(Uint8Array.of(1, 0, 0, ...key('half')))).toBeUndefined();
      expect(await side.storage.get(Uint8Array.of(1, 0, 0, ...key('alive')))).toBeDefined();
    }
    expect(a.ae.stats().purged + b.ae.stats().purged).toBe(4);
    a.ae.stop();
    b.ae.stop();
  });
});
