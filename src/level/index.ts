/** `dynamo-engine/level`: LevelDB storage (native module, hence its own entry point). */

export type { LevelStorageOptions, LevelStorageStats } from './storage.js';
export { LevelStorage } from './storage.js';
