/**
 * The docs' snippet checker (test/docs/snippets.ts) catches what it is there to catch: a block
 * that does not compile under --strict, an import of a path the package does not export, a
 * runnable block whose `→` comment is false or cannot be checked, a shell block that does not
 * parse, a fence with no language. And it passes a page whose blocks are right.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type Block, checkBlocks, extractBlocks } from './snippets.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

async function check(markdown: string, name: string) {
  const blocks: Block[] = extractBlocks(markdown, 'page.md');
  const problems = await checkBlocks(blocks, {
    mode: 'source',
    root: ROOT,
    workDir: join(ROOT, '.snippets', `test-${name}`),
    runTimeoutMs: 60_000,
  });
  return problems.map((p) => `${p.file}:${p.line}: ${p.message}`);
}

const fence = (info: string, code: string) => `\`\`\`${info}\n${code}\n\`\`\`\n`;

describe('the docs snippet checker', () => {
  it('finds fenced blocks with their language, attributes and first code line', () => {
    const blocks = extractBlocks(
      `# T\n\n${fence('ts run', 'const a = 1;')}\ntext\n${fence('sh', 'ls')}`,
      'x.md',
    );
    expect(blocks.map((b) => [b.line, b.lang, [...b.attrs], b.code])).toEqual([
      [4, 'ts', ['run'], 'const a = 1;'],
      [9, 'sh', [], 'ls'],
    ]);
  });

  it('passes blocks that compile, runnable blocks whose claims hold, and continued blocks', async () => {
    const page = [
      '# A page',
      fence(
        'ts',
        [
          "import { MemoryNetwork, MemoryStorage, DynamoNode } from 'dynamo-engine';",
          'const net = new MemoryNetwork();',
          'const node = await DynamoNode.start<string>({',
          "  id: 'a', transport: net.connect('a'), storage: new MemoryStorage(), quorum: { n: 1, r: 1, w: 1 },",
          '});',
          "await node.put('k', 'v');",
        ].join('\n'),
      ),
      'Then:',
      fence(
        'ts run continue',
        [
          "const { values } = await node.get('k'); // → { values: ['v'], context: (await node.get('k')).context }",
          "console.log(values); // → ['v']",
          'values.length; // → 1',
          'await node.stop();',
        ].join('\n'),
      ),
      fence('sh', 'npm install dynamo-engine\nnpx tsx app.ts &\nwait'),
      fence('json', '{ "a": 1 }'),
      fence('text', 'a -> b'),
    ].join('\n');
    expect(await check(page, 'good')).toEqual([]);
  });

  it('reports each broken block at its markdown line: --strict errors, an unexported path, false or uncheckable claims, a failing run, shell that does not parse, a fence without a language', async () => {
    const page = [
      '# Broken',
      fence(
        'ts',
        "import type { Storage } from 'dynamo-engine';\nconst get = (key) => key;\nexport const s: Storage | undefined = undefined;",
      ),
      fence('ts', "import { dataKey } from 'dynamo-engine/replica';\nconsole.log(dataKey);"),
      fence('ts run', "const items = ['lamp', 'pen'];\nconsole.log(items); // → ['book', 'lamp', 'mug']"),
      fence('ts run', "const items = ['a'];\nfor (const i of items) { void i; } // → 'a'"),
      fence('ts run', "throw new Error('boom');"),
      fence('sh', 'npm install\nif [ -f x ]; then echo'),
      fence('', 'plain'),
    ].join('\n');
    const problems = await check(page, 'broken');
    expect(problems).toEqual([
      'page.md:29: sh: syntax error: unexpected end of file',
      'page.md:33: a code block without a language (use `text` for output and diagrams)',
      "page.md:4: TS7006: Parameter 'key' implicitly has an 'any' type.",
      expect.stringMatching(/^page\.md:9: TS2307: Cannot find module 'dynamo-engine\/replica'/),
      "page.md:15: the comment says [ 'book', 'lamp', 'mug' ] but the value is [ 'lamp', 'pen' ]",
      expect.stringMatching(/^page\.md:20: a `→` claim must end/),
      expect.stringMatching(/^page\.md:24: the runnable block exited with code 1:[\s\S]*boom/),
    ]);
  });
});
