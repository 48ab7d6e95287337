/**
 * `dynamo-engine/metrics`: a scrape of the prom-client registry reports what the node really did
 * (requests by outcome, latency buckets, siblings, transport bytes, members), and the main entry
 * never loads prom-client.
 */
import { build } from 'esbuild';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QuorumError } from '../../src/index.js';
import { registerMetrics } from '../../src/metrics/index.js';
import { type Cluster, createCluster, drive } from '../../src/testing/index.js';

/** The value of one sample line, e.g. `dynamo_requests_total{op="put",outcome="ok"}`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[2] ? m[2].split(',') : []).sort();
    if (have.length === want.length && have.every((l, i) => l === want[i])) return Number(m[3]);
  }
  return undefined;
}

describe('registerMetrics', () => {
  let cluster: Cluster<string>;
  beforeEach(async () => {
    // 1 ms each way: a replica round trip takes 2 ms of virtual time, so latencies are exact.
    cluster = await createCluster<string>({
      nodes: 3,
      quorum: { n: 3, r: 2, w: 2 },
      network: { latencyMs: { min: 1, max: 1 } },
      nodeOptions: { requestTimeoutMs: 100, antiEntropy: { enabled: false, intervalMs: 60_000 } },
    });
  });
  afterEach(async () => {
    await cluster.stop();
  });

  it('reports real counts, latencies, siblings, bytes and members after real requests', async () => {
    const [n1] = cluster.nodes;
    const registry = new Registry();
    registerMetrics(n1!, registry);
    const run = <T>(p: Promise<T>) => drive(cluster.clock, p, 1);

    for (let i = 0; i < 5; i++) await run(n1!.put(`k${i}`, `v${i}`));
    for (let i = 0; i < 3; i++) expect((await run(n1!.get(`k${i}`))).values).toEqual([`v${i}`]);
    // Two writes without a context: concurrent siblings, seen by the next read.
    await run(n1!.put('c', 'a'));
    await run(n1!.put('c', 'b'));
    expect((await run(n1!.get('c'))).values).toHaveLength(2);
    // A delete without a context reads first: one more get, then the delete.
    await run(n1!.delete('k0'));
    // Cut n1 off: a read cannot reach r = 2 replicas.
    cluster.network.partition(['n1']);
    await expect(run(n1!.get('k1'))).rejects.toBeInstanceOf(QuorumError);
    cluster.network.heal();

    const text = await registry.metrics();
    const stats = n1!.stats();
    expect(sample(text, 'dynamo_requests_total', { op: 'put', outcome: 'ok' })).toBe(7);
    expect(sample(text, 'dynamo_requests_total', { op: 'get', outcome: 'ok' })).toBe(5);
    expect(sample(text, 'dynamo_requests_total', { op: 'get', outcome: 'error' })).toBe(1);
    expect(sample(text, 'dynamo_requests_total', { op: 'delete', outcome: 'ok' })).toBe(1);
    expect(sample(text, 'dynamo_requests_total', { op: 'put', outcome: 'error' })).toBe(0);
    // Latency histogram: every successful get took one round trip (2 ms), the failed one its timeout.
    const get = { op: 'get', outcome: 'ok' };
    expect(sample(text, 'dynamo_request_duration_seconds_count', get)).toBe(5);
    expect(sample(text, 'dynamo_request_duration_seconds_bucket', { ...get, le: '0.001' })).toBe(0);
    expect(sample(text, 'dynamo_request_duration_seconds_bucket', { ...get, le: '0.0025' })).toBe(5);
    expect(sample(text, 'dynamo_request_duration_seconds_sum', get)).toBeCloseTo(5 * 0.002, 6);
    const failed = { op: 'get', outcome: 'error' };
    expect(sample(text, 'dynamo_request_duration_seconds_count', failed)).toBe(1);
    expect(sample(text, 'dynamo_request_duration_seconds_bucket', { ...failed, le: '0.05' })).toBe(0);
    expect(sample(text, 'dynamo_conflicted_reads_total')).toBe(1);
    expect(sample(text, 'dynamo_siblings_max')).toBe(2);
    expect(sample(text, 'dynamo_forwarded_puts_total')).toBe(stats.forwarded);
    expect(sample(text, 'dynamo_read_repairs_total')).toBe(stats.readRepairs);
    expect(sample(text, 'dynamo_hints_pending')).toBe(stats.hints.pending);
    // Bytes: what the memory endpoint counted, and plenty of it (replicas store and read).
    const sent = sample(text, 'dynamo_transport_bytes_total', { direction: 'sent' })!;
    expect(sent).toBe(stats.transport!.bytesSent);
    expect(sent).toBeGreaterThan(1000);
    expect(sample(text, 'dynamo_transport_bytes_total', { direction: 'received' })).toBe(
      stats.transport!.bytesReceived,
    );
    expect(sample(text, 'dynamo_peer_requests_total', { type: 'store' })).toBe(stats.served['2']);
    // The partition made n1's failure detector mark both peers down (no probe has run since the heal).
    expect(sample(text, 'dynamo_members', { status: 'up' })).toBe(1);
    expect(sample(text, 'dynamo_members', { status: 'down' })).toBe(2);
    expect(sample(text, 'dynamo_members', { status: 'joining' })).toBe(0);
    const owned = n1!.members().find((m) => m.id === 'n1')!.partitions;
    expect(owned).toBeGreaterThan(0);
    expect(sample(text, 'dynamo_partitions_owned')).toBe(owned);
    const ring = n1!.ringStatus();
    expect(sample(text, 'dynamo_transfers_pending')).toBe(0);
    expect(sample(text, 'dynamo_ring_settled')).toBe(ring.settled ? 1 : 0);
    expect(sample(text, 'dynamo_ring_version')).toBe(ring.version);
    expect(ring.version).toBeGreaterThan(0);
    expect(text).toContain('# TYPE dynamo_requests_total counter');
    expect(text).toContain('# TYPE dynamo_request_duration_seconds histogram');
    expect(text).toContain('# TYPE dynamo_hints_pending gauge');

    // Counters follow the node between scrapes.
    await run(n1!.put('k9', 'v'));
    expect(sample(await registry.metrics(), 'dynamo_requests_total', { op: 'put', outcome: 'ok' })).toBe(8);
  });

  it('unregister removes the metrics and stops observing', async () => {
    const [n1] = cluster.nodes;
    const registry = new Registry();
    const metrics = registerMetrics(n1!, registry, { prefix: 'app_dynamo_' });
    expect(await registry.metrics()).toContain('app_dynamo_requests_total');
    expect(n1!.listenerCount('request:complete')).toBe(1);
    metrics.unregister();
    expect(n1!.listenerCount('request:complete')).toBe(0);
    expect(await registry.metrics()).not.toContain('app_dynamo_');
    // The names are free again.
    registerMetrics(n1!, registry, { prefix: 'app_dynamo_' }).unregister();
  });
});

describe('entry points', () => {
  it('the main entry loads neither prom-client nor commander', async () => {
    const result = await build({
      entryPoints: ['src/index.ts'],
      bundle: true,
      write: false,
      metafile: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      logLevel: 'silent',
    });
    const imported = Object.values(result.metafile.outputs).flatMap((o) => o.imports.map((i) => i.path));
    expect(imported).toContain('msgpackr');
    expect(imported).not.toContain('prom-client');
    expect(imported).not.toContain('commander');
  });

  it("zones: the node's zone, partitions per zone, and the guarantee's violations", async () => {
    const zoned = await createCluster<string>({
      nodes: ['a1', 'a2', 'b1', 'b2', 'c1', 'c2'],
      nodeOptions: (id) => ({ zone: `az-${id[0]}`, antiEntropy: { enabled: false, intervalMs: 60_000 } }),
    });
    try {
      const registry = new Registry();
      registerMetrics(zoned.node('b1'), registry);
      const text = await registry.metrics();
      expect(sample(text, 'dynamo_zone_info', { zone: 'az-b' })).toBe(1);
      const perZone = ['az-a', 'az-b', 'az-c'].map(
        (zone) => sample(text, 'dynamo_zone_partitions', { zone })!,
      );
      expect(perZone.reduce((a, b) => a + b, 0)).toBe(256);
      for (const p of perZone) expect(Math.abs(p - 256 / 3)).toBeLessThan(1);
      expect(sample(text, 'dynamo_zone_violations')).toBe(0);
    } finally {
      await zoned.stop();
    }
    // Without zones: no zone samples, violations 0.
    const plain = await createCluster<string>({ nodes: 3 });
    try {
      const registry = new Registry();
      registerMetrics(plain.nodes[0]!, registry);
      const text = await registry.metrics();
      expect(text).not.toMatch(/^dynamo_zone_info\{/m);
      expect(text).not.toMatch(/^dynamo_zone_partitions\{/m);
      expect(sample(text, 'dynamo_zone_violations')).toBe(0);
    } finally {
      await plain.stop();
    }
  });
});
