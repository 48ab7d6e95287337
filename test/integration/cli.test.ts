/**
 * The `dynamo-engine` CLI end to end: real node processes (`test/process/tcp-node.ts`: TcpTransport
 * with a shared secret, LevelStorage) on loopback, and the CLI run as a child process from source
 * (`src/cli/main.ts` through tsx, as a developer runs `npm test` without building). Checks exit
 * codes, the `--json` shapes, authentication, and that `leave` / `remove` really change the ring.
 *
 * Wall-clock waits are unavoidable here (processes, sockets); every one polls against a deadline.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RingReport, StatsReport, StatusReport, TransfersReport } from '../../src/admin/protocol.js';
import { EXIT } from '../../src/cli/run.js';
import { clusterSettled, NodeProcess, waitFor } from '../process/node-process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'src/cli/main.ts');
const SECRET = 'cli-test-secret';
const FAST = ['--gossip-ms', '200', '--request-timeout-ms', '1000'];

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI as a child process; DYNAMO_* variables come only from `env`. */
function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const { DYNAMO_SECRET: _s, DYNAMO_NODE: _n, ...base } = process.env;
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
      cwd: ROOT,
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

let root: string;
const nodes = new Map<string, NodeProcess>();
let open: NodeProcess | undefined;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'dynamo-cli-'));
  const secret = ['--secret', SECRET];
  const a = await NodeProcess.start({ id: 'a', dataDir: join(root, 'a'), args: [...FAST, ...secret] });
  nodes.set('a', a);
  const rest = await Promise.all(
    ['b', 'c'].map((id) =>
      NodeProcess.start({ id, dataDir: join(root, id), seeds: [a.address], args: [...FAST, ...secret] }),
    ),
  );
  for (const n of rest) nodes.set(n.id, n);
  // A separate one-node cluster whose transport authenticates nobody.
  open = await NodeProcess.start({ id: 'open', dataDir: join(root, 'open'), args: FAST });
  await waitFor('the three nodes to agree on the ring', () => clusterSettled([...nodes.values()]), 30_000);
});

afterAll(async () => {
  await Promise.all([...nodes.values(), ...(open ? [open] : [])].map((n) => n.kill()));
  if (root) await rm(root, { recursive: true, force: true });
});

const node = (id: string) => nodes.get(id)!;
const withSecret = (id: string, ...args: string[]) => [
  '--node',
  node(id).address,
  '--secret',
  SECRET,
  ...args,
];

describe('dynamo-engine CLI against running nodes', () => {
  it('status: text and --json, secret from the environment', async () => {
    const text = await cli(['--node', node('a').address, 'status'], { DYNAMO_SECRET: SECRET });
    expect(text.code).toBe(EXIT.ok);
    expect(text.stdout).toMatch(/^Status +ID +Address +Weight +Partitions +Owns$/m);
    for (const id of ['a', 'b', 'c'])
      expect(text.stdout).toMatch(new RegExp(`^up +${id} +${node(id).address}`, 'm'));

    const json = await cli(['status', '--json'], { DYNAMO_SECRET: SECRET, DYNAMO_NODE: node('b').address });
    expect(json.code).toBe(EXIT.ok);
    const report = JSON.parse(json.stdout) as StatusReport;
    expect(report.node).toEqual({ id: 'b', address: node('b').address, status: 'running' });
    expect(report.ring).toMatchObject({ partitions: 256, n: 3, settled: true });
    expect(report.members.map((m) => m.id).sort()).toEqual(['a', 'b', 'c']);
    expect(report.members.reduce((sum, m) => sum + m.partitions, 0)).toBe(256);
    for (const m of report.members) {
      expect(m).toMatchObject({ status: 'up', weight: 1, address: node(m.id).address });
      expect(m.ownership).toBeCloseTo(m.partitions / 256, 9);
    }
  });

  it('ring and transfers --json: shares, balance, nothing pending', async () => {
    const ring = await cli(withSecret('c', 'ring', '--json'));
    expect(ring.code).toBe(EXIT.ok);
    const r = JSON.parse(ring.stdout) as RingReport;
    expect(r.members).toHaveLength(3);
    expect(r.members.reduce((sum, m) => sum + m.share, 0)).toBeCloseTo(1, 9);
    for (const m of r.members) expect(m.idealShare).toBeCloseTo(1 / 3, 9);
    // Strategy 3 deals 256 partitions over 3 nodes as 85/85/86.
    expect(r.balance.maxOverIdeal).toBeLessThan(1.01);
    expect(r.balance.minOverIdeal).toBeGreaterThan(0.99);
    expect(r.pendingTransfers).toBe(0);

    const transfers = await cli(withSecret('a', 'transfers', '--json'));
    expect(transfers.code).toBe(EXIT.ok);
    const t = JSON.parse(transfers.stdout) as TransfersReport;
    expect(t).toMatchObject({ settled: true, pending: [] });
    const text = await cli(withSecret('a', 'transfers'));
    expect(text.stdout).toContain('no transfers pending; the ring is settled');
  });

  it('stats: counts, rates and percentiles of real requests', async () => {
    for (let i = 0; i < 20; i++) await node('a').put(`stats:${i}`, i);
    for (let i = 0; i < 10; i++) await node('a').get(`stats:${i}`);
    const result = await cli(withSecret('a', 'stats', '--json', '--interval-ms', '200'));
    expect(result.code).toBe(EXIT.ok);
    const s = JSON.parse(result.stdout) as StatsReport & { rates: { intervalMs: number; put: number } };
    expect(s.stats.put.count).toBeGreaterThanOrEqual(20);
    expect(s.stats.get.count).toBeGreaterThanOrEqual(10);
    expect(s.stats.put.p50Ms).toBeGreaterThan(0);
    expect(s.stats.transport!.bytesSent).toBeGreaterThan(0);
    expect(s.rates.intervalMs).toBeGreaterThanOrEqual(200);
    expect(s.rates.put).toBe(0); // nothing was written during the window
    const text = await cli(withSecret('a', 'stats', '--interval-ms', '0'));
    expect(text.code).toBe(EXIT.ok);
    expect(text.stdout).toMatch(/^put +- +\d+ +0 /m);
  });

  it('authentication: no secret or a wrong one exits 4; an unreachable node exits 3', async () => {
    const none = await cli(['--node', node('a').address, 'status']);
    expect(none.code).toBe(EXIT.auth);
    expect(none.stderr).toContain('shared secret required');
    expect(none.stdout).toBe('');
    const wrong = await cli(['--node', node('a').address, '--secret', 'not-it', 'leave']);
    expect(wrong.code).toBe(EXIT.auth);
    expect(wrong.stderr).toContain('wrong secret');
    // The node with no secret cannot prove one: a CLI holding a secret refuses to talk to it.
    const impostor = await cli(['--node', open!.address, '--secret', SECRET, 'status']);
    expect(impostor.code).toBe(EXIT.auth);
    // Nothing changed: a is still a running member of the settled ring.
    expect(await clusterSettled([...nodes.values()])).toBe(true);

    const port = Number(node('a').address.split(':')[1]);
    const closed = await cli([
      '--host',
      '127.0.0.1',
      '--port',
      String(port === 65535 ? 1 : port + 10_000),
      'status',
    ]);
    expect(closed.code).toBe(EXIT.unreachable);
    expect(closed.stderr).toMatch(/ECONNREFUSED|unreachable|timed out/);
  });

  it('refuses leave and remove on a node whose transport authenticates nobody (exit 5), reads still work', async () => {
    const status = await cli(['--node', open!.address, 'status', '--json']);
    expect(status.code).toBe(EXIT.ok);
    const leave = await cli(['--node', open!.address, 'leave']);
    expect(leave.code).toBe(EXIT.refused);
    expect(leave.stderr).toContain('does not authenticate its peers');
    const remove = await cli(['--node', open!.address, 'remove', 'someone']);
    expect(remove.code).toBe(EXIT.refused);
    const members = await open!.members();
    expect(members).toEqual([expect.objectContaining({ id: 'open', status: 'up', partitions: 256 })]);
    expect(open!.alive).toBe(true);
  });

  it('remove of an unknown member exits 1 and changes nothing', async () => {
    const result = await cli(withSecret('a', 'remove', 'nobody'));
    expect(result.code).toBe(EXIT.failed);
    expect(result.stderr).toContain('no member nobody');
    expect((await node('a').members()).map((m) => m.id).sort()).toEqual(['a', 'b', 'c']);
  });

  it('leave --wait: the node hands its partitions over and stops; remove drops a dead member', async () => {
    const result = await cli(withSecret('c', 'leave', '--wait', '--json'));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT.ok);
    expect(JSON.parse(result.stdout)).toMatchObject({ action: 'leave', member: 'c', left: true });
    expect(await node('c').exited).toEqual({ code: 0, signal: null });
    nodes.delete('c');
    await waitFor('a and b to own the whole ring', () => clusterSettled([node('a'), node('b')]), 30_000);
    // Data written before the leave is still readable with r = 2.
    expect((await node('b').get('stats:3')).values).toEqual([3]);

    // b dies for good; the operator removes it through a.
    await node('b').kill();
    nodes.delete('b');
    const removed = await cli(withSecret('a', 'remove', 'b'));
    expect(removed.code).toBe(EXIT.ok);
    expect(removed.stdout).toContain('b is removed from the cluster');
    await waitFor('a to own every partition', async () => {
      const members = await node('a').members();
      return members.length === 1 && members[0]!.partitions === 256;
    });
  });
});
