/**
 * `npx tsx examples/tcp-cluster.ts`: three dynamo-engine nodes, each in its own process, talking
 * TCP over loopback and keeping their data in LevelDB (a temporary directory each). N=3 R=2 W=2.
 * This process is not a node: it drives the three through their IPC channel (see
 * `examples/tcp-node.ts`), writes and reads through each of them, shows where every key lives,
 * and shuts everything down. Runs in a few seconds.
 *
 * `NodeProcess` (exported) starts and controls one node process; the crash test uses it too.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { MemberView, PreferenceListEntry, RingStatus } from '../src/index.js';
import type { Command, NodeEvent, Reply } from './tcp-node.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NODE_SCRIPT = fileURLToPath(new URL('./tcp-node.ts', import.meta.url));

type Request = Command extends infer C ? (C extends unknown ? Omit<C, 'seq'> : never) : never;

export interface NodeProcessOptions {
  id: string;
  dataDir: string;
  /** Fixed port (a restarted node keeps its address); default 0 (ephemeral). */
  port?: number;
  seeds?: string[];
  /** More `tcp-node.ts` flags, e.g. ['--gossip-ms', '200']. */
  args?: string[];
  /** How long to wait for the node to be ready, ms. Default 30 000. */
  startTimeoutMs?: number;
  /** Pass the child's stderr through (default true: a crashing child explains itself). */
  stderr?: boolean;
  /** Called once the node's port is bound, before it has joined (its address is known then). */
  onListening?: (address: string) => void;
}

/** Thrown by `NodeProcess.call` when the node answered with an error. */
export class NodeCallError extends Error {
  readonly code: string | undefined;
  constructor(error: { name: string; code?: string; message: string }) {
    super(error.message);
    this.name = error.name;
    this.code = error.code;
  }
}

/** One `tcp-node.ts` child process, driven over IPC. */
export class NodeProcess {
  readonly id: string;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  address = '';
  private seq = 0;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  private gone = false;

  private constructor(options: NodeProcessOptions) {
    this.id = options.id;
    const argv = ['--id', options.id, '--data', options.dataDir, '--port', String(options.port ?? 0)];
    if (options.seeds?.length) argv.push('--seeds', options.seeds.join(','));
    argv.push(...(options.args ?? []));
    // `--import tsx` resolves from the working directory: run from the package root.
    this.child = spawn(process.execPath, ['--import', 'tsx', NODE_SCRIPT, ...argv], {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', options.stderr === false ? 'ignore' : 'inherit', 'ipc'],
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.gone = true;
        for (const p of this.pending.values()) p.reject(new Error(`node ${this.id} exited`));
        this.pending.clear();
        resolve({ code, signal });
      });
    });
    this.child.on('message', (m: Reply | NodeEvent) => {
      if ('seq' in m) {
        const p = this.pending.get(m.seq);
        if (!p) return;
        this.pending.delete(m.seq);
        if (m.ok) p.resolve(m.result);
        else p.reject(new NodeCallError(m.error));
      }
    });
  }

  /** Spawns the node and resolves once it can serve requests. */
  static async start(options: NodeProcessOptions): Promise<NodeProcess> {
    const proc = new NodeProcess(options);
    const timeoutMs = options.startTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        timer = setTimeout(
          () => reject(new Error(`node ${options.id} not ready after ${timeoutMs} ms`)),
          timeoutMs,
        );
        proc.child.on('message', (m: Reply | NodeEvent) => {
          if (!('event' in m)) return;
          if (m.event === 'listening') {
            proc.address = m.address;
            options.onListening?.(m.address);
          } else if (m.event === 'ready') {
            proc.address = m.address;
            resolve();
          } else {
            reject(
              Object.assign(new Error(`node ${options.id} failed to start: ${m.message}`), { code: m.code }),
            );
          }
        });
        proc.exited.then(({ code, signal }) =>
          reject(new Error(`node ${options.id} exited while starting (code ${code}, signal ${signal})`)),
        );
      });
    } catch (err) {
      proc.kill();
      await proc.exited;
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return proc;
  }

  get alive(): boolean {
    return !this.gone;
  }

  /** Sends one command; rejects with `NodeCallError` when the node answered with an error. */
  call<T = unknown>(request: Request, timeoutMs = 30_000): Promise<T> {
    if (this.gone) return Promise.reject(new Error(`node ${this.id} is not running`));
    const seq = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new Error(`node ${this.id}: ${request.cmd} got no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(seq, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ ...request, seq } as Command, (err) => {
        if (err && this.pending.delete(seq)) {
          clearTimeout(timer);
          reject(err);
        }
      });
    });
  }

  put(key: string, value: unknown, options: { context?: string; w?: number } = {}) {
    return this.call<{ context: string }>({ cmd: 'put', key, value, ...options });
  }

  get(key: string, options: { r?: number } = {}) {
    return this.call<{ values: unknown[]; context: string }>({ cmd: 'get', key, ...options });
  }

  /** What this node's own storage holds for each key (live values; null: absent). */
  local(keys: string[]) {
    return this.call<(unknown[] | null)[]>({ cmd: 'local', keys });
  }

  preferenceLists(keys: string[]) {
    return this.call<PreferenceListEntry[][]>({ cmd: 'preferenceList', keys });
  }

  members() {
    return this.call<MemberView[]>({ cmd: 'members' });
  }

  ringStatus() {
    return this.call<RingStatus>({ cmd: 'ringStatus' });
  }

  /** `node.removeMember(id)` on this node. */
  remove(id: string): Promise<null> {
    return this.call<null>({ cmd: 'remove', id });
  }

  /** `node.leave()`: hands its partitions over and stops; the process then exits. */
  async leave(timeoutMs = 60_000): Promise<void> {
    await this.call({ cmd: 'leave' }, timeoutMs);
    await this.exited;
  }

  /** Clean shutdown; kills the process if it does not exit within `timeoutMs`. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.gone) return;
    await this.call({ cmd: 'stop' }, timeoutMs).catch(() => {});
    const timer = setTimeout(() => this.kill(), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Sends `signal` (default SIGKILL: a crash) and resolves once the process is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.gone) this.child.kill(signal);
    await this.exited;
  }
}

/** Polls `condition` until it holds; throws after `timeoutMs`. */
export async function waitFor(
  what: string,
  condition: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
  stepMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`still waiting after ${timeoutMs} ms for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
}

/** True once every node sees every node (itself included) up, in one ring. */
export async function clusterSettled(nodes: readonly NodeProcess[]): Promise<boolean> {
  const views = await Promise.all(nodes.map((n) => n.members()));
  return views.every(
    (members) =>
      members.length === nodes.length &&
      members.every((m) => m.status === 'up' && m.partitions > 0) &&
      nodes.every((n) => members.some((m) => m.id === n.id)),
  );
}

async function main(): Promise<void> {
  const say = (text: string) => console.log(text);
  const root = await mkdtemp(join(tmpdir(), 'dynamo-tcp-cluster-'));
  const nodes: NodeProcess[] = [];
  try {
    say('Starting three node processes on 127.0.0.1 (TcpTransport, LevelStorage, N=3 R=2 W=2).');
    const fast = ['--gossip-ms', '200'];
    const a = await NodeProcess.start({ id: 'a', dataDir: join(root, 'a'), args: fast });
    nodes.push(a);
    say(`  node a: pid ${a.child.pid}, listening on ${a.address}, data in ${join(root, 'a')}`);
    const rest = await Promise.all(
      ['b', 'c'].map((id) =>
        NodeProcess.start({ id, dataDir: join(root, id), seeds: [a.address], args: fast }),
      ),
    );
    for (const n of rest) {
      nodes.push(n);
      say(`  node ${n.id}: pid ${n.child.pid}, listening on ${n.address}, joined through ${a.address}`);
    }
    const ring = await a.ringStatus();
    say(
      `Ring version ${ring.version}: settled ${ring.settled}, claimant ${ring.claimant}, ${ring.pending.length} transfers pending.`,
    );
    // Each node process started with waitUntilReady: once all three said ready the ring is settled.
    const members = await a.members();
    say(
      `All three see each other: ${members.map((m) => `${m.id} (${m.status}, ${m.partitions} of 256 partitions)`).join(', ')}.`,
    );

    say('\nWriting one key through each node:');
    const writes: [NodeProcess, string, unknown][] = [
      [nodes[0]!, 'user:alice', { name: 'Alice', plan: 'pro' }],
      [nodes[1]!, 'cart:42', ['book', 'pen']],
      [nodes[2]!, 'page:home', 'Welcome!'],
    ];
    for (const [node, key, value] of writes) {
      await node.put(key, value);
      say(`  node ${node.id} stored ${key} = ${JSON.stringify(value)} (acknowledged by 2 of 3 replicas)`);
    }

    say('\nReading every key back through every node (each read waits for 2 replicas):');
    for (const [, key] of writes) {
      const seen = await Promise.all(
        nodes.map(async (n) => `${n.id} reads ${JSON.stringify((await n.get(key)).values)}`),
      );
      say(`  ${key}: ${seen.join('; ')}`);
    }

    say('\nUpdating cart:42 through node c with the context node b read (no conflict: it supersedes):');
    const read = await nodes[1]!.get('cart:42');
    const cart = read.values[0] as string[];
    await nodes[2]!.put('cart:42', [...cart, 'lamp'], { context: read.context });
    say(`  node a now reads ${JSON.stringify((await nodes[0]!.get('cart:42')).values)}`);

    say('\nWhere each key lives (its preference list: the first 3 distinct nodes clockwise on the ring):');
    const keys = writes.map(([, key]) => key);
    const lists = await a.preferenceLists(keys);
    // A write is acknowledged after 2 stores; the third replica catches up a moment later.
    await waitFor('the three replicas to hold the same versions', async () => {
      const held = (await Promise.all(nodes.map((n) => n.local(keys)))).map((v) => JSON.stringify(v));
      return held.every((h) => h === held[0]);
    });
    const held = await Promise.all(nodes.map((n) => n.local(keys)));
    keys.forEach((key, i) => {
      const list = lists[i]!.map((e) => `${e.id} (${e.address}, ${e.kind})`).join(' -> ');
      const copies = nodes.map((n, j) => `${n.id}: ${JSON.stringify(held[j]![i])}`).join(', ');
      say(`  ${key}: ${list}`);
      say(`    on disk: ${copies}`);
    });

    say('\nStopping the three nodes.');
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    await rm(root, { recursive: true, force: true });
  }
  say('Done: every process exited and the data directories are removed.');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
