/** Dotted version vectors, siblings and context encoding: pure, no I/O, no clock. */

export {
  CheckedObject,
  CorruptObjectError,
  checkObject,
  DEFAULT_MAX_CONTEXT_ENTRIES,
  decodeContext,
  decodeObject,
  encodeContext,
  encodeObject,
  fingerprintInput,
  MAX_CONTEXT_CHARS,
  MAX_OP_CHARS,
} from './codec.js';
export type { Context, DotCloud } from './context.js';
export {
  asContext,
  coversDot,
  descendsContext,
  emptyContext,
  joinContexts,
  MAX_CLOUD_DOTS,
} from './context.js';
export type { Sibling, VersionedObject } from './object.js';
export {
  applied,
  compareDots,
  contextOf,
  coversSibling,
  deathTime,
  expire,
  isDead,
  isDeadAt,
  isDeleted,
  isOpKey,
  MAX_OP_ENTRIES,
  MAX_TTL_MS,
  opKey,
  prune,
  sync,
  update,
  writtenContext,
} from './object.js';
export type { Dot, Ordering, VersionVector } from './vector.js';
export { compare, compareActors, covers, descends, mergeVectors } from './vector.js';
