/**
 * Data types on a cluster at their edges: session eviction churn, a blind put or a delete on a
 * typed key.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type DynamoNode, TypeMismatchError } from '../../src/index.js';
import { type Cluster, createCluster } from '../../src/testing/index.js';
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

async function actorsOf(c: Cluster<unknown>, key: string): Promise<string[]> {
  const o = await localObject(c.storage('n2'), key);
  return [...decodeState(o!.siblings[0]!.value!).ctx.vv.keys()];
}

describe('data types at their edges', () => {
  // If a session forgotten by eviction were never resumed, a node writing more keys in turn than
  // `maxSessions` would take a new actor on every operation, and once a key's context named
  // `maxActors` of them, every operation on it from every node would be a LimitError for good.
  // An evicted session's actor is resumed when the next read has all it wrote.
  it("eviction churn does not exhaust a key's actors (an evicted session's actor is resumed)", async () => {
    const c = await start(3, { dataTypes: { maxSessions: 1, maxActors: 4 } });
    const a = c.node('n1');
    for (let i = 0; i < 6; i++) {
      await a.counter('x').increment();
      await a.counter('y').increment(); // evicts x's session
    }
    expect(await actorsOf(c, 'x')).toHaveLength(1);
    expect(await actorsOf(c, 'y')).toHaveLength(1);
    await a.counter('x').increment();
    await c.node('n2').counter('x').increment();
    expect(await actorsOf(c, 'x')).toHaveLength(2);
    expect(await a.counter('x').value()).toBe(8);
    expect(await c.node('n3').counter('y').value()).toBe(6);
  });

  // A `put` without a context on a typed key is accepted (a put never refuses: it cannot know what
  // other replicas hold); the plain sibling then makes `get` and every typed read a
  // TypeMismatchError. The key stays usable: `get`'s error carries the key's context, and a put
  // with it replaces both siblings (a typed key cannot be deleted and reused as a type: nodes
  // merge their last written state into their next operation, docs/api/data-types.md).
  it('a blind put on a typed key leaves the key recoverable through the context of get’s error', async () => {
    const c = await start();
    const [a, b] = c.nodes as [DynamoNode, DynamoNode];
    await a.set('k').add('x');
    await b.put('k', 'oops');
    await expect(a.set('k').value()).rejects.toBeInstanceOf(TypeMismatchError);
    const err = await b.get('k').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TypeMismatchError);
    const context = (err as TypeMismatchError).context;
    expect(typeof context).toBe('string');
    await b.put('k', 'plain now', { context });
    expect((await a.get('k')).values).toEqual(['plain now']);
  });

  it('a delete without a context on a typed key is refused with TypeMismatchError and writes nothing', async () => {
    const c = await start();
    const [a, b] = c.nodes as [DynamoNode, DynamoNode];
    await a.set('d').add(['x', 'y']);
    const error = await b.delete('d').catch((err: unknown) => err);
    expect(error).toBeInstanceOf(TypeMismatchError);
    expect(error).toMatchObject({ expected: 'plain', actual: 'set' });
    expect(await b.set('d').value()).toEqual(['x', 'y']);
    await a.set('d').add('z');
    expect(await b.set('d').value()).toEqual(['x', 'y', 'z']);
  });
});
