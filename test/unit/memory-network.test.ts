import { describe, expect, it } from 'vitest';
import { TimeoutError, TransportError } from '../../src/errors.js';
import { MemoryNetwork, type MemoryNetworkOptions } from '../../src/transport/memory.js';
import type { RequestHandler, Transport } from '../../src/transport/types.js';
import { VirtualClock } from '../../src/util/clock.js';

type Outcome =
  | { state: 'pending' }
  | { state: 'resolved'; value: Uint8Array }
  | { state: 'rejected'; error: unknown };

/** Observes a request without awaiting it, so virtual time can move while it is in flight. */
function observe(p: Promise<Uint8Array>): { outcome: Outcome } {
  const box: { outcome: Outcome } = { outcome: { state: 'pending' } };
  p.then(
    (value) => {
      box.outcome = { state: 'resolved', value };
    },
    (error: unknown) => {
      box.outcome = { state: 'rejected', error };
    },
  );
  return box;
}

const echo: RequestHandler = async (_from, payload) => payload;
const bytes = (...b: number[]) => new Uint8Array(b);

function setup(options: Omit<MemoryNetworkOptions, 'clock'> = {}) {
  const clock = new VirtualClock();
  const net = new MemoryNetwork({ ...options, clock });
  const nodes = new Map<string, Transport>();
  const node = async (address: string, handler: RequestHandler = echo) => {
    const t = net.connect(address);
    await t.start(handler);
    nodes.set(address, t);
    return t;
  };
  const send = (from: string, to: string, payload = bytes(1), timeoutMs = 100) =>
    observe(nodes.get(from)!.request(to, payload, { timeoutMs }));
  return { clock, net, node, send };
}

/** Outcome state after letting every timer up to `ms` fire. */
async function stateAfter(
  clock: VirtualClock,
  ms: number,
  box: { outcome: Outcome },
): Promise<Outcome['state']> {
  await clock.advance(ms);
  return box.outcome.state;
}

function errorOf(box: { outcome: Outcome }): unknown {
  if (box.outcome.state !== 'rejected') throw new Error(`expected a rejection, got ${box.outcome.state}`);
  return box.outcome.error;
}

describe('MemoryNetwork: endpoints', () => {
  it('refuses a second connect() of a live address, allows it after stop()', async () => {
    const net = new MemoryNetwork({ clock: new VirtualClock() });
    const a = net.connect('a');
    expect(() => net.connect('a')).toThrow(/already connected/);
    await a.start(echo);
    expect(() => net.connect('a')).toThrow(/already connected/);
    await a.stop();
    await a.stop(); // idempotent
    const again = net.connect('a');
    expect(again.address).toBe('a');
    await expect(a.start(echo)).rejects.toThrow(/stopped/);
  });

  it('delivers on a microtask with no latency: no clock advance needed, no timer left behind', async () => {
    const { clock, node } = setup();
    await node('b', async (from, payload) => bytes(payload.length, from.length));
    const a = await node('a');
    const p = a.request('b', bytes(1, 2, 3), { timeoutMs: 100 });
    expect(clock.pending).toBe(1); // the timeout timer only
    expect(await p).toEqual(bytes(3, 1));
    expect(clock.pending).toBe(0);
    expect(clock.now()).toBe(0);
  });

  it('counts the payload bytes each endpoint sent and received; reports itself authenticated', async () => {
    const { node } = setup();
    const b = await node('b', async () => bytes(9, 9));
    const a = await node('a');
    await a.request('b', bytes(1, 2, 3), { timeoutMs: 100 });
    await a.request('b', bytes(4), { timeoutMs: 100 });
    expect(a.stats?.()).toEqual({ bytesSent: 4, bytesReceived: 4 });
    expect(b.stats?.()).toEqual({ bytesSent: 4, bytesReceived: 4 });
    await a.request('b', bytes(1, 2, 3, 4, 5, 6), { timeoutMs: 100 });
    expect(a.stats?.()).toEqual({ bytesSent: 10, bytesReceived: 6 });
    expect(b.stats?.()).toEqual({ bytesSent: 6, bytesReceived: 10 });
    expect(a.authenticated).toBe(true);
  });

  it('refuses requests to an address with no running endpoint, after the latency', async () => {
    const { clock, net, node, send } = setup({ latencyMs: { min: 5, max: 5 } });
    await node('a');
    net.connect('idle'); // connected, never started
    const unknown = send('a', 'nobody');
    const idle = send('a', 'idle');
    expect(await stateAfter(clock, 4, unknown)).toBe('pending');
    expect(await stateAfter(clock, 1, unknown)).toBe('rejected');
    expect(errorOf(unknown)).toBeInstanceOf(TransportError);
    expect(String(errorOf(unknown))).toMatch(/connection refused/);
    expect(errorOf(idle)).toBeInstanceOf(TransportError);
    expect(net.counters).toMatchObject({ sent: 2, refused: 2, delivered: 0 });
    expect(clock.pending).toBe(0);
  });

  it('turns a handler rejection into TransportError with the remote message', async () => {
    const { clock, node, send } = setup();
    await node('b', async () => {
      throw new Error('disk on fire');
    });
    await node('a');
    const box = send('a', 'b');
    await clock.advance(0);
    expect(errorOf(box)).toBeInstanceOf(TransportError);
    expect((errorOf(box) as Error).message).toMatch(/disk on fire/);
  });

  it('copies payloads: neither side sees the other mutate its buffers', async () => {
    const { clock, node } = setup();
    let seen: Uint8Array | undefined;
    const answer = bytes(9, 9);
    await node('b', async (_from, payload) => {
      seen = payload;
      return answer;
    });
    const a = await node('a');
    const sent = bytes(1, 2, 3);
    const p = a.request('b', sent, { timeoutMs: 100 });
    sent[0] = 42; // the caller reuses its buffer at once
    const response = await p;
    expect(seen).toEqual(bytes(1, 2, 3));
    expect(response).toEqual(bytes(9, 9));
    expect(response).not.toBe(answer);
    response[0] = 0;
    expect(answer).toEqual(bytes(9, 9));
    await clock.advance(0);
  });

  it('stop(): rejects its own pending requests, resets callers of its running handlers, discards late responses', async () => {
    const { clock, net, node, send } = setup({ latencyMs: { min: 2, max: 2 } });
    let release: ((r: Uint8Array) => void) | undefined;
    const b = await node('b', () => new Promise<Uint8Array>((resolve) => (release = resolve)));
    await node('a');
    await node('c', () => new Promise<Uint8Array>(() => {}));
    const aToB = send('a', 'b', bytes(1), 1_000);
    const bToC = send('b', 'c', bytes(3), 1_000);
    await clock.advance(2); // both requests are now inside their handlers
    expect(release).toBeDefined();
    await b.stop();
    expect(errorOf(bToC)).toBeInstanceOf(TransportError); // its own pending request, at once
    expect(String(errorOf(bToC))).toMatch(/stopped/);
    expect(aToB.outcome.state).toBe('pending'); // the reset travels back with latency
    await clock.advance(2);
    expect(errorOf(aToB)).toBeInstanceOf(TransportError);
    expect(String(errorOf(aToB))).toMatch(/reset/);
    release!(bytes(7)); // the handler finishes after stop: its response goes nowhere
    const sentBefore = net.counters.sent;
    await clock.advance(10);
    expect(net.counters.sent).toBe(sentBefore);
    const later = send('a', 'b');
    await clock.advance(2);
    expect(errorOf(later)).toBeInstanceOf(TransportError); // refused
    await expect(b.request('a', bytes(1), { timeoutMs: 10 })).rejects.toBeInstanceOf(TransportError);
    await clock.advance(1_000);
    expect(clock.pending).toBe(0);
    expect(net.inFlight).toBe(0);
  });

  it("a restarted endpoint on the same address never receives its predecessor's responses", async () => {
    const { clock, net, node } = setup({ latencyMs: { min: 5, max: 5 } });
    await node('b');
    const old = await node('a');
    const box = observe(old.request('b', bytes(1), { timeoutMs: 100 }));
    await clock.advance(5); // request delivered, response on the wire
    await old.stop();
    expect(errorOf(box)).toBeInstanceOf(TransportError);
    const fresh = net.connect('a');
    let served = 0;
    await fresh.start(async () => {
      served++;
      return bytes();
    });
    const reply = observe(fresh.request('b', bytes(2), { timeoutMs: 100 }));
    await clock.advance(20);
    expect(reply.outcome).toEqual({ state: 'resolved', value: bytes(2) });
    expect(served).toBe(0);
    expect(net.counters.refused).toBe(1); // the old response reached a stopped endpoint
  });

  it('aborts at once with signal.reason and cancels the timeout timer', async () => {
    const { clock, node } = setup({ latencyMs: { min: 5, max: 5 } });
    await node('b', () => new Promise<Uint8Array>(() => {}));
    const a = await node('a');
    const controller = new AbortController();
    const box = observe(a.request('b', bytes(1), { timeoutMs: 1_000, signal: controller.signal }));
    await clock.advance(10);
    const reason = new Error('never mind');
    controller.abort(reason);
    await clock.advance(0);
    expect(errorOf(box)).toBe(reason);
    expect(clock.pending).toBe(0);
    const pre = AbortSignal.abort('already');
    await expect(a.request('b', bytes(1), { timeoutMs: 1_000, signal: pre })).rejects.toBe('already');
  });

  it('times out through the clock when nobody answers', async () => {
    const { clock, node, send } = setup();
    await node('b', () => new Promise<Uint8Array>(() => {}));
    await node('a');
    const box = send('a', 'b', bytes(1), 250);
    expect(await stateAfter(clock, 249, box)).toBe('pending');
    expect(await stateAfter(clock, 1, box)).toBe('rejected');
    expect(errorOf(box)).toBeInstanceOf(TimeoutError);
    expect(clock.pending).toBe(0);
  });

  it('validates rates and latency', () => {
    expect(() => new MemoryNetwork({ dropRate: 1.5 })).toThrow(RangeError);
    expect(() => new MemoryNetwork({ latencyMs: { min: 5, max: 1 } })).toThrow(RangeError);
    const net = new MemoryNetwork();
    expect(() => net.setDuplicateRate(-0.1)).toThrow(RangeError);
    expect(() => net.setLatency({ min: 0, max: Number.POSITIVE_INFINITY })).toThrow(RangeError);
    expect(() => net.connect('')).toThrow(TypeError);
  });
});

describe('MemoryNetwork: partitions', () => {
  async function cluster(options: Omit<MemoryNetworkOptions, 'clock'> = {}) {
    const env = setup(options);
    const calls: string[] = [];
    for (const id of ['a', 'b', 'c', 'd']) {
      await env.node(id, async (from, payload) => {
        calls.push(`${from}->${id}`);
        return payload;
      });
    }
    /** Sends one request and reports how it ended after the timeout could have fired. */
    const attempt = async (from: string, to: string) => {
      const box = env.send(from, to, bytes(1), 50);
      await env.clock.advance(50);
      return box.outcome.state === 'resolved' ? 'ok' : (errorOf(box) as Error).name;
    };
    return { ...env, calls, attempt };
  }

  it('blocks both ways between two groups and leaves other traffic alone', async () => {
    const { net, attempt, calls } = await cluster();
    net.partition(['a', 'b'], ['c']);
    expect(await attempt('a', 'c')).toBe('TimeoutError');
    expect(await attempt('c', 'b')).toBe('TimeoutError');
    expect(calls).toEqual([]); // lost on the way, never delivered
    expect(await attempt('a', 'b')).toBe('ok');
    expect(await attempt('d', 'c')).toBe('ok');
    expect(await attempt('a', 'd')).toBe('ok');
    expect(net.reachable('b', 'c')).toBe(false);
    expect(net.reachable('c', 'd')).toBe(true);
  });

  it('isolates one group from everyone, including addresses connected later', async () => {
    const { net, node, attempt } = await cluster();
    net.partition(['c']);
    expect(await attempt('a', 'c')).toBe('TimeoutError');
    expect(await attempt('c', 'd')).toBe('TimeoutError');
    expect(await attempt('a', 'b')).toBe('ok');
    await node('late');
    expect(await attempt('late', 'c')).toBe('TimeoutError');
    expect(await attempt('late', 'a')).toBe('ok');
  });

  it('accumulates partitions and heal() removes them all', async () => {
    const { net, attempt } = await cluster();
    net.partition(['a'], ['b']);
    net.partition(['c']);
    net.partitionOneWay('d', 'a');
    expect(await attempt('a', 'b')).toBe('TimeoutError');
    expect(await attempt('a', 'c')).toBe('TimeoutError');
    expect(await attempt('d', 'a')).toBe('TimeoutError');
    net.heal();
    for (const [from, to] of [
      ['a', 'b'],
      ['a', 'c'],
      ['d', 'a'],
      ['c', 'd'],
    ] as const) {
      expect(await attempt(from, to)).toBe('ok');
    }
  });

  it('one-way: requests from->to are lost; to->from requests arrive but their responses are lost', async () => {
    const { net, attempt, calls } = await cluster();
    net.partitionOneWay('a', 'b');
    expect(await attempt('a', 'b')).toBe('TimeoutError');
    expect(calls).toEqual([]);
    expect(await attempt('b', 'a')).toBe('TimeoutError');
    expect(calls).toEqual(['b->a']); // delivered; the answer a->b was lost
    expect(await attempt('a', 'c')).toBe('ok');
    expect(net.counters.dropped).toBe(2);
  });

  it('a partition made while a message is on the wire loses it', async () => {
    const { net, send, clock, calls } = await cluster({ latencyMs: { min: 10, max: 10 } });
    const box = send('a', 'b', bytes(1), 100);
    await clock.advance(5);
    net.partition(['a'], ['b']);
    await clock.advance(100);
    expect(errorOf(box)).toBeInstanceOf(TimeoutError);
    expect(calls).toEqual([]);
    expect(net.counters).toMatchObject({ sent: 1, dropped: 1, delivered: 0 });
  });
});

describe('MemoryNetwork: latency, faults, determinism', () => {
  it('a request reaches the handler after the latency, the response after another', async () => {
    const { clock, node, send } = setup({ seed: 3, latencyMs: { min: 10, max: 30 } });
    let arrivedAt: number | undefined;
    await node('b', async (_from, payload) => {
      arrivedAt = clock.now();
      return payload;
    });
    await node('a');
    for (let i = 0; i < 50; i++) {
      arrivedAt = undefined;
      const start = clock.now();
      const box = send('a', 'b', bytes(i), 1_000);
      await clock.advance(9);
      expect(arrivedAt).toBeUndefined();
      expect(await stateAfter(clock, 10, box)).toBe('pending'); // 19 ms < 2 x min
      await clock.advance(60 - 19);
      expect(box.outcome.state).toBe('resolved');
      expect(arrivedAt! - start).toBeGreaterThanOrEqual(10);
      expect(arrivedAt! - start).toBeLessThanOrEqual(30);
    }
    expect(clock.pending).toBe(0);
  });

  it('setLatency() applies to messages sent afterwards', async () => {
    const { clock, net, node, send } = setup();
    await node('b');
    await node('a');
    net.setLatency({ min: 7, max: 7 });
    const box = send('a', 'b');
    expect(await stateAfter(clock, 13, box)).toBe('pending');
    expect(await stateAfter(clock, 1, box)).toBe('resolved');
    net.setLatency({ min: 0, max: 0 });
    const fast = send('a', 'b');
    expect(await stateAfter(clock, 0, fast)).toBe('resolved');
  });

  /** A seeded run with every fault on: what the handler saw, in order, and how each request ended. */
  async function faultyRun(seed: number, requests = 600) {
    const { clock, net, node, send } = setup({
      seed,
      latencyMs: { min: 1, max: 20 },
      dropRate: 0.2,
      duplicateRate: 0.2,
    });
    const delivered: string[] = [];
    const handler: RequestHandler = async (from, payload) => {
      delivered.push(`${from}:${payload[0]}/${payload[1]}`);
      return payload;
    };
    for (const id of ['a', 'b', 'c']) await node(id, handler);
    const boxes = [];
    for (let i = 0; i < requests; i++) {
      const from = ['a', 'b', 'c'][i % 3]!;
      const to = ['a', 'b', 'c'][(i + 1 + (i >> 2)) % 3]!;
      boxes.push(send(from, to, bytes(i & 0xff, i >> 8), 100));
      if (i % 10 === 9) await clock.advance(3);
    }
    await clock.advance(200);
    return {
      delivered,
      outcomes: boxes.map((b) => b.outcome.state),
      counters: net.counters,
      pending: clock.pending,
      inFlight: net.inFlight,
    };
  }

  it('the same seed reproduces the same run exactly; another seed differs', async () => {
    const first = await faultyRun(42);
    const second = await faultyRun(42);
    expect(second).toEqual(first);
    const other = await faultyRun(43);
    expect(other.delivered).not.toEqual(first.delivered);
    expect(first.pending).toBe(0);
    expect(first.inFlight).toBe(0);
    const c = first.counters;
    expect(c.sent + c.duplicated).toBe(c.delivered + c.dropped + c.refused);
  });

  it('drops about dropRate of the messages, requests and responses independently', async () => {
    const { clock, net, node, send } = setup({ seed: 'drops', dropRate: 0.3 });
    await node('b');
    await node('a');
    const boxes = Array.from({ length: 2_000 }, () => send('a', 'b', bytes(1), 100));
    await clock.advance(100);
    const ok = boxes.filter((b) => b.outcome.state === 'resolved').length;
    expect(ok / boxes.length).toBeGreaterThan(0.45); // 0.7 x 0.7 = 0.49 both legs survive
    expect(ok / boxes.length).toBeLessThan(0.53);
    expect(boxes.every((b) => b.outcome.state === 'resolved' || errorOf(b) instanceof TimeoutError)).toBe(
      true,
    );
    const c = net.counters;
    expect(c.dropped / c.sent).toBeGreaterThan(0.27);
    expect(c.dropped / c.sent).toBeLessThan(0.33);
    expect(c.delivered).toBe(c.sent - boxes.length + ok); // responses sent = requests delivered
    expect(clock.pending).toBe(0);
  });

  it('duplicates about duplicateRate of the requests; each caller still gets one answer', async () => {
    const { clock, net, node, send } = setup({ seed: 'dups', duplicateRate: 0.25 });
    let handled = 0;
    await node('b', async (_from, payload) => {
      handled++;
      return payload;
    });
    await node('a');
    const boxes = Array.from({ length: 2_000 }, (_, i) => send('a', 'b', bytes(i & 0xff, i >> 8), 100));
    await clock.advance(0);
    for (const [i, b] of boxes.entries())
      expect(b.outcome).toEqual({ state: 'resolved', value: bytes(i & 0xff, i >> 8) });
    const c = net.counters;
    expect(handled).toBe(boxes.length + c.duplicated);
    expect(c.duplicated / boxes.length).toBeGreaterThan(0.22);
    expect(c.duplicated / boxes.length).toBeLessThan(0.28);
    expect(clock.pending).toBe(0);
  });

  it('setDropRate / setDuplicateRate change faults during a run', async () => {
    const { clock, net, node, send } = setup({ seed: 1 });
    await node('b');
    await node('a');
    net.setDropRate(1);
    const lost = send('a', 'b');
    await clock.advance(100);
    expect(errorOf(lost)).toBeInstanceOf(TimeoutError);
    net.setDropRate(0);
    net.setDuplicateRate(1);
    const twice = send('a', 'b');
    await clock.advance(0);
    expect(twice.outcome.state).toBe('resolved');
    expect(net.counters).toMatchObject({ dropped: 1, duplicated: 1 });
  });
});

describe('MemoryNetwork: counters and bounds', () => {
  it('counts messages and payload bytes; resetCounters() zeroes them', async () => {
    const { clock, net, node, send } = setup();
    await node('b', async () => bytes(1, 2, 3, 4, 5));
    await node('a');
    send('a', 'b', bytes(1, 2, 3));
    send('a', 'b', bytes(1, 2, 3));
    await clock.advance(0);
    expect(net.counters).toEqual({
      sent: 4,
      delivered: 4,
      dropped: 0,
      duplicated: 0,
      refused: 0,
      overflowed: 0,
      bytes: 16,
    });
    const snapshot = net.counters;
    net.resetCounters();
    expect(net.counters.sent).toBe(0);
    expect(snapshot.sent).toBe(4); // a snapshot, not a live view
  });

  it('drops messages beyond maxInFlight and counts them', async () => {
    const { clock, net, node, send } = setup({ maxInFlight: 10, latencyMs: { min: 5, max: 5 } });
    await node('b');
    await node('a');
    const boxes = Array.from({ length: 20 }, () => send('a', 'b', bytes(1), 100));
    expect(net.inFlight).toBe(10);
    expect(net.counters).toMatchObject({ sent: 20, dropped: 10, overflowed: 10 });
    await clock.advance(100);
    expect(boxes.filter((b) => b.outcome.state === 'resolved')).toHaveLength(10);
    expect(boxes.slice(10).every((b) => errorOf(b) instanceof TimeoutError)).toBe(true);
    expect(net.inFlight).toBe(0);
  });

  it('leaves no timer on the clock once every request has completed', async () => {
    const { clock, net, node, send } = setup({ seed: 9, latencyMs: { min: 1, max: 10 }, duplicateRate: 0.3 });
    await node('b');
    await node('a');
    const boxes = Array.from({ length: 500 }, (_, i) => send('a', 'b', bytes(i & 0xff), 1_000));
    await clock.advance(20); // every request and its duplicate have been answered, well before the timeouts
    expect(boxes.every((b) => b.outcome.state === 'resolved')).toBe(true);
    expect(clock.pending).toBe(0);
    expect(net.inFlight).toBe(0);
  });
});
