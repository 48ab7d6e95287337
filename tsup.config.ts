import { defineConfig } from 'tsup';

// One entry per public subpath (package.json "exports"); ESM + CJS with declarations.
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    level: 'src/level/index.ts',
    tcp: 'src/tcp/index.ts',
    testing: 'src/testing/index.ts',
    types: 'src/types/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: true,
  treeshake: true,
});
