/**
 * YCSB's core workloads (Cooper et al., "Benchmarking Cloud Serving Systems with YCSB", and the
 * `workloads/workload[a-f]` files of brianfrankcooper/YCSB), reimplemented for a store driven
 * from Node: the same operation mixes, the same key choosers (scrambled zipfian with constant
 * 0.99, skewed-latest for D), the same key names (`user` + FNV-64 of the record number), a load
 * phase then a run phase of fixed record and operation counts. Everything the driver needs is
 * drawn before the clock starts (operation kinds, record numbers, key names, values), so the
 * CPU per operation measured is the store's, not the generator's.
 *
 * A store is plugged in through `YcsbTarget` (the engine's adapter is `dynamoTarget`); the same
 * driver runs against any other store that implements those four calls, for a side-by-side.
 * The matching YCSB parameters for a run of the Java YCSB against another store are
 * `ycsbProperties()`.
 *
 * Left out: workload E (short range scans), until the engine offers a range scan.
 */
import type { Histogram } from 'hdr-histogram-js';
import * as hdr from 'hdr-histogram-js';
import { seededRandom } from '../../src/util/random.js';
import { latencyHistogram } from './load.js';

/** YCSB's operation names, as its reports print them. */
export type YcsbOp = 'READ' | 'UPDATE' | 'INSERT' | 'READ-MODIFY-WRITE';
export const YCSB_OPS: readonly YcsbOp[] = ['READ', 'UPDATE', 'INSERT', 'READ-MODIFY-WRITE'];

export interface Workload {
  name: 'a' | 'b' | 'c' | 'd' | 'f';
  title: string;
  /** Proportions of READ, UPDATE, INSERT, READ-MODIFY-WRITE (summing to 1). */
  mix: Record<YcsbOp, number>;
  distribution: 'zipfian' | 'latest';
}

const mix = (m: Partial<Record<YcsbOp, number>>): Record<YcsbOp, number> => ({
  READ: 0,
  UPDATE: 0,
  INSERT: 0,
  'READ-MODIFY-WRITE': 0,
  ...m,
});

/** The core workloads but E, in YCSB's recommended order after one load: A, B, C, F, D. */
export const WORKLOADS: readonly Workload[] = [
  {
    name: 'a',
    title: 'A update heavy (50/50 read/update)',
    mix: mix({ READ: 0.5, UPDATE: 0.5 }),
    distribution: 'zipfian',
  },
  {
    name: 'b',
    title: 'B read mostly (95/5 read/update)',
    mix: mix({ READ: 0.95, UPDATE: 0.05 }),
    distribution: 'zipfian',
  },
  { name: 'c', title: 'C read only', mix: mix({ READ: 1 }), distribution: 'zipfian' },
  {
    name: 'f',
    title: 'F read-modify-write (50/50 read/RMW)',
    mix: mix({ READ: 0.5, 'READ-MODIFY-WRITE': 0.5 }),
    distribution: 'zipfian',
  },
  {
    name: 'd',
    title: 'D read latest (95/5 read/insert)',
    mix: mix({ READ: 0.95, INSERT: 0.05 }),
    distribution: 'latest',
  },
];

export function workloadsNamed(names: string): Workload[] {
  const wanted = names
    .toLowerCase()
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const name of wanted) {
    if (name === 'e')
      throw new RangeError('workload e (range scans) is not offered: the engine has no range scan');
    if (!WORKLOADS.some((w) => w.name === name))
      throw new RangeError(`unknown workload ${name}; known: ${WORKLOADS.map((w) => w.name).join(',')}`);
  }
  return WORKLOADS.filter((w) => wanted.includes(w.name));
}

/** Record size: one field of 1 KiB (YCSB `fieldcount=1 fieldlength=1024`), so an update writes the whole record. */
export const VALUE_BYTES = 1024;
export const ZIPFIAN_CONSTANT = 0.99;

/** The YCSB properties that run the same mix with the Java YCSB (`bin/ycsb run <db> -P workloads/workloadX -p ...`). */
export function ycsbProperties(w: Workload, records: number, operations: number, threads: number): string {
  const p = w.mix;
  return [
    `recordcount=${records}`,
    `operationcount=${operations}`,
    `threadcount=${threads}`,
    'fieldcount=1',
    `fieldlength=${VALUE_BYTES}`,
    'readallfields=true',
    'writeallfields=true',
    `readproportion=${p.READ}`,
    `updateproportion=${p.UPDATE}`,
    `insertproportion=${p.INSERT}`,
    `readmodifywriteproportion=${p['READ-MODIFY-WRITE']}`,
    'scanproportion=0',
    `requestdistribution=${w.distribution}`,
    'insertorder=hashed',
  ].join(' ');
}

// --- key choosers (YCSB's generators) ---

const FNV_OFFSET_BASIS_64 = 0xcbf29ce484222325n;
const FNV_PRIME_64 = 1099511628211n;
const MASK_64 = (1n << 64n) - 1n;

/** YCSB's `Utils.fnvhash64`: FNV-1a over the 8 little-endian bytes of `value`, as a non-negative long. */
export function fnvhash64(value: number): bigint {
  let v = BigInt(value);
  let hash = FNV_OFFSET_BASIS_64;
  for (let i = 0; i < 8; i++) {
    hash ^= v & 0xffn;
    v >>= 8n;
    hash = (hash * FNV_PRIME_64) & MASK_64;
  }
  // Java's Math.abs of the signed long (Long.MIN_VALUE stays negative there; unreachable in practice).
  return hash >= 1n << 63n ? (1n << 64n) - hash : hash;
}

/** YCSB's key name for record `n` with `insertorder=hashed`. */
export function keyName(n: number): string {
  return `user${fnvhash64(n)}`;
}

function zeta(from: number, to: number, theta: number, initial: number): number {
  let sum = initial;
  for (let i = from; i < to; i++) sum += 1 / (i + 1) ** theta;
  return sum;
}

/**
 * YCSB's `ZipfianGenerator` (Gray et al., "Quickly generating billion-record synthetic
 * databases"): item 0 the most popular, P(i) proportional to 1 / (i+1)^theta. The item count may
 * grow between draws (`next(items)`), as for skewed-latest, extending zeta incrementally.
 */
export class Zipfian {
  private readonly alpha: number;
  private readonly zeta2: number;
  private items: number;
  private zetan: number;
  private eta: number;

  constructor(
    items: number,
    private readonly theta = ZIPFIAN_CONSTANT,
    /** Precomputed zeta(items, theta), when known (it costs `items` powers). */
    zetan?: number,
  ) {
    this.alpha = 1 / (1 - theta);
    this.zeta2 = zeta(0, 2, theta, 0);
    this.items = items;
    this.zetan = zetan ?? zeta(0, items, theta, 0);
    this.eta = this.etaFor(items);
  }

  private etaFor(items: number): number {
    return (1 - (2 / items) ** (1 - this.theta)) / (1 - this.zeta2 / this.zetan);
  }

  /** A draw in [0, items), `u` uniform in [0, 1). */
  next(u: number, items = this.items): number {
    if (items !== this.items) {
      if (items < this.items) throw new RangeError('the item count of a zipfian draw may only grow');
      this.zetan = zeta(this.items, items, this.theta, this.zetan);
      this.items = items;
      this.eta = this.etaFor(items);
    }
    const uz = u * this.zetan;
    if (uz < 1) return 0;
    if (uz < 1 + 0.5 ** this.theta) return 1;
    return Math.min(items - 1, Math.floor(items * (this.eta * u - this.eta + 1) ** this.alpha));
  }
}

/** YCSB's `ScrambledZipfianGenerator`: zipfian popularity over 10^10 items, hashed onto [0, records). */
const SCRAMBLED_ITEMS = 10_000_000_000;
const SCRAMBLED_ZETAN = 26.46902820178302;

export class ScrambledZipfian {
  private readonly zipfian = new Zipfian(SCRAMBLED_ITEMS, ZIPFIAN_CONSTANT, SCRAMBLED_ZETAN);
  constructor(private readonly records: number) {}

  next(u: number): number {
    return Number(fnvhash64(this.zipfian.next(u)) % BigInt(this.records));
  }
}

// --- one client's operation sequence ---

/** Operation kinds as small integers in the precomputed sequence. */
const KIND: Record<YcsbOp, number> = { READ: 0, UPDATE: 1, INSERT: 2, 'READ-MODIFY-WRITE': 3 };

/**
 * What one client runs: `operations` operations of workload `w` over `records` loaded records,
 * drawn from `seed`. Inserts take record numbers `records + firstInsert + k * insertStride` (a
 * client of several gets its own sequence, as YCSB's `insertstart` gives each client its own).
 */
export class Sequence {
  readonly kinds: Uint8Array;
  /** Record number of each non-D operation (D's reads choose at run time, from what was acknowledged). */
  readonly records: Int32Array;
  /** D: the zipfian offset back from the latest acknowledged record, drawn ahead as a uniform. */
  readonly uniforms: Float64Array;
  readonly inserts: number;

  constructor(
    readonly workload: Workload,
    readonly recordCount: number,
    readonly operations: number,
    seed: string,
  ) {
    const random = seededRandom(`ycsb/${workload.name}/${seed}`);
    this.kinds = new Uint8Array(operations);
    this.records = new Int32Array(operations);
    this.uniforms = new Float64Array(workload.distribution === 'latest' ? operations : 0);
    const chooser = workload.distribution === 'zipfian' ? new ScrambledZipfian(recordCount) : undefined;
    const cumulative = YCSB_OPS.map((_, i) =>
      YCSB_OPS.slice(0, i + 1).reduce((s, o) => s + workload.mix[o], 0),
    );
    let inserts = 0;
    for (let i = 0; i < operations; i++) {
      const u = random.next();
      let k = cumulative.findIndex((c) => u < c);
      // Rounding can leave the sum a hair under 1: such a draw takes the last kind in the mix.
      if (k < 0) k = YCSB_OPS.findLastIndex((op) => workload.mix[op] > 0);
      this.kinds[i] = k;
      if (k === KIND.INSERT) this.records[i] = inserts++;
      else if (chooser) this.records[i] = chooser.next(random.next());
      else this.uniforms[i] = random.next();
    }
    this.inserts = inserts;
  }
}

/**
 * YCSB's `AcknowledgedCounterGenerator`: the highest record number below which every insert has
 * been acknowledged, so that skewed-latest reads only choose records that exist.
 */
class Acknowledged {
  private limit: number;
  private readonly done = new Set<number>();
  constructor(first: number) {
    this.limit = first;
  }
  /** Records [0, count) all exist. */
  get count(): number {
    return this.limit;
  }
  ack(n: number): void {
    this.done.add(n);
    while (this.done.delete(this.limit)) this.limit++;
  }
}

// --- the store under test ---

/**
 * A store the YCSB driver can run: four calls, each settling once the store acknowledged. To run
 * the same mixes against another store in this driver, implement these (values are opaque bytes).
 */
export interface YcsbTarget {
  /** A new record (the load phase and D's inserts). */
  insert(key: string, value: Uint8Array): Promise<unknown>;
  /** Reads the record; resolves to the number of versions it returned (siblings; 1 for a store without). */
  read(key: string): Promise<number>;
  /** Overwrites the record. */
  update(key: string, value: Uint8Array): Promise<unknown>;
  /** Reads the record and writes `value` back over what was read; resolves to the versions read. */
  readModifyWrite(key: string, value: Uint8Array): Promise<number>;
}

/** The node API the engine's adapter needs (a DynamoNode from the package or the bundle). */
export interface DynamoLike {
  get(key: string): Promise<{ values: unknown[]; context: string }>;
  put(key: string, value: Uint8Array, options?: { context?: string }): Promise<{ context: string }>;
  update(
    key: string,
    fn: (current: unknown, siblings: unknown[]) => Uint8Array,
  ): Promise<{ context: string }>;
}

/**
 * The engine as a YCSB target, as an application would use it: operations spread over `nodes`
 * in turn; reads and writes keep the context they were handed per key (as a client keeps Riak's
 * vector clocks), and an update writes with the context last seen for its key, so it supersedes
 * what this client saw and becomes a sibling only of writes it did not see (two updates of a hot
 * key in flight at once). A key this client never saw is updated without a context. A
 * read-modify-write is `node.update()`: a quorum read, then a put with the read's context.
 */
export function dynamoTarget(nodes: readonly DynamoLike[]): YcsbTarget {
  const contexts = new Map<string, string>();
  let turn = 0;
  const next = () => nodes[turn++ % nodes.length]!;
  return {
    insert: (key, value) =>
      next()
        .put(key, value)
        .then((r) => contexts.set(key, r.context)),
    read: (key) =>
      next()
        .get(key)
        .then((r) => {
          contexts.set(key, r.context);
          return r.values.length;
        }),
    update: (key, value) => {
      const context = contexts.get(key);
      return next()
        .put(key, value, context === undefined ? {} : { context })
        .then((r) => contexts.set(key, r.context));
    },
    readModifyWrite: (key, value) => {
      let seen = 0;
      return next()
        .update(key, (_current, siblings) => {
          seen = siblings.length;
          return value;
        })
        .then((r) => {
          contexts.set(key, r.context);
          return seen;
        });
    },
  };
}

// --- running a phase ---

/** What one client measured in one phase (histograms in µs, as the 3-process benchmarks keep them). */
export interface PhaseMeasure {
  ops: number;
  failures: number;
  /** Failures by error code (`DYNAMO_TIMEOUT`, ...; the error's name when it has none). */
  failureKinds: Record<string, number>;
  /** Per operation kind: latency histogram and count. */
  latency: Map<YcsbOp, Histogram>;
  /** Versions returned per read (READ and the read of READ-MODIFY-WRITE), count by number. */
  siblings: number[];
  /** Reads that found nothing (should stay 0). */
  notFound: number;
}

/** Record `n`'s value: 1 KiB of random bytes from a pool, different per write (equal values would merge). */
export class Values {
  private readonly pool: Buffer;
  private n = 0;
  constructor(seed: string) {
    const r = seededRandom(`values/${seed}`);
    this.pool = Buffer.allocUnsafe(64 * 1024 + VALUE_BYTES);
    for (let i = 0; i < this.pool.length; i += 4) this.pool.writeUInt32LE(r.uint32(), i);
  }
  next(): Uint8Array {
    const i = this.n++;
    const value = Buffer.allocUnsafe(VALUE_BYTES);
    this.pool.copy(value, 0, (i * 61) % (64 * 1024), ((i * 61) % (64 * 1024)) + VALUE_BYTES);
    value.writeUInt32LE(i >>> 0, 0);
    return value;
  }
}

function newMeasure(): PhaseMeasure {
  return {
    ops: 0,
    failures: 0,
    failureKinds: {},
    latency: new Map(YCSB_OPS.map((op) => [op, latencyHistogram()])),
    siblings: [],
    notFound: 0,
  };
}

function countSiblings(m: PhaseMeasure, versions: number): void {
  if (versions === 0) m.notFound++;
  m.siblings[versions] = (m.siblings[versions] ?? 0) + 1;
}

/** An error's code (its name if it has none); a QuorumError's with its first replica's reason: `DYNAMO_QUORUM/DYNAMO_TIMEOUT`. */
function failureKind(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown; failures?: { reason?: unknown }[] };
  const kind = String(e?.code ?? e?.name ?? 'unknown');
  const reason = e?.failures?.[0]?.reason;
  return reason === undefined ? kind : `${kind}/${String(reason)}`;
}

/** Closed loop: `inFlight` workers run `run(i)` for i in [0, total); latency per kind. */
async function closedLoop(
  total: number,
  inFlight: number,
  kindOf: (i: number) => YcsbOp,
  run: (i: number) => Promise<unknown>,
  m: PhaseMeasure,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= total) return;
      const t0 = performance.now();
      try {
        await run(i);
      } catch (err) {
        m.failures++;
        const kind = failureKind(err);
        m.failureKinds[kind] = (m.failureKinds[kind] ?? 0) + 1;
        continue;
      }
      m.latency.get(kindOf(i))!.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, total) }, worker));
  m.ops = total;
}

/**
 * The load phase of one client: records `first, first + stride, ...` below `records`, inserted
 * with `inFlight` in flight. Key names and values are made now; the phase runs when the returned
 * function is called (so that what is timed is the store's work only).
 */
export function prepareLoad(
  target: YcsbTarget,
  records: number,
  inFlight: number,
  first = 0,
  stride = 1,
  seed = 'load',
): () => Promise<PhaseMeasure> {
  const mine: number[] = [];
  for (let n = first; n < records; n += stride) mine.push(n);
  const keys = mine.map(keyName);
  const valueSource = new Values(`${seed}/${first}`);
  const values = mine.map(() => valueSource.next());
  return async () => {
    const m = newMeasure();
    await closedLoop(
      keys.length,
      inFlight,
      () => 'INSERT',
      (i) => target.insert(keys[i]!, values[i]!),
      m,
    );
    return m;
  };
}

/**
 * The run phase of one client: `sequence` against `target`, `inFlight` in flight. D's inserts
 * take record numbers `recordCount + firstInsert + k * insertStride`; its reads choose, by
 * skewed-latest, among the loaded records and the inserts this client saw acknowledged. As
 * `prepareLoad`: made ready now, run when the returned function is called.
 */
export function prepareRun(
  target: YcsbTarget,
  sequence: Sequence,
  inFlight: number,
  firstInsert = 0,
  insertStride = 1,
): () => Promise<PhaseMeasure> {
  const { kinds, records, uniforms, recordCount, workload } = sequence;
  const insertNumber = (k: number) => recordCount + firstInsert + k * insertStride;
  // Key names for every record a zipfian op may touch, and every insert, made up front.
  const loadedKeys: string[] = new Array(recordCount);
  const keyOfRecord = (n: number) => (loadedKeys[n] ??= keyName(n));
  if (workload.distribution === 'zipfian') for (const n of records) keyOfRecord(n);
  else for (let n = 0; n < recordCount; n++) keyOfRecord(n);
  const insertKeys = Array.from({ length: sequence.inserts }, (_, k) => keyName(insertNumber(k)));
  const valueSource = new Values(`run/${workload.name}/${firstInsert}`);
  const writes = kinds.reduce((s, k) => s + (k === KIND.READ ? 0 : 1), 0);
  const values = Array.from({ length: writes }, () => valueSource.next());
  let written = 0;
  // Skewed latest: this client's view is the loaded records, then its acknowledged inserts.
  const acked = new Acknowledged(0);
  const latest = workload.distribution === 'latest' ? new Zipfian(recordCount) : undefined;
  const latestKey = (u: number): string => {
    const known = recordCount + acked.count;
    const back = latest!.next(u, known);
    const n = known - 1 - back;
    return n >= recordCount ? insertKeys[n - recordCount]! : loadedKeys[n]!;
  };
  return async () => {
    const m = newMeasure();
    await closedLoop(
      kinds.length,
      inFlight,
      (i) => YCSB_OPS[kinds[i]!]!,
      (i) => {
        const kind = kinds[i]!;
        if (kind === KIND.INSERT) {
          const k = records[i]!;
          return target.insert(insertKeys[k]!, values[written++]!).then(() => acked.ack(k));
        }
        const key = latest ? latestKey(uniforms[i]!) : loadedKeys[records[i]!]!;
        if (kind === KIND.READ) return target.read(key).then((v) => countSiblings(m, v));
        if (kind === KIND.UPDATE) return target.update(key, values[written++]!);
        return target.readModifyWrite(key, values[written++]!).then((v) => countSiblings(m, v));
      },
      m,
    );
    return m;
  };
}

/** Mean versions per read, share of reads with more than one, and the most seen. */
export function siblingSummary(counts: readonly number[]): { mean: number; multiPct: number; max: number } {
  let reads = 0;
  let versions = 0;
  let multi = 0;
  let max = 0;
  counts.forEach((c, n) => {
    if (!c) return;
    reads += c;
    versions += c * n;
    if (n > 1) multi += c;
    max = n;
  });
  return reads === 0
    ? { mean: 0, multiPct: 0, max: 0 }
    : { mean: versions / reads, multiPct: (100 * multi) / reads, max };
}

// --- results ---

/** One client's phase as it travels (from a child process too): histograms encoded. */
export interface YcsbResult {
  ops: number;
  failures: number;
  failureKinds: Record<string, number>;
  notFound: number;
  /** Epoch ms (sub-ms precision), comparable across processes on one machine. */
  startMs: number;
  endMs: number;
  /** CPU time of this process during the phase (all threads), ms. */
  cpuMs: number;
  /** Per kind that ran: the latency histogram (µs), `hdr.encodeIntoCompressedBase64`. */
  histograms: Partial<Record<YcsbOp, string>>;
  siblings: number[];
}

/** Runs a phase and adds the time span and this process's CPU. */
export async function measurePhase(phase: () => Promise<PhaseMeasure>): Promise<YcsbResult> {
  const epochNow = () => performance.timeOrigin + performance.now();
  const cpu0 = process.cpuUsage();
  const startMs = epochNow();
  const m = await phase();
  const endMs = epochNow();
  const cpu = process.cpuUsage(cpu0);
  const histograms: Partial<Record<YcsbOp, string>> = {};
  for (const [op, h] of m.latency) {
    if (h.totalCount > 0) histograms[op] = hdr.encodeIntoCompressedBase64(h);
    h.destroy();
  }
  return {
    ops: m.ops,
    failures: m.failures,
    failureKinds: m.failureKinds,
    notFound: m.notFound,
    startMs,
    endMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    histograms,
    siblings: m.siblings,
  };
}

export interface OpFigures {
  count: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
}

/** A phase of every client together: rate over the union span, merged histograms, summed CPU. */
export interface YcsbPhase extends Omit<OpFigures, 'count'> {
  ops: number;
  failures: number;
  failureKinds: Record<string, number>;
  notFound: number;
  cpuUsPerOp: number;
  perOp: Partial<Record<YcsbOp, OpFigures>>;
  siblings: number[];
}

export function combineYcsb(results: readonly YcsbResult[]): YcsbPhase {
  const spanMs = Math.max(...results.map((r) => r.endMs)) - Math.min(...results.map((r) => r.startMs));
  const seconds = spanMs / 1000;
  const all = latencyHistogram();
  const perOp: Partial<Record<YcsbOp, OpFigures>> = {};
  const figures = (h: Histogram) => ({
    p50Ms: h.getValueAtPercentile(50) / 1000,
    p99Ms: h.getValueAtPercentile(99) / 1000,
    p999Ms: h.getValueAtPercentile(99.9) / 1000,
  });
  for (const op of YCSB_OPS) {
    const merged = latencyHistogram();
    for (const r of results) {
      const encoded = r.histograms[op];
      if (!encoded) continue;
      const h = hdr.decodeFromCompressedBase64(encoded);
      merged.add(h);
      all.add(h);
      h.destroy();
    }
    if (merged.totalCount > 0)
      perOp[op] = { count: merged.totalCount, opsPerSec: merged.totalCount / seconds, ...figures(merged) };
    merged.destroy();
  }
  const ops = results.reduce((s, r) => s + r.ops, 0);
  const failureKinds: Record<string, number> = {};
  for (const r of results)
    for (const [kind, n] of Object.entries(r.failureKinds))
      failureKinds[kind] = (failureKinds[kind] ?? 0) + n;
  const siblings: number[] = [];
  for (const r of results)
    r.siblings.forEach((c, n) => {
      siblings[n] = (siblings[n] ?? 0) + (c ?? 0);
    });
  const phase: YcsbPhase = {
    ops,
    opsPerSec: ops / seconds,
    ...figures(all),
    failures: results.reduce((s, r) => s + r.failures, 0),
    failureKinds,
    notFound: results.reduce((s, r) => s + r.notFound, 0),
    cpuUsPerOp: (results.reduce((s, r) => s + r.cpuMs, 0) * 1000) / ops,
    perOp,
    siblings,
  };
  all.destroy();
  return phase;
}
