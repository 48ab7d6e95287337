import { afterEach, describe, expect, it } from 'vitest';
import { DynamoClient } from '../../src/client/index.js';
import { DynamoNode, MemoryStorage, QuorumError, VirtualClock } from '../../src/index.js';
import { partitionOf } from '../../src/ring/index.js';
import { type Cluster, createCluster } from '../../src/testing/index.js';
import { MessageType } from '../../src/transport/wire.js';
import { drive, primariesOf } from '../helpers.js';

const utf8 = new TextEncoder();

let cluster: Cluster<unknown> | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

const ZONE_OF: Record<string, string> = {
  a1: 'az-a',
  a2: 'az-a',
  b1: 'az-b',
  b2: 'az-b',
  c1: 'az-c',
  c2: 'az-c',
};
const fast = { requestTimeoutMs: 100, gossipIntervalMs: 200, hintedHandoff: { intervalMs: 200 } };

/** 6 nodes in 3 zones, N = 3, strict quorum, R = W = 2 (the acceptance layout). */
async function sixInThreeZones(clock: VirtualClock, extra: object = {}): Promise<Cluster<unknown>> {
  return createCluster({
    nodes: Object.keys(ZONE_OF),
    clock,
    quorum: { n: 3, r: 2, w: 2 },
    nodeOptions: (id) => ({ ...fast, sloppyQuorum: false, zone: ZONE_OF[id], ...extra }),
  });
}

describe('zones: a cluster spread over three zones', () => {
  it('a seventh node joining a zone, and a node moved to another zone on restart: the ring is laid out again, still one replica per zone', async () => {
    const clock = new VirtualClock();
    cluster = await sixInThreeZones(clock);
    const c = cluster;
    const moved: string[] = [];
    for (const n of c.nodes) n.on('ring:change', () => moved.push(n.id));
    // b2 restarts in zone c: three zones of 2, 1 and 3 members.
    await c.stopNode('b2');
    ZONE_OF.b2 = 'az-c';
    try {
      await c.restart('b2');
      await c.settle(20_000);
      const status = c.node('a1').ringStatus();
      expect(status.settled).toBe(true);
      expect(
        c
          .node('a1')
          .members()
          .find((m) => m.id === 'b2')!.zone,
      ).toBe('az-c');
      expect(status.zones).toMatchObject({ required: 3, violations: 0 });
      // Each zone still holds one replica of every key, whatever its size.
      for (const z of status.zones!.list) expect(Math.abs(z.partitions - 256 / 3)).toBeLessThan(1);
      for (let i = 0; i < 100; i++) {
        expect(new Set(primariesOf(c.node('c1'), `key:${i}`).map((id) => ZONE_OF[id])).size).toBe(3);
      }
      // A seventh node joins zone a: it takes its partitions from its zone-mates.
      const before = c
        .node('a1')
        .ringStatus()
        .zones!.list.map((z) => z.partitions);
      const a3 = await drive(
        clock,
        DynamoNode.start({
          ...fast,
          id: 'a3',
          zone: 'az-a',
          sloppyQuorum: false,
          quorum: { n: 3, r: 2, w: 2 },
          transport: c.network.connect('a3'),
          storage: new MemoryStorage(),
          seeds: ['a1'],
          clock,
        }),
      );
      try {
        await c.settle(20_000);
        const after = a3.ringStatus();
        expect(after.settled).toBe(true);
        expect(after.zones).toMatchObject({ required: 3, violations: 0 });
        expect(after.zones!.list.map((z) => z.partitions)).toEqual(before);
        expect(a3.members().find((m) => m.id === 'a3')!.partitions).toBeGreaterThan(0);
      } finally {
        await a3.stop();
      }
    } finally {
      ZONE_OF.b2 = 'az-b';
    }
    expect(moved.length).toBeGreaterThan(0);
  });

  it('gossips every member’s zone; every key has one replica in each zone; ringStatus says so', async () => {
    const clock = new VirtualClock();
    cluster = await sixInThreeZones(clock);
    const c = cluster;
    for (const node of c.nodes) {
      expect(node.members().map((m) => [m.id, m.zone])).toEqual(Object.entries(ZONE_OF));
      const status = node.ringStatus();
      expect(status.settled).toBe(true);
      expect(status.zones).toMatchObject({ required: 3, violations: 0 });
      expect(status.zones!.list.map((z) => [z.zone, z.members])).toEqual([
        ['az-a', 2],
        ['az-b', 2],
        ['az-c', 2],
      ]);
      for (const z of status.zones!.list) expect(z.share).toBeCloseTo(1 / 3, 1);
    }
    for (let i = 0; i < 200; i++) {
      const zones = primariesOf(c.nodes[i % 6]!, `key:${i}`).map((id) => ZONE_OF[id]);
      expect(new Set(zones).size).toBe(3);
    }
  });

  it('a layout that cannot meet the guarantee is reported: ringStatus counts it exactly, an event and the log say so', async () => {
    // Eight partitions, N = 5 over five zones, one of them with three of the seven members:
    // balance leaves some keys with two replicas in that zone.
    const zoneOf: Record<string, string> = { a1: 'A', a2: 'A', a3: 'A', b1: 'B', c1: 'C', d1: 'D', e1: 'E' };
    const clock = new VirtualClock();
    const warned: string[] = [];
    cluster = await createCluster({
      nodes: Object.keys(zoneOf),
      clock,
      quorum: { n: 5, r: 2, w: 2 },
      nodeOptions: (id) => ({
        ...fast,
        partitions: 8,
        zone: zoneOf[id],
        logger: {
          debug() {},
          info() {},
          warn: (_o: object, msg?: string) => {
            if (msg?.startsWith('zone guarantee')) warned.push(id);
          },
          error() {},
        },
      }),
    });
    const a1 = cluster.node('a1');
    const countLacking = (required: number) => {
      const lacking = new Set<number>();
      for (let i = 0; i < 400; i++) {
        const key = `key:${i}`;
        const zones = new Set(primariesOf(a1, key).map((id) => zoneOf[id]));
        if (zones.size < required) lacking.add(partitionOf(utf8.encode(key), 8));
      }
      return lacking.size;
    };
    const before = a1.ringStatus().zones!;
    expect(before.required).toBe(5);
    expect(before.violations).toBeGreaterThan(0);
    expect(countLacking(5)).toBe(before.violations);
    expect(warned).toContain('a1');
    // A ring change (a member removed) reports again, with the new ring's count.
    const events: { version: number; violations: number; required: number; zones: number }[] = [];
    a1.on('zone:violation', (e) => events.push(e));
    await cluster.stopNode('e1');
    a1.removeMember('e1');
    await cluster.settle(20_000);
    const after = a1.ringStatus();
    expect(after.zones!.required).toBe(4);
    expect(after.zones!.violations).toBeGreaterThan(0);
    expect(countLacking(4)).toBe(after.zones!.violations);
    expect(events.at(-1)).toEqual({
      version: after.version,
      violations: after.zones!.violations,
      required: 4,
      zones: 4,
    });
  });

  it('sloppy quorum: the fallback for a down replica comes from its zone when it can, so the write spans every zone', async () => {
    const zones: Record<string, string> = {};
    for (const z of ['a', 'b', 'c']) for (const i of [1, 2, 3]) zones[`${z}${i}`] = `az-${z}`;
    const clock = new VirtualClock();
    cluster = await createCluster({
      nodes: Object.keys(zones),
      clock,
      quorum: { n: 3, r: 2, w: 3 },
      nodeOptions: (id) => ({ ...fast, zone: zones[id] }),
    });
    const c = cluster;
    const holders: { holder: string; target: string }[] = [];
    for (const n of c.nodes) n.on('hint:stored', (e) => holders.push({ holder: n.id, target: e.target }));
    let checked = 0;
    for (let i = 0; i < 40; i++) {
      const key = `k${i}`;
      const primaries = primariesOf(c.nodes[0]!, key);
      const down = primaries[0]!;
      const coordinator = c.node(primaries[1]!);
      c.network.partition([down]);
      // The first put finds the replica gone mid-request, the second routes around it: both hint
      // to a node of the down replica's zone (W = 3: all three zones acknowledge).
      await drive(clock, coordinator.put(key, { i }));
      await drive(clock, coordinator.put(key, { i: i + 1 }));
      c.network.heal();
      await c.settle(2_000);
      for (const h of holders.splice(0)) {
        expect(h.target).toBe(down);
        expect(zones[h.holder]).toBe(zones[down]);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(40);
  });

  it('members without a zone: no zone report, the ring as before', async () => {
    const clock = new VirtualClock();
    cluster = await createCluster({ nodes: 4, clock, nodeOptions: fast });
    expect(cluster.nodes[0]!.ringStatus().zones).toBeNull();
    expect(cluster.nodes[0]!.members().every((m) => !('zone' in m))).toBe(true);
  });

  it('without zones the same outage makes keys unavailable: two of their replicas were in the lost zone', async () => {
    const clock = new VirtualClock();
    cluster = await createCluster({
      nodes: Object.keys(ZONE_OF),
      clock,
      quorum: { n: 3, r: 2, w: 2 },
      nodeOptions: { ...fast, sloppyQuorum: false },
    });
    const c = cluster;
    c.network.partition(['a1', 'a2']);
    let failed = 0;
    for (let i = 0; i < 60; i++) {
      await drive(clock, c.node('b1').put(`k${i}`, { v: 1 })).catch(() => failed++);
    }
    expect(failed).toBeGreaterThan(0);
  });

  for (const fault of ['partitioned away', 'crashed'] as const) {
    it(`one whole zone ${fault}: every get and put succeeds (strict quorum, R = W = 2), and after the heal no write is lost`, async () => {
      const clock = new VirtualClock();
      cluster = await sixInThreeZones(clock);
      const c = cluster;
      // Before: a value on every key, so reads have something to find.
      for (let i = 0; i < 60; i++) await drive(clock, c.nodes[i % 6]!.put(`k${i}`, { v: 0 }));
      const lost = ['a1', 'a2'];
      if (fault === 'partitioned away') c.network.partition(lost);
      else for (const id of lost) await c.stopNode(id);
      const alive = c.nodes.filter((n) => !lost.includes(n.id));
      const acked = new Map<string, number>();
      for (let round = 1; round <= 3; round++) {
        for (let i = 0; i < 60; i++) {
          const node = alive[(i + round) % alive.length]!;
          const read = await drive(clock, node.get(`k${i}`));
          expect(read.values.length).toBeGreaterThan(0);
          await drive(clock, node.put(`k${i}`, { v: round }, { context: read.context }));
          acked.set(`k${i}`, round);
        }
      }
      if (fault === 'partitioned away') c.network.heal();
      else for (const id of lost) await c.restart(id);
      await c.settle(20_000);
      // Every acknowledged write is there, read from the zone that was away too.
      for (const [key, v] of acked) {
        const node = c.node(lost[0]!);
        const read = await drive(clock, node.get(key, { r: 3 }));
        expect(read.values).toEqual([{ v }]);
      }
    });
  }
});

describe('zones: minZones on a put', () => {
  it('fails with QuorumError naming the zone that answered when only one zone answers, succeeds otherwise', async () => {
    const clock = new VirtualClock();
    // Sloppy quorum: with zones b and c away, fallbacks in zone a would make W = 2 alone.
    cluster = await createCluster({
      nodes: Object.keys(ZONE_OF),
      clock,
      quorum: { n: 3, r: 2, w: 2 },
      nodeOptions: (id) => ({ ...fast, zone: ZONE_OF[id] }),
    });
    const c = cluster;
    // All up: every key's replicas span three zones.
    for (let i = 0; i < 20; i++) await drive(clock, c.nodes[i % 6]!.put(`k${i}`, i, { minZones: 3 }));
    // One zone away: two zones still answer.
    c.network.partition(['c1', 'c2']);
    for (let i = 0; i < 20; i++)
      await drive(clock, c.node(i % 2 ? 'a1' : 'b2').put(`k${i}`, i, { minZones: 2 }));
    // Only zone a answers: W = 2 is met (a fallback in zone a stands in), minZones = 2 is not.
    c.network.heal();
    c.network.partition(['a1', 'a2'], ['b1', 'b2', 'c1', 'c2']);
    let failures = 0;
    for (let i = 0; i < 20; i++) {
      const err = await drive(clock, c.node('a1').put(`k${i}`, i, { minZones: 2 })).catch((e) => e);
      expect(err).toBeInstanceOf(QuorumError);
      expect(err.requiredZones).toBe(2);
      expect(err.zones).toEqual(['az-a']);
      expect(err.message).toContain('in 2 zones');
      failures++;
    }
    expect(failures).toBe(20);
    // Without minZones the same puts succeed on zone a alone (sloppy quorum): the guarantee minZones adds.
    for (let i = 0; i < 5; i++) await drive(clock, c.node('a1').put(`k${i}`, i));
    c.network.heal();
  });

  it('through a forwarding node and through a DynamoClient, the QuorumError keeps the zones', async () => {
    const clock = new VirtualClock();
    cluster = await createCluster({
      nodes: Object.keys(ZONE_OF),
      clock,
      quorum: { n: 3, r: 2, w: 1 },
      nodeOptions: (id) => ({ ...fast, zone: ZONE_OF[id], sloppyQuorum: false }),
    });
    const c = cluster;
    c.network.partition(['a1', 'a2', 'x']);
    // A key a1 is not a replica of is forwarded to a replica in zone a.
    let key = '';
    for (let i = 0; !key; i++) {
      const p = primariesOf(c.node('a1'), `f${i}`);
      if (!p.includes('a1') && p.includes('a2')) key = `f${i}`;
    }
    const err = await drive(clock, c.node('a1').put(key, 1, { minZones: 2 })).catch((e) => e);
    expect(err).toBeInstanceOf(QuorumError);
    expect(err.zones).toEqual(['az-a']);
    expect(err.requiredZones).toBe(2);
    // W = 1 alone would have succeeded.
    await drive(clock, c.node('a1').put(key, 1));
    c.network.heal();
    await c.settle(15_000);
    const client = await drive(
      clock,
      DynamoClient.start({
        id: 'x',
        transport: c.network.connect('x'),
        seeds: ['a1'],
        clock,
        quorum: { n: 3, r: 2, w: 1 },
        requestTimeoutMs: 100,
        sloppyQuorum: false,
      }),
    );
    try {
      await drive(clock, client.put(key, 2, { minZones: 3 }));
      c.network.partition(['a1', 'a2', 'x']);
      const e2 = await drive(clock, client.put(key, 3, { minZones: 2 })).catch((e) => e);
      expect(e2).toBeInstanceOf(QuorumError);
      expect(e2.zones).toEqual(['az-a']);
    } finally {
      c.network.heal();
      await drive(clock, client.stop());
    }
  });

  it('minZones above the zones the ring has is refused at once; above N is a RangeError', async () => {
    const clock = new VirtualClock();
    cluster = await createCluster({ nodes: 3, clock, nodeOptions: fast });
    const node = cluster.nodes[0]!;
    const err = await drive(clock, node.put('k', 1, { minZones: 2 })).catch((e) => e);
    expect(err).toBeInstanceOf(QuorumError);
    expect(err.message).toContain("the ring's owners are in 1 zone");
    await expect(node.put('k', 1, { minZones: 4 })).rejects.toThrow(RangeError);
    await expect(
      createCluster({ nodes: 1, clock: new VirtualClock(), nodeOptions: { minZones: 0 } }),
    ).rejects.toThrow(RangeError);
  });
});

describe('zones: reads that prefer the caller’s zone', () => {
  const readsServed = (c: Cluster<unknown>, ids: string[]) =>
    ids.reduce((sum, id) => sum + (c.node(id).stats().served[String(MessageType.Read)] ?? 0), 0);

  it('a node in zone a reads from zone a; the other zones are asked only when a local replica fails', async () => {
    const clock = new VirtualClock();
    cluster = await sixInThreeZones(clock);
    const c = cluster;
    for (let i = 0; i < 30; i++) await drive(clock, c.nodes[i % 6]!.put(`k${i}`, i));
    await c.settle(2_000);
    const remote = ['b1', 'b2', 'c1', 'c2'];
    const before = readsServed(c, remote);
    for (let i = 0; i < 30; i++) {
      const read = await drive(clock, c.node('a1').get(`k${i}`, { r: 1, preferLocalZone: true }));
      expect(read.values).toEqual([i]);
    }
    expect(readsServed(c, remote)).toBe(before);
    // r = 2 with one replica per zone: one local and exactly one other per read.
    const before2 = readsServed(c, remote);
    for (let i = 0; i < 30; i++) await drive(clock, c.node('a1').get(`k${i}`, { preferLocalZone: true }));
    expect(readsServed(c, remote) - before2).toBe(30);
    // Without the preference every replica is asked.
    const before3 = readsServed(c, remote);
    for (let i = 0; i < 30; i++) await drive(clock, c.node('a1').get(`k${i}`, { r: 1 }));
    expect(readsServed(c, remote) - before3).toBe(60);
    // The local replica gone: the read still succeeds, from the other zones.
    c.network.partition(['a2']);
    for (let i = 0; i < 30; i++) {
      const key = `k${i}`;
      if (!primariesOf(c.node('a1'), key).includes('a2')) continue;
      const read = await drive(clock, c.node('a1').get(key, { r: 1, preferLocalZone: true }));
      expect(read.values).toEqual([i]);
    }
    c.network.heal();
  });

  it('a DynamoClient with a zone (latency-aware) reads from its zone, hedging to others within the budget', async () => {
    const clock = new VirtualClock();
    cluster = await sixInThreeZones(clock);
    const c = cluster;
    for (let i = 0; i < 50; i++) await drive(clock, c.nodes[i % 6]!.put(`k${i}`, i));
    const client = await drive(
      clock,
      DynamoClient.start({
        id: 'app-b',
        zone: 'az-b',
        preferLocalZone: true,
        transport: c.network.connect('app-b'),
        seeds: ['a1'],
        clock,
        quorum: { n: 3, r: 1, w: 2 },
        requestTimeoutMs: 100,
      }),
    );
    try {
      const others = ['a1', 'a2', 'c1', 'c2'];
      const before = readsServed(c, others);
      const local = readsServed(c, ['b1', 'b2']);
      const reads = 100;
      for (let i = 0; i < reads; i++) {
        expect((await drive(clock, client.get(`k${i % 50}`))).values).toEqual([i % 50]);
      }
      expect(readsServed(c, ['b1', 'b2']) - local).toBe(reads);
      // Other zones only through timed hedges, which the budget caps at 10 % of reads (+ a burst).
      expect(readsServed(c, others) - before).toBeLessThanOrEqual(reads * 0.1 * 2 + 10);
      await expect(
        DynamoClient.start({
          id: 'y',
          transport: c.network.connect('y'),
          seeds: ['a1'],
          preferLocalZone: true,
        }),
      ).rejects.toThrow(/preferLocalZone needs the zone option/);
    } finally {
      await drive(clock, client.stop());
    }
  });
});
