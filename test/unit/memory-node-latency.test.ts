import { describe, expect, it } from 'vitest';
import { MemoryNetwork } from '../../src/transport/memory.js';
import type { Transport } from '../../src/transport/types.js';
import { VirtualClock } from '../../src/util/clock.js';

/** Three echo endpoints a, b, c at 1 ms one way, and the virtual round trip between two of them. */
async function setup() {
  const clock = new VirtualClock();
  const net = new MemoryNetwork({ clock, latencyMs: { min: 1, max: 1 } });
  const endpoints = new Map<string, Transport>();
  for (const a of ['a', 'b', 'c']) {
    const t = net.connect(a);
    await t.start(async (_from, payload) => payload);
    endpoints.set(a, t);
  }
  const roundTripMs = async (from: string, to: string): Promise<number> => {
    const t0 = clock.now();
    let done = false;
    const reply = endpoints
      .get(from)!
      .request(to, new Uint8Array([1]), { timeoutMs: 1000 })
      .finally(() => {
        done = true;
      });
    while (!done) await clock.advance(1);
    await reply;
    return clock.now() - t0;
  };
  return { net, roundTripMs };
}

describe('MemoryNetwork.setNodeLatency', () => {
  it('slows every message from or to one address, both ways, and can be removed', async () => {
    const { net, roundTripMs } = await setup();
    expect(await roundTripMs('a', 'b')).toBe(2);
    net.setNodeLatency('c', { min: 20, max: 20 });
    expect(await roundTripMs('a', 'c')).toBe(40);
    expect(await roundTripMs('c', 'b')).toBe(40);
    expect(await roundTripMs('a', 'b')).toBe(2);
    net.setNodeLatency('c', undefined);
    expect(await roundTripMs('a', 'c')).toBe(2);
  });

  it('never makes a link faster than the network latency, and validates its range', async () => {
    const { net, roundTripMs } = await setup();
    net.setNodeLatency('c', { min: 0, max: 0 });
    expect(await roundTripMs('a', 'c')).toBe(2);
    expect(() => net.setNodeLatency('c', { min: 5, max: 1 })).toThrow(RangeError);
  });
});
