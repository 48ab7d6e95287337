import { afterEach, describe, expect, it } from 'vitest';
import {
  CorruptValueError,
  type DynamoNode,
  InvalidContextError,
  LimitError,
  TypeMismatchError,
} from '../../src/index.js';
import { type Cluster, createCluster, drive } from '../../src/testing/index.js';
import { decodeState } from '../../src/types/codec.js';
import { localObject } from '../helpers.js';

let cluster: Cluster<unknown> | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

async function start(nodes = 3, nodeOptions = {}): Promise<Cluster<unknown>> {
  cluster = await createCluster({ nodes, quorum: { n: 3, r: 2, w: 2 }, nodeOptions });
  return cluster;
}

/** The siblings each primary stores for `key`. */
async function storedSiblings(c: Cluster<unknown>, key: string): Promise<number[]> {
  const out: number[] = [];
  for (const e of c.nodes[0]!.preferenceList(key)) {
    const o = await localObject(c.storage(e.id), key);
    out.push(o?.siblings.length ?? 0);
  }
  return out;
}

describe('data types on a cluster', () => {
  it('counter: increments and decrements from every node add up', async () => {
    const c = await start(5);
    let expected = 0;
    for (let i = 0; i < 40; i++) {
      const node = c.nodes[i % 5]!;
      const by = (i % 7) - 2;
      expected += by;
      await node.counter('visits').increment(by);
    }
    for (const node of c.nodes) expect(await node.counter('visits').value()).toBe(expected);
    expect((await c.nodes[0]!.counter('visits').decrement(3)).value).toBe(expected - 3);
    expect(await c.nodes[0]!.counter('never-written').value()).toBe(0);
  });

  it('set: add and remove; a remove based on an old read keeps an add it did not see', async () => {
    const c = await start();
    const [a, b] = c.nodes as [DynamoNode, DynamoNode];
    await a.set('cart').add(['book', 'pen']);
    const seen = await b.set('cart').read(); // the remover looks at the cart
    await a.set('cart').add('book'); // meanwhile the book is added again (a new dot)
    await b.set('cart').remove(['book', 'pen'], { context: seen.context });
    expect(await a.set('cart').value()).toEqual(['book']);
    // Without a context the remove removes what its own read saw.
    await b.set('cart').remove('book');
    expect(await a.set('cart').value()).toEqual([]);
    // Removing what is not there writes nothing.
    const before = await localObject(c.storage(a.id), 'cart');
    await b.set('cart').remove('nothing');
    expect(await localObject(c.storage(a.id), 'cart')).toEqual(before);
  });

  it('concurrent updates on both sides of a partition merge; the read collapses the siblings', async () => {
    const c = await start(5);
    const [n1, n2, n3, n4, n5] = c.nodes as DynamoNode[];
    await n1!.set('s').add(['keep', 'drop']);
    await n1!.counter('k').increment(10);
    c.network.partition(['n1', 'n2'], ['n3', 'n4', 'n5']);
    const left = drive(
      c.clock,
      (async () => {
        await n1!.set('s').add('left');
        await n1!.set('s').remove('drop');
        await n2!.counter('k').increment(1);
      })(),
    );
    const right = drive(
      c.clock,
      (async () => {
        await n4!.set('s').add(['right', 'drop']); // re-adds drop concurrently with the remove: add wins
        await n5!.counter('k').increment(100);
        await n3!.counter('k').decrement(5);
      })(),
    );
    await Promise.all([left, right]);
    c.network.heal();
    await c.settle(20_000);
    expect(await drive(c.clock, n3!.set('s').value({ r: 3 }))).toEqual(['drop', 'keep', 'left', 'right']);
    expect(await drive(c.clock, n1!.counter('k').value({ r: 3 }))).toBe(106);
    await c.settle(5_000);
    expect(await drive(c.clock, n2!.set('s').value({ r: 3 }))).toEqual(['drop', 'keep', 'left', 'right']);
    for (const count of await storedSiblings(c, 's')) expect(count).toBe(1);
  });

  it('map: embedded types, field removal, nested maps, values grouped by type', async () => {
    const c = await start();
    const [a, b] = c.nodes as [DynamoNode, DynamoNode];
    await a.map('user:1').update((m) => {
      m.counter('visits').increment();
      m.set('tags').add(['new', 'vip']);
      m.register('name').assign('Ada');
      m.mvRegister('color').assign('red');
      m.flag('verified').enable();
      m.map('address').register('city').assign('Paris');
    });
    await b.map('user:1').update((m) => {
      m.counter('visits').increment(2);
      m.set('tags').remove('new');
      m.flag('verified').disable();
      m.remove('color');
    });
    const v = await a.map('user:1').value();
    expect(v).toEqual({
      counters: { visits: 3 },
      sets: { tags: ['vip'] },
      registers: { name: 'Ada' },
      mvRegisters: {},
      flags: {},
      maps: {
        address: {
          counters: {},
          sets: {},
          registers: { city: 'Paris' },
          mvRegisters: {},
          flags: {},
          maps: {},
        },
      },
    });
    // A field called __proto__ is a field, not a prototype.
    await a.map('user:1').update((m) => m.counter('__proto__').increment());
    expect(
      Object.getOwnPropertyDescriptor((await a.map('user:1').value()).counters, '__proto__')?.value,
    ).toBe(1);
  });

  it('registers and flags', async () => {
    const c = await start();
    const [a, b] = c.nodes as [DynamoNode, DynamoNode];
    await a.register('r').assign({ v: 1 });
    c.clock.advance(5);
    await b.register('r').assign({ v: 2 });
    expect(await a.register('r').value()).toEqual({ v: 2 });
    await a.mvRegister('m').assign('x');
    expect(await b.mvRegister('m').value()).toEqual(['x']);
    expect(await a.flag('f').value()).toBe(false);
    await a.flag('f').enable();
    expect(await b.flag('f').value()).toBe(true);
    await b.flag('f').disable();
    expect(await a.flag('f').value()).toBe(false);
  });

  it('misuse: plain put on a typed key, plain get of a typed key, the wrong type', async () => {
    const c = await start();
    const [a, b] = c.nodes as [DynamoNode, DynamoNode];
    await a.counter('typed').increment(3);
    await expect(b.get('typed')).rejects.toBeInstanceOf(TypeMismatchError);
    await expect(b.update('typed', () => 1)).rejects.toMatchObject({
      code: 'DYNAMO_TYPE_MISMATCH',
      actual: 'counter',
    });
    await expect(b.set('typed').add('x')).rejects.toMatchObject({ expected: 'set', actual: 'counter' });
    await b.put('plain', { hello: 1 });
    const before = await localObject(c.storage(a.id), 'plain');
    await expect(a.counter('plain').increment()).rejects.toMatchObject({
      code: 'DYNAMO_TYPE_MISMATCH',
      actual: 'plain',
    });
    expect(await localObject(c.storage(a.id), 'plain')).toEqual(before);
    // A plain put without a context becomes a sibling of the typed state: detected, not merged.
    await b.put('typed', 'oops');
    await expect(a.counter('typed').value()).rejects.toBeInstanceOf(TypeMismatchError);
    await expect(a.counter('typed').increment({} as number)).rejects.toBeInstanceOf(RangeError);
    await expect(a.set('s').remove('x', { context: 'not-a-context' })).rejects.toBeInstanceOf(
      InvalidContextError,
    );
  });

  it('a corrupt stored state is a CorruptValueError, nothing written', async () => {
    const c = await start(3, {
      codec: { encode: (v: unknown) => v as Uint8Array, decode: (b: Uint8Array) => b },
    });
    const [a] = c.nodes as [DynamoNode];
    await a.put('bad', Uint8Array.of(0xc1, 0x64, 0x74, 0x01, 0x95, 0x00, 0xff));
    await expect(a.counter('bad').value()).rejects.toBeInstanceOf(CorruptValueError);
    await a.put('future', Uint8Array.of(0xc1, 0x64, 0x74, 0x09, 0x90));
    await expect(a.counter('future').increment()).rejects.toThrow(/format version/);
  });

  it('limits: elements, depth, element size, queued operations → LimitError, nothing written', async () => {
    const c = await start(3, {
      dataTypes: { maxElements: 5, maxDepth: 2, maxElementBytes: 8, maxQueuedPerKey: 2 },
    });
    const [a] = c.nodes as [DynamoNode];
    await a.set('s').add(['1', '2', '3', '4', '5']);
    await expect(a.set('s').add('6')).rejects.toMatchObject({ code: 'DYNAMO_LIMIT', limit: 'maxElements' });
    expect(await a.set('s').value()).toEqual(['1', '2', '3', '4', '5']);
    await expect(a.map('m').update((m) => m.map('x').map('y').flag('f').enable())).rejects.toMatchObject({
      limit: 'maxDepth',
    });
    await expect(a.set('t').add('123456789')).rejects.toMatchObject({ limit: 'maxElementBytes' });
    expect(await a.map('m').value()).toMatchObject({ maps: {} });
    const queued = [a.counter('q').increment(), a.counter('q').increment(), a.counter('q').increment()];
    await expect(queued[2]).rejects.toBeInstanceOf(LimitError);
    await Promise.all(queued.slice(0, 2));
    expect(await a.counter('q').value()).toBe(2);
    await expect(
      createCluster({ nodes: 1, nodeOptions: { dataTypes: { maxActors: 0 } } }),
    ).rejects.toBeInstanceOf(RangeError);
  });

  it('a restarted or wiped node writes under a new actor, so no dot is issued twice', async () => {
    const c = await start();
    await c.node('n1').counter('c').increment(1);
    await c.node('n1').counter('c').increment(1);
    await c.restart('n1');
    await c.node('n1').counter('c').increment(10);
    await c.restart('n1', { wipe: true });
    await c.settle();
    await c.node('n1').counter('c').increment(100);
    expect(await c.node('n2').counter('c').value()).toBe(112);
    const stored = await localObject(c.storage('n2'), 'c');
    const state = decodeState(stored!.siblings[0]!.value!);
    const actors = [...state.ctx.vv.keys()];
    expect(actors).toHaveLength(3);
    expect(new Set(actors.map((x) => x.split('@')[0]))).toEqual(new Set(['n1']));
    // The actor table stays small: one version-vector entry per session, no dot cloud.
    expect(state.ctx.cloud.size).toBe(0);
  });
});
