/**
 * `npm run check:package` (after `npm run build`): the package as a user gets it.
 *
 * 1. `npm pack`, and the tarball holds what the README's Install section promises: every entry
 *    point package.json exports (ESM, CJS and both kinds of declarations), the CLI, the examples,
 *    README.md and CHANGELOG.md, the source the source maps point into — and no tests, no docs
 *    build, no scratch files.
 * 2. A fresh project in a temporary directory installs the tarball with npm (from npm's cache:
 *    `--prefer-offline`), as a user would, plus tsx, typescript, @types/node and prom-client.
 * 3. There, it copies examples/ from the package and type-checks them under --strict, runs the
 *    examples the docs tell a user to run (the demo, the three-process TCP cluster, one HTTP
 *    service asked over HTTP, the CLI), and checks every code block of README.md and docs/
 *    against the installed package (test/docs/snippets.ts in `installed` mode: compile, run), and
 *    every relative link of those pages (test/docs/links.ts).
 *
 * Exits 1 with the reason on the first failure. `--keep` leaves the project directory behind.
 */
import { spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { docFiles } from '../docs/check.js';
import { checkLinks } from '../docs/links.js';
import { checkMarkdownFiles, formatProblems, runProcess } from '../docs/snippets.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const { values: args } = parseArgs({ options: { keep: { type: 'boolean', default: false } } });

const say = (text: string) => console.log(text);
function fail(why: string): never {
  console.error(`check:package: ${why}`);
  process.exit(1);
}

async function run(command: string, argv: string[], cwd: string, timeoutMs = 300_000) {
  const result = await runProcess(command, argv, cwd, timeoutMs);
  if (result.code !== 0 || result.timedOut) {
    const tail = `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-30).join('\n');
    fail(
      `\`${command} ${argv.join(' ')}\` (in ${cwd}) ${result.timedOut ? 'timed out' : `exited ${result.code}`}:\n${tail}`,
    );
  }
  return result.stdout;
}

/** The files the tarball must hold, from package.json: every export's four files, the bin, the docs. */
export async function expectedFiles(root: string): Promise<string[]> {
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
    exports: Record<string, string | Record<string, Record<string, string>>>;
    bin: Record<string, string>;
  };
  const files = new Set<string>(['package.json', 'README.md', 'CHANGELOG.md', 'LICENSE']);
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    if (typeof target === 'string') {
      files.add(target.replace(/^\.\//, ''));
      continue;
    }
    for (const condition of Object.values(target)) {
      for (const file of Object.values(condition)) files.add(file.replace(/^\.\//, ''));
    }
    void subpath;
  }
  for (const bin of Object.values(pkg.bin)) files.add(bin.replace(/^\.\//, ''));
  for (const example of ['shopping-cart.ts', 'tcp-node.ts', 'tcp-cluster.ts', 'http-service.ts']) {
    files.add(`examples/${example}`);
  }
  files.add('src/index.ts');
  return [...files].sort();
}

/** Top-level folders a tarball may hold, and what must never be in it. */
const ALLOWED_TOP = new Set([
  'dist',
  'src',
  'examples',
  'package.json',
  'README.md',
  'CHANGELOG.md',
  'LICENSE',
]);

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'dynamo-engine-package-'));
  try {
    say('== npm pack');
    const packed = JSON.parse(await run('npm', ['pack', '--json', '--pack-destination', work], ROOT)) as {
      filename: string;
      files: { path: string }[];
    }[];
    const tarball = join(work, packed[0]!.filename);
    const files = new Set(packed[0]!.files.map((f) => f.path));
    const missing = (await expectedFiles(ROOT)).filter((f) => !files.has(f));
    if (missing.length > 0) fail(`the tarball lacks ${missing.join(', ')}`);
    const stray = [...files].filter((f) => !ALLOWED_TOP.has(f.split('/')[0]!) || /\.test\.ts$/.test(f));
    if (stray.length > 0) fail(`the tarball holds files it should not: ${stray.slice(0, 10).join(', ')}`);
    say(`   ${files.size} files, every entry point, the CLI, examples/, README.md, CHANGELOG.md`);

    say('== a fresh project installs the tarball');
    const project = join(work, 'app');
    await mkdir(project);
    await writeFile(
      join(project, 'package.json'),
      `${JSON.stringify({ name: 'app', private: true, type: 'module' }, null, 2)}\n`,
    );
    await writeFile(
      join(project, 'tsconfig.json'),
      `${JSON.stringify(
        {
          compilerOptions: {
            strict: true,
            target: 'ES2022',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            types: ['node'],
            skipLibCheck: true,
            noEmit: true,
          },
          include: ['examples'],
        },
        null,
        2,
      )}\n`,
    );
    const version = async (name: string) =>
      (
        JSON.parse(await readFile(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as {
          version: string;
        }
      ).version;
    const tools = await Promise.all(
      ['tsx', 'typescript', '@types/node', 'prom-client'].map(async (n) => `${n}@${await version(n)}`),
    );
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, ...tools], project);

    say('== the examples, copied from the package, type-check under --strict');
    await cp(join(project, 'node_modules', 'dynamo-engine', 'examples'), join(project, 'examples'), {
      recursive: true,
    });
    await run(
      process.execPath,
      [join(project, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'],
      project,
    );

    say('== npx tsx examples/shopping-cart.ts');
    const demo = await run(
      process.execPath,
      ['--import', 'tsx', 'examples/shopping-cart.ts'],
      project,
      120_000,
    );
    if (!/Every surviving node reads the same cart/.test(demo)) fail(`the demo ended early:\n${demo}`);

    say('== npx tsx examples/tcp-cluster.ts');
    const cluster = await run(
      process.execPath,
      ['--import', 'tsx', 'examples/tcp-cluster.ts'],
      project,
      180_000,
    );
    if (!/every process exited/.test(cluster)) fail(`the TCP cluster example ended early:\n${cluster}`);

    say('== examples/http-service.ts answers over HTTP');
    await httpService(project);

    say('== npx dynamo-engine --help');
    await run(join(project, 'node_modules', '.bin', 'dynamo-engine'), ['--help'], project, 30_000);

    say("== the docs' code blocks against the installed package, and their links");
    const pages = await docFiles(ROOT);
    const problems = await checkMarkdownFiles(pages, { mode: 'installed', root: project, displayRoot: ROOT });
    problems.push(...(await checkLinks(pages, ROOT)));
    if (problems.length > 0) fail(`the docs' code blocks against the package:\n${formatProblems(problems)}`);
    say('package: all good');
  } finally {
    if (args.keep) say(`(kept ${work})`);
    else await rm(work, { recursive: true, force: true });
  }
}

/** One service (N=1) on loopback: PUT then GET a key over HTTP, then SIGTERM stops it. */
async function httpService(project: string): Promise<void> {
  const data = join(project, 'data');
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'examples/http-service.ts',
      ...['--id', 'a', '--data', data, '--port', '0', '--http-port', '0', '--n', '1', '--r', '1', '--w', '1'],
    ],
    { cwd: project, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    const http = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.includes('"listening"'));
        if (line) resolve((JSON.parse(line) as { http: string }).http);
      });
      void exited.then((code) => reject(new Error(`exited ${code} before listening:\n${stderr}`)));
      setTimeout(() => reject(new Error(`not listening after 60 s:\n${stderr}`)), 60_000).unref();
    }).catch((err: Error) => fail(`http-service: ${err.message}`));
    const put = await fetch(`http://${http}/kv/greeting`, { method: 'PUT', body: 'hello' });
    if (put.status !== 204) fail(`http-service: PUT answered ${put.status}`);
    const get = await fetch(`http://${http}/kv/greeting`);
    const body = await get.text();
    if (get.status !== 200 || body !== 'hello') fail(`http-service: GET answered ${get.status} ${body}`);
  } finally {
    child.kill('SIGTERM');
    const code = await exited;
    if (code !== 0) fail(`http-service: exited ${code} on SIGTERM:\n${stderr}`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
