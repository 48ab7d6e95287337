/**
 * Listing and export costs: 100,000 keys (40-byte values) on 5 in-process nodes (N = 3, Q = 256,
 * MemoryNetwork without latency), listed from one node with `allKeys()` (pages of 1000) and
 * exported with `exportObjects()`. Reports keys per second and the bytes that crossed the network
 * per key (List requests and replies; the node lists the partitions it holds itself, a
 * DynamoClient asks for every one), against the same run's floor: one node's storage scanned
 * for the partitions it holds (the disk work a listing cannot avoid, without the engine).
 *
 *   npx tsx test/bench/listing.ts [--keys 100000] [--storage memory|level] [--runs 3]
 *
 * prints each run and the medians; `benchListing()` is the `npm run bench` entry (`--only listing`).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Packr } from 'msgpackr';
import { DynamoClient } from '../../src/client/index.js';
import { type DynamoNode, type MemoryNetwork, MemoryStorage, type Storage } from '../../src/index.js';
import { LevelStorage } from '../../src/level/index.js';
import { dataKey, dataRange } from '../../src/replica/layout.js';
import { partitionOf } from '../../src/ring/index.js';
import { createCluster, drive } from '../../src/testing/index.js';
import { encodeObject } from '../../src/versioning/index.js';
import { type BenchRow, formatTable } from './lib.js';

const PARTITIONS = 256;
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

export interface ListingBenchOptions {
  keys?: number;
  storage?: 'memory' | 'level';
}

async function seed(
  nodes: DynamoNode<string>[],
  storage: (id: string) => Storage,
  count: number,
): Promise<void> {
  const value = packr.pack('a value of forty bytes, give or take a fe') as Uint8Array;
  const batches = new Map<string, { type: 'put'; key: Uint8Array; value: Uint8Array }[]>();
  for (let i = 0; i < count; i++) {
    const key = new TextEncoder().encode(`user:${String(i).padStart(8, '0')}`);
    const object = encodeObject({
      ctx: new Map([['n1@seed', i + 1]]),
      siblings: [{ dot: ['n1@seed', i + 1], value, timestamp: 1_700_000_000_000 }],
    });
    for (const e of nodes[0]!.preferenceList(key)) {
      const ops = batches.get(e.id) ?? [];
      ops.push({ type: 'put', key: dataKey(partitionOf(key, PARTITIONS), key), value: object });
      batches.set(e.id, ops);
    }
  }
  for (const [id, ops] of batches) {
    for (let i = 0; i < ops.length; i += 10_000) await storage(id).batch(ops.slice(i, i + 10_000));
  }
}

export async function benchListing(options: ListingBenchOptions = {}): Promise<BenchRow[]> {
  const count = options.keys ?? 100_000;
  const kind = options.storage ?? 'memory';
  const root = kind === 'level' ? await mkdtemp(join(tmpdir(), 'dynamo-bench-listing-')) : '';
  const storages = new Map<string, Storage>();
  const storage = (id: string) => {
    let s = storages.get(id);
    if (!s) {
      s = kind === 'level' ? new LevelStorage({ path: join(root, id) }) : new MemoryStorage();
      storages.set(id, s);
    }
    return s;
  };
  const cluster = await createCluster<string>({ nodes: 5, storage, nodeOptions: { partitions: PARTITIONS } });
  const network: MemoryNetwork = cluster.network;
  try {
    // Every rebalance of the joins done, so the data is seeded where the final ring puts it.
    await drive(cluster.clock, Promise.all(cluster.nodes.map((n) => n.ready())));
    await seed(cluster.nodes, storage, count);
    const node = cluster.nodes[0]!;
    const rows: BenchRow[] = [];

    // Floor: one full scan of what n1 stores (its share of the partitions, every replica's keys).
    let t0 = performance.now();
    let floorKeys = 0;
    for (let p = 0; p < PARTITIONS; p++) {
      for await (const _ of storage('n1').iterate(dataRange(p))) floorKeys++;
    }
    const floorMs = performance.now() - t0;

    network.resetCounters();
    t0 = performance.now();
    let listed = 0;
    for await (const _ of node.allKeys({ pageSize: 1000 })) listed++;
    const listMs = performance.now() - t0;
    const listBytes = network.counters.bytes;
    if (listed !== count) throw new Error(`listed ${listed} keys, wrote ${count}`);
    rows.push({
      scenario: `allKeys, ${count.toLocaleString('en')} keys on 5 nodes (${kind}), pages of 1000`,
      opsPerSec: (listed * 1000) / listMs,
      baseline: `scan of one node's storage (${floorKeys.toLocaleString('en')} keys)`,
      baselineOpsPerSec: (floorKeys * 1000) / floorMs,
      extra: { bytesPerKey: Math.round((listBytes / listed) * 10) / 10, messages: network.counters.sent },
    });

    // From a DynamoClient: every key crosses the network.
    const client = await drive(
      cluster.clock,
      DynamoClient.start<string>({
        id: 'bench-client',
        transport: network.connect('bench-client'),
        seeds: ['n1'],
        clock: cluster.clock,
        partitions: PARTITIONS,
      }),
    );
    network.resetCounters();
    t0 = performance.now();
    let viaClient = 0;
    for await (const _ of client.allKeys({ pageSize: 1000 })) viaClient++;
    const clientMs = performance.now() - t0;
    await client.stop();
    rows.push({
      scenario: `DynamoClient allKeys, ${count.toLocaleString('en')} keys (${kind}), pages of 1000`,
      opsPerSec: (viaClient * 1000) / clientMs,
      extra: {
        bytesPerKey: Math.round((network.counters.bytes / viaClient) * 10) / 10,
        messages: network.counters.sent,
      },
    });

    network.resetCounters();
    t0 = performance.now();
    let exported = 0;
    let objectBytes = 0;
    for await (const r of node.exportObjects()) {
      exported++;
      objectBytes += r.key.byteLength + r.object.byteLength;
    }
    const exportMs = performance.now() - t0;
    rows.push({
      scenario: `exportObjects, ${count.toLocaleString('en')} keys on 5 nodes (${kind})`,
      opsPerSec: (exported * 1000) / exportMs,
      extra: {
        bytesPerKey: Math.round((network.counters.bytes / exported) * 10) / 10,
        recordBytesPerKey: Math.round((objectBytes / exported) * 10) / 10,
      },
    });
    return rows;
  } finally {
    await cluster.stop();
    if (root) await rm(root, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: {
      keys: { type: 'string', default: '100000' },
      storage: { type: 'string', default: 'memory' },
      runs: { type: 'string', default: '3' },
    },
  });
  const all: BenchRow[][] = [];
  for (let run = 0; run < Number(values.runs); run++) {
    const rows = await benchListing({
      keys: Number(values.keys),
      storage: values.storage as 'memory' | 'level',
    });
    console.log(formatTable(rows));
    all.push(rows);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log('\nmedians:');
  console.log(
    formatTable(
      all[0]!.map((row, i) => ({
        ...row,
        opsPerSec: median(all.map((r) => r[i]!.opsPerSec)),
        ...(row.baselineOpsPerSec !== undefined
          ? { baselineOpsPerSec: median(all.map((r) => r[i]!.baselineOpsPerSec!)) }
          : {}),
      })),
    ),
  );
}
