/**
 * Anti-entropy acceptance: read repair and sloppy quorum are off, so only anti-entropy can bring
 * replicas together. Everything runs on a VirtualClock over a MemoryNetwork.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type DynamoNodeOptions, VirtualClock } from '../../src/index.js';
import { dataKey } from '../../src/replica/layout.js';
import { partitionOf } from '../../src/ring/index.js';
import type { Storage } from '../../src/storage/types.js';
import { type Cluster, createCluster } from '../../src/testing/index.js';
import { isDeleted } from '../../src/versioning/index.js';
import { decode, drive, localObject } from '../helpers.js';

let cluster: Cluster<unknown> | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

const INTERVAL_MS = 1000;
const base: Partial<DynamoNodeOptions<unknown>> = {
  readRepair: false,
  sloppyQuorum: false,
  requestTimeoutMs: 100,
  gossipIntervalMs: 200,
  partitions: 64,
  antiEntropy: { intervalMs: INTERVAL_MS, enabled: true },
};

async function start(options: Partial<DynamoNodeOptions<unknown>> = {}): Promise<Cluster<unknown>> {
  const clock = new VirtualClock();
  cluster = await createCluster({
    nodes: 3,
    clock,
    quorum: { n: 3, r: 1, w: 1 },
    nodeOptions: { ...base, ...options },
  });
  return cluster;
}

/** The whole data region of a node's storage, as hex lines: byte-for-byte comparable. */
async function dataDump(storage: Storage): Promise<string[]> {
  const out: string[] = [];
  for await (const [k, v] of storage.iterate({ gte: Uint8Array.of(0x01), lt: Uint8Array.of(0x02) })) {
    out.push(`${Buffer.from(k).toString('hex')}=${Buffer.from(v).toString('hex')}`);
  }
  return out;
}

async function dumps(c: Cluster<unknown>): Promise<string[][]> {
  return Promise.all(['n1', 'n2', 'n3'].map((id) => dataDump(c.storage(id))));
}

/** Sum of keysRepaired over the sync:complete events of every node while `work` runs. */
async function repairedDuring(
  c: Cluster<unknown>,
  work: () => Promise<void>,
): Promise<{ repaired: number; events: number }> {
  let repaired = 0;
  let events = 0;
  const listener = (e: { keysRepaired: number }) => {
    repaired += e.keysRepaired;
    events++;
  };
  for (const n of c.nodes) n.on('sync:complete', listener);
  await work();
  for (const n of c.nodes) n.off('sync:complete', listener);
  return { repaired, events };
}

async function valuesOf(c: Cluster<unknown>, key: string): Promise<unknown[][]> {
  const out: unknown[][] = [];
  for (const id of ['n1', 'n2', 'n3']) {
    const o = await localObject(c.storage(id), key, 64);
    out.push(o ? o.siblings.filter((s) => s.value !== null).map((s) => decode(s.value!)) : []);
  }
  return out;
}

describe('anti-entropy', () => {
  it('converges 1,000 keys written while two replicas were isolated, then repairs nothing more', async () => {
    const c = await start();
    c.network.partition(['n2']);
    c.network.partition(['n3']);
    const writer = c.node('n1');
    for (let batch = 0; batch < 10; batch++) {
      await drive(
        c.clock,
        Promise.all(
          Array.from({ length: 100 }, (_, j) => writer.put(`k${batch * 100 + j}`, { i: batch * 100 + j })),
        ),
      );
    }
    const before = await dumps(c);
    expect(before[0]).toHaveLength(1000);
    expect(before[1]).toHaveLength(0);
    expect(before[2]).toHaveLength(0);

    c.network.heal();
    await c.settle(30_000);
    const after = await dumps(c);
    expect(after[0]).toHaveLength(1000);
    expect(after[1]).toEqual(after[0]);
    expect(after[2]).toEqual(after[0]);
    const totals = c.nodes.map((n) => n.stats().antiEntropy);
    expect(totals.reduce((s, t) => s + t.keysRepaired, 0)).toBeGreaterThanOrEqual(2000);

    const further = await repairedDuring(c, () => c.settle(3 * INTERVAL_MS));
    expect(further.events).toBeGreaterThan(0);
    expect(further.repaired).toBe(0);
    expect(await dumps(c)).toEqual(after);
  });

  it('refills a replica whose storage was wiped', async () => {
    const c = await start({ quorum: { n: 3, r: 1, w: 3 } });
    for (let batch = 0; batch < 5; batch++) {
      await drive(
        c.clock,
        Promise.all(
          Array.from({ length: 100 }, (_, j) => c.node('n1').put(`w${batch * 100 + j}`, batch * 100 + j)),
        ),
      );
    }
    const full = await dataDump(c.storage('n1'));
    expect(full).toHaveLength(500);
    expect(await dataDump(c.storage('n3'))).toEqual(full);

    const restarted = await drive(c.clock, c.restart('n3', { wipe: true }));
    expect(await dataDump(c.storage('n3'))).toHaveLength(0);
    await c.settle(30_000);
    expect(await dataDump(c.storage('n3'))).toEqual(full);
    expect(restarted.stats().antiEntropy.treesBuilt).toBeGreaterThan(0);
  });

  it('converges a key updated on one replica only and a key deleted on another; the deleted key stays deleted', async () => {
    const c = await start({ quorum: { n: 3, r: 1, w: 3 } });
    await drive(c.clock, c.node('n1').put('updated', 'v1'));
    await drive(c.clock, c.node('n1').put('deleted', 'v1'));
    const read1 = await drive(c.clock, c.node('n1').get('updated'));
    const read2 = await drive(c.clock, c.node('n3').get('deleted'));

    c.network.partition(['n1']);
    c.network.partition(['n3']);
    await drive(c.clock, c.node('n1').put('updated', 'v2', { context: read1.context, w: 1 }));
    await drive(c.clock, c.node('n3').delete('deleted', { context: read2.context, w: 1 }));
    expect(await valuesOf(c, 'updated')).toEqual([['v2'], ['v1'], ['v1']]);
    expect(await valuesOf(c, 'deleted')).toEqual([['v1'], ['v1'], []]);

    c.network.heal();
    await c.settle(30_000);
    expect(await valuesOf(c, 'updated')).toEqual([['v2'], ['v2'], ['v2']]);
    expect(await valuesOf(c, 'deleted')).toEqual([[], [], []]);
    for (const id of ['n1', 'n2', 'n3']) {
      const o = await localObject(c.storage(id), 'deleted', 64);
      expect(o && isDeleted(o)).toBe(true);
      const read = await drive(c.clock, c.node(id).get('deleted', { r: 3 }));
      expect(read.values).toEqual([]);
    }
    // Much later (default grace: a day), still deleted everywhere.
    await c.settle(60_000);
    expect(await valuesOf(c, 'deleted')).toEqual([[], [], []]);
  });

  it('purges a tombstone only once every replica holds it, and the value never comes back', async () => {
    const c = await start({ quorum: { n: 3, r: 1, w: 3 }, tombstoneGraceMs: 5_000 });
    await drive(c.clock, c.node('n1').put('gone', 'v1'));
    const read = await drive(c.clock, c.node('n1').get('gone'));
    c.network.partition(['n3']);
    await drive(c.clock, c.node('n1').delete('gone', { context: read.context, w: 2 }));
    // Far past the grace period, n3 still holds the value: no replica may purge the tombstone.
    await c.settle(20_000);
    expect(await valuesOf(c, 'gone')).toEqual([[], [], ['v1']]);
    for (const id of ['n1', 'n2']) expect(await localObject(c.storage(id), 'gone', 64)).toBeDefined();

    c.network.heal();
    await c.settle(30_000);
    // The tombstone reached n3, then every replica purged it.
    for (const id of ['n1', 'n2', 'n3']) expect(await localObject(c.storage(id), 'gone', 64)).toBeUndefined();
    expect(c.nodes.reduce((s, n) => s + n.stats().antiEntropy.purged, 0)).toBe(3);
    for (const id of ['n1', 'n2', 'n3']) {
      expect((await drive(c.clock, c.node(id).get('gone', { r: 3 }))).values).toEqual([]);
    }
  });

  it('a stale tombstone on a restarted replica cannot hide a value written after the purge', async () => {
    const c = await start({ quorum: { n: 3, r: 1, w: 3 }, tombstoneGraceMs: 5_000 });
    const key = 'phoenix';
    const bytes = new TextEncoder().encode(key);
    const storageKey = dataKey(partitionOf(bytes, 64), bytes);
    await drive(c.clock, c.node('n1').put(key, 'v1'));
    const read = await drive(c.clock, c.node('n1').get(key));
    await drive(c.clock, c.node('n1').delete(key, { context: read.context }));
    // n2's copy of the tombstone, as a disk restored from before the purge would hold it.
    const staleTombstone = await c.storage('n2').get(storageKey);
    expect(staleTombstone).toBeDefined();

    await c.settle(20_000);
    for (const id of ['n1', 'n2', 'n3']) expect(await localObject(c.storage(id), key, 64)).toBeUndefined();

    await c.stopNode('n2');
    const disk = c.storage('n2');
    await disk.open();
    await disk.batch([{ type: 'put', key: storageKey, value: staleTombstone! }]);
    await disk.close();
    await drive(c.clock, c.restart('n2'));
    expect(await localObject(c.storage('n2'), key, 64)).toBeDefined();

    // Written again (no context: the key is gone), through a replica that purged it.
    await drive(c.clock, c.node('n1').put(key, 'v2'));
    await c.settle(10_000);
    expect(await valuesOf(c, key)).toEqual([['v2'], ['v2'], ['v2']]);
    for (const id of ['n1', 'n2', 'n3']) {
      expect((await drive(c.clock, c.node(id).get(key, { r: 3 }))).values).toEqual(['v2']);
    }
    // All three replicas hold the same object again (the old tombstone as a harmless sibling).
    const dumped = await dumps(c);
    expect(dumped[1]).toEqual(dumped[0]);
    expect(dumped[2]).toEqual(dumped[0]);
  });

  it('does nothing with antiEntropy.enabled false', async () => {
    const c = await start({ antiEntropy: { intervalMs: INTERVAL_MS, enabled: false } });
    c.network.partition(['n3']);
    await drive(c.clock, c.node('n1').put('x', 1));
    c.network.heal();
    const { events } = await repairedDuring(c, () => c.settle(20_000));
    expect(events).toBe(0);
    expect(await valuesOf(c, 'x')).toEqual([[1], [1], []]);
    expect(c.nodes.every((n) => n.stats().antiEntropy.exchanges === 0)).toBe(true);
  });
});
