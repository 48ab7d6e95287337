import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = fileURLToPath(new URL('./src/', import.meta.url));

export default defineConfig({
  // The package's name means its source here, as tsconfig.json's "paths" says for tsc and tsx.
  resolve: {
    alias: [
      { find: /^dynamo-engine$/, replacement: `${src}index.ts` },
      { find: /^dynamo-engine\/([a-z-]+)$/, replacement: `${src}$1/index.ts` },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
