/**
 * The docs' code blocks, checked: every fenced block of README.md and docs/ is found with its
 * file and line, and
 * - `ts` blocks compile under `--strict` against the package's public entry points, imported by
 *   name as a user imports them (`'dynamo-engine'`, `'dynamo-engine/tcp'`, …): inside this
 *   repository the names map to the source of exactly the entries package.json exports; in a
 *   project that installed the package they are the package;
 * - `ts run` blocks also run (`node --import tsx`), and each `// → VALUE` comment at the end of a
 *   line is asserted: the line's expression (the argument of a `console.log(…)`, or the value a
 *   `const` gets) must deep-equal VALUE. A `→` claim that cannot be checked is itself a problem;
 * - `ts continue` (with or without `run`) builds on the previous `ts` block of the same file, so a
 *   page can explain one step at a time;
 * - `sh` / `bash` blocks must parse (`bash -n`); `sh run` blocks — commands the docs tell a user to
 *   run that are safe to run (loopback only, their own files, they stop what they start) — also run
 *   with `bash -eu` in an installed project (`installed` mode; in the repository they only parse,
 *   since they use the package as a user has it, its CLI included);
 * - `json` blocks must parse; `text` blocks (output, diagrams) are left alone. A block without a
 *   language is a problem: say `text`.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import ts from 'typescript';

/** One fenced code block. `line` is the 1-based line of its first code line in `file`. */
export interface Block {
  file: string;
  line: number;
  lang: string;
  attrs: ReadonlySet<string>;
  code: string;
}

/** What is wrong, where: `file:line` of the markdown. */
export interface Problem {
  file: string;
  line: number;
  message: string;
}

const TS_LANGS = new Set(['ts', 'typescript']);
const SHELL_LANGS = new Set(['sh', 'bash', 'shell']);
const KNOWN_LANGS = new Set([...TS_LANGS, ...SHELL_LANGS, 'json', 'text']);
const KNOWN_ATTRS = new Set(['run', 'continue']);
const CLAIM = /\/\/\s*→\s*(.+?)\s*$/;

/** The fenced blocks of a markdown text (``` or ~~~ fences, info string: language then attributes). */
export function extractBlocks(markdown: string, file: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^`\s]*)\s*(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, lang, rest] = open as unknown as [string, string, string, string, string];
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const line = lines[j]!;
      if (line.trim().startsWith(fence[0]!.repeat(fence.length)) && line.trim().replace(/[`~]/g, '') === '')
        break;
      body.push(line.startsWith(indent) ? line.slice(indent.length) : line);
    }
    blocks.push({
      file,
      line: i + 2,
      lang: lang.toLowerCase(),
      attrs: new Set(rest.split(/\s+/).filter(Boolean)),
      code: body.join('\n'),
    });
    i = j;
  }
  return blocks;
}

/** Where a check runs: the project whose node_modules and tsconfig resolve the package's name. */
export interface CheckOptions {
  /**
   * `source`: the repository itself; the package's exported names compile and run against the
   * source of the entries package.json exports (and nothing else of src/).
   * `installed`: a project that installed the package; names resolve as for any user.
   */
  mode: 'source' | 'installed';
  /** The repository root (source) or the installed project's root. */
  root: string;
  /** Run the `run` blocks (default true). */
  run?: boolean;
  /** Longest a runnable block may take, ms (default 120 000). */
  runTimeoutMs?: number;
  /** Where to write the generated files (default `<root>/.snippets/docs`); removed first. */
  workDir?: string;
  /** How file names are shown (default: relative to root). */
  displayRoot?: string;
}

/** A TypeScript block together with the blocks it continues, as one module. */
interface Chain {
  name: string;
  last: Block;
  /** Each block's first line in the module's text, 0-based, in order. */
  parts: { block: Block; offset: number }[];
  text: string;
  run: boolean;
}

/** Checks every block of `files`; resolves with the problems found (none: all good). */
export async function checkMarkdownFiles(
  files: readonly string[],
  options: CheckOptions,
): Promise<Problem[]> {
  const display = options.displayRoot ?? options.root;
  const blocks: Block[] = [];
  for (const file of files) {
    blocks.push(...extractBlocks(await readFile(file, 'utf8'), relative(display, file) || basename(file)));
  }
  return checkBlocks(blocks, options);
}

export async function checkBlocks(blocks: readonly Block[], options: CheckOptions): Promise<Problem[]> {
  const problems: Problem[] = [];
  const workDir = options.workDir ?? join(options.root, '.snippets', 'docs');
  await rm(workDir, { recursive: true, force: true });
  await mkdir(workDir, { recursive: true });

  const chains: Chain[] = [];
  const shellRuns: Block[] = [];
  const previous = new Map<string, Chain>();
  for (const block of blocks) {
    if (block.lang === '') {
      problems.push({
        ...at(block),
        message: 'a code block without a language (use `text` for output and diagrams)',
      });
      continue;
    }
    if (!KNOWN_LANGS.has(block.lang)) {
      problems.push({
        ...at(block),
        message: `unknown language "${block.lang}" (${[...KNOWN_LANGS].join(', ')})`,
      });
      continue;
    }
    for (const attr of block.attrs) {
      const allowed = TS_LANGS.has(block.lang) || (SHELL_LANGS.has(block.lang) && attr === 'run');
      if (!KNOWN_ATTRS.has(attr) || !allowed) {
        problems.push({ ...at(block), message: `unknown attribute "${attr}" on a ${block.lang} block` });
      }
    }
    if (TS_LANGS.has(block.lang)) {
      const before = block.attrs.has('continue') ? previous.get(block.file) : undefined;
      if (block.attrs.has('continue') && !before) {
        problems.push({ ...at(block), message: '`continue` but no earlier ts block in this file' });
      }
      const parts = [...(before?.parts ?? [])];
      const head = before ? `${before.text}\n` : '';
      parts.push({ block, offset: head.split('\n').length - 1 });
      const chain: Chain = {
        name: `${slug(block.file)}-L${block.line}`,
        last: block,
        parts,
        text: head + block.code,
        run: block.attrs.has('run'),
      };
      chains.push(chain);
      previous.set(block.file, chain);
    } else if (SHELL_LANGS.has(block.lang)) {
      const parsed = await checkShell(block, workDir);
      problems.push(...parsed);
      if (
        parsed.length === 0 &&
        block.attrs.has('run') &&
        options.mode === 'installed' &&
        options.run !== false
      ) {
        shellRuns.push(block);
      }
    } else if (block.lang === 'json') {
      try {
        JSON.parse(block.code);
      } catch (err) {
        problems.push({ ...at(block), message: `json does not parse: ${(err as Error).message}` });
      }
    }
  }

  const compiled = await compile(chains, options, workDir);
  problems.push(...compiled);
  if (options.run !== false) {
    const failedChains = new Set(compiled.map((p) => `${p.file}:${p.line}`));
    for (const chain of chains) {
      if (!chain.run) continue;
      if (failedChains.has(`${chain.last.file}:${chain.last.line}`)) continue;
      problems.push(...(await runChain(chain, options, workDir)));
    }
    for (const block of shellRuns) problems.push(...(await runShell(block, options, workDir)));
  }
  return problems;
}

const at = (block: Block) => ({ file: block.file, line: block.line });
const slug = (file: string) => file.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '');

/** The markdown position of a line of a chain's module text (0-based). */
function position(chain: Chain, line: number): { file: string; line: number } {
  let part = chain.parts[0]!;
  for (const p of chain.parts) if (p.offset <= line) part = p;
  return { file: part.block.file, line: part.block.line + line - part.offset };
}

/** The public entries this repository's package.json exports, mapped to their source files. */
export async function sourceEntries(root: string): Promise<Record<string, string>> {
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
    name: string;
    exports: Record<string, unknown>;
  };
  const entries: Record<string, string> = {};
  for (const subpath of Object.keys(pkg.exports)) {
    if (subpath === './package.json') continue;
    const name = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
    entries[name] = join(root, 'src', subpath === '.' ? 'index.ts' : `${subpath.slice(2)}/index.ts`);
  }
  return entries;
}

/** A snippet's module text: a file with no import or export is a script; make it a module. */
function moduleText(text: string): string {
  return /^\s*(import|export)\s/m.test(text) ? text : `${text}\nexport {};`;
}

async function compile(chains: readonly Chain[], options: CheckOptions, workDir: string): Promise<Problem[]> {
  if (chains.length === 0) return [];
  const files = new Map<string, Chain>();
  for (const chain of chains) {
    const file = join(workDir, `${chain.name}.mts`);
    await writeFile(file, moduleText(chain.text));
    files.set(file, chain);
  }
  const compilerOptions: ts.CompilerOptions = {
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2023.d.ts'],
    types: ['node'],
    skipLibCheck: true,
    noEmit: true,
    esModuleInterop: true,
  };
  if (options.mode === 'source') {
    const entries = await sourceEntries(options.root);
    compilerOptions.paths = Object.fromEntries(Object.entries(entries).map(([name, file]) => [name, [file]]));
  }
  const program = ts.createProgram([...files.keys()], compilerOptions);
  const problems: Problem[] = [];
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    const chain = diagnostic.file ? files.get(diagnostic.file.fileName) : undefined;
    if (!diagnostic.file || !chain) {
      // Errors in the library itself are the typecheck's business, but say so rather than hide them.
      const where = diagnostic.file?.fileName ?? 'compiler';
      problems.push({ file: where, line: 0, message: `TS${diagnostic.code}: ${message}` });
      continue;
    }
    const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
    const where = position(chain, line);
    // Report each block's own errors once: a chain repeats its earlier blocks' lines.
    if (where.file !== chain.last.file || where.line < chain.last.line) continue;
    problems.push({ ...where, message: `TS${diagnostic.code}: ${message}` });
  }
  return problems;
}

/** The claim checker, one line long (see instrument). */
const PRELUDE = (
  "import { inspect as __inspect, isDeepStrictEqual as __equal } from 'node:util';\n" +
  'function __check<T>(actual: T, want: unknown, where: string): T {\n' +
  '  if (!__equal(actual, want)) {\n' +
  '    process.exitCode = 1;\n' +
  "    console.error(where + ': the comment says ' + __inspect(want, { depth: 8 }) + ' but the value is ' + __inspect(actual, { depth: 8 }));\n" +
  '  }\n' +
  '  return actual;\n' +
  '}\n'
).replace(/\n/g, ' ');

/**
 * The runnable text of a chain: each `// → VALUE` claim turned into a check of the line's value.
 * Claims that are not on an expression statement or a one-variable declaration are problems.
 */
export function instrument(chain: { text: string }, where: (line: number) => { file: string; line: number }) {
  const text = moduleText(chain.text);
  const source = ts.createSourceFile('snippet.mts', text, ts.ScriptTarget.ES2022, true);
  const lines = text.split('\n');
  const claims = new Map<number, string>();
  lines.forEach((line, i) => {
    const claim = CLAIM.exec(line);
    if (claim) claims.set(i, claim[1]!);
  });
  const edits: { start: number; end: number; text: string }[] = [];
  const problems: Problem[] = [];
  const used = new Set<number>();
  const lineOf = (pos: number) => source.getLineAndCharacterOfPosition(pos).line;
  const check = (expr: ts.Expression, claim: string, line: number) => {
    const loc = where(line);
    return `__check(${expr.getText(source)}, (${claim}), ${JSON.stringify(`${loc.file}:${loc.line}`)})`;
  };
  // A claim belongs to the outermost statement that ends on its line.
  const isStatement = (node: ts.Node) =>
    node.parent !== undefined &&
    (ts.isSourceFile(node.parent) ||
      ts.isBlock(node.parent) ||
      ts.isCaseClause(node.parent) ||
      ts.isDefaultClause(node.parent));
  const visit = (node: ts.Node) => {
    const endLine = lineOf(node.getEnd());
    const claim = isStatement(node) && !used.has(endLine) ? claims.get(endLine) : undefined;
    if (claim !== undefined) {
      used.add(endLine);
      let target: ts.Expression | undefined;
      if (ts.isExpressionStatement(node)) {
        target = node.expression;
        if (
          ts.isCallExpression(target) &&
          target.expression.getText(source) === 'console.log' &&
          target.arguments.length === 1
        ) {
          target = target.arguments[0]!;
        }
      } else if (ts.isVariableStatement(node) && node.declarationList.declarations.length === 1) {
        target = node.declarationList.declarations[0]!.initializer;
      }
      if (target) {
        edits.push({
          start: target.getStart(source),
          end: target.getEnd(),
          text: check(target, claim, endLine),
        });
      } else {
        problems.push({
          ...where(endLine),
          message: 'a `→` claim must end an expression statement, a console.log(x) or a one-variable const',
        });
      }
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  for (const line of claims.keys()) {
    if (!used.has(line)) {
      problems.push({ ...where(line), message: 'a `→` claim that ends no statement' });
    }
  }
  let out = text;
  for (const edit of edits.sort((a, b) => b.start - a.start)) {
    out = out.slice(0, edit.start) + edit.text + out.slice(edit.end);
  }
  // The prelude shares the first line, so the snippet's lines keep their numbers in stack traces.
  return { text: PRELUDE + out, problems };
}

async function runChain(chain: Chain, options: CheckOptions, workDir: string): Promise<Problem[]> {
  const { text, problems } = instrument(chain, (line) => position(chain, line));
  if (problems.length > 0) return problems;
  const file = join(workDir, `${chain.name}.run.mts`);
  await writeFile(file, text);
  const timeoutMs = options.runTimeoutMs ?? 120_000;
  const result = await runProcess(process.execPath, ['--import', 'tsx', file], options.root, timeoutMs);
  if (result.code === 0 && !result.timedOut) return [];
  const claimFailures = result.stderr
    .split('\n')
    .map((l) => /^(.+?):(\d+): (the comment says .*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null);
  if (claimFailures.length > 0) {
    return claimFailures.map((m) => ({ file: m[1]!, line: Number(m[2]), message: m[3]! }));
  }
  const tail = (result.stderr || result.stdout)
    .replaceAll(PRELUDE, '')
    .trim()
    .split('\n')
    .slice(-15)
    .join('\n');
  const why = result.timedOut ? `did not finish within ${timeoutMs} ms` : `exited with code ${result.code}`;
  return [{ ...at(chain.last), message: `the runnable block ${why}:\n${tail}` }];
}

async function checkShell(block: Block, workDir: string): Promise<Problem[]> {
  const file = join(workDir, `${slug(block.file)}-L${block.line}.sh`);
  await writeFile(file, `${block.code}\n`);
  const result = await runProcess('bash', ['-n', file], workDir, 10_000);
  if (result.code === 0) return [];
  const lines = block.code.split('\n').length; // "unexpected end of file" names the line after the last
  return result.stderr
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const m = /line (\d+): (.*)$/.exec(line);
      return m
        ? { file: block.file, line: block.line + Math.min(Number(m[1]), lines) - 1, message: `sh: ${m[2]}` }
        : { ...at(block), message: `sh: ${line}` };
    });
}

async function runShell(block: Block, options: CheckOptions, workDir: string): Promise<Problem[]> {
  const file = join(workDir, `${slug(block.file)}-L${block.line}.sh`);
  const timeoutMs = options.runTimeoutMs ?? 120_000;
  const result = await runProcess('bash', ['-eu', file], options.root, timeoutMs);
  if (result.code === 0 && !result.timedOut) return [];
  const tail = `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-15).join('\n');
  const why = result.timedOut ? `did not finish within ${timeoutMs} ms` : `exited with code ${result.code}`;
  return [{ ...at(block), message: `the sh run block ${why}:\n${tail}` }];
}

interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a command to its end (bounded by `timeoutMs`, then killed with its process group). */
export function runProcess(
  command: string,
  args: string[],
  cwd: string,
  timeoutMs: number,
): Promise<ProcessResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      // Whatever the command left running in its process group (a failed script's background
      // jobs) ends with it.
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {}
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

/** `file:line: message`, one a line. */
export function formatProblems(problems: readonly Problem[]): string {
  return problems.map((p) => `${p.file}:${p.line}: ${p.message}`).join('\n');
}
