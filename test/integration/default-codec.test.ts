/**
 * The default codec gives back what was stored: Map, Set, Date, undefined, BigInt, typed arrays,
 * nested in objects and arrays, through put and get on a real cluster. Values written by earlier
 * versions (plain MessagePack, maps decoded as objects) still read as they always did.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type Codec, DynamoNode, MemoryStorage } from '../../src/index.js';
import { type Cluster, createCluster } from '../../src/testing/index.js';
import { drive } from '../helpers.js';

let cluster: Cluster<unknown> | undefined;
const extra: DynamoNode<unknown>[] = [];
afterEach(async () => {
  await Promise.all(extra.splice(0).map((n) => n.stop()));
  await cluster?.stop();
  cluster = undefined;
});

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

const values: [string, unknown][] = [
  [
    'Map with string and non-string keys',
    new Map<unknown, unknown>([
      ['a', 1],
      [2, 'two'],
      [true, null],
    ]),
  ],
  ['Set', new Set(['x', 1, 'y'])],
  ['Date', new Date(1_700_000_000_123)],
  ['undefined', undefined],
  ['null', null],
  ['BigInt within 64 bits', 5n],
  ['negative BigInt', -(2n ** 63n)],
  ['BigInt beyond 64 bits', 2n ** 100n + 7n],
  ['Uint8Array', new Uint8Array([1, 2, 3])],
  ['Float64Array', new Float64Array([1.5, -2.25])],
  ['Int32Array', new Int32Array([-1, 7])],
  ['NaN and Infinity', [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]],
  ['large integer', 2 ** 53 - 1],
  [
    'nested',
    { cart: new Map([['book', { qty: 2, added: new Date(5) }]]), tags: new Set(['a']), note: undefined },
  ],
  ['array of objects of one shape', [{ k: 1 }, { k: 2 }, { k: 3, extra: [undefined] }]],
  ['empty object and empty Map', [{}, new Map()]],
  ['RegExp', /ab+c/gi],
];

describe('the default codec', () => {
  it('round-trips every value type it lists, with its prototype, through put and get', async () => {
    cluster = await createCluster({ nodes: 3 });
    const [a, b] = cluster.nodes;
    for (const [name, value] of values) {
      await drive(cluster.clock, a!.put(name, value));
      const read = await drive(cluster.clock, b!.get(name, { r: 3 }));
      expect(read.values, name).toHaveLength(1);
      expect(read.values[0], name).toStrictEqual(value);
    }
    const map = (await drive(cluster.clock, b!.get(values[0]![0]))).values[0];
    expect(map).toBeInstanceOf(Map);
    expect((await drive(cluster.clock, b!.get('Set'))).values[0]).toBeInstanceOf(Set);
    expect((await drive(cluster.clock, b!.get('Date'))).values[0]).toBeInstanceOf(Date);
    expect((await drive(cluster.clock, b!.get('Float64Array'))).values[0]).toBeInstanceOf(Float64Array);
  });

  it('gives class instances back as plain objects with their fields', async () => {
    cluster = await createCluster({ nodes: 1, quorum: { n: 1 } });
    const [a] = cluster.nodes;
    await drive(cluster.clock, a!.put('p', new Point(1, 2)));
    expect((await drive(cluster.clock, a!.get('p'))).values).toStrictEqual([{ x: 1, y: 2 }]);
  });

  it('reads values stored by earlier versions (plain MessagePack) as they always read', async () => {
    // Bytes the earlier default codec (msgpackr, useRecords: false, mapsAsObjects: true) wrote.
    const stored: [string, string, unknown][] = [
      [
        'object',
        'de0003a46e616d65a463617274a56974656d7392a4626f6f6ba370656ea3717479de0001a4626f6f6b01',
        { name: 'cart', items: ['book', 'pen'], qty: { book: 1 } },
      ],
      ['array', '9501a374776fc0c3cb3ff8000000000000', [1, 'two', null, true, 1.5]],
      ['string', 'a568656c6c6f', 'hello'],
      ['date', 'd7ff1d5353006553f100', new Date(1_700_000_000_123)],
      ['bigint', 'd30000000000000005', 5n],
      ['bytes', 'c403010203', new Uint8Array([1, 2, 3])],
      ['a Map was stored as an object', '81a16101', { a: 1 }],
      ['a Set was stored as an array', '91a178', ['x']],
    ];
    cluster = await createCluster({ nodes: 2, quorum: { n: 2, r: 1, w: 2 } });
    const c = cluster;
    // A node whose codec writes the stored bytes as they are: what an earlier version left on disk.
    const raw: Codec<unknown> = { encode: (v) => v as Uint8Array, decode: (b) => b };
    const old = await drive(
      c.clock,
      DynamoNode.start({
        id: 'old',
        transport: c.network.connect('old'),
        storage: new MemoryStorage(),
        seeds: ['n1'],
        clock: c.clock,
        quorum: { n: 2, r: 1, w: 2 },
        codec: raw,
        waitUntilReady: true,
      }),
    );
    extra.push(old);
    for (const [name, hex] of stored) await drive(c.clock, old.put(name, Buffer.from(hex, 'hex')));
    for (const [name, , expected] of stored) {
      const read = await drive(c.clock, c.nodes[0]!.get(name, { r: 2 }));
      expect(read.values, name).toStrictEqual([expected]);
    }
  });
});
