export { MemoryStorage } from './memory.js';
export type { Storage, StorageOperation, StorageRange } from './types.js';
