import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryStorage, NotRunningError } from '../../src/index.js';
import { coveragePlan } from '../../src/listing/coverage.js';
import { decodeCursor, encodeCursor } from '../../src/listing/cursor.js';
import {
  comparePosition,
  listReplyFields,
  parseListReply,
  parseListRequest,
  scanPartitions,
} from '../../src/listing/scan.js';
import { liveObject } from '../../src/listing/service.js';
import { dataKey } from '../../src/replica/layout.js';
import { claim } from '../../src/ring/claim.js';
import { PreferenceTable } from '../../src/ring/index.js';
import { MessageType, WireError } from '../../src/transport/wire.js';
import { encodeObject } from '../../src/versioning/index.js';

const N = 3;

function ring(members: number, q: number): PreferenceTable {
  const owners = claim(
    undefined,
    Array.from({ length: members }, (_, i) => ({ id: `m${i}`, weight: 1 })),
    N,
    q,
  );
  return new PreferenceTable(owners, N);
}

/** Smallest number of nodes whose replicas cover every partition (brute force over subsets). */
function minimumCover(table: PreferenceTable, members: string[]): number {
  for (let size = 1; size <= members.length; size++) {
    const pick = (start: number, chosen: string[]): boolean => {
      if (chosen.length === size) {
        for (let p = 0; p < table.partitions; p++) {
          if (!table.primaries(p).some((id) => chosen.includes(id))) return false;
        }
        return true;
      }
      for (let i = start; i < members.length; i++) if (pick(i + 1, [...chosen, members[i]!])) return true;
      return false;
    };
    if (pick(0, [])) return size;
  }
  return members.length;
}

describe('coveragePlan', () => {
  it('gives every partition one usable primary, and no more nodes than the fewest that cover the ring plus one', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 3, max: 9 }),
        fc.constantFrom(16, 64),
        fc.array(fc.integer({ min: 0, max: 8 }), { maxLength: 2 }),
        (members, q, downIndexes) => {
          const table = ring(members, q);
          const ids = Array.from({ length: members }, (_, i) => `m${i}`);
          const down = new Set(downIndexes.filter((i) => i < members).map((i) => `m${i}`));
          const plan = coveragePlan(table, 0, q, (id) => !down.has(id));
          for (let p = 0; p < q; p++) {
            const usable = table.primaries(p).filter((id) => !down.has(id));
            if (usable.length === 0) expect(plan[p]).toBeUndefined();
            else expect(usable).toContain(plan[p]);
          }
          if (down.size === 0) {
            const used = new Set(plan).size;
            expect(used).toBeLessThanOrEqual(minimumCover(table, ids) + 1);
          }
        },
      ),
    );
  });

  it('covers 5 nodes with N = 3 by 3 of them, in long runs, preferring the caller', () => {
    const table = ring(5, 256);
    const plan = coveragePlan(table, 0, 256, () => true, 'm2');
    const used = new Set(plan);
    expect(used.size).toBe(minimumCover(table, ['m0', 'm1', 'm2', 'm3', 'm4']));
    expect(used.has('m2')).toBe(true);
    let runs = 1;
    for (let p = 1; p < 256; p++) if (plan[p] !== plan[p - 1]) runs++;
    expect(runs).toBeLessThan(256 / 2);
  });

  it('falls back per partition', () => {
    const table = ring(5, 64);
    const plan = coveragePlan(table, 0, 64, (id, p) => !(p === 7 && id === table.primaries(7)[0]));
    expect(plan[7]).not.toBe(table.primaries(7)[0]);
    expect(table.primaries(7)).toContain(plan[7]);
  });
});

describe('listing cursors', () => {
  it('round-trip positions', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        fc.option(fc.uint8Array({ maxLength: 64 }), { nil: null }),
        (partition, after) => {
          const cursor = encodeCursor({ partition, after }, 256);
          expect(decodeCursor(cursor, 256, 1024)).toEqual({ partition, after });
        },
      ),
    );
  });

  it('reject anything else with a TypeError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 40 }), fc.anything()), (forged) => {
        try {
          const position = decodeCursor(forged, 256, 16);
          // Whatever is accepted is a position inside the ring.
          expect(position.partition).toBeLessThan(256);
          expect(position.after === null || position.after.byteLength <= 16).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(TypeError);
        }
      }),
    );
    const long = encodeCursor({ partition: 1, after: new Uint8Array(17) }, 256);
    expect(() => decodeCursor(long, 256, 16)).toThrow(TypeError);
    expect(() => decodeCursor(encodeCursor({ partition: 300, after: null }, 512), 256, 16)).toThrow(/512/);
  });
});

const object = (live: boolean) =>
  encodeObject({
    ctx: new Map([['a@1', 1]]),
    siblings: [{ dot: ['a@1', 1], value: live ? Uint8Array.of(1, 2, 3) : null, timestamp: 5 }],
  });

async function storageWith(partitions: Record<number, [string, boolean][]>): Promise<MemoryStorage> {
  const storage = new MemoryStorage();
  await storage.open();
  const ops = [];
  for (const [p, keys] of Object.entries(partitions)) {
    for (const [k, live] of keys) {
      ops.push({ type: 'put' as const, key: dataKey(Number(p), Buffer.from(k)), value: object(live) });
    }
  }
  await storage.batch(ops);
  return storage;
}

const text = (key: Uint8Array) => Buffer.from(key).toString();

describe('scanPartitions', () => {
  it('stops at each limit and resumes exactly where it stopped', async () => {
    const keys: [string, boolean][] = Array.from({ length: 50 }, (_, i) => [
      `k${String(i).padStart(2, '0')}`,
      i % 3 !== 0,
    ]);
    const storage = await storageWith({ 1: keys, 2: keys.slice(0, 5), 4: [] });
    const live = keys.filter(([, l]) => l).map(([k]) => k);
    const expected = [
      ...live.map((k) => `1/${k}`),
      ...keys
        .slice(0, 5)
        .filter(([, l]) => l)
        .map(([k]) => `2/${k}`),
    ];
    for (const limits of [
      { maxKeys: 4, maxBytes: 1000, maxScanned: 1000 },
      { maxKeys: 100, maxBytes: 10, maxScanned: 1000 },
      { maxKeys: 100, maxBytes: 1000, maxScanned: 3 },
      { maxKeys: 1, maxBytes: 1, maxScanned: 1 },
    ]) {
      const got: string[] = [];
      let partitions = [1, 2, 3, 4];
      let after: Uint8Array | null = null;
      for (let round = 0; round < 200; round++) {
        const r = await scanPartitions(
          storage,
          partitions,
          after,
          limits,
          'keys',
          (o) => liveObject(o, 0),
          () => true,
        );
        expect(r.entries.length).toBeLessThanOrEqual(limits.maxKeys);
        got.push(...r.entries.map((e) => `${e.partition}/${text(e.key)}`));
        if (r.stop === null) break;
        partitions = partitions.filter((p) => p >= r.stop!.partition);
        after = r.stop.after;
      }
      expect(got).toEqual(expected);
    }
  });

  it('returns objects, tombstones included, in objects mode', async () => {
    const storage = await storageWith({
      0: [
        ['a', true],
        ['b', false],
      ],
    });
    const r = await scanPartitions(
      storage,
      [0],
      null,
      { maxKeys: 10, maxBytes: 1 << 20, maxScanned: 100 },
      'objects',
      (o) => liveObject(o, 0),
      () => true,
    );
    expect(r.entries.map((e) => text(e.key))).toEqual(['a', 'b']);
    expect(r.entries[1]!.object).toEqual(object(false));
  });

  it('refuses a partition it does not hold, before or after scanning it', async () => {
    const storage = await storageWith({ 0: [['a', true]] });
    const limits = { maxKeys: 10, maxBytes: 1000, maxScanned: 100 };
    await expect(
      scanPartitions(
        storage,
        [0],
        null,
        limits,
        'keys',
        (o) => liveObject(o, 0),
        () => false,
      ),
    ).rejects.toBeInstanceOf(NotRunningError);
    let calls = 0;
    const dropped = () => ++calls === 1;
    await expect(
      scanPartitions(storage, [0], null, limits, 'keys', (o) => liveObject(o, 0), dropped),
    ).rejects.toBeInstanceOf(NotRunningError);
  });
});

describe('List messages', () => {
  it('reject malformed requests', () => {
    const bad: unknown[][] = [
      [MessageType.List, [], null, 10, 100, 0],
      [MessageType.List, [3, 2], null, 10, 100, 0],
      [MessageType.List, [300], null, 10, 100, 0],
      [MessageType.List, [1], 'key', 10, 100, 0],
      [MessageType.List, [1], null, 0, 100, 0],
      [MessageType.List, [1], null, 100_000, 100, 0],
      [MessageType.List, [1], null, 10, 100, 2],
      [MessageType.List, [1], new Uint8Array(2000), 10, 100, 0],
    ];
    for (const m of bad) expect(() => parseListRequest(m, 256, 1024)).toThrow(WireError);
    expect(parseListRequest([MessageType.List, [1, 5], null, 10, 100, 1], 256, 1024).mode).toBe('objects');
  });

  it('reject replies out of order, outside the request, or over its limits', () => {
    const request = {
      partitions: [2, 3],
      after: Buffer.from('m'),
      maxKeys: 3,
      maxBytes: 100,
      mode: 'keys' as const,
    };
    const k = (s: string) => Buffer.from(s);
    const ok = listReplyFields(
      {
        entries: [
          { partition: 2, key: k('n') },
          { partition: 3, key: k('a') },
        ],
        stop: null,
      },
      'keys',
    );
    expect(parseListReply(ok, request, 1024, 1024).entries).toHaveLength(2);
    const bad: unknown[][] = [
      [[2, k('a')], null],
      [[4, k('z')], null],
      [[3, k('b'), 3, k('a')], null],
      [[2, k('n'), 2, k('o'), 2, k('p'), 2, k('q')], null],
      [
        [2, k('n')],
        [2, k('m')],
      ],
      ['nope', null],
    ];
    for (const reply of bad) expect(() => parseListReply(reply, request, 1024, 1024)).toThrow(WireError);
    expect(comparePosition({ partition: 1, after: null }, { partition: 1, after: k('') })).toBeLessThan(0);
  });
});
