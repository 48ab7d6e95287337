/**
 * Smoke test of `examples/http-service.ts`: three service processes on loopback (TcpTransport
 * with a shared secret, LevelStorage), used over HTTP as a client would: PUT / GET / DELETE with
 * the context header, siblings as 300, /health, /metrics, and the admin CLI against their node
 * ports. Wall-clock waits poll against a deadline.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { StatusReport } from '../../src/admin/protocol.js';
import { waitFor } from '../process/node-process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SECRET = 'http-service-secret';
const CONTEXT = 'x-dynamo-context';

interface Service {
  id: string;
  child: ChildProcess;
  http: string;
  node: string;
  exited: Promise<number | null>;
}

let root: string;
const services: Service[] = [];

async function startService(id: string, seeds: string[], extra: string[] = []): Promise<Service> {
  const args = ['--id', id, '--data', join(root, id), '--gossip-ms', '200', ...extra];
  if (seeds.length) args.push('--seeds', seeds.join(','));
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'examples/http-service.ts'), ...args],
    {
      cwd: ROOT,
      env: { ...process.env, DYNAMO_SECRET: SECRET },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${id} did not start`)), 30_000);
    createInterface({ input: child.stdout! }).once('line', (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    exited.then((code) => reject(new Error(`${id} exited with ${code} while starting`)));
  });
  const { http, node } = JSON.parse(line) as { http: string; node: string };
  const service = { id, child, http, node, exited };
  services.push(service);
  return service;
}

const call = (
  s: Service,
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
) => fetch(`http://${s.http}${path}`, { method, body, headers });

const byId = (id: string) => services.find((s) => s.id === id)!;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'dynamo-http-'));
  const a = await startService('a', []);
  await Promise.all(['b', 'c'].map((id) => startService(id, [a.node])));
  await waitFor(
    'every service to report ready',
    async () =>
      (await Promise.all(services.map((s) => call(s, 'GET', '/health')))).every((r) => r.status === 200),
    30_000,
    100,
  );
});

afterAll(async () => {
  for (const s of services) s.child.kill('SIGKILL');
  await Promise.all(services.map((s) => s.exited));
  if (root) await rm(root, { recursive: true, force: true });
});

it('serves PUT / GET / DELETE with contexts, siblings as 300, health and metrics', async () => {
  const [a, b, c] = ['a', 'b', 'c'].map(byId) as [Service, Service, Service];
  const health = (await (await call(b, 'GET', '/health')).json()) as { members: unknown[] };
  expect(health).toMatchObject({
    id: 'b',
    status: 'running',
    ready: true,
    settled: true,
    pendingTransfers: 0,
  });
  expect(health.members).toHaveLength(3);

  const missing = await call(a, 'GET', '/kv/greeting');
  expect(missing.status).toBe(404);
  const put = await call(a, 'PUT', '/kv/greeting', 'hello', { [CONTEXT]: missing.headers.get(CONTEXT)! });
  expect(put.status).toBe(204);
  expect(put.headers.get(CONTEXT)).toBeTruthy();
  const read = await call(b, 'GET', '/kv/greeting');
  expect(read.status).toBe(200);
  expect(await read.text()).toBe('hello');

  // Two writes without a context (or with the same stale one): siblings, both kept.
  const stale = read.headers.get(CONTEXT)!;
  expect((await call(a, 'PUT', '/kv/greeting', 'hi from a', { [CONTEXT]: stale })).status).toBe(204);
  expect((await call(c, 'PUT', '/kv/greeting', 'hi from c', { [CONTEXT]: stale })).status).toBe(204);
  const conflict = await call(b, 'GET', '/kv/greeting');
  expect(conflict.status).toBe(300);
  expect(((await conflict.json()) as string[]).sort()).toEqual(['hi from a', 'hi from c']);
  // A write with the conflicted read's context resolves the siblings.
  const resolved = await call(c, 'PUT', '/kv/greeting', 'hi all', {
    [CONTEXT]: conflict.headers.get(CONTEXT)!,
  });
  expect(resolved.status).toBe(204);
  const after = await call(a, 'GET', '/kv/greeting');
  expect(after.status).toBe(200);
  expect(await after.text()).toBe('hi all');

  const deleted = await call(b, 'DELETE', '/kv/greeting', undefined, {
    [CONTEXT]: after.headers.get(CONTEXT)!,
  });
  expect(deleted.status).toBe(204);
  expect((await call(c, 'GET', '/kv/greeting')).status).toBe(404);

  // A value with X-Dynamo-Ttl-Ms reads as absent once it expired (real time: polled, bounded).
  // Through c, so that a's request counters below stay as they are.
  const expiring = await call(c, 'PUT', '/kv/session', 'token', { 'x-dynamo-ttl-ms': '4000' });
  expect(expiring.status).toBe(204);
  expect((await call(b, 'GET', '/kv/session')).status).toBe(200);
  await waitFor(
    'the session to expire',
    async () => (await call(c, 'GET', '/kv/session')).status === 404,
    20_000,
    100,
  );
  expect((await call(c, 'PUT', '/kv/session', 'token', { 'x-dynamo-ttl-ms': 'soon' })).status).toBe(400);
  expect((await call(c, 'PUT', '/kv/session', 'token', { 'x-dynamo-ttl-ms': '0' })).status).toBe(400);
  // DELETE without a context deletes what a read finds: both siblings here.
  expect((await call(a, 'PUT', '/kv/pair', 'one')).status).toBe(204);
  expect((await call(c, 'PUT', '/kv/pair', 'two')).status).toBe(204);
  expect((await call(b, 'GET', '/kv/pair')).status).toBe(300);
  expect((await call(b, 'DELETE', '/kv/pair')).status).toBe(204);
  expect((await call(a, 'GET', '/kv/pair')).status).toBe(404);

  // Bad input: a context this engine never made, an oversized value, an unknown path.
  const bad = await call(a, 'PUT', '/kv/x', 'v', { [CONTEXT]: 'not-a-context' });
  expect(bad.status).toBe(400);
  expect(await bad.json()).toMatchObject({ code: 'DYNAMO_INVALID_CONTEXT' });
  expect((await call(a, 'PUT', '/kv/big', 'x'.repeat(1_048_577))).status).toBe(413);
  expect((await call(a, 'GET', '/kv/x')).status).toBe(404);
  expect((await call(a, 'GET', '/nowhere')).status).toBe(404);

  const metrics = await (await call(a, 'GET', '/metrics')).text();
  const puts = Number(/^dynamo_requests_total\{op="put",outcome="ok"\} (\d+)$/m.exec(metrics)?.[1]);
  expect(puts).toBe(3); // 'hello', 'hi from a' and 'one' went through a
  // The refused puts never reached the engine's request path (checked before anything is sent).
  expect(metrics).toMatch(/^dynamo_requests_total\{op="put",outcome="error"\} 0$/m);
  expect(metrics).toMatch(/^dynamo_members\{status="up"\} 3$/m);
  expect(metrics).toContain('process_cpu_user_seconds_total');
});

it("the admin CLI reads the services' cluster through their node ports", async () => {
  const a = byId('a');
  const result = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), '--node', a.node, 'status', '--json'],
      { cwd: ROOT, env: { ...process.env, DYNAMO_SECRET: SECRET }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let stdout = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.once('close', (code) => resolve({ code, stdout }));
  });
  expect(result.code).toBe(0);
  const report = JSON.parse(result.stdout) as StatusReport;
  expect(report.members.map((m) => `${m.id}:${m.status}`).sort()).toEqual(['a:up', 'b:up', 'c:up']);
});

it('/health says 503 and why while requests cannot succeed, and --n/--r/--w set the quorum', async () => {
  // Alone with the default n = 3, r = w = 2: every request would fail for want of owners.
  const solo = await startService('solo', []);
  const health = await call(solo, 'GET', '/health');
  expect(health.status).toBe(503);
  expect(await health.json()).toMatchObject({
    ready: false,
    settled: true,
    quorum: { n: 3, r: 2, w: 2 },
    reason: '1 node owns partitions; r = 2 and w = 2 need 2',
  });
  expect((await call(solo, 'PUT', '/kv/k', 'v')).status).toBe(503);
  // Alone with n = r = w = 1: ready, and it serves.
  const one = await startService('one', [], ['--n', '1', '--r', '1', '--w', '1']);
  const ok = await call(one, 'GET', '/health');
  expect(ok.status).toBe(200);
  expect(await ok.json()).toMatchObject({ ready: true, quorum: { n: 1, r: 1, w: 1 } });
  expect((await call(one, 'PUT', '/kv/k', 'v')).status).toBe(204);
  expect(await (await call(one, 'GET', '/kv/k')).text()).toBe('v');
});

it('stops cleanly on SIGTERM', async () => {
  const c = byId('c');
  c.child.kill('SIGTERM');
  expect(await c.exited).toBe(0);
});
