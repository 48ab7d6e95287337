/**
 * `dynamo-engine/level`: LevelDB storage (native module, hence its own entry point).
 * @module dynamo-engine/level
 */

export type { LevelStorageOptions, LevelStorageStats } from './storage.js';
export { LevelStorage } from './storage.js';
