/**
 * One storage serves one node: a second node given the same MemoryStorage or LevelStorage instance
 * is refused while the first runs (and accepted once it stopped); a LevelDB directory locked by
 * another LevelStorage or another process says so; a start that fails because its port is taken
 * leaves no data directory behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { DynamoNode, MemoryNetwork, MemoryStorage, type Storage, StorageError } from '../../src/index.js';
import { LevelStorage } from '../../src/level/index.js';
import { TcpTransport } from '../../src/tcp/index.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dynamo-ownership-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function start(network: MemoryNetwork, id: string, storage: Storage): Promise<DynamoNode<unknown>> {
  return DynamoNode.start({ id, transport: network.connect(id), storage, seeds: [], quorum: { n: 1 } }).then(
    (node) => {
      cleanup.push(() => node.stop());
      return node;
    },
  );
}

describe('one storage, one node', () => {
  for (const kind of ['MemoryStorage', 'LevelStorage'] as const) {
    it(`a second node given the same ${kind} is refused; the first is unharmed; after it stops, a restart works`, async () => {
      const storage: Storage =
        kind === 'MemoryStorage'
          ? new MemoryStorage()
          : new LevelStorage({ path: join(await tempDir(), 'db') });
      const network = new MemoryNetwork();
      const a = await start(network, 'a', storage);
      await a.put('k', 'v');
      const error = await start(network, 'b', storage).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(StorageError);
      expect((error as Error).message).toBe(
        'node b: this storage instance is in use by node a; give each node its own',
      );
      expect((await a.get('k')).values).toEqual(['v']);
      await a.put('k2', 'v2');
      await a.stop();
      const again = await start(network, 'a', storage);
      expect((await again.get('k2')).values).toEqual(['v2']);
    });
  }

  it('a LevelDB directory held by another LevelStorage says it is locked, with the cause', async () => {
    const path = join(await tempDir(), 'db');
    const network = new MemoryNetwork();
    await start(network, 'a', new LevelStorage({ path }));
    const error = await start(network, 'b', new LevelStorage({ path })).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(
      /cannot open .*: Database failed to open: IO error: lock .*LOCK: already held by process \(locked by another process\?/,
    );
    expect(existsSync(path)).toBe(true);
  });

  it('a LevelDB directory held by another process says it is locked', async () => {
    const path = join(await tempDir(), 'db');
    const child: ChildProcess = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { ClassicLevel } from 'classic-level';
         const db = new ClassicLevel(${JSON.stringify(path)});
         await db.open();
         process.stdout.write('open\\n');
         process.stdin.on('data', () => {});
         process.stdin.on('end', () => db.close().then(() => process.exit(0)));`,
      ],
      { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    cleanup.push(async () => {
      child.stdin?.end();
      await exited;
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`lock holder exited with ${code}`)));
    });
    const storage = new LevelStorage({ path });
    const error = await storage.open().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(/lock .*LOCK.* \(locked by another process\?/);
  });

  it('a start that fails on a port in use leaves no data directory behind', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => blocker.close(resolve)));
    const port = (blocker.address() as { port: number }).port;
    const path = join(await tempDir(), 'never-created');
    const error = await DynamoNode.start({
      id: 'a',
      transport: new TcpTransport({ port }),
      storage: new LevelStorage({ path }),
      seeds: [],
    }).catch((err: unknown) => err);
    expect((error as Error).message).toMatch(/EADDRINUSE/);
    expect(existsSync(path)).toBe(false);
  });
});
