/**
 * Operation ids at the node level: what a client can do with contexts and request ids, and what
 * limits the op entries run into.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type DynamoNode, VirtualClock } from '../../src/index.js';
import { type Cluster, createCluster } from '../../src/testing/index.js';
import { drive, primariesOf } from '../helpers.js';

let cluster: Cluster<unknown> | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

const fast = {
  requestTimeoutMs: 100,
  gossipIntervalMs: 200,
  hintedHandoff: { intervalMs: 200 },
  antiEntropy: { intervalMs: 500, enabled: true },
};

/** A node that is not a replica of `key` (its puts are forwarded, so they carry an op id). */
function outsider(c: Cluster<unknown>, key: string): DynamoNode<unknown> {
  const primaries = primariesOf(c.nodes[0]!, key);
  return c.nodes.find((n) => !primaries.includes(n.id))!;
}

describe('request ids and operation ids through the public API', () => {
  it('a put with a requestId is stored even when an earlier put carried a context from another key', async () => {
    const clock = new VirtualClock();
    cluster = await createCluster({ nodes: 3, clock, quorum: { n: 3, r: 2, w: 2 }, nodeOptions: fast });
    const node = cluster.nodes[0]!;
    // A context of key "a" that remembers requestId "pay-1" (any forged context could too) ...
    const { context: foreign } = await drive(clock, node.put('a', 'x', { requestId: 'pay-1' }));
    // ... passed, by mistake, with a put on key "b": before op ids this could supersede values of
    // "b" (what the context covers), but never a write made after it.
    await drive(clock, node.put('b', 'first', { context: foreign }));
    const read = await drive(clock, node.get('b'));
    // A later, acknowledged put on "b" that happens to use request id "pay-1".
    await drive(clock, node.put('b', 'paid', { context: read.context, requestId: 'pay-1' }));
    expect((await drive(clock, node.get('b', { r: 3 }))).values).toEqual(['paid']);
  });

  it('a requestId reused with a different value is taken for a retry: the second put stores nothing', async () => {
    // The documented contract (docs/api/errors.md, "Retrying safely"): an id names one intended write; a put
    // with an id the key has seen is a retry of that write and resolves without storing again.
    const clock = new VirtualClock();
    cluster = await createCluster({ nodes: 3, clock, quorum: { n: 3, r: 2, w: 2 }, nodeOptions: fast });
    const node = cluster.nodes[0]!;
    const first = await drive(clock, node.put('k', 'a', { requestId: 'r1' }));
    const second = await drive(clock, node.put('k', 'b', { context: first.context, requestId: 'r1' }));
    expect(second.context).toBeTypeOf('string');
    expect((await drive(clock, node.get('k', { r: 3 }))).values).toEqual(['a']);
  });

  it('siblings of forwarded puts leave a context the next put accepts (small maxClockEntries)', async () => {
    // Each forwarded put's op id is an entry of the key's ctx as long as its sibling is live, and
    // live entries are never pruned; decodeContext accepts maxClockEntries * 4 entries.
    const clock = new VirtualClock();
    cluster = await createCluster({
      nodes: 4,
      clock,
      quorum: { n: 3, r: 2, w: 2 },
      nodeOptions: { ...fast, limits: { maxClockEntries: 5 } },
    });
    const key = 'cart:7';
    const client = outsider(cluster, key);
    // 25 blind writes (no context) through a node that forwards them: 25 siblings, 25 op ids.
    for (let i = 0; i < 25; i++) await drive(clock, client.put(key, `item${i}`));
    const read = await drive(clock, client.get(key, { r: 3 }));
    expect(read.values).toHaveLength(25);
    // The docs' advice for many siblings: read, then write with the read's context.
    await drive(clock, client.put(key, 'merged', { context: read.context }));
    expect((await drive(clock, client.get(key, { r: 3 }))).values).toEqual(['merged']);
  });

  it('a requestId retry after the tombstone purge is a new write (the documented window)', async () => {
    // The dedupe state lives in the key's ctx; purging the tombstone (after tombstoneGraceMs,
    // default a day) deletes the key, ctx and all, so a retry that late writes again.
    const clock = new VirtualClock();
    cluster = await createCluster({
      nodes: 3,
      clock,
      quorum: { n: 3, r: 3, w: 3 },
      nodeOptions: { ...fast, tombstoneGraceMs: 5_000, readRepair: false },
    });
    const c = cluster;
    const node = c.nodes[0]!;
    await drive(clock, node.put('job', 'run', { requestId: 'job-1' }));
    const read = await drive(clock, node.get('job'));
    await drive(clock, node.delete('job', { context: read.context }));
    await c.settle(30_000);
    expect(c.nodes.reduce((s, n) => s + n.stats().antiEntropy.purged, 0)).toBe(3);
    // A client's retry of the first put (same requestId) after the purge is stored again.
    await drive(clock, node.put('job', 'run', { requestId: 'job-1' }));
    expect((await drive(clock, node.get('job'))).values).toEqual(['run']);
  });
});
