/**
 * `npm run check:docs`: checks every code block of README.md and docs/ (see snippets.ts), and
 * every relative link and its anchor (links.ts).
 *
 *   npm run check:docs                      compile every ts block, run the `run` ones, parse the rest
 *   npm run check:docs -- --no-run          compile and parse only
 *   npm run check:docs -- --installed DIR   the same against a project that installed the package
 *
 * Prints each problem as `file:line: message` and exits 1 if there is any.
 */
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { checkLinks } from './links.js';
import { checkMarkdownFiles, formatProblems } from './snippets.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** README.md and every markdown file under docs/ (the generated reference aside). */
export async function docFiles(root: string): Promise<string[]> {
  const files = [join(root, 'README.md')];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory() && entry.name !== 'reference') await walk(path);
      else if (entry.isFile() && entry.name.endsWith('.md')) files.push(path);
    }
  };
  await walk(join(root, 'docs')).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  return files.sort();
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values: args } = parseArgs({
    options: { 'no-run': { type: 'boolean', default: false }, installed: { type: 'string' } },
  });
  const files = await docFiles(ROOT);
  const started = Date.now();
  const problems = await checkMarkdownFiles(files, {
    mode: args.installed ? 'installed' : 'source',
    root: args.installed ? resolve(args.installed) : ROOT,
    displayRoot: ROOT,
    run: !args['no-run'],
  });
  if (!args.installed) problems.push(...(await checkLinks(files, ROOT)));
  if (problems.length > 0) {
    console.error(formatProblems(problems));
    console.error(`\n${problems.length} problem${problems.length === 1 ? '' : 's'} in the docs' code blocks`);
    process.exit(1);
  }
  console.log(
    `docs: every code block and link of ${files.length} files checked (${Math.round((Date.now() - started) / 1000)} s)`,
  );
}
