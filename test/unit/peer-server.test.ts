import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DynamoNode, MemoryNetwork, MemoryStorage } from '../../src/index.js';
import { loadHasher, partitionOf } from '../../src/ring/index.js';
import type { Transport } from '../../src/transport/types.js';
import { decodeReply, encodeMessage, MessageType, RemoteError } from '../../src/transport/wire.js';
import { decodeObject, encodeContext } from '../../src/versioning/index.js';

const utf8 = new TextEncoder();
const bytes = (s: string) => utf8.encode(s);

/** A one-node cluster and a raw peer that speaks the wire protocol to it directly. */
describe('PeerServer', () => {
  let network: MemoryNetwork;
  let node: DynamoNode<Uint8Array>;
  let peer: Transport;
  const ask = async (message: unknown[]) =>
    decodeReply(await peer.request('solo', encodeMessage(message), { timeoutMs: 1000 }));
  const read = async (key: string) => {
    const k = bytes(key);
    return (await ask([MessageType.Read, k, partitionOf(k, 256), null]))[0];
  };

  beforeEach(async () => {
    await loadHasher();
    network = new MemoryNetwork();
    node = await DynamoNode.start<Uint8Array>({
      id: 'solo',
      transport: network.connect('solo'),
      storage: new MemoryStorage(),
      seeds: [],
      quorum: { n: 1, r: 1, w: 1 },
      codec: { encode: (v) => v, decode: (b) => b },
    });
    peer = network.connect('raw');
    await peer.start(async () => new Uint8Array());
  });
  afterEach(async () => {
    await node.stop();
    await peer.stop();
  });

  it('checks every entry of a Store before applying any of them', async () => {
    await node.put('k', bytes('v'));
    const object = await read('k');
    expect(object).toBeInstanceOf(Uint8Array);
    const k2 = bytes('k2');
    const partition = partitionOf(k2, 256);
    const bad = ask([
      MessageType.Store,
      partition,
      null,
      [
        [k2, object],
        [bytes('k3'), 'not bytes'],
      ],
    ]);
    await expect(bad).rejects.toBeInstanceOf(RemoteError);
    expect(await read('k2')).toBeNull();
    await ask([MessageType.Store, partition, null, [[k2, object]]]);
    expect(await read('k2')).toEqual(object);
  });

  it('checks gossiped transfer progress with the state: malformed progress merges neither', async () => {
    const state = [[['other', 'other:1', 1, 'joining', 1]], [0, Array(256).fill('solo'), '', null, []]];
    const bad = ask([MessageType.Gossip, state, [1, [[0, 'other', -5, null]]]]);
    await expect(bad).rejects.toBeInstanceOf(RemoteError);
    expect(node.members().map((m) => m.id)).toEqual(['solo']);
    // Well formed (progress of another ring is ignored), and a peer that sends none is fine too.
    const [reply, progress] = await ask([MessageType.Gossip, state, [0, [[0, 'other', 5, null]]]]);
    expect(node.members().map((m) => m.id)).toContain('other');
    expect(Array.isArray(reply)).toBe(true);
    expect(progress).toEqual([node.ringStatus().version, []]);
    await ask([MessageType.Gossip, state]);
  });

  it('answers a duplicated forwarded put once: same context, one version', async () => {
    const key = bytes('cart');
    const forward = [
      MessageType.CoordinatePut,
      key,
      bytes('book'),
      encodeContext(new Map()),
      1,
      1000,
      'req-1',
    ];
    const [first] = await ask(forward);
    const [again] = await ask(forward);
    expect(again).toBe(first);
    const got = await node.get('cart');
    expect(got.values).toEqual([bytes('book')]);
    expect(got.context).toBe(first);
    // Another request id is another write: it makes a new version.
    const [other] = await ask([...forward.slice(0, 6), 'req-2']);
    expect(other).not.toBe(first);
  });

  it('stores a forwarded put once even when another node forwards the same operation', async () => {
    // Two forwarders (the first timed out and the client retried elsewhere, say) send one op id:
    // the second copy is not remembered by sender, but the replica has seen the op. A delete, as
    // tombstones are never merged by value: only the op id can make the two one.
    const second = network.connect('raw2');
    await second.start(async () => new Uint8Array());
    const key = bytes('cart2');
    const forward = [MessageType.CoordinatePut, key, null, encodeContext(new Map()), 1, 1000, 'op-x'];
    await ask(forward);
    await decodeReply(await second.request('solo', encodeMessage(forward), { timeoutMs: 1000 }));
    await second.stop();
    const raw = decodeObject((await read('cart2')) as Uint8Array);
    expect(raw.siblings).toHaveLength(1);
    expect(raw.siblings[0]!.op).toBe('op-x');
  });

  it('refuses unknown message types and counts what it served', async () => {
    await expect(ask([99])).rejects.toThrow(/unknown message type 99/);
    await ask([MessageType.Ping]);
    expect(node.stats().served).toMatchObject({ '6': 1, '99': 1 });
  });
});
