import { defineConfig } from 'tsup';

// One entry per public subpath (package.json "exports"); ESM + CJS with declarations.
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    discovery: 'src/discovery/index.ts',
    level: 'src/level/index.ts',
    tcp: 'src/tcp/index.ts',
    testing: 'src/testing/index.ts',
    metrics: 'src/metrics/index.ts',
    // The `dynamo-engine` bin (package.json "bin"); esbuild keeps the source's shebang.
    cli: 'src/cli/main.ts',
    types: 'src/types/index.ts',
    client: 'src/client/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: true,
  treeshake: true,
});
