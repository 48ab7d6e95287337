import { afterEach, describe, expect, it } from 'vitest';
import { type DnsResolver, dnsSeeds, MAX_DNS_SEEDS } from '../../src/discovery/index.js';
import { DynamoNode, MemoryNetwork, MemoryStorage, VirtualClock } from '../../src/index.js';
import { drive } from '../helpers.js';

const dnsError = (code: string) => Object.assign(new Error(`queryA ${code}`), { code });

/** A resolver answering from tables; a missing entry is ENODATA, an Error entry is thrown. */
function fakeResolver(answers: {
  a?: () => string[] | Error;
  aaaa?: () => string[] | Error;
  srv?: () => { name: string; port: number }[] | Error;
}): DnsResolver & { calls: number } {
  const reply = <T>(f: (() => T[] | Error) | undefined): Promise<T[]> => {
    const v = f ? f() : dnsError('ENODATA');
    return v instanceof Error ? Promise.reject(v) : Promise.resolve(v);
  };
  const r = {
    calls: 0,
    resolve4: () => {
      r.calls++;
      return reply(answers.a);
    },
    resolve6: () => reply(answers.aaaa),
    resolveSrv: () => {
      r.calls++;
      return reply(answers.srv).then((rs) => rs.map((x) => ({ ...x, priority: 0, weight: 0 })));
    },
  };
  return r;
}

describe('dnsSeeds', () => {
  it('joins A and AAAA answers with the port, sorted and deduplicated, IPv6 in brackets', async () => {
    const resolver = fakeResolver({ a: () => ['10.0.0.2', '10.0.0.1', '10.0.0.2'], aaaa: () => ['fd00::1'] });
    const seeds = dnsSeeds('dynamo.default.svc.cluster.local', 7001, { resolver });
    expect(await seeds()).toEqual(['10.0.0.1:7001', '10.0.0.2:7001', '[fd00::1]:7001']);
  });

  it('resolves afresh on every call (pods appear while a node retries)', async () => {
    let pods = ['10.0.0.1'];
    const resolver = fakeResolver({ a: () => pods });
    const seeds = dnsSeeds('svc', 7001, { resolver });
    expect(await seeds()).toEqual(['10.0.0.1:7001']);
    pods = ['10.0.0.1', '10.0.0.3'];
    expect(await seeds()).toEqual(['10.0.0.1:7001', '10.0.0.3:7001']);
    expect(resolver.calls).toBe(2);
  });

  it('answers [] when the name has no records, one family missing being normal', async () => {
    expect(await dnsSeeds('svc', 1, { resolver: fakeResolver({}) })()).toEqual([]);
    const notFound = fakeResolver({ a: () => dnsError('ENOTFOUND'), aaaa: () => dnsError('ENOTFOUND') });
    expect(await dnsSeeds('svc', 1, { resolver: notFound })()).toEqual([]);
    const v6only = fakeResolver({ a: () => dnsError('ENODATA'), aaaa: () => ['::1'] });
    expect(await dnsSeeds('svc', 9, { resolver: v6only })()).toEqual(['[::1]:9']);
  });

  it('rejects when DNS itself fails (the node reports it and retries)', async () => {
    const down = fakeResolver({ a: () => dnsError('ETIMEOUT'), aaaa: () => dnsError('ECONNREFUSED') });
    await expect(dnsSeeds('svc', 7001, { resolver: down })()).rejects.toMatchObject({ code: 'ETIMEOUT' });
    // One family failing hides nothing when the other has addresses; with none it is a failure.
    const v4down = fakeResolver({ a: () => dnsError('ETIMEOUT'), aaaa: () => ['fd00::2'] });
    expect(await dnsSeeds('svc', 7001, { resolver: v4down })()).toEqual(['[fd00::2]:7001']);
    const v4downOnly = fakeResolver({ a: () => dnsError('ETIMEOUT') });
    await expect(dnsSeeds('svc', 7001, { resolver: v4downOnly })()).rejects.toMatchObject({
      code: 'ETIMEOUT',
    });
    const srvDown = fakeResolver({ srv: () => dnsError('ESERVFAIL') });
    await expect(dnsSeeds('_p._tcp.svc', 0, { records: 'srv', resolver: srvDown })()).rejects.toMatchObject({
      code: 'ESERVFAIL',
    });
  });

  it('reads SRV records: each target with its own port (the port argument is not used)', async () => {
    const resolver = fakeResolver({
      srv: () => [
        { name: 'dynamo-1.dynamo.default.svc.cluster.local', port: 7001 },
        { name: 'dynamo-0.dynamo.default.svc.cluster.local', port: 7002 },
        { name: '', port: 7001 },
        { name: 'bad-port', port: 0 },
      ],
    });
    const seeds = dnsSeeds('_peer._tcp.dynamo.default.svc.cluster.local', 0, { records: 'srv', resolver });
    expect(await seeds()).toEqual([
      'dynamo-0.dynamo.default.svc.cluster.local:7002',
      'dynamo-1.dynamo.default.svc.cluster.local:7001',
    ]);
    expect(await dnsSeeds('svc', 0, { records: 'srv', resolver: fakeResolver({}) })()).toEqual([]);
  });

  it(`keeps at most ${MAX_DNS_SEEDS} addresses of a huge answer`, async () => {
    const many = Array.from({ length: 3000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    const seeds = await dnsSeeds('svc', 7001, { resolver: fakeResolver({ a: () => many }) })();
    expect(seeds).toHaveLength(MAX_DNS_SEEDS);
  });

  it('refuses bad arguments at once', () => {
    expect(() => dnsSeeds('', 7001)).toThrow(TypeError);
    expect(() => dnsSeeds('svc', 0)).toThrow(RangeError);
    expect(() => dnsSeeds('svc', 70_000)).toThrow(RangeError);
    expect(() => dnsSeeds('svc', 7001, { records: 'mx' as 'srv' })).toThrow(TypeError);
  });
});

describe('seeds as a function', () => {
  const running: DynamoNode<unknown>[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((n) => n.stop()));
  });
  const fast = { requestTimeoutMs: 100, gossipIntervalMs: 100 };

  it('is asked on every join round: DNS down, then no records, then the pods; the node joins', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    const first = await drive(
      clock,
      DynamoNode.start({
        ...fast,
        id: 'a',
        transport: network.connect('10.0.0.1:7001'),
        storage: new MemoryStorage(),
        clock,
      }),
    );
    running.push(first);
    const answers: (string[] | Error)[] = [
      dnsError('ETIMEOUT'),
      dnsError('ENOTFOUND'),
      ['10.0.0.2', '10.0.0.1'],
    ];
    const resolver = fakeResolver({ a: () => answers.shift() ?? ['10.0.0.2', '10.0.0.1'] });
    const errors: string[] = [];
    const starting = DynamoNode.start({
      ...fast,
      id: 'b',
      transport: network.connect('10.0.0.2:7001'),
      storage: new MemoryStorage(),
      clock,
      seeds: dnsSeeds('dynamo.svc', 7001, { resolver }),
      logger: {
        debug() {},
        info() {},
        warn: (o: object) => errors.push((o as { context: string }).context),
        error() {},
      },
      waitUntilReady: true,
    });
    const second = await drive(clock, starting);
    running.push(second);
    expect(resolver.calls).toBe(3);
    expect(errors).toEqual(['join: seed source failed, retrying', 'join: no seeds yet, retrying']);
    expect(second.members().map((m) => [m.id, m.status])).toEqual([
      ['a', 'up'],
      ['b', 'up'],
    ]);
  });

  it('an answer listing only this node forms a new cluster; a bad answer is retried', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock });
    let calls = 0;
    const node = await drive(
      clock,
      DynamoNode.start({
        ...fast,
        id: 'solo',
        transport: network.connect('10.0.0.9:7001'),
        storage: new MemoryStorage(),
        clock,
        seeds: async () => (++calls === 1 ? ([42] as unknown as string[]) : ['10.0.0.9:7001']),
      }),
    );
    running.push(node);
    expect(calls).toBe(2);
    expect(node.ringStatus().settled).toBe(true);
    expect(node.members().map((m) => m.partitions)).toEqual([256]);
  });

  it('rejects a seeds option that is neither a list nor a function', async () => {
    const network = new MemoryNetwork();
    await expect(
      DynamoNode.start({
        id: 'x',
        transport: network.connect('x'),
        storage: new MemoryStorage(),
        seeds: 'a,b' as unknown as string[],
      }),
    ).rejects.toThrow(/seeds must be/);
  });
});
