/**
 * Node processes for the tests that need real ones (TCP, crashes, the CLI): `NodeProcess` starts
 * `tcp-node.ts` beside this file (TcpTransport on loopback, LevelStorage in a directory the test
 * gives) and drives it over its IPC channel.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { MemberView, PreferenceListEntry, RingStatus } from '../../src/index.js';
import type { Command, NodeEvent, Reply } from './tcp-node.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
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
