/**
 * Child process of the 3-process TCP benchmark (`tcp-cluster.ts`): one DynamoNode on TcpTransport
 * (loopback) and LevelStorage, which also generates load against itself when told to over IPC.
 * Running the load generator inside each node process, against its local node, keeps it from
 * being a bottleneck of its own and spreads coordinators evenly, as a service running an embedded
 * node would. Latencies are recorded in an HDR histogram and sent back encoded, so the parent can
 * merge the raw histograms rather than average percentiles.
 *
 * Not meant to be run by hand: `npx tsx test/bench/tcp-cluster.ts`.
 */
import { parseArgs } from 'node:util';
import type { Histogram } from 'hdr-histogram-js';
import * as hdr from 'hdr-histogram-js';
import { DynamoNode } from '../../src/index.js';
import { LevelStorage } from '../../src/level/index.js';
import { TcpTransport } from '../../src/tcp/index.js';
import { closedLoad, type LoadResult, latencyHistogram, openLoad, profiled, serveCommands } from './load.js';
import {
  dynamoTarget,
  measurePhase,
  prepareLoad,
  prepareRun,
  Sequence,
  workloadsNamed,
} from './ycsb-core.js';

export type BenchCommand =
  | { seq: number; cmd: 'members' }
  | { seq: number; cmd: 'closed'; op: 'put' | 'get'; total: number; inFlight: number; prefix: string }
  | {
      seq: number;
      cmd: 'open';
      /** `none`: operations that do nothing (what the process spends idle at that offered rate). */
      op: 'put' | 'get' | 'none';
      ratePerSec: number;
      durationMs: number;
      prefix: string;
      /** Gets read keys [0, keyCount) of `prefix`. */
      keyCount: number;
    }
  | { seq: number; cmd: 'stats' }
  /** YCSB (`ycsb.ts`): this process is one client, loading records first, first + stride, ... */
  | { seq: number; cmd: 'ycsb-load'; records: number; inFlight: number; first: number; stride: number }
  /** YCSB run phase; D's inserts are numbered records + firstInsert + k * insertStride. */
  | {
      seq: number;
      cmd: 'ycsb-run';
      workload: string;
      records: number;
      operations: number;
      inFlight: number;
      seed: string;
      firstInsert: number;
      insertStride: number;
    }
  | { seq: number; cmd: 'stop' };

const { values: args } = parseArgs({
  options: {
    id: { type: 'string' },
    data: { type: 'string' },
    seeds: { type: 'string', default: '' },
  },
});

const VALUE = new Uint8Array(100).fill(7);
const codec = { encode: (v: Uint8Array) => v, decode: (b: Uint8Array) => b };
const transport = new TcpTransport();
const storage = new LevelStorage({ path: args.data! });
const node = await DynamoNode.start<Uint8Array>({
  id: args.id!,
  transport,
  storage,
  seeds: args.seeds ? args.seeds.split(',') : [],
  quorum: { n: 3, r: 2, w: 2 },
  codec,
});

const epochNow = () => performance.timeOrigin + performance.now();
const cpuSince = (start: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
};

function opFor(
  op: 'put' | 'get' | 'none',
  prefix: string,
  keyOf: (i: number) => number,
): (i: number) => Promise<unknown> {
  if (op === 'none') return () => Promise.resolve();
  return op === 'put'
    ? (i) => node.put(`${prefix}-${keyOf(i)}`, VALUE)
    : (i) => node.get(`${prefix}-${keyOf(i)}`);
}

/** What the transport and the storage did during a phase (counted, not timed). */
export interface EngineCounts {
  /** Frames (requests and responses) written, and the socket writes they took. */
  frames: number;
  writes: number;
  /** Keys read and the LevelDB `getMany`s they took; records written and the LevelDB writes. */
  reads: number;
  getManys: number;
  records: number;
  levelWrites: number;
}

export interface EngineResult extends LoadResult {
  counts: EngineCounts;
}

function countsNow(): EngineCounts {
  const t = transport.stats();
  const s = storage.stats;
  return {
    frames: t.framesSent,
    writes: t.writes,
    reads: s.reads,
    getManys: s.readBatches,
    records: s.operations,
    levelWrites: s.groups,
  };
}

/** Runs `load` with a fresh histogram; its result with the time span, this process's CPU and counts. */
async function measured(
  label: string,
  load: (h: Histogram) => Promise<{ ops: number; failures: number }>,
): Promise<EngineResult> {
  const h = latencyHistogram();
  const counts0 = countsNow();
  const cpu0 = process.cpuUsage();
  const startMs = epochNow();
  const { ops, failures } = await profiled(`engine-${args.id}-${label}`, () => load(h));
  const endMs = epochNow();
  const cpuMs = cpuSince(cpu0);
  const counts1 = countsNow();
  const counts = { ...counts1 };
  for (const k of Object.keys(counts) as (keyof EngineCounts)[]) counts[k] -= counts0[k];
  const histogram = hdr.encodeIntoCompressedBase64(h);
  h.destroy();
  return { ops, failures, startMs, endMs, histogram, cpuMs, counts };
}

function closedLoop(c: Extract<BenchCommand, { cmd: 'closed' }>): Promise<EngineResult> {
  return measured(`closed-${c.op}-${c.prefix}`, async (h) => ({
    ops: c.total,
    failures: await closedLoad(
      c.total,
      c.inFlight,
      opFor(c.op, c.prefix, (i) => i),
      h,
    ),
  }));
}

/** Open loop (see `openLoad`); gets read keys [0, keyCount) of `prefix`. */
function openLoop(c: Extract<BenchCommand, { cmd: 'open' }>): Promise<EngineResult> {
  const keyOf = c.op === 'get' ? (i: number) => i % c.keyCount : (i: number) => i;
  return measured(`open-${c.op}-${Math.round(c.ratePerSec)}`, (h) =>
    openLoad(
      c.ratePerSec,
      c.durationMs,
      opFor(c.op, c.prefix, keyOf),
      h,
      `engine ${args.id} ${c.op} ${Math.round(c.ratePerSec)}/s`,
    ),
  );
}

/** This process as one YCSB client: one target for its whole life, so it keeps the contexts it saw. */
const ycsb = dynamoTarget([node]);

async function run(c: BenchCommand): Promise<unknown> {
  switch (c.cmd) {
    case 'members':
      return node.members();
    case 'closed':
      return closedLoop(c);
    case 'open':
      return openLoop(c);
    case 'ycsb-load': {
      const load = prepareLoad(ycsb, c.records, c.inFlight, c.first, c.stride);
      return measurePhase(() => profiled(`ycsb-${args.id}-load`, load));
    }
    case 'ycsb-run': {
      const sequence = new Sequence(workloadsNamed(c.workload)[0]!, c.records, c.operations, c.seed);
      const phase = prepareRun(ycsb, sequence, c.inFlight, c.firstInsert, c.insertStride);
      return measurePhase(() => profiled(`ycsb-${args.id}-${c.workload}`, phase));
    }
    case 'stats':
      return { transport: transport.stats(), storage: storage.stats, node: node.stats() };
    case 'stop':
      await node.stop();
      return null;
  }
}

serveCommands(run, () => node.stop(), node.address);
