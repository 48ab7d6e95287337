import { describe, expect, it } from 'vitest';
import { TimeoutError, TransportError } from '../../src/errors.js';
import { DynamoNode, MemoryNetwork, MemoryStorage } from '../../src/index.js';
import { loadHasher, partitionOf } from '../../src/ring/index.js';
import { Rpc } from '../../src/transport/rpc.js';
import type { RequestOptions, Transport } from '../../src/transport/types.js';
import {
  decodeMessage,
  decodeReply,
  encodeMessage,
  encodeReply,
  failureReply,
  MessageType,
  okReply,
  RemoteError,
} from '../../src/transport/wire.js';

/**
 * A transport that records what Rpc sends and answers each request with `answer`, so the tests see
 * exactly how calls were grouped into requests.
 */
function fakeTransport(answer: (message: unknown[]) => unknown[] | Error) {
  const sent: { to: string; message: unknown[]; options: RequestOptions }[] = [];
  const transport: Transport = {
    address: 'me',
    start: async () => {},
    stop: async () => {},
    request: async (to, payload, options) => {
      const message = decodeMessage(payload);
      sent.push({ to, message, options });
      const reply = answer(message);
      if (reply instanceof Error) throw reply;
      return encodeReply(reply);
    },
  };
  return { transport, sent };
}

const health = () => {
  const events: string[] = [];
  return {
    events,
    reportFailure: (id: string, reason: string) => events.push(`down ${id} ${reason}`),
    reportSuccess: (id: string) => events.push(`up ${id}`),
  };
};

const store = (partition: number, key: number) => [
  MessageType.Store,
  partition,
  null,
  [[Uint8Array.of(key), Uint8Array.of(1, 2, 3)]],
];

/**
 * Answers a Batch entry by entry with the entry's partition: a Store of partition 13 fails,
 * everything else succeeds.
 */
function batchAnswer(message: unknown[]): unknown[] {
  const one = (m: unknown[]) => {
    const partition = m[0] === MessageType.Read ? m[2] : m[1];
    return partition === 13 ? failureReply('DYNAMO_LIMIT', 'too big') : okReply([partition]);
  };
  if (message[0] === MessageType.Batch) return okReply([(message[1] as unknown[][]).map(one)]);
  return one(message);
}

describe('Rpc batching', () => {
  it('sends the Read and Store calls to one peer made in one cascade as one Batch, answered in order', async () => {
    const { transport, sent } = fakeTransport(batchAnswer);
    const rpc = new Rpc(transport, (id) => `addr-${id}`, health());
    const calls = [1, 2, 3].map((p) => rpc.call('b', store(p, p), 500));
    const read = rpc.call('b', [MessageType.Read, Uint8Array.of(9), 4, null], 500);
    const other = rpc.call('c', store(5, 5), 500);
    expect(await Promise.all([...calls, read, other])).toEqual([[1], [2], [3], [4], [5]]);
    expect(sent.map((s) => [s.to, s.message[0]])).toEqual([
      ['addr-b', MessageType.Batch],
      ['addr-c', MessageType.Store], // alone: sent as it is
    ]);
    expect((sent[0]!.message[1] as unknown[]).length).toBe(4);
    expect(sent[0]!.options.timeoutMs).toBe(500);
  });

  it('fails only the entry the peer refused', async () => {
    const { transport } = fakeTransport(batchAnswer);
    const rpc = new Rpc(transport, (id) => id, health());
    const results = await Promise.allSettled([12, 13, 14].map((p) => rpc.call('b', store(p, p), 500)));
    expect(results[0]).toEqual({ status: 'fulfilled', value: [12] });
    expect(results[1]!.status).toBe('rejected');
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(RemoteError);
    expect((results[1] as PromiseRejectedResult).reason.code).toBe('DYNAMO_LIMIT');
    expect(results[2]).toEqual({ status: 'fulfilled', value: [14] });
  });

  it('rejects every call of a batch whose request failed, and tells the failure detector once', async () => {
    const { transport } = fakeTransport(() => new TimeoutError('request timed out'));
    const h = health();
    const rpc = new Rpc(transport, (id) => id, h);
    const results = await Promise.allSettled([1, 2, 3].map((p) => rpc.call('b', store(p, p), 500)));
    for (const r of results) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(TimeoutError);
    expect(h.events).toEqual(['down b DYNAMO_TIMEOUT']);
  });

  it('rejects every call when the batch reply does not have one entry per message', async () => {
    const { transport } = fakeTransport(() => okReply([[okReply()]]));
    const rpc = new Rpc(transport, (id) => id, health());
    const results = await Promise.allSettled([1, 2].map((p) => rpc.call('b', store(p, p), 500)));
    for (const r of results) expect((r as PromiseRejectedResult).reason.message).toMatch(/malformed/);
  });

  it('keeps calls with their own abort signal, other message types and other timeouts apart', async () => {
    const { transport, sent } = fakeTransport(batchAnswer);
    const rpc = new Rpc(transport, (id) => id, health());
    await Promise.all([
      rpc.call('b', store(1, 1), 500),
      rpc.call('b', store(2, 2), 500, new AbortController().signal),
      rpc.call('b', [MessageType.Ping], 500),
      rpc.call('b', store(3, 3), 200),
      rpc.call('b', store(4, 4), 200),
    ]);
    const shapes = sent.map((s) => `${s.message[0]}/${s.options.timeoutMs}`).sort();
    // The signalled Store and the Ping go at once; then one Batch per timeout value... except that
    // the 500 ms group holds a single Store, which goes as it is.
    expect(shapes).toEqual(
      [
        `${MessageType.Batch}/200`,
        `${MessageType.Ping}/500`,
        `${MessageType.Store}/500`,
        `${MessageType.Store}/500`,
      ].sort(),
    );
  });

  it('splits at maxBatchMessages and at maxBatchBytes; a message larger than a batch goes alone', async () => {
    const { transport, sent } = fakeTransport(batchAnswer);
    const rpc = new Rpc(transport, (id) => id, health(), { maxBatchMessages: 4, maxBatchBytes: 2_000 });
    const big = [MessageType.Store, 7, null, [[Uint8Array.of(7), new Uint8Array(5_000)]]];
    const medium = (p: number) => [MessageType.Store, p, null, [[Uint8Array.of(p), new Uint8Array(600)]]];
    await Promise.all([
      ...[1, 2, 3, 4, 5].map((p) => rpc.call('b', store(p, p), 500)),
      rpc.call('b', big, 500),
      ...[8, 9, 10, 11].map((p) => rpc.call('c', medium(p), 500)),
    ]);
    const sizes = sent.map((s) =>
      s.message[0] === MessageType.Batch ? `${s.to}:${(s.message[1] as unknown[]).length}` : `${s.to}:1`,
    );
    // b: the big one at once, then 5 small ones as 4 + 1; c: ~600 B each, 3 per 2,000 B batch.
    expect(sizes).toEqual(['b:1', 'b:4', 'b:1', 'c:3', 'c:1']);
  });

  it('rejects at once when the member has no known address', async () => {
    const { transport, sent } = fakeTransport(batchAnswer);
    const rpc = new Rpc(transport, () => undefined, health());
    await expect(rpc.call('ghost', store(1, 1), 500)).rejects.toBeInstanceOf(TransportError);
    expect(sent).toEqual([]);
  });
});

describe('a node serving a Batch', () => {
  it('answers each entry on its own, refuses entries that may not be batched, and oversized batches', async () => {
    const network = new MemoryNetwork();
    const node = await DynamoNode.start({
      id: 'solo',
      transport: network.connect('solo'),
      storage: new MemoryStorage(),
      seeds: [],
      quorum: { n: 1, r: 1, w: 1 },
    });
    try {
      await node.put('k', 'v');
      const key = new TextEncoder().encode('k');
      await loadHasher();
      const partition = partitionOf(key, 256);
      const peer = network.connect('raw');
      await peer.start(async () => new Uint8Array());
      const ask = async (message: unknown[]) =>
        decodeReply(await peer.request('solo', encodeMessage(message), { timeoutMs: 1000 }));
      const [replies] = (await ask([
        MessageType.Batch,
        [
          [MessageType.Read, key, partition, null],
          [MessageType.Ping],
          [MessageType.Read, key, -5, null],
          'not a message',
        ],
      ])) as [unknown[][]];
      expect(replies.map((r) => r[0])).toEqual([0, 1, 1, 1]);
      expect(replies[0]![1]).toBeInstanceOf(Uint8Array); // the stored object
      expect(replies[1]![2]).toMatch(/only Read and Store/);
      await expect(
        ask([
          MessageType.Batch,
          Array.from({ length: 1025 }, () => [MessageType.Read, key, partition, null]),
        ]),
      ).rejects.toThrow(/at most 1024/);
    } finally {
      await node.stop();
    }
  });
});
