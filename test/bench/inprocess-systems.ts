/**
 * What the in-process benchmarks (`cluster.ts`) run, as one entry to bundle: the engine as tsup
 * builds the package (esbuild, no `keepNames`: under tsx every closure made on the request path
 * also pays a `__name` call, about a quarter of a get's CPU, which users of the package never do)
 * and the in-process floor, bundled the same way so that both sides are compiled alike.
 */
export { DynamoNode, MemoryNetwork, MemoryStorage } from '../../src/index.js';
export { LevelStorage } from '../../src/level/index.js';
export { InProcessFloor } from './floor-inprocess.js';
