/**
 * The CLI's data commands (`keys`, `export --out`, `import --in`) in-process (`runCli`) against
 * nodes on real TCP sockets on 127.0.0.1, with a shared secret: a backup of one cluster restored
 * into another, the same answers there, and the refusals (no authentication, a corrupt file).
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, runCli } from '../../src/cli/run.js';
import { DynamoNode, MemoryStorage } from '../../src/index.js';
import { TcpTransport } from '../../src/tcp/index.js';

const SECRET = 'cli-data-secret';
const common = { requestTimeoutMs: 2000, gossipIntervalMs: 200, partitions: 64 };
const all: DynamoNode<unknown>[] = [];
let dir: string;
let source: DynamoNode<unknown>[];
let target: DynamoNode<unknown>[];
let open: DynamoNode<unknown>;

async function cluster(prefix: string, size: number, secret?: string): Promise<DynamoNode<unknown>[]> {
  const transport = () => new TcpTransport(secret === undefined ? {} : { secret });
  const nodes = [
    await DynamoNode.start<unknown>({
      ...common,
      id: `${prefix}1`,
      transport: transport(),
      storage: new MemoryStorage(),
    }),
  ];
  for (let i = 2; i <= size; i++) {
    nodes.push(
      await DynamoNode.start<unknown>({
        ...common,
        id: `${prefix}${i}`,
        transport: transport(),
        storage: new MemoryStorage(),
        seeds: [nodes[0]!.address],
      }),
    );
  }
  all.push(...nodes);
  await Promise.all(nodes.map((n) => n.ready({ timeoutMs: 20_000 })));
  return nodes;
}

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    out: (t) => {
      stdout += t;
    },
    err: (t) => {
      stderr += t;
    },
  });
  return { code, stdout, stderr };
}

const at = (node: DynamoNode<unknown>) => ['--node', node.address, '--secret', SECRET];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dynamo-cli-data-'));
  [source, target] = [await cluster('s', 3, SECRET), await cluster('t', 3, SECRET)];
  open = (await cluster('o', 1))[0]!;
  for (let i = 0; i < 150; i++) await source[i % 3]!.put(`key:${i}`, { i });
  await source[1]!.put('key:7', 'concurrent'); // a sibling
  const { context } = await source[0]!.get('key:9');
  await source[2]!.delete('key:9', { context });
}, 60_000);

afterAll(async () => {
  await Promise.all(all.map((n) => n.stop()));
  await rm(dir, { recursive: true, force: true });
});

describe('dynamo-engine keys / export / import', () => {
  it('keys: every live key once, one per line', async () => {
    const r = await cli(...at(source[1]!), 'keys', '--page-size', '17');
    expect(r.code).toBe(EXIT.ok);
    const keys = r.stdout.trim().split('\n');
    expect(keys.length).toBe(149);
    expect(new Set(keys).size).toBe(149);
    expect(keys).not.toContain('key:9');
    expect(r.stderr).toMatch(/^listed 149 keys$/m);
    const hex = await cli(...at(source[0]!), 'keys', '--encoding', 'hex');
    expect(hex.stdout.split('\n')).toContain(Buffer.from('key:3').toString('hex'));
  });

  it('export then import: the other cluster answers the same, and a second import changes nothing', async () => {
    const file = join(dir, 'backup.dynamo');
    const exported = await cli(...at(source[2]!), 'export', '--out', file, '--page-size', '40');
    expect(exported.code).toBe(EXIT.ok);
    expect(exported.stdout).toBe(
      `exported 150 objects (${(await readFile(file)).length} bytes) to ${file}\n`,
    );
    expect(exported.stderr).toMatch(/^exported 150 objects \(/m);
    expect(await readdir(dir)).toEqual(['backup.dynamo']);

    const imported = await cli(...at(target[0]!), '--json', 'import', '--in', file, '--batch-size', '64');
    expect(imported.code).toBe(EXIT.ok);
    expect(JSON.parse(imported.stdout)).toEqual({ file, imported: 150 });
    expect(imported.stderr).toMatch(/^imported 150 objects$/m);
    for (let i = 0; i < 150; i++) {
      const want = await source[0]!.get(`key:${i}`, { r: 3 });
      const got = await target[i % 3]!.get(`key:${i}`, { r: 3 });
      expect(got.values).toEqual(want.values);
    }
    expect((await target[1]!.get('key:7')).values).toHaveLength(2);

    const again = await cli(...at(target[2]!), 'import', '--in', file);
    expect(again.code).toBe(EXIT.ok);
    const relisted = await cli(...at(target[1]!), 'keys');
    expect(relisted.stdout.trim().split('\n').length).toBe(149);
    expect((await target[1]!.get('key:7')).values).toHaveLength(2);
  });

  it('refuses an import on a transport that authenticates nobody, and a corrupt file', async () => {
    const file = join(dir, 'one.dynamo');
    expect((await cli(...at(source[0]!), 'export', '--out', file)).code).toBe(EXIT.ok);
    const refused = await cli('--node', open.address, 'import', '--in', file);
    expect(refused.code).toBe(EXIT.refused);
    expect(refused.stderr).toMatch(/does not authenticate/);
    // Reads need no authenticated transport: keys and export answer on the open node.
    expect((await cli('--node', open.address, 'keys')).code).toBe(EXIT.ok);

    const bytes = await readFile(file);
    await writeFile(join(dir, 'cut.dynamo'), bytes.subarray(0, bytes.length - 5));
    const cut = await cli(...at(target[0]!), 'import', '--in', join(dir, 'cut.dynamo'));
    expect(cut.code).toBe(EXIT.failed);
    expect(cut.stderr).toMatch(/export file: file ends inside a trailer/);

    const wrongSecret = await cli('--node', source[0]!.address, '--secret', 'nope', 'keys');
    expect(wrongSecret.code).toBe(EXIT.auth);
    expect((await cli(...at(source[0]!), 'export')).code).toBe(EXIT.usage);
    expect((await cli(...at(source[0]!), 'keys', '--encoding', 'rot13')).code).toBe(EXIT.usage);
  });
});
