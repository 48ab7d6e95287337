export type { ClaimMember } from './claim.js';
export { claim, claimShares, isPowerOfTwo } from './claim.js';
export { hash64, loadHasher, partitionOf } from './hash.js';
export type { PreferenceEntry } from './preference.js';
export { PreferenceTable, preferenceList, primaries } from './preference.js';
export type { ZoneReport } from './zones.js';
export { zoneReport, zonesMatter } from './zones.js';
