/**
 * The parent side of the 3-process benchmarks (`tcp-cluster.ts` for the engine, `floor.ts` for the
 * floor): bundling a child script, starting a child and talking to it over IPC, and combining the
 * children's load results into cluster-wide figures. The child side is in `load.ts`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import * as hdr from 'hdr-histogram-js';
import { type LoadResult, latencyHistogram } from './load.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

/**
 * Bundles `entry` with esbuild as tsup builds the package, dependencies left external, into
 * node_modules/.cache/dynamo-bench (where those dependencies resolve), under a name of this
 * checkout's own (worktrees may share one node_modules). Returns the bundle's path.
 */
export async function bundleChild(entry: string, name: string): Promise<string> {
  const checkout = createHash('sha1').update(ROOT).digest('hex').slice(0, 8);
  const outfile = join(ROOT, 'node_modules', '.cache', 'dynamo-bench', `${name}-${checkout}.mjs`);
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: true,
    logLevel: 'warning',
  });
  return outfile;
}

/** A command without the `seq` the client adds. */
export type Unsequenced<C> = C extends unknown ? Omit<C, 'seq'> : never;

/** One child process: started with `node argv...`, answers `{ seq, cmd, ... }` requests over IPC. */
export class BenchChild<Command extends { seq: number; cmd: string }> {
  readonly exited: Promise<void>;
  /** What the child announced in its `ready` message. */
  address = '';
  private seq = 0;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();

  private constructor(
    readonly label: string,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        for (const p of this.pending.values()) p.reject(new Error(`${label} exited`));
        this.pending.clear();
        resolve();
      }),
    );
    child.on('message', (m: { seq?: number; ok?: boolean; result?: unknown; error?: string }) => {
      if (m.seq === undefined) return;
      const p = this.pending.get(m.seq);
      this.pending.delete(m.seq);
      if (m.ok) p?.resolve(m.result);
      else p?.reject(new Error(`${label}: ${m.error}`));
    });
  }

  /** Starts the child and waits for its `{ event: 'ready', address }`. */
  static async start<C extends { seq: number; cmd: string }>(
    label: string,
    argv: string[],
    env: NodeJS.ProcessEnv = process.env,
  ): Promise<BenchChild<C>> {
    const child = spawn(process.execPath, argv, {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env,
    });
    const client = new BenchChild<C>(label, child);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${label} not ready in 30 s`)), READY_TIMEOUT_MS);
      child.on('message', (m: { event?: string; address?: string }) => {
        if (m.event !== 'ready') return;
        clearTimeout(timer);
        client.address = m.address!;
        resolve();
      });
      client.exited.then(() => reject(new Error(`${label} exited while starting`)));
    });
    return client;
  }

  call<T>(request: Unsequenced<Command>): Promise<T> {
    const seq = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(seq, { resolve: (v) => resolve(v as T), reject });
      this.child.send({ ...request, seq });
    });
  }

  /** Asks the child to stop (it must understand `{ cmd: 'stop' }`); kills it if it does not exit. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await this.call({ cmd: 'stop' } as Unsequenced<Command>).catch(() => {});
    await this.exited;
    clearTimeout(timer);
  }
}

export interface Phase {
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  failures: number;
  /** CPU time of the processes together per operation, µs: the cost independent of load on the machine. */
  cpuUsPerOp: number;
}

/** Cluster-wide figures from the children's results: rate over the union span, merged histograms. */
export function combine(results: LoadResult[]): Phase {
  const merged = latencyHistogram();
  for (const r of results) {
    const h = hdr.decodeFromCompressedBase64(r.histogram);
    merged.add(h);
    h.destroy();
  }
  const ops = results.reduce((s, r) => s + r.ops, 0);
  const spanMs = Math.max(...results.map((r) => r.endMs)) - Math.min(...results.map((r) => r.startMs));
  const phase = {
    opsPerSec: ops / (spanMs / 1000),
    p50Ms: merged.getValueAtPercentile(50) / 1000,
    p99Ms: merged.getValueAtPercentile(99) / 1000,
    p999Ms: merged.getValueAtPercentile(99.9) / 1000,
    failures: results.reduce((s, r) => s + r.failures, 0),
    cpuUsPerOp: (results.reduce((s, r) => s + r.cpuMs, 0) * 1000) / ops,
  };
  merged.destroy();
  return phase;
}

/** Open-loop loads the 3-process benchmarks run after the closed loops, as fractions of those peaks. */
export const OPEN_LOADS = [
  { name: 'half peak', fraction: 0.5 },
  { name: '20 % of peak', fraction: 0.2 },
] as const;

/**
 * CPU per operation of an open-loop phase less what the processes spend idle at that offered rate
 * (`idleUsPerSec`, from a phase of operations that do nothing: the load driver's 1 ms timer, and
 * for the engine its background timers), which at low rates is several µs of every operation.
 */
export function netCpuUsPerOp(p: Phase, idleUsPerSec: number): number {
  return p.cpuUsPerOp - idleUsPerSec / p.opsPerSec;
}

/** CPU µs per second the processes spend on an open loop of operations that do nothing. */
export function idleUsPerSec(p: Phase): number {
  return p.cpuUsPerOp * p.opsPerSec;
}
