/**
 * Unknown option names are errors, on every options object a user writes, and the message names
 * the option that was probably meant.
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { DynamoClient } from '../../src/client/index.js';
import { dnsSeeds } from '../../src/discovery/index.js';
import { DynamoNode, MemoryNetwork, MemoryStorage } from '../../src/index.js';
import { LevelStorage } from '../../src/level/index.js';
import { registerMetrics } from '../../src/metrics/index.js';
import { TcpTransport } from '../../src/tcp/index.js';
import { createCluster } from '../../src/testing/index.js';
import { nearestName } from '../../src/util/option-names.js';

/** What a caller spreads in from elsewhere (an untyped config file): the compiler sees no typo. */
function untyped(value: Record<string, unknown>): never {
  return value as never;
}

function nodeOptions(extra: Record<string, unknown>) {
  const network = new MemoryNetwork();
  return untyped({
    id: 'a',
    transport: network.connect('a'),
    storage: new MemoryStorage(),
    ...extra,
  });
}

describe('unknown option names', () => {
  const nodeCases: [string, Record<string, unknown>, RegExp][] = [
    [
      'a top-level typo',
      { quorom: { n: 1 } },
      /DynamoNode options: unknown option "quorom" \(did you mean "quorum"\?\)/,
    ],
    ['quorum', { quorum: { n: 3, rr: 2 } }, /quorum: unknown option "rr" \(did you mean "r"\?\)/],
    [
      'hintedHandoff',
      { hintedHandoff: { intervalMS: 5 } },
      /hintedHandoff: unknown option "intervalMS" \(did you mean "intervalMs"\?\)/,
    ],
    [
      'antiEntropy',
      { antiEntropy: { enable: false } },
      /antiEntropy: unknown option "enable" \(did you mean "enabled"\?\)/,
    ],
    [
      'limits',
      { limits: { maxValueByte: 10 } },
      /limits: unknown option "maxValueByte" \(did you mean "maxValueBytes"\?\)/,
    ],
    [
      'waitUntilReady',
      { waitUntilReady: { timeout: 10 } },
      /waitUntilReady: unknown option "timeout" \(did you mean "timeoutMs"\?\)/,
    ],
    [
      'dataTypes',
      { dataTypes: { maxElement: 5 } },
      /dataTypes: unknown option "maxElement" \(did you mean "maxElements"\?\)/,
    ],
    [
      'on',
      { on: { 'join:attempts': () => {} } },
      /on: unknown option "join:attempts" \(did you mean "join:attempt"\?\)/,
    ],
    [
      'a name far from every option',
      { zzzzzzzz: 1 },
      /unknown option "zzzzzzzz" \(valid: id, transport, storage, seeds/,
    ],
  ];
  for (const [what, extra, message] of nodeCases) {
    it(`DynamoNode.start: ${what}`, async () => {
      const error = await DynamoNode.start(nodeOptions(extra)).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(message);
    });
  }

  it('DynamoNode.start: the start options', async () => {
    const error = await DynamoNode.start(nodeOptions({ seeds: [] }), untyped({ timeout: 5 })).catch(
      (err: unknown) => err,
    );
    expect((error as Error).message).toMatch(
      /DynamoNode.start options: unknown option "timeout" \(did you mean "timeoutMs"\?\)/,
    );
  });

  it('DynamoClient.start: a typo, and a node-only option', async () => {
    const network = new MemoryNetwork();
    const base = { id: 'web', transport: network.connect('web') };
    await expect(DynamoClient.start(untyped({ ...base, seed: ['a'] }))).rejects.toThrow(
      /DynamoClient options: unknown option "seed" \(did you mean "seeds"\?\)/,
    );
    await expect(
      DynamoClient.start(untyped({ ...base, seeds: ['a'], storage: new MemoryStorage() })),
    ).rejects.toThrow(/DynamoClient options: unknown option "storage"/);
    await expect(
      DynamoClient.start(untyped({ ...base, seeds: ['a'], on: { staus: () => {} } })),
    ).rejects.toThrow(/DynamoClient on: unknown option "staus" \(did you mean "status"\?\)/);
  });

  it('LevelStorage, TcpTransport (with tls and reconnectBackoffMs), MemoryNetwork', () => {
    expect(() => new LevelStorage(untyped({ path: '/tmp/x', syncs: true }))).toThrow(
      /LevelStorage options: unknown option "syncs" \(did you mean "sync"\?\)/,
    );
    expect(() => new TcpTransport(untyped({ secrets: 'x' }))).toThrow(
      /TcpTransport options: unknown option "secrets" \(did you mean "secret"\?\)/,
    );
    expect(() => new TcpTransport(untyped({ tls: { key: 'k', cert: 'c', certs: 'c' } }))).toThrow(
      /TcpTransport tls: unknown option "certs" \(did you mean "cert"\?\)/,
    );
    expect(() => new TcpTransport(untyped({ reconnectBackoffMs: { initial: 1, mx: 2 } }))).toThrow(
      /TcpTransport reconnectBackoffMs: unknown option "mx" \(did you mean "max"\?\)/,
    );
    expect(() => new MemoryNetwork(untyped({ dropRat: 0.1 }))).toThrow(
      /MemoryNetwork options: unknown option "dropRat" \(did you mean "dropRate"\?\)/,
    );
  });

  it('dnsSeeds, createCluster, registerMetrics', async () => {
    expect(() => dnsSeeds('x', 1, untyped({ record: 'srv' }))).toThrow(
      /dnsSeeds options: unknown option "record" \(did you mean "records"\?\)/,
    );
    await expect(createCluster(untyped({ node: 3 }))).rejects.toThrow(
      /createCluster options: unknown option "node" \(did you mean "nodes"\?\)/,
    );
    const cluster = await createCluster({ nodes: 1, quorum: { n: 1 } });
    try {
      expect(() => registerMetrics(cluster.nodes[0]!, new Registry(), untyped({ prefx: 'x_' }))).toThrow(
        /registerMetrics options: unknown option "prefx" \(did you mean "prefix"\?\)/,
      );
    } finally {
      await cluster.stop();
    }
  });

  it('suggests by edit distance (case-insensitive, a swap counts once), and only when close', () => {
    const names = ['quorum', 'requestTimeoutMs', 'readRepair', 'partitions'];
    expect(nearestName('qourum', names)).toBe('quorum');
    expect(nearestName('requesttimeoutms', names)).toBe('requestTimeoutMs');
    expect(nearestName('partition', names)).toBe('partitions');
    expect(nearestName('banana', names)).toBeUndefined();
  });
});
