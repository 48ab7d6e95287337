/**
 * Storage micro-benchmarks: LevelStorage (with and without group commit, with and without fsync)
 * against raw classic-level in the same run, and MemoryStorage. Keys are 20 bytes, values 100.
 * `npx tsx test/bench/micro-storage.ts` runs them alone.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ClassicLevel } from 'classic-level';
import { LevelStorage } from '../../src/level/index.js';
import { MemoryStorage } from '../../src/storage/index.js';
import type { Storage } from '../../src/storage/types.js';
import type { BenchRow } from './lib.js';
import { formatTable, runClosedLoop } from './lib.js';

const IN_FLIGHT = 64;
/** The engine's concurrency in a loaded cluster: what read coalescing and group commit feed on. */
const GET_PUT_IN_FLIGHT = 128;
const KEY_BYTES = 20;
const VALUE_BYTES = 100;

type RawDb = ClassicLevel<Uint8Array, Uint8Array>;

export interface StorageBenchOptions {
  /** Operations per non-sync scenario (default 200_000). */
  ops?: number;
  /** Operations per fsync scenario (default 20_000). */
  syncOps?: number;
}

export async function benchStorage(options: StorageBenchOptions = {}): Promise<BenchRow[]> {
  const ops = options.ops ?? 200_000;
  const syncOps = options.syncOps ?? 20_000;
  const keys = makeKeys(ops);
  const value = new Uint8Array(VALUE_BYTES).fill(0x5a);
  const rows: BenchRow[] = [];
  const dirs: string[] = [];
  const tempDir = async () => {
    const d = await mkdtemp(join(tmpdir(), 'dynamo-bench-storage-'));
    dirs.push(d);
    return d;
  };
  const rawDb = async () => {
    const db: RawDb = new ClassicLevel(await tempDir(), { keyEncoding: 'view', valueEncoding: 'view' });
    await db.open();
    return db;
  };
  const level = async (opts: { groupCommit?: boolean; sync?: boolean }) => {
    const s = new LevelStorage({ path: await tempDir(), ...opts });
    await s.open();
    return s;
  };
  const row = (
    scenario: string,
    r: Awaited<ReturnType<typeof runClosedLoop>>,
    baseline?: BenchRow,
    extra?: BenchRow['extra'],
  ): BenchRow => {
    const out: BenchRow = { scenario, ...r };
    if (baseline) {
      out.baseline = baseline.scenario;
      out.baselineOpsPerSec = baseline.opsPerSec;
    }
    if (extra) out.extra = extra;
    rows.push(out);
    return out;
  };
  const putVia = (s: Storage) => (i: number) => s.batch([{ type: 'put', key: keys[i]!, value }]);
  /**
   * The engine's replica write: read the key, then write it. Each operation builds its key afresh,
   * as the engine does (a short key is then a new on-heap typed array every time). `cpuUsPerOp`
   * is the process's CPU time (every thread, LevelDB's included) per operation.
   */
  const getThenPut = async (s: Storage) => {
    const cpu = process.cpuUsage();
    const r = await runClosedLoop(ops, GET_PUT_IN_FLIGHT, async (i) => {
      const key = new Uint8Array(keys[i]!);
      await s.get(key);
      await s.batch([{ type: 'put', key, value }]);
    });
    const used = process.cpuUsage(cpu);
    return { r, cpuUsPerOp: ((used.user + used.system) / ops).toFixed(2) };
  };

  try {
    // --- puts, no fsync ---
    const raw = await rawDb();
    const rawPut = row(
      `raw classic-level put, ${IN_FLIGHT} in flight`,
      await runClosedLoop(ops, IN_FLIGHT, (i) => raw.put(keys[i]!, value)),
    );
    await raw.close();

    const naive = await level({ groupCommit: false });
    const naivePut = row(
      `LevelStorage put, no group commit, ${IN_FLIGHT} in flight`,
      await runClosedLoop(ops, IN_FLIGHT, putVia(naive)),
      rawPut,
    );
    await naive.close();

    const grouped = await level({ groupCommit: true });
    const gc = await runClosedLoop(ops, IN_FLIGHT, putVia(grouped));
    const stats = grouped.stats;
    row(`LevelStorage put, group commit, ${IN_FLIGHT} in flight`, gc, rawPut, {
      vsNoGroupCommit: `${(gc.opsPerSec / naivePut.opsPerSec).toFixed(2)}x`,
      opsPerWrite: (stats.operations / stats.groups).toFixed(1),
    });

    // --- gets (on the store just filled by group commit) ---
    const order = (i: number) => (i * 7919) % ops; // every key once, not sequentially
    const levelGet = await runClosedLoop(ops, IN_FLIGHT, (i) => grouped.get(keys[order(i)]!));
    await grouped.close();
    const rawForGet: RawDb = new ClassicLevel(grouped.path, { keyEncoding: 'view', valueEncoding: 'view' });
    await rawForGet.open();
    const rawGet = row(
      `raw classic-level get, ${IN_FLIGHT} in flight`,
      await runClosedLoop(ops, IN_FLIGHT, (i) => rawForGet.get(keys[order(i)]!)),
    );
    await rawForGet.close();
    row(`LevelStorage get, ${IN_FLIGHT} in flight`, levelGet, rawGet);

    // --- raw batches of 100 ---
    const rawBatch = await rawDb();
    const perBatch = 100;
    const batches = Math.floor(ops / perBatch);
    const rb = await runClosedLoop(batches, 8, (n) => {
      const start = n * perBatch;
      const batch = new Array(perBatch);
      for (let j = 0; j < perBatch; j++) batch[j] = { type: 'put', key: keys[start + j]!, value };
      return rawBatch.batch(batch);
    });
    row(`raw classic-level batch of ${perBatch} (keys/s), 8 in flight`, {
      ...rb,
      opsPerSec: rb.opsPerSec * perBatch,
    });
    await rawBatch.close();

    // --- puts with fsync ---
    const rawSync = await rawDb();
    const rawSyncPut = row(
      `raw classic-level put sync, ${IN_FLIGHT} in flight`,
      await runClosedLoop(syncOps, IN_FLIGHT, (i) => rawSync.put(keys[i]!, value, { sync: true })),
    );
    await rawSync.close();
    const groupedSync = await level({ groupCommit: true, sync: true });
    const gcs = await runClosedLoop(syncOps, IN_FLIGHT, putVia(groupedSync));
    const syncStats = groupedSync.stats;
    row(`LevelStorage put sync, group commit, ${IN_FLIGHT} in flight`, gcs, rawSyncPut, {
      opsPerFsync: (syncStats.operations / syncStats.groups).toFixed(1),
    });
    await groupedSync.close();

    // --- get then put of the same key ---
    const gp = await level({});
    const gpLevel = await getThenPut(gp);
    const gpStats = gp.stats;
    row(`LevelStorage get then put, ${GET_PUT_IN_FLIGHT} in flight`, gpLevel.r, undefined, {
      cpuUsPerOp: gpLevel.cpuUsPerOp,
      keysPerRead: (gpStats.reads / gpStats.readBatches).toFixed(1),
      opsPerWrite: (gpStats.operations / gpStats.groups).toFixed(1),
    });
    await gp.close();

    // --- MemoryStorage ---
    const memory = new MemoryStorage();
    await memory.open();
    row(`MemoryStorage put, ${IN_FLIGHT} in flight`, await runClosedLoop(ops, IN_FLIGHT, putVia(memory)));
    row(
      `MemoryStorage get, ${IN_FLIGHT} in flight`,
      await runClosedLoop(ops, IN_FLIGHT, (i) => memory.get(keys[order(i)]!)),
    );
    await memory.close();
    const memoryGp = new MemoryStorage();
    await memoryGp.open();
    const gpMemory = await getThenPut(memoryGp);
    row(`MemoryStorage get then put, ${GET_PUT_IN_FLIGHT} in flight`, gpMemory.r, undefined, {
      cpuUsPerOp: gpMemory.cpuUsPerOp,
    });
    await memoryGp.close();
  } finally {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }
  return rows;
}

/** `bench:` ‖ u32 spread ‖ u32 index ‖ pad: unique, not in insertion order. */
function makeKeys(n: number): Uint8Array[] {
  const keys = new Array<Uint8Array>(n);
  for (let i = 0; i < n; i++) {
    const k = new Uint8Array(KEY_BYTES);
    k.set([0x62, 0x65, 0x6e, 0x63, 0x68, 0x3a]);
    const view = new DataView(k.buffer);
    view.setUint32(6, Math.imul(i, 0x9e3779b1) >>> 0);
    view.setUint32(10, i);
    keys[i] = k;
  }
  return keys;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchStorage().then((rows) => console.log(formatTable(rows)));
}
