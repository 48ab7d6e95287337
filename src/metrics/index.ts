/**
 * `dynamo-engine/metrics`: a node's counters, gauges and latency histograms in a `prom-client`
 * registry the application owns (and serves, e.g. on `/metrics`). prom-client is an optional peer
 * dependency: only this entry imports it, so applications that do not scrape never load it.
 *
 * Most values are read from `node.stats()` when the registry is scraped (one snapshot per scrape,
 * shared by every metric); request latencies are observed as they happen (`request:complete`),
 * since a Prometheus histogram needs every observation.
 * @module dynamo-engine/metrics
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { DynamoNode } from '../node.js';
import type { NodeStats } from '../stats.js';
import { MessageType } from '../transport/wire.js';
import { checkOptionNames } from '../util/option-names.js';

/** Options of `registerMetrics`. Unknown names are errors. */
export interface MetricsOptions {
  /** Prefix of every metric name. Default `'dynamo_'`. */
  prefix?: string;
  /**
   * Upper bounds of the request-latency histogram buckets, seconds. Default from 0.5 ms to 5 s
   * (loopback requests take well under a millisecond; prom-client's own default starts at 5 ms).
   */
  durationBucketsSeconds?: number[];
}

/** What `registerMetrics` returns. */
export interface NodeMetrics {
  /** Stops observing the node and removes its metrics from the registry. */
  unregister(): void;
}

/** The request-latency histogram's default buckets, seconds: 0.5 ms to 5 s. */
export const DEFAULT_DURATION_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

const OPS = ['get', 'put', 'delete'] as const;
const MEMBER_STATUSES = ['up', 'down', 'joining', 'leaving'] as const;
/** Peer message kinds by wire type number, for `peer_requests_total{type}`. */
const MESSAGE_NAMES = new Map<string, string>(
  Object.entries(MessageType).map(([name, type]) => [String(type), snake(name)]),
);

/**
 * Registers `node`'s metrics with `registry` (names in docs/operating/metrics.md). One node per
 * registry and prefix: registering a second node under the same names throws (prom-client refuses
 * duplicate names), so give each node of a multi-node process its own registry or prefix.
 */
export function registerMetrics<V>(
  node: DynamoNode<V>,
  registry: Registry,
  options: MetricsOptions = {},
): NodeMetrics {
  checkOptionNames(options, ['prefix', 'durationBucketsSeconds'], 'registerMetrics options');
  const prefix = options.prefix ?? 'dynamo_';
  const registers = [registry];
  const names: string[] = [];
  // One snapshot per scrape: a scrape runs every metric's collect in one synchronous loop.
  const stats = perScrape(() => node.stats());
  const ring = perScrape(() => node.ringStatus());
  /** A counter whose value is read from the node at scrape time. */
  const counter = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    read: (s: NodeStats, set: (labels: Partial<Record<L, string>>, value: number) => void) => void,
  ) => {
    names.push(prefix + name);
    new Counter<L>({
      name: prefix + name,
      help,
      labelNames,
      registers,
      collect() {
        // Counters only grow; reset-and-set keeps prom-client's "no decrement" rule.
        this.reset();
        read(stats(), (labels, value) => this.inc(labels, value));
      },
    });
  };
  const gauge = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    read: (set: (labels: Partial<Record<L, string>>, value: number) => void) => void,
  ) => {
    names.push(prefix + name);
    new Gauge<L>({
      name: prefix + name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        read((labels, value) => this.set(labels, value));
      },
    });
  };

  counter(
    'requests_total',
    'Client requests this node coordinated, by operation and outcome.',
    ['op', 'outcome'],
    (s, set) => {
      for (const op of OPS) {
        set({ op, outcome: 'ok' }, s[op].count - s[op].failures);
        set({ op, outcome: 'error' }, s[op].failures);
      }
    },
  );
  counter('forwarded_puts_total', 'Puts this node forwarded to a replica of the key.', [], (s, set) =>
    set({}, s.forwarded),
  );
  counter('peer_requests_total', 'Requests served for other nodes, by message type.', ['type'], (s, set) => {
    for (const [type, count] of Object.entries(s.served))
      set({ type: MESSAGE_NAMES.get(type) ?? type }, count);
  });
  counter('conflicted_reads_total', 'Reads that found more than one concurrent sibling.', [], (s, set) =>
    set({}, s.siblings.conflictedReads),
  );
  gauge('siblings_max', 'Most siblings one read has returned since the node started.', [], (set) =>
    set({}, stats().siblings.maxSeen),
  );
  counter('read_repairs_total', 'Read repairs sent to stale replicas.', [], (s, set) =>
    set({}, s.readRepairs),
  );
  gauge('hints_pending', 'Hinted writes held for unreachable replicas, not yet delivered.', [], (set) =>
    set({}, stats().hints.pending),
  );
  counter(
    'hints_total',
    'Hinted handoff events: stored, delivered, refused (hint store full).',
    ['event'],
    (s, set) => {
      set({ event: 'stored' }, s.hints.stored);
      set({ event: 'delivered' }, s.hints.delivered);
      set({ event: 'refused' }, s.hints.refused);
    },
  );
  counter(
    'anti_entropy_exchanges_total',
    'Merkle-tree exchanges this node started, by outcome.',
    ['outcome'],
    (s, set) => {
      set({ outcome: 'ok' }, s.antiEntropy.exchanges);
      set({ outcome: 'error' }, s.antiEntropy.failed);
    },
  );
  counter('anti_entropy_keys_repaired_total', 'Keys anti-entropy found different and merged.', [], (s, set) =>
    set({}, s.antiEntropy.keysRepaired),
  );
  counter(
    'anti_entropy_bytes_total',
    'Bytes moved by anti-entropy exchanges this node started.',
    [],
    (s, set) => set({}, s.antiEntropy.bytes),
  );
  counter(
    'tombstones_purged_total',
    'Tombstones purged from this node after the grace period.',
    [],
    (s, set) => set({}, s.antiEntropy.purged),
  );
  counter(
    'transport_bytes_total',
    "Bytes the node's transport sent and received.",
    ['direction'],
    (s, set) => {
      if (!s.transport) return;
      set({ direction: 'sent' }, s.transport.bytesSent);
      set({ direction: 'received' }, s.transport.bytesReceived);
    },
  );
  gauge('members', "Members in this node's view, by status.", ['status'], (set) => {
    const counts = new Map<string, number>(MEMBER_STATUSES.map((st) => [st, 0]));
    for (const m of ring().members) counts.set(m.status, (counts.get(m.status) ?? 0) + 1);
    for (const [status, count] of counts) set({ status }, count);
  });
  gauge('transfers_pending', 'Partition transfers of the rebalance in progress not done yet.', [], (set) =>
    set({}, ring().pending.length),
  );
  gauge('ring_settled', '1 when the ring has no pending change and every member owns its share.', [], (set) =>
    set({}, ring().settled ? 1 : 0),
  );
  gauge('ring_version', "Version of this node's ring (grows with every ownership change).", [], (set) =>
    set({}, ring().version),
  );
  gauge('partitions_owned', 'Partitions this node owns in the current ring.', [], (set) =>
    set({}, ring().members.find((m) => m.id === node.id)?.partitions ?? 0),
  );
  gauge('zone_info', "This node's zone (the label; 1 while it has one).", ['zone'], (set) => {
    const zone = ring().members.find((m) => m.id === node.id)?.zone;
    if (zone !== undefined) set({ zone }, 1);
  });
  gauge(
    'zone_partitions',
    'Partitions owned by the members of each zone (no samples without zones).',
    ['zone'],
    (set) => {
      for (const z of ring().zones?.list ?? []) set({ zone: z.zone }, z.partitions);
    },
  );
  gauge(
    'zone_violations',
    'Partitions whose N replicas span fewer zones than min(N, zones): 0 when the zone guarantee holds.',
    [],
    (set) => set({}, ring().zones?.violations ?? 0),
  );

  names.push(`${prefix}request_duration_seconds`);
  const duration = new Histogram<'op' | 'outcome'>({
    name: `${prefix}request_duration_seconds`,
    help: 'Latency of client requests this node coordinated, seconds.',
    labelNames: ['op', 'outcome'],
    buckets: options.durationBucketsSeconds ?? DEFAULT_DURATION_BUCKETS_SECONDS,
    registers,
  });
  const observe = (e: { op: string; durationMs: number; ok: boolean }) =>
    duration.observe({ op: e.op, outcome: e.ok ? 'ok' : 'error' }, e.durationMs / 1000);
  node.on('request:complete', observe);

  return {
    unregister() {
      node.off('request:complete', observe);
      for (const name of names) registry.removeSingleMetric(name);
    },
  };
}

/** `read`'s value, kept until the current synchronous run (one scrape) is over. */
function perScrape<T>(read: () => T): () => T {
  let value: T | undefined;
  return () => {
    if (value === undefined) {
      value = read();
      queueMicrotask(() => {
        value = undefined;
      });
    }
    return value;
  };
}

function snake(name: string): string {
  return name.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}
