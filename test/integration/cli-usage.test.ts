/**
 * The command lines behave as tools should: `dynamo-engine --version`, `help <command>` exits 0,
 * a reader that closes the pipe early (`status | head`) ends the CLI quietly, a TLS node asked
 * without certificates is an authentication problem (exit 4) rather than "unreachable", and
 * `npm run sim -- --help` prints its usage (a bad flag: exit 2, no stack trace).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, runCli } from '../../src/cli/run.js';
import { DynamoNode, MemoryStorage } from '../../src/index.js';
import { TcpTransport } from '../../src/tcp/index.js';
import { makePki, type TestPki } from '../unit/tcp/helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'src/cli/main.ts');
const SIM = join(ROOT, 'test/sim/run.ts');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a script under tsx; `closeStdout`: the reader goes away before the script writes. */
function run(script: string, args: string[], closeStdout = false): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    if (closeStdout) child.stdout.destroy();
    else child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('dynamo-engine command line', () => {
  it('--version prints the package version and exits 0', async () => {
    const r = await run(CLI, ['--version']);
    expect(r).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  it('help <command> prints that command’s usage and exits 0', async () => {
    const r = await run(CLI, ['help', 'status']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: dynamo-engine status/);
  });

  it('ends quietly with 0 when its reader closed the pipe (EPIPE), without a stack trace', async () => {
    const r = await run(CLI, ['help', 'status'], true);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
  });

  describe('against a node with mutual TLS', () => {
    let pki: TestPki;
    let node: DynamoNode<unknown>;
    beforeAll(async () => {
      pki = makePki();
      node = await DynamoNode.start({
        id: 'tls',
        transport: new TcpTransport({ tls: { key: pki.nodeA.key, cert: pki.nodeA.cert, ca: pki.ca } }),
        storage: new MemoryStorage(),
        seeds: [],
        quorum: { n: 1 },
      });
    });
    afterAll(async () => {
      await node?.stop();
      pki?.cleanup();
    });

    it('without certificates exits 4 (authentication) and says which flags are missing', async () => {
      let err = '';
      const code = await runCli(['--node', node.address, '--timeout-ms', '3000', 'status'], {
        out: () => {},
        err: (t) => {
          err += t;
        },
      });
      expect(code).toBe(EXIT.auth);
      expect(err).toContain('requires mutual TLS: give --tls-ca, --tls-cert and --tls-key');
    });

    it('a node that is not there is still unreachable (exit 3)', async () => {
      const code = await runCli(['--node', '127.0.0.1:1', '--timeout-ms', '2000', 'status'], {
        out: () => {},
        err: () => {},
      });
      expect(code).toBe(EXIT.unreachable);
    });
  });
});

describe('npm run sim', () => {
  it('--help prints the usage and exits 0', async () => {
    const r = await run(SIM, ['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: npm run sim -- \[flags\]/);
    expect(r.stdout).toContain('--seeds N');
    expect(r.stderr).toBe('');
  });

  it('a bad flag or value is a usage error (exit 2) with the usage, not a stack trace', async () => {
    for (const args of [['--bogus'], ['--nodes', 'x']]) {
      const r = await run(SIM, args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^sim: .*\n\nusage: npm run sim/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
