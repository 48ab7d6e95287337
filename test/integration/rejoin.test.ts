/**
 * An id comes back: after `leave()` or `removeMember`, with an empty disk (a new incarnation,
 * never reusing a dot) or with its old disk (nothing it held that the cluster lacks is lost), and
 * every key stays readable at `r: n`. One live node per id: a second node under a live member's id
 * is refused and the member is left alone, while a restart of the same node (same storage), also
 * at a new address, still works. All on a MemoryNetwork and a VirtualClock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  DynamoNode,
  type DynamoNodeOptions,
  IdInUseError,
  MemoryNetwork,
  MemoryStorage,
  type Storage,
  seededRandom,
  VirtualClock,
} from '../../src/index.js';
import { drive, localObject, primariesOf } from '../helpers.js';

const fast = {
  requestTimeoutMs: 100,
  gossipIntervalMs: 100,
  hintedHandoff: { intervalMs: 100 },
  quorum: { n: 3, r: 2, w: 2 },
};
const running: DynamoNode<unknown>[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((n) => n.stop()));
});

interface World {
  clock: VirtualClock;
  network: MemoryNetwork;
  nodes: Map<string, DynamoNode<unknown>>;
  start(
    id: string,
    storage: Storage,
    options?: { address?: string; seeds?: string[] },
  ): Promise<DynamoNode<unknown>>;
}

async function world(ids: string[]): Promise<World> {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock });
  const nodes = new Map<string, DynamoNode<unknown>>();
  const w: World = {
    clock,
    network,
    nodes,
    async start(id, storage, options = {}) {
      const node = await drive(
        clock,
        DynamoNode.start({
          ...fast,
          id,
          transport: network.connect(options.address ?? id),
          storage,
          seeds: options.seeds ?? ids.filter((x) => x !== id),
          clock,
          random: seededRandom(`${id}:${clock.now()}`),
          waitUntilReady: true,
        } satisfies DynamoNodeOptions<unknown>),
      );
      running.push(node);
      nodes.set(id, node);
      return node;
    },
  };
  await Promise.all(ids.map((id) => w.start(id, new MemoryStorage())));
  return w;
}

/** Writes `count` keys through the nodes in turn (w = n). */
async function writeKeys(w: World, count: number): Promise<Map<string, number>> {
  const written = new Map<string, number>();
  const nodes = [...w.nodes.values()];
  for (let i = 0; i < count; i++) {
    await drive(w.clock, nodes[i % nodes.length]!.put(`key-${i}`, i, { w: 3 }));
    written.set(`key-${i}`, i);
  }
  return written;
}

/** Every key reads back at r = n through every running node. */
async function expectAllReadable(w: World, written: Map<string, number>): Promise<void> {
  for (const node of w.nodes.values()) {
    if (node.status !== 'running') continue;
    for (const [key, value] of written) {
      const read = await drive(w.clock, node.get(key, { r: 3 }));
      expect(read.values, `${key} through ${node.id}`).toEqual([value]);
    }
  }
}

/** The actor (`id@incarnation`) of the dot of a write `node` coordinated just now. */
async function actorOfWrite(w: World, node: DynamoNode<unknown>, storage: Storage): Promise<string> {
  let key = '';
  for (let i = 0; ; i++) {
    key = `probe-${node.id}-${w.clock.now()}-${i}`;
    if (primariesOf(node, key)[0] === node.id) break;
  }
  await drive(w.clock, node.put(key, 'probe', { w: 3 }));
  const object = await localObject(storage, key);
  return object!.siblings[0]!.dot[0];
}

async function settled(w: World): Promise<void> {
  const nodes = [...w.nodes.values()].filter((n) => n.status === 'running');
  await drive(
    w.clock,
    (async () => {
      while (
        !nodes.every(
          (n) => n.ringStatus().settled && n.ringStatus().version === nodes[0]!.ringStatus().version,
        )
      ) {
        await w.clock.advance(10);
      }
    })(),
  );
}

describe('an id that left or was removed comes back', () => {
  for (const how of ['leave', 'removeMember'] as const) {
    for (const disk of ['an empty disk', 'its old disk'] as const) {
      it(`after ${how}, with ${disk}: it joins again and every key reads at r = n`, async () => {
        const w = await world(['a', 'b', 'c', 'd']);
        const storages = new Map<string, Storage>();
        // Keep b's storage to restart it with its old disk.
        const bStorage = new MemoryStorage();
        await w.nodes.get('b')!.stop();
        running.splice(running.indexOf(w.nodes.get('b')!), 1);
        await w.start('b', bStorage);
        storages.set('b', bStorage);
        const written = await writeKeys(w, 60);
        const before = await actorOfWrite(w, w.nodes.get('b')!, bStorage);

        if (how === 'leave') {
          await drive(w.clock, w.nodes.get('b')!.leave());
        } else {
          await w.nodes.get('b')!.stop();
          w.nodes.get('a')!.removeMember('b');
        }
        w.nodes.delete('b');
        await settled(w);
        expect(
          w.nodes
            .get('a')!
            .members()
            .map((m) => m.id),
        ).toEqual(['a', 'c', 'd']);
        const more = await writeKeys(w, 30);
        for (const [k, v] of more) written.set(`${k}`, v);

        const storage = disk === 'an empty disk' ? new MemoryStorage() : bStorage;
        const b = await w.start('b', storage, { seeds: ['a'] });
        await settled(w);
        for (const node of w.nodes.values()) {
          expect(node.members().map((m) => [m.id, m.status])).toEqual([
            ['a', 'up'],
            ['b', 'up'],
            ['c', 'up'],
            ['d', 'up'],
          ]);
        }
        expect(b.members().find((m) => m.id === 'b')!.partitions).toBeGreaterThanOrEqual(64);
        const after = await actorOfWrite(w, b, storage);
        if (disk === 'an empty disk') expect(after).not.toBe(before);
        else expect(after).toBe(before);
        await expectAllReadable(w, written);
      });
    }
  }

  it('with its old disk after removeMember, writes only it held reach the cluster, also where it is no replica any more', async () => {
    const w = await world(['a', 'b', 'c', 'd']);
    const bStorage = new MemoryStorage();
    await w.nodes.get('b')!.stop();
    running.splice(running.indexOf(w.nodes.get('b')!), 1);
    const b = await w.start('b', bStorage);
    const written = await writeKeys(w, 40);
    // Keys b is a primary of, written with w = 1 while b is cut off: only b's disk has them.
    const only: string[] = [];
    for (let i = 0; only.length < 40; i++) {
      if (primariesOf(b, `only-b-${i}`).includes('b')) only.push(`only-b-${i}`);
    }
    w.network.partition(['b']);
    for (const key of only) await drive(w.clock, b.put(key, `kept ${key}`, { w: 1 }));
    await b.stop();
    running.splice(running.indexOf(b), 1);
    w.nodes.delete('b');
    w.network.heal();
    w.nodes.get('c')!.removeMember('b');
    await settled(w);
    for (const key of only) {
      expect((await drive(w.clock, w.nodes.get('a')!.get(key, { r: 3 }))).values).toEqual([]);
    }

    const back = await w.start('b', bStorage, { seeds: ['a', 'c'] });
    await settled(w);
    // Hinted handoff delivers what b no longer owns; what it owns again is on b itself.
    await w.clock.advance(2_000);
    const elsewhere = only.filter((key) => !primariesOf(back, key).includes('b'));
    expect(elsewhere.length).toBeGreaterThan(0);
    for (const key of elsewhere) expect(await localObject(bStorage, key)).toBeUndefined();
    for (const key of only) written.set(key, `kept ${key}` as unknown as number);
    await expectAllReadable(w, written);
    expect(back.stats().hints.pending).toBe(0);
  });
});

describe('one live node per id', () => {
  it('refuses a second node under a live member’s id with IdInUseError; the member is unharmed', async () => {
    const w = await world(['a', 'b', 'c']);
    const written = await writeKeys(w, 20);
    const ringBefore = w.nodes.get('a')!.ringStatus();
    for (const seeds of [['a'], ['b'], ['a', 'c']]) {
      const t0 = w.clock.now();
      const error = await drive(
        w.clock,
        DynamoNode.start({
          ...fast,
          id: 'b',
          transport: w.network.connect('b-impostor'),
          storage: new MemoryStorage(),
          seeds,
          clock: w.clock,
        }).then(
          () => undefined,
          (err: unknown) => err,
        ),
      );
      expect(error).toBeInstanceOf(IdInUseError);
      expect((error as IdInUseError).code).toBe('DYNAMO_ID_IN_USE');
      expect((error as IdInUseError).id).toBe('b');
      expect((error as Error).message).toMatch(
        /id b is (held by a live member at b|the node answering at b)/,
      );
      // Refused on the first round, not after a timeout.
      expect(w.clock.now() - t0).toBeLessThan(1000);
    }
    await w.clock.advance(1_000);
    const ringAfter = w.nodes.get('a')!.ringStatus();
    expect(ringAfter.version).toBe(ringBefore.version);
    for (const node of w.nodes.values()) {
      expect(node.members().map((m) => [m.id, m.address, m.status])).toEqual([
        ['a', 'a', 'up'],
        ['b', 'b', 'up'],
        ['c', 'c', 'up'],
      ]);
    }
    await expectAllReadable(w, written);
  });

  it('a restart of the same node (same storage) at a new address works, and peers route to it there', async () => {
    const w = await world(['a', 'b', 'c']);
    const bStorage = new MemoryStorage();
    await w.nodes.get('b')!.stop();
    running.splice(running.indexOf(w.nodes.get('b')!), 1);
    await w.start('b', bStorage);
    const written = await writeKeys(w, 20);
    await w.nodes.get('b')!.stop();
    const b = await w.start('b', bStorage, { address: 'b-moved' });
    await settled(w);
    await w.clock.advance(500);
    for (const node of w.nodes.values()) {
      expect(node.members().find((m) => m.id === 'b')).toMatchObject({ address: 'b-moved', status: 'up' });
    }
    expect(b.ringStatus().settled).toBe(true);
    await expectAllReadable(w, written);
  });

  it('a node under the id of a member that is down (not removed) takes its place as a new incarnation', async () => {
    const w = await world(['a', 'b', 'c']);
    const written = await writeKeys(w, 20);
    await w.nodes.get('b')!.stop();
    await w.clock.advance(1_000);
    const fresh = new MemoryStorage();
    const b = await w.start('b', fresh, { address: 'b-replacement' });
    await settled(w);
    for (const node of w.nodes.values()) {
      expect(node.members().find((m) => m.id === 'b')).toMatchObject({
        address: 'b-replacement',
        status: 'up',
      });
    }
    // Its replicas are refilled by reads (read repair) and anti-entropy; r = n reads merge all three.
    expect(b.ringStatus().settled).toBe(true);
    await expectAllReadable(w, written);
  });
});
