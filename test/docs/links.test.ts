/**
 * The docs' link checker (test/docs/links.ts): a relative link to a file that does not exist, or
 * to a heading a page does not have, is reported at its line; links in code, absolute URLs and
 * links that resolve pass.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anchorOf, checkLinks } from './links.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'links-'));
  await mkdir(join(dir, 'docs'));
  await writeFile(
    join(dir, 'docs', 'target.md'),
    '# Target\n\n## What a context means\n\n```text\n## not a heading\n```\n\n## `DYNAMO_QUORUM` — `QuorumError`\n',
  );
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('the docs link checker', () => {
  it('makes GitHub anchors', () => {
    expect(anchorOf('What a context means')).toBe('what-a-context-means');
    expect(anchorOf('`DYNAMO_QUORUM` — `QuorumError`')).toBe('dynamo_quorum--quorumerror');
    expect(anchorOf('Failures, joins, anti-entropy')).toBe('failures-joins-anti-entropy');
  });

  it('passes links that resolve and skips code and URLs', async () => {
    const page = join(dir, 'good.md');
    await writeFile(
      page,
      [
        '# Good',
        'See [target](docs/target.md), [its section](docs/target.md#what-a-context-means),',
        '[errors](docs/target.md#dynamo_quorum--quorumerror), [here](#good) and [npm](https://www.npmjs.com/).',
        '`[not a link](missing.md)`',
        '```ts',
        '// [nor this](missing.md#x)',
        '```',
      ].join('\n'),
    );
    expect(await checkLinks([page], dir)).toEqual([]);
  });

  it('reports a missing file and a missing anchor at their lines', async () => {
    const page = join(dir, 'bad.md');
    await writeFile(
      page,
      [
        '# Bad',
        '',
        'A [gone page](docs/gone.md).',
        'A [heading that is only in code](docs/target.md#not-a-heading) and [a typo](#bda).',
      ].join('\n'),
    );
    expect((await checkLinks([page], dir)).map((p) => `${p.file}:${p.line}: ${p.message}`)).toEqual([
      'bad.md:3: link to docs/gone.md: no such file',
      'bad.md:4: link to docs/target.md#not-a-heading: no heading with that anchor',
      'bad.md:4: link to #bda: no heading with that anchor',
    ]);
  });
});
