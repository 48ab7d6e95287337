/**
 * One client write, one dot: a forwarded put that times out at its first coordinator, which
 * applies it anyway, and is then coordinated again by the next replica, is one write.
 * Before operation ids, the two copies were two siblings, and the second came back after the
 * client's next write superseded the first.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/index.js';
import { type Cluster, createCluster } from '../../src/testing/index.js';
import { decode, drive, localObject, primariesOf } from '../helpers.js';

let cluster: Cluster<unknown> | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

const options = {
  requestTimeoutMs: 100,
  gossipIntervalMs: 200,
  hintedHandoff: { intervalMs: 200 },
  antiEntropy: { intervalMs: 500, enabled: true },
};

/** Every primary's own copy of `key`, as [dot, value] pairs. */
async function copies(c: Cluster<unknown>, key: string, primaries: string[]) {
  const out: { node: string; siblings: { dot: string; value: unknown }[] }[] = [];
  for (const id of primaries) {
    const o = await localObject(c.storage(id), key, 256);
    out.push({
      node: id,
      siblings: (o?.siblings ?? []).map((s) => ({
        dot: s.dot.join(':'),
        value: s.value === null ? null : decode(s.value),
      })),
    });
  }
  return out;
}

/**
 * A 5-node cluster and a key whose first primary applies what it is sent but whose every reply
 * and replication message is lost, and which hears from nobody but the forwarding node: the
 * forward times out after the first primary applied the write.
 */
async function timeoutThenApply() {
  const clock = new VirtualClock();
  cluster = await createCluster({ nodes: 5, clock, quorum: { n: 3, r: 2, w: 2 }, nodeOptions: options });
  const c = cluster;
  const key = 'cart:7';
  const primaries = primariesOf(c.nodes[0]!, key);
  const forwarder = c.nodes.find((n) => !primaries.includes(n.id))!;
  const [first, second] = primaries as [string, string, string];
  for (const n of c.nodes) {
    if (n.id === first) continue;
    c.network.partitionOneWay(first, n.id);
    if (n.id !== forwarder.id) c.network.partitionOneWay(n.id, first);
  }
  const { context } = await drive(clock, forwarder.put(key, 'v'));
  expect(typeof context).toBe('string');
  // The first primary did apply it (under its own dot); the second coordinated it again.
  const before = await copies(c, key, primaries);
  const applied = before.filter((x) => x.siblings.length > 0).map((x) => x.node);
  expect(applied).toContain(first);
  expect(applied).toContain(second);
  const dots = new Set(before.flatMap((x) => x.siblings.map((s) => s.dot)));
  expect(dots.size).toBe(2);
  return { c, clock, key, primaries, forwarder, first, second };
}

describe('one write, one dot (forwarded put retried at the next coordinator)', () => {
  it('the two copies converge to one sibling under one dot on every replica', async () => {
    const { c, key, primaries } = await timeoutThenApply();
    c.network.heal();
    await c.settle(5_000);
    const after = await copies(c, key, primaries);
    for (const copy of after) expect(copy.siblings).toHaveLength(1);
    expect(new Set(after.map((x) => x.siblings[0]!.dot)).size).toBe(1);
    const read = await drive(c.clock, c.nodes[0]!.get(key, { r: 3 }));
    expect(read.values).toEqual(['v']);
  });

  it('a put whose context saw one copy supersedes both: the value never comes back', async () => {
    const { c, clock, key, primaries, first } = await timeoutThenApply();
    // Read while the first primary is still cut off: the context has seen the second's copy only.
    const reader = c.nodes.find((n) => n.id !== first && primaries.includes(n.id))!;
    const read = await drive(clock, reader.get(key));
    expect(read.values).toEqual(['v']);
    await drive(clock, reader.put(key, 'w', { context: read.context }));
    c.network.heal();
    await c.settle(5_000);
    const final = await drive(clock, c.nodes[0]!.get(key, { r: 3 }));
    expect(final.values).toEqual(['w']);
    for (const copy of await copies(c, key, primaries)) {
      expect(copy.siblings.map((s) => s.value)).toEqual(['w']);
    }
  });

  it('holds across a crash of the first coordinator: its copy, read back from storage, is still a twin', async () => {
    const { c, clock, key, primaries, first } = await timeoutThenApply();
    await c.stopNode(first);
    c.network.heal();
    await c.restart(first);
    await c.settle(5_000);
    const after = await copies(c, key, primaries);
    for (const copy of after) expect(copy.siblings.map((s) => s.value)).toEqual(['v']);
    expect(new Set(after.map((x) => x.siblings[0]!.dot)).size).toBe(1);
    expect((await drive(clock, c.node(first).get(key, { r: 3 }))).values).toEqual(['v']);
  });

  it('a forward delivered twice is stored once', async () => {
    const clock = new VirtualClock();
    cluster = await createCluster({
      nodes: 5,
      clock,
      quorum: { n: 3, r: 2, w: 2 },
      nodeOptions: options,
      network: { duplicateRate: 1 },
    });
    const c = cluster;
    const key = 'cart:8';
    const primaries = primariesOf(c.nodes[0]!, key);
    const forwarder = c.nodes.find((n) => !primaries.includes(n.id))!;
    await drive(clock, forwarder.put(key, 'v'));
    await c.settle(2_000);
    const all = await copies(c, key, primaries);
    for (const copy of all) expect(copy.siblings).toHaveLength(1);
    expect(new Set(all.map((x) => x.siblings[0]!.dot)).size).toBe(1);
  });
});
