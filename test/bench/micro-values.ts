/**
 * Micro-benchmark of the default value codec (src/values.ts) against the one it replaced (plain
 * MessagePack with maps as objects, which loses Map, Set and typed arrays), on a typical JSON-like
 * value and on the same value with a Map, a Set and a Date: encode + decode per operation.
 */
import { Packr } from 'msgpackr';
import { defaultCodec } from '../../src/values.js';
import { type BenchRow, measure } from './lib.js';

const plain = {
  id: 'cart:42',
  owner: 'user-1729',
  items: [
    { sku: 'book-0451', qty: 1, price: 12.5 },
    { sku: 'pen-0007', qty: 3, price: 1.2 },
  ],
  updatedMs: 1_700_000_000_123,
  note: 'leave at the door',
};
const rich = {
  ...plain,
  items: new Map(plain.items.map((i) => [i.sku, i])),
  tags: new Set(['gift', 'fragile']),
  updated: new Date(1_700_000_000_123),
};
const earlier = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

let sink = 0;

export async function benchValues(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const [name, value] of [
    ['plain object', plain],
    ['with Map, Set, Date', rich],
  ] as const) {
    const now = measure(`default value codec encode+decode, ${name}`, 200_000, () => {
      sink += (defaultCodec.decode(defaultCodec.encode(value as never)) as { id: string }).id.length;
    });
    const before = measure(`earlier codec (plain msgpack) encode+decode, ${name}`, 200_000, () => {
      sink += (earlier.unpack(earlier.pack(value)) as { id: string }).id.length;
    });
    rows.push({
      ...now,
      baseline: before.scenario,
      baselineOpsPerSec: before.opsPerSec,
      extra: {
        bytes: defaultCodec.encode(value as never).length,
        earlierBytes: earlier.pack(value).length,
      },
    });
  }
  if (sink === -1) console.log(sink);
  return rows;
}
