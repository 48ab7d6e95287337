import { test } from 'vitest';
import { type TransportHarness, transportComplianceSuite } from '../../src/testing/transport-compliance.js';
import { MemoryNetwork, type MemoryNetworkOptions } from '../../src/transport/memory.js';
import type { Transport } from '../../src/transport/types.js';
import { VirtualClock } from '../../src/util/clock.js';

function harness(network: MemoryNetwork, wait: (ms: number) => Promise<void>): TransportHarness {
  const made: Transport[] = [];
  return {
    create(name) {
      const t = network.connect(name);
      made.push(t);
      return t;
    },
    wait,
    async close() {
      await Promise.all(made.map((t) => t.stop()));
    },
  };
}

function virtual(options: Omit<MemoryNetworkOptions, 'clock'>): () => TransportHarness {
  return () => {
    const clock = new VirtualClock();
    return harness(new MemoryNetwork({ ...options, clock }), (ms) => clock.advance(ms));
  };
}

const prefixed =
  (prefix: string) =>
  (name: string, fn: () => Promise<void>): void => {
    test(`${prefix} ${name}`, fn);
  };

// Latency 0: the microtask fast path that in-process clusters and benchmarks use.
transportComplianceSuite({ test: prefixed('[virtual clock, no latency]'), factory: virtual({}) });

// Timer path: every message goes through the VirtualClock with a seeded latency.
transportComplianceSuite({
  test: prefixed('[virtual clock, 1-20 ms latency]'),
  factory: virtual({ seed: 7, latencyMs: { min: 1, max: 20 } }),
});

// The default system clock, as production-like in-process use has it (short real waits: the
// timeout tests wait a few hundred real milliseconds).
transportComplianceSuite({
  test: prefixed('[system clock]'),
  factory: () =>
    harness(new MemoryNetwork(), (ms) => new Promise<void>((resolve) => setTimeout(resolve, ms))),
});
