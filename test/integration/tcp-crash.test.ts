/**
 * Crash safety with real processes: three nodes (`test/process/tcp-node.ts`: TcpTransport on
 * loopback, LevelStorage), N=3 R=2 W=2. A writer keeps doing acknowledged puts through the live
 * nodes while one node is killed with SIGKILL and restarted (same id, same port, same data
 * directory), twice, a different node each time. After the cluster settles, every acknowledged
 * write must be held in the local storage of all three nodes (each node reports its own copy,
 * read straight from its LevelDB) — checked before any read, so read repair cannot be what put it
 * there: with 3 nodes and N=3 there is no fallback to keep hints, and anti-entropy must repair
 * what a restarted node missed — and then be readable with R=2.
 *
 * Wall-clock waits are unavoidable here (processes, sockets); every one polls a condition against
 * a deadline.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { clusterSettled, NodeProcess, waitFor } from '../process/node-process.js';

const IDS = ['n1', 'n2', 'n3'] as const;
// Anti-entropy every second (the default is a minute) so the test sees replicas converge.
const NODE_ARGS = ['--gossip-ms', '200', '--request-timeout-ms', '1000', '--anti-entropy-ms', '1000'];
/** How long anti-entropy gets to repair what the restarted nodes missed. */
const AE_DEADLINE_MS = 45_000;
/** Acknowledged writes to wait for in each phase (before, while down, after restart). */
const PER_PHASE = 300;
const WRITERS = 8;

let root: string | undefined;
const procs = new Map<string, NodeProcess>();

afterAll(async () => {
  await Promise.all([...procs.values()].map((p) => p.kill()));
  if (root) await rm(root, { recursive: true, force: true });
});

/** Ports nobody listens on right now (bound to 0, read, released). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

test('acknowledged writes survive SIGKILL and restart of a node, twice', async () => {
  root = await mkdtemp(join(tmpdir(), 'dynamo-tcp-crash-'));
  const ports = await freePorts(IDS.length);
  const addressOf = (id: string) => `127.0.0.1:${ports[IDS.indexOf(id as (typeof IDS)[number])]}`;
  const start = async (id: string, seeds: string[]) => {
    const p = await NodeProcess.start({
      id,
      dataDir: join(root!, id),
      port: ports[IDS.indexOf(id as (typeof IDS)[number])]!,
      seeds,
      args: NODE_ARGS,
    });
    procs.set(id, p);
    return p;
  };
  const others = (id: string) => IDS.filter((o) => o !== id).map(addressOf);

  // n1 forms the cluster; n2 and n3 join through it (a new cluster needs one node without seeds).
  await start('n1', []);
  await Promise.all([start('n2', others('n2')), start('n3', others('n3'))]);
  const live = () => IDS.map((id) => procs.get(id)!).filter((p) => p.alive);
  await waitFor('the cluster to form', () => clusterSettled(live()), 30_000);

  // The writer: unique keys, one put each, round-robin over the nodes that are alive.
  const acked = new Map<string, string>();
  const failures = new Map<string, number>();
  let next = 0;
  let writing = true;
  const writer = async () => {
    while (writing) {
      const i = next++;
      const nodes = live();
      const node = nodes[i % nodes.length];
      if (!node) continue;
      const key = `k${i}`;
      const value = `v${i}`;
      try {
        await node.put(key, value);
        acked.set(key, value);
      } catch (err) {
        const reason = (err as { code?: string }).code ?? (err as Error).message.slice(0, 60);
        failures.set(reason, (failures.get(reason) ?? 0) + 1);
      }
    }
  };
  const writers = Array.from({ length: WRITERS }, writer);
  const ackedAtLeast = (n: number) => waitFor(`${n} acknowledged writes`, () => acked.size >= n, 20_000, 10);

  const phases: Record<string, number> = {};
  await ackedAtLeast(PER_PHASE);
  for (const victim of ['n3', 'n2']) {
    await procs.get(victim)!.kill('SIGKILL');
    phases[`killed ${victim}`] = acked.size;
    // Writes keep being acknowledged by the two survivors while the victim is down.
    await ackedAtLeast(acked.size + PER_PHASE);
    phases[`restarting ${victim}`] = acked.size;
    await start(victim, others(victim));
    await waitFor(`${victim} to be seen up again`, () => clusterSettled(live()), 30_000);
    await ackedAtLeast(acked.size + PER_PHASE);
  }
  writing = false;
  await Promise.all(writers);
  phases.total = acked.size;

  const nodes = live();
  expect(nodes).toHaveLength(3);
  await waitFor('the cluster to settle', () => clusterSettled(nodes), 30_000);
  // The restarted nodes came back as themselves: still three members, each owning its partitions.
  for (const members of await Promise.all(nodes.map((n) => n.members()))) {
    expect(members.map((m) => m.id).sort()).toEqual([...IDS]);
  }

  const keys = [...acked.keys()];
  const chunks = (size: number) =>
    Array.from({ length: Math.ceil(keys.length / size) }, (_, c) => keys.slice(c * size, (c + 1) * size));
  /** Per node, the acknowledged keys its own storage lacks (or holds with another value). */
  const missingLocally = async () => {
    const missing: Record<string, string[]> = {};
    for (const n of nodes) {
      missing[n.id] = [];
      for (const chunk of chunks(1000)) {
        const held = await n.local(chunk);
        chunk.forEach((key, j) => {
          if (!held[j]?.includes(acked.get(key))) missing[n.id]!.push(key);
        });
      }
    }
    return missing;
  };
  // What the restarted nodes missed while they were down (no fallback exists with 3 nodes and
  // N=3, so no hints either): anti-entropy must bring it to them, before any read.
  const missedWhileDown = await missingLocally();
  const counts = (m: Record<string, string[]>) =>
    JSON.stringify(Object.fromEntries(Object.entries(m).map(([id, keys]) => [id, keys.length])));
  let missing = missedWhileDown;
  const startedMs = Date.now();
  await waitFor(
    'anti-entropy to bring every acknowledged write to all three replicas',
    async () => {
      missing = await missingLocally();
      return Object.values(missing).every((m) => m.length === 0);
    },
    AE_DEADLINE_MS,
    250,
  ).catch(() => {});
  console.log(
    `[tcp-crash] acknowledged writes: ${JSON.stringify(phases)}; failed puts: ` +
      `${JSON.stringify(Object.fromEntries(failures))}; missing per node after settle: ${counts(missedWhileDown)}, ` +
      `after anti-entropy (${Date.now() - startedMs} ms): ${counts(missing)}`,
  );
  expect(Object.fromEntries(Object.entries(missing).map(([id, m]) => [id, m.slice(0, 10)]))).toEqual({
    n1: [],
    n2: [],
    n3: [],
  });

  // Every acknowledged write is readable with R=2, through every node in turn.
  let reads = 0;
  const wrong: string[] = [];
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (reads < keys.length) {
        const i = reads++;
        const key = keys[i]!;
        const { values } = await nodes[i % 3]!.get(key, { r: 2 });
        if (values.length !== 1 || values[0] !== acked.get(key))
          wrong.push(`${key}: ${JSON.stringify(values)}`);
      }
    }),
  );
  expect(wrong).toEqual([]);
}, 120_000);
