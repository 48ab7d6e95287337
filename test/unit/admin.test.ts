/**
 * The admin message set, spoken raw to in-process nodes on a MemoryNetwork: bad input gets a clear
 * error and changes nothing; actions need an authenticated transport; and the CLI's own usage
 * errors (exit 2) never reach a node.
 */

import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ADMIN_PROTOCOL_VERSION,
  adminRequest,
  type StatusReport,
  type TransfersReport,
} from '../../src/admin/protocol.js';
import { formatRing, formatStatus, formatTransfers } from '../../src/cli/format.js';
import { EXIT, runCli } from '../../src/cli/run.js';
import { DynamoNode, MemoryNetwork, MemoryStorage, type Transport } from '../../src/index.js';
import { registerMetrics } from '../../src/metrics/index.js';
import { type Cluster, createCluster, drive } from '../../src/testing/index.js';
import { decodeReply, encodeMessage, MessageType, RemoteError } from '../../src/transport/wire.js';

let cluster: Cluster<unknown> | undefined;
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
  for (const f of cleanup.splice(0)) await f();
});

/** A raw peer on the cluster's network that sends admin messages. */
async function rawPeer(network: MemoryNetwork) {
  const peer = network.connect('operator');
  await peer.start(async () => new Uint8Array());
  cleanup.push(() => peer.stop());
  return async (to: string, message: unknown[]) =>
    decodeReply(await peer.request(to, encodeMessage(message), { timeoutMs: 1000 }));
}

const fast = { requestTimeoutMs: 100, gossipIntervalMs: 100 };

describe('admin messages', () => {
  it('answers status, ring, transfers and stats as JSON reports', async () => {
    cluster = await createCluster({ nodes: 3, nodeOptions: fast });
    const ask = await rawPeer(cluster.network);
    const [json] = await drive(cluster.clock, ask('n2', adminRequest('status')));
    const status = JSON.parse(json as string) as StatusReport;
    expect(status.node).toEqual({ id: 'n2', address: 'n2', status: 'running' });
    expect(status.members.map((m) => [m.id, m.status])).toEqual([
      ['n1', 'up'],
      ['n2', 'up'],
      ['n3', 'up'],
    ]);
    const ring = JSON.parse((await drive(cluster.clock, ask('n1', adminRequest('ring'))))[0] as string);
    expect(ring.members.map((m: { partitions: number }) => m.partitions).sort()).toEqual([85, 85, 86]);
    const asked = cluster.clock.now();
    const stats = JSON.parse((await drive(cluster.clock, ask('n1', adminRequest('stats'))))[0] as string);
    // The node's own clock, read when it answered.
    expect(stats.nowMs).toBeGreaterThanOrEqual(asked);
    expect(stats.nowMs).toBeLessThanOrEqual(cluster.clock.now());
    expect(stats.stats.put).toMatchObject({ count: 0, failures: 0 });
  });

  it('transfers (and the transfers_pending metric) show a join in progress until the ring settles', async () => {
    // 1 ms per message, so streaming takes long enough to be watched in 1 ms steps; 16 partitions
    // of ~190 keys each, so a partition streams in two batches and shows progress in between.
    const options = { ...fast, partitions: 16 };
    cluster = await createCluster({
      nodes: 3,
      nodeOptions: options,
      network: { latencyMs: { min: 1, max: 1 } },
    });
    const c = cluster;
    const n1 = c.node('n1');
    for (let i = 0; i < 3000; i += 300) {
      await drive(c.clock, Promise.all(Array.from({ length: 300 }, (_, j) => n1.put(`k${i + j}`, i + j))));
    }
    const registry = new Registry();
    registerMetrics(n1, registry);
    const ask = await rawPeer(c.network);
    const transfers = async (id = 'n1') =>
      JSON.parse(
        (await drive(c.clock, ask(id, adminRequest('transfers')), 1))[0] as string,
      ) as TransfersReport;
    const joining = DynamoNode.start({
      ...options,
      id: 'n4',
      transport: c.network.connect('n4'),
      storage: new MemoryStorage(),
      seeds: ['n1'],
      clock: c.clock,
    });
    let seen: TransfersReport | undefined;
    let sawProgress = false;
    let scrapesDuringJoin = 0;
    for (let i = 0; ; i++) {
      if (i > 20_000) throw new Error('the join never settled');
      const t = await transfers();
      if (t.pending.length > 0) {
        seen ??= t;
        // Progress is exact on the sending node: ask each.
        for (const id of ['n2', 'n3'])
          sawProgress ||= (await transfers(id)).pending.some((p) => p.keysSent > 0);
        sawProgress ||= t.pending.some((p) => p.keysSent > 0);
        // A scrape a moment later may already see the last transfer done: check it against itself.
        const text = await registry.metrics();
        const pending = Number(/^dynamo_transfers_pending (\d+)$/m.exec(text)?.[1]);
        if (pending > 0) {
          scrapesDuringJoin++;
          expect(text).toMatch(/^dynamo_ring_settled 0$/m);
        }
      } else if (seen && t.settled) break;
      await c.clock.advance(1);
    }
    cleanup.push(async () => (await joining).stop());
    expect(seen.settled).toBe(false);
    for (const p of seen.pending) {
      expect(p.to).toBe('n4');
      expect(['n1', 'n2', 'n3']).toContain(p.from);
      expect(p.partition).toBeGreaterThanOrEqual(0);
      if (p.total !== null) expect(p.keysSent).toBeLessThanOrEqual(p.total);
    }
    expect(sawProgress).toBe(true);
    expect(scrapesDuringJoin).toBeGreaterThan(0);
    expect(await registry.metrics()).toMatch(/^dynamo_transfers_pending 0$/m);
  });

  it('refuses bad input with a clear error and changes nothing', async () => {
    cluster = await createCluster({ nodes: 3, nodeOptions: fast });
    const c = cluster;
    const ask = await rawPeer(c.network);
    const before = JSON.stringify(c.node('n1').members());
    const refused = async (message: unknown[], pattern: RegExp) => {
      const error = await drive(c.clock, ask('n1', message)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RemoteError);
      expect((error as Error).message).toMatch(pattern);
    };
    await refused([MessageType.Admin, ADMIN_PROTOCOL_VERSION, 'reboot'], /unknown admin command "reboot"/);
    await refused([MessageType.Admin, ADMIN_PROTOCOL_VERSION, 42], /admin command must be a string/);
    await refused([MessageType.Admin, 99, 'status'], /admin protocol version 99 not supported/);
    await refused([MessageType.Admin], /admin protocol version undefined/);
    await refused([MessageType.Admin, ADMIN_PROTOCOL_VERSION, 'remove'], /remove takes 1 argument, got 0/);
    await refused(
      [MessageType.Admin, ADMIN_PROTOCOL_VERSION, 'remove', 'n3', 'n2'],
      /takes 1 argument, got 2/,
    );
    await refused([MessageType.Admin, ADMIN_PROTOCOL_VERSION, 'remove', 7], /member id must be a string/);
    await refused([MessageType.Admin, ADMIN_PROTOCOL_VERSION, 'remove', 'x'.repeat(300)], /member id/);
    await refused([MessageType.Admin, ADMIN_PROTOCOL_VERSION, 'leave', 'now'], /leave takes 0 arguments/);
    await refused([MessageType.Admin, ADMIN_PROTOCOL_VERSION, 'remove', 'nobody'], /no member nobody/);
    await refused([MessageType.Admin, ADMIN_PROTOCOL_VERSION, 'remove', 'n1'], /cannot remove itself/);
    // Undecodable bytes on the admin path too.
    const peer = c.network.connect('garbage');
    await peer.start(async () => new Uint8Array());
    cleanup.push(() => peer.stop());
    const reply = await drive(c.clock, peer.request('n1', new Uint8Array([0xc1, 0xff]), { timeoutMs: 1000 }));
    expect(() => decodeReply(reply)).toThrow(/malformed message/);
    await c.settle();
    expect(JSON.stringify(c.node('n1').members())).toBe(before);
    expect(c.nodes.every((n) => n.status === 'running')).toBe(true);
  });

  it('remove and leave act on an authenticated transport (MemoryNetwork)', async () => {
    cluster = await createCluster({ nodes: 4, nodeOptions: fast });
    const c = cluster;
    const ask = await rawPeer(c.network);
    await c.stopNode('n4');
    const [removed] = await drive(c.clock, ask('n1', adminRequest('remove', ['n4'])));
    expect(JSON.parse(removed as string)).toMatchObject({ action: 'remove', member: 'n4' });
    const [left] = await drive(c.clock, ask('n3', adminRequest('leave')));
    expect(JSON.parse(left as string)).toMatchObject({ action: 'leave', member: 'n3' });
    for (let i = 0; c.node('n3').status !== 'stopped'; i++) {
      if (i > 1000) throw new Error('n3 did not leave');
      await c.clock.advance(10);
    }
    await c.settle();
    expect(
      c
        .node('n1')
        .members()
        .map((m) => [m.id, m.partitions]),
    ).toEqual([
      ['n1', 128],
      ['n2', 128],
    ]);
  });

  it('refuses leave and remove when the transport authenticates nobody; reads still answer', async () => {
    const network = new MemoryNetwork();
    const inner = network.connect('solo');
    // The same endpoint, without the authenticated flag (as a TcpTransport with no secret/tls).
    const transport: Transport = {
      get address() {
        return inner.address;
      },
      start: (handler) => inner.start(handler),
      request: (to, payload, options) => inner.request(to, payload, options),
      stop: () => inner.stop(),
    };
    const node = await DynamoNode.start({ id: 'solo', transport, storage: new MemoryStorage(), seeds: [] });
    cleanup.push(() => node.stop());
    const ask = await rawPeer(network);
    for (const message of [adminRequest('leave'), adminRequest('remove', ['other'])]) {
      const error = await ask('solo', message).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RemoteError);
      expect((error as RemoteError).remoteCode).toBe('DYNAMO_AUTH');
      expect((error as Error).message).toMatch(/does not authenticate its peers/);
    }
    expect(node.status).toBe('running');
    expect(node.members()).toEqual([expect.objectContaining({ id: 'solo', status: 'up', partitions: 256 })]);
    expect(JSON.parse((await ask('solo', adminRequest('status')))[0] as string).node.id).toBe('solo');
  });
});

describe('CLI usage errors (exit 2, nothing sent)', () => {
  const run = async (...argv: string[]) => {
    let out = '';
    let err = '';
    const code = await runCli(argv, { out: (t) => (out += t), err: (t) => (err += t) });
    return { code, out, err };
  };

  it.each([
    [['reboot'], /unknown command 'reboot'/],
    [[], /Usage: dynamo-engine/],
    [['remove'], /missing required argument 'id'/],
    [['status', '--port', 'abc'], /port must be an integer/],
    [['status', '--port', '70000'], /port must be an integer/],
    [['stats', '--interval-ms', '-5'], /interval must be an integer|unknown option/],
    [['status', '--frobnicate'], /unknown option '--frobnicate'/],
    [['status', '--node', 'no-port'], /--node must be host:port/],
    [['status', '--tls-ca', '/nonexistent/ca.pem'], /needs all of --tls-ca, --tls-cert and --tls-key/],
  ])('%j', async (argv, pattern) => {
    const result = await run(...(argv as string[]));
    expect(result.code).toBe(EXIT.usage);
    expect(result.err + result.out).toMatch(pattern);
  });

  it('--help prints every command and exits 0', async () => {
    const result = await run('--help');
    expect(result.code).toBe(EXIT.ok);
    for (const command of ['status', 'ring', 'transfers', 'stats', 'leave', 'remove']) {
      expect(result.out).toContain(command);
    }
    expect(result.out).toContain('--secret');
  });
});

describe('CLI text output', () => {
  const node = { id: 'a', address: '127.0.0.1:7001', status: 'running' as const };

  it('transfers: one row per pending move with its progress', () => {
    const text = formatTransfers({
      node,
      version: 9,
      settled: false,
      pending: [
        { partition: 3, from: 'a', to: 'd', keysSent: 64, total: 128 },
        { partition: 7, from: 'b', to: 'd', keysSent: 0, total: null },
      ],
    });
    expect(text).toContain('Ring version 9: 2 transfers pending, 64 keys sent so far');
    expect(text).toMatch(/^Partition +From +To +Keys sent +Total +Progress$/m);
    expect(text).toMatch(/^3 +a +d +64 +128 +50\.0%$/m);
    expect(text).toMatch(/^7 +b +d +0 +- +waiting$/m);
  });

  it('ring: shares against fair shares, and the balance', () => {
    const text = formatRing({
      node,
      version: 4,
      settled: true,
      claimant: 'a',
      partitions: 256,
      n: 3,
      members: [
        { id: 'a', status: 'up', weight: 2, partitions: 128, share: 0.5, idealShare: 0.5 },
        { id: 'b', status: 'down', weight: 1, partitions: 64, share: 0.25, idealShare: 0.25 },
        { id: 'c', status: 'up', weight: 1, partitions: 64, share: 0.25, idealShare: 0.25 },
      ],
      balance: { maxOverIdeal: 1, minOverIdeal: 1 },
      pendingTransfers: 0,
    });
    expect(text).toContain(
      'Ring version 4 (claimant a), 256 partitions, n = 3: settled. No transfers pending.',
    );
    expect(text).toMatch(/^a +up +2 +128 +50\.0% +50\.0% +1\.00$/m);
    expect(text).toMatch(/^b +down +1 +64 +25\.0% +25\.0% +1\.00$/m);
    expect(text).toContain('Balance: the largest share is 1.00x its fair share, the smallest 1.00x.');
  });

  it('ring with zones: a zone column, the zone table, and the guarantee in one line', () => {
    const zones = {
      required: 3,
      violations: 0,
      list: [
        {
          zone: 'az-a',
          members: 3,
          weight: 3,
          weightShare: 3 / 7,
          partitions: 86,
          share: 86 / 256,
          targetShare: 1 / 3,
        },
        {
          zone: 'az-b',
          members: 2,
          weight: 2,
          weightShare: 2 / 7,
          partitions: 85,
          share: 85 / 256,
          targetShare: 1 / 3,
        },
        {
          zone: 'az-c',
          members: 2,
          weight: 2,
          weightShare: 2 / 7,
          partitions: 85,
          share: 85 / 256,
          targetShare: 1 / 3,
        },
      ],
    };
    const text = formatRing({
      node,
      version: 4,
      settled: true,
      claimant: 'a',
      partitions: 256,
      n: 3,
      members: [
        {
          id: 'a',
          status: 'up',
          weight: 1,
          zone: 'az-a',
          partitions: 29,
          share: 29 / 256,
          idealShare: 1 / 9,
        },
        {
          id: 'd',
          status: 'up',
          weight: 1,
          zone: 'az-b',
          partitions: 43,
          share: 43 / 256,
          idealShare: 1 / 6,
        },
      ],
      balance: { maxOverIdeal: 1.02, minOverIdeal: 1 },
      pendingTransfers: 0,
      zones,
    });
    expect(text).toMatch(/^ID +Status +Zone +Weight +Partitions +Share +Fair share +Ratio$/m);
    expect(text).toMatch(/^a +up +az-a +1 +29 +11\.3% +11\.1% +1\.02$/m);
    expect(text).toMatch(/^Zone +Members +Weight +Partitions +Share +Target share$/m);
    expect(text).toMatch(/^az-a +3 +42\.9% +86 +33\.6% +33\.3%$/m);
    expect(text).toContain("Zones: every key's replicas span 3 zones.");
    expect(text).toContain(
      'Zone capacities are uneven for the guarantee: az-a holds 33.3% for 42.9% of the weight',
    );
    const violated = formatRing({
      node,
      version: 5,
      settled: true,
      claimant: 'a',
      partitions: 8,
      n: 5,
      members: [],
      balance: { maxOverIdeal: 1, minOverIdeal: 1 },
      pendingTransfers: 0,
      zones: { ...zones, required: 5, violations: 2 },
    });
    expect(violated).toContain('WARNING: 2 partitions have replicas in fewer than 5 zones');
  });

  it('status with zones: a zone column and the guarantee', () => {
    const text = formatStatus({
      node,
      ring: {
        version: 3,
        settled: true,
        claimant: 'a',
        partitions: 256,
        n: 3,
        zones: { required: 3, violations: 0 },
      },
      members: [
        { id: 'a', address: 'h:1', status: 'up', weight: 1, partitions: 128, zone: 'az-a', ownership: 0.5 },
        { id: 'b', address: 'h:2', status: 'up', weight: 1, partitions: 128, ownership: 0.5 },
      ],
    });
    expect(text).toContain("Zones: every key's replicas span 3 zones.");
    expect(text).toMatch(/^Status +ID +Address +Zone +Weight +Partitions +Owns$/m);
    expect(text).toMatch(/^up +a +h:1 +az-a +1 +128 +50\.0%$/m);
    expect(text).toMatch(/^up +b +h:2 +\(none\) +1 +128 +50\.0%$/m);
  });
});
