/**
 * Micro-benchmarks of the per-request versioning work: replica merge, coordinator put, object
 * and context codecs. Objects are typical: a 4-actor ctx, 1-2 siblings of 100-byte values.
 * msgpackr encoding the same arrays is the codec baseline.
 */
import { Packr, Unpackr } from 'msgpackr';
import {
  compare,
  decodeContext,
  decodeObject,
  encodeContext,
  encodeObject,
  sync,
  update,
  type VersionedObject,
} from '../../src/versioning/index.js';
import { type BenchRow, measure } from './lib.js';

const ACTORS = ['a@k3x9q1', 'b@p0q1z7', 'c@zz01m4', 'd@r8t2w5'];
const T0 = 1_700_000_000_000;
const value = (seed: number) => new Uint8Array(100).fill(seed);

// Replica x holds two concurrent siblings; replica y has seen them and written over one.
const base: VersionedObject = {
  ctx: new Map(ACTORS.map((a, i) => [a, 40 + i * 7] as [string, number])),
  siblings: [{ dot: [ACTORS[0]!, 40], value: value(1), timestamp: T0 }],
};
const x = update(base, new Map([[ACTORS[0]!, 39]]), ACTORS[1]!, value(2), T0 + 1);
const y = update(x, new Map([[ACTORS[0]!, 40]]), ACTORS[2]!, value(3), T0 + 2);
const xCopy = decodeObject(encodeObject(x));

let sink = 0;

export async function benchVersioning(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const encoded = encodeObject(x);

  rows.push(
    measure('versioning sync, divergent (2+2 siblings -> 2)', 200_000, () => {
      sink += sync(x, y).siblings.length;
    }),
  );
  rows.push(
    measure('versioning sync, equal copies (read repair no-op)', 200_000, () => {
      sink += sync(x, xCopy).siblings.length;
    }),
  );
  rows.push(
    measure('versioning update (put with the read context)', 200_000, (i) => {
      sink += update(x, x.ctx, ACTORS[i & 3]!, value(0), T0 + i).siblings.length;
    }),
  );
  rows.push(
    measure('versioning compare (4-actor vectors)', 1_000_000, () => {
      sink += compare(x.ctx, y.ctx).length;
    }),
  );

  const codec = measure('versioning encodeObject+decodeObject', 200_000, () => {
    sink += decodeObject(encodeObject(x)).siblings.length;
  });
  // Baseline: msgpackr on the same array shape (no validation, no canonical sort).
  const packr = new Packr({ useRecords: false });
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false, int64AsType: 'number' });
  const asArrays = (o: VersionedObject) => [
    [...o.ctx].flat(),
    o.siblings.flatMap((s) => [s.dot[0], s.dot[1], s.timestamp, s.value]),
  ];
  const baseline = measure('msgpackr pack+unpack, same arrays', 200_000, () => {
    sink += (unpackr.unpack(packr.pack(asArrays(x))) as unknown[]).length;
  });
  rows.push({
    ...codec,
    baseline: 'msgpackr pack+unpack, same arrays',
    baselineOpsPerSec: baseline.opsPerSec,
    extra: { bytes: encoded.length },
  });

  const ctxString = encodeContext(y.ctx);
  rows.push({
    ...measure('versioning encodeContext+decodeContext', 200_000, () => {
      sink += decodeContext(encodeContext(y.ctx)).vector.size;
    }),
    extra: { chars: ctxString.length },
  });

  if (sink === -1) console.log(sink); // keeps the results observable
  return rows;
}
