/**
 * Micro-benchmarks of the ring: key → preference list on the request path, and claim cost.
 * Not wired into a runner here; `benchRing()` returns rows for the shared table.
 */
import { claim } from '../../src/ring/claim.js';
import { loadHasher, partitionOf } from '../../src/ring/hash.js';
import { PreferenceTable } from '../../src/ring/preference.js';
import type { BenchRow } from './lib.js';

const Q = 1024;
const N = 3;
const LOOKUPS = 1_000_000;
const DISTINCT_KEYS = 100_000;

function timeLoop(total: number, body: (i: number) => unknown): number {
  // Warm up so the JIT has compiled the loop before it is timed.
  for (let i = 0; i < Math.min(total, 50_000); i++) body(i);
  const t0 = performance.now();
  for (let i = 0; i < total; i++) body(i);
  return total / ((performance.now() - t0) / 1000);
}

export async function benchRing(): Promise<BenchRow[]> {
  await loadHasher();
  const members = Array.from({ length: 64 }, (_, i) => ({ id: `node-${i}`, weight: 1 }));
  const owners = claim(undefined, members, N, Q);
  const keys = Array.from({ length: DISTINCT_KEYS }, (_, i) => `user:${i}:cart`);
  const encoder = new TextEncoder();
  const encoded = keys.map((k) => encoder.encode(k));
  const scratch = new Uint8Array(1024);
  let sink = 0;
  const rows: BenchRow[] = [];

  {
    const table = new PreferenceTable(owners, N);
    const opsPerSec = timeLoop(LOOKUPS, (i) => {
      sink += table.primaries(partitionOf(encoder.encode(keys[i % DISTINCT_KEYS]!), Q)).length;
    });
    rows.push({
      scenario: `ring: string key -> primaries (TextEncoder.encode + partitionOf + PreferenceTable), Q=${Q}`,
      opsPerSec,
      extra: { lookups: LOOKUPS },
    });
  }
  {
    const table = new PreferenceTable(owners, N);
    const opsPerSec = timeLoop(LOOKUPS, (i) => {
      const { written } = encoder.encodeInto(keys[i % DISTINCT_KEYS]!, scratch);
      sink += table.primaries(partitionOf(scratch.subarray(0, written), Q)).length;
    });
    rows.push({
      scenario: 'ring: string key -> primaries (encodeInto scratch buffer + partitionOf + PreferenceTable)',
      opsPerSec,
      extra: { lookups: LOOKUPS },
    });
  }
  {
    const table = new PreferenceTable(owners, N);
    const opsPerSec = timeLoop(LOOKUPS, (i) => {
      sink += table.primaries(partitionOf(Buffer.from(keys[i % DISTINCT_KEYS]!, 'utf8'), Q)).length;
    });
    rows.push({
      scenario: 'ring: string key -> primaries (Buffer.from + partitionOf + PreferenceTable)',
      opsPerSec,
      extra: { lookups: LOOKUPS },
    });
  }
  {
    const table = new PreferenceTable(owners, N);
    const opsPerSec = timeLoop(LOOKUPS, (i) => {
      sink += table.primaries(partitionOf(encoded[i % DISTINCT_KEYS]!, Q)).length;
    });
    rows.push({
      scenario: 'ring: byte key -> primaries (partitionOf + PreferenceTable, key already encoded)',
      opsPerSec,
      extra: { lookups: LOOKUPS },
    });
  }
  {
    const opsPerSec = timeLoop(LOOKUPS, (i) => {
      sink += encoder.encode(keys[i % DISTINCT_KEYS]!).length;
    });
    rows.push({
      scenario: 'ring: TextEncoder.encode alone (reference)',
      opsPerSec,
      extra: { lookups: LOOKUPS },
    });
  }
  {
    const runs = 20;
    const joined = [...members, { id: 'node-64', weight: 1 }];
    claim(undefined, members, N, Q); // warm-up
    let t0 = performance.now();
    for (let i = 0; i < runs; i++) claim(undefined, members, N, Q);
    const freshMs = (performance.now() - t0) / runs;
    claim(owners, joined, N, Q);
    t0 = performance.now();
    for (let i = 0; i < runs; i++) claim(owners, joined, N, Q);
    const joinMs = (performance.now() - t0) / runs;
    const leaveFrom = claim(owners, joined, N, Q);
    t0 = performance.now();
    for (let i = 0; i < runs; i++) claim(leaveFrom, members.slice(1).concat(joined.slice(-1)), N, Q);
    const leaveMs = (performance.now() - t0) / runs;
    rows.push({
      scenario: `ring: claim Q=${Q} S=64 N=${N} (fresh deal)`,
      opsPerSec: 1000 / freshMs,
      extra: { ms: freshMs.toFixed(2) },
    });
    rows.push({
      scenario: 'ring: claim, one join 64 -> 65',
      opsPerSec: 1000 / joinMs,
      extra: { ms: joinMs.toFixed(2) },
    });
    rows.push({
      scenario: 'ring: claim, one leave 65 -> 64',
      opsPerSec: 1000 / leaveMs,
      extra: { ms: leaveMs.toFixed(2) },
    });
  }
  if (sink === -1) console.log(sink); // keeps the loops from being optimised away
  return rows;
}
