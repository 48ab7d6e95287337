export type { ClaimMember } from './claim.js';
export { claim, isPowerOfTwo } from './claim.js';
export { hash64, loadHasher, partitionOf } from './hash.js';
export type { PreferenceEntry } from './preference.js';
export { PreferenceTable, preferenceList, primaries } from './preference.js';
