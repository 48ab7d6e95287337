import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'vitest';
import { LevelStorage } from '../../src/level/index.js';
import { MemoryStorage } from '../../src/storage/index.js';
import type { Storage } from '../../src/storage/types.js';
import { storageComplianceSuite } from '../../src/testing/storage-compliance.js';

describe('MemoryStorage', () => {
  storageComplianceSuite({ test, factory: () => new MemoryStorage() });
});

for (const groupCommit of [true, false]) {
  describe(`LevelStorage (groupCommit: ${groupCommit})`, () => {
    storageComplianceSuite({
      test,
      factory: async () =>
        new LevelStorage({ path: await mkdtemp(join(tmpdir(), 'dynamo-level-')), groupCommit }),
      reopen: (closed) => new LevelStorage({ path: (closed as LevelStorage).path, groupCommit }),
      teardown: async (s: Storage) => {
        await s.close();
        await rm((s as LevelStorage).path, { recursive: true, force: true });
      },
    });
  });
}
