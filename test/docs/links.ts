/**
 * The docs' links, checked: every relative link of README.md and docs/ names a file that exists,
 * and a `#fragment` into a markdown page names one of its headings (GitHub's anchors: lower case,
 * punctuation dropped, spaces as hyphens). Links inside code blocks and absolute URLs are left
 * alone.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import type { Problem } from './snippets.js';

const FENCED = /^(\s*)(`{3,}|~{3,})[^\n]*\n[\s\S]*?^\1\2[ \t]*$/gm;
const INLINE_CODE = /`[^`\n]*`/g;
const LINK = /\]\(([^)\s]+)\)/g;

/** GitHub's anchor for a heading. */
export function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\- _]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a markdown text's headings (outside code blocks). */
export function anchorsOf(markdown: string): Set<string> {
  const text = markdown.replace(FENCED, '');
  return new Set([...text.matchAll(/^#{1,6} +(.+?) *#*$/gm)].map((m) => anchorOf(m[1]!)));
}

/** Problems with the links of `files` (absolute paths); `root` for display. */
export async function checkLinks(files: readonly string[], root: string): Promise<Problem[]> {
  const texts = new Map<string, string>();
  const load = async (file: string) => {
    let text = texts.get(file);
    if (text === undefined) {
      text = await readFile(file, 'utf8');
      texts.set(file, text);
    }
    return text;
  };
  const problems: Problem[] = [];
  for (const file of files) {
    const markdown = await load(file);
    // Blank out code, keeping line numbers, so that a link's line is its line in the file.
    const prose = markdown
      .replace(FENCED, (block) => block.replace(/[^\n]/g, ' '))
      .replace(INLINE_CODE, (code) => ' '.repeat(code.length));
    for (const match of prose.matchAll(LINK)) {
      const link = match[1]!;
      if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // https:, mailto:, …
      const line = prose.slice(0, match.index).split('\n').length;
      const at = { file: relative(root, file), line };
      const [path, fragment] = link.split('#', 2) as [string, string | undefined];
      const target = path === '' ? file : join(dirname(file), decodeURIComponent(path));
      if (!existsSync(target)) {
        problems.push({ ...at, message: `link to ${link}: no such file` });
        continue;
      }
      if (fragment && target.endsWith('.md') && !anchorsOf(await load(target)).has(fragment)) {
        problems.push({ ...at, message: `link to ${link}: no heading with that anchor` });
      }
    }
  }
  return problems;
}
