/**
 * dynamo-engine: an embeddable implementation of Amazon's Dynamo.
 * @module dynamo-engine
 */

export type { AntiEntropyStats } from './anti-entropy/anti-entropy.js';
export type { DynamoErrorCode, ReplicaFailure } from './errors.js';
export {
  AuthError,
  CorruptValueError,
  DynamoError,
  IdInUseError,
  InvalidContextError,
  LimitError,
  NotRunningError,
  QuorumError,
  StorageError,
  TimeoutError,
  TransportError,
  TypeMismatchError,
} from './errors.js';
export type { DynamoNodeEvents, Key } from './events.js';
export type { DecodeExportOptions, ExportHeader, ExportSummary } from './export/format.js';
export { decodeExport, EXPORT_FORMAT_VERSION, ExportEncoder } from './export/format.js';
export type { ImportOptions, ImportResult } from './export/import.js';
export type {
  EntriesOptions,
  Entry,
  ExportPage,
  ExportPageOptions,
  ExportRecord,
  KeyEncoding,
  KeysPage,
  ListKeysOptions,
  ScanOptions,
} from './listing/listing.js';
export type { JoinAttempt, SeedAnswer } from './membership/bootstrap.js';
export type { SeedSource } from './membership/membership.js';
export type { ReadyOptions } from './membership/ready.js';
export type { RingStatus, TransferView, ZoneStatus, ZoneView } from './membership/status.js';
export type { MemberView, NodeStatus } from './membership/types.js';
export { DynamoNode } from './node.js';
export type {
  GetOptions,
  GetResult,
  PreferenceListEntry,
  PutOptions,
  PutResult,
  UpdateFunction,
  UpdateResult,
} from './operation-types.js';
export type {
  AntiEntropyOptions,
  Codec,
  DynamoNodeOptions,
  HintedHandoffOptions,
  LimitOptions,
  Logger,
  NodeListeners,
  QuorumOptions,
  Resolver,
  ResolverInfo,
  StartOptions,
} from './options.js';
export { DEFAULTS } from './options.js';
export { resolvers } from './resolvers.js';
export type { NodeStats, OperationStats } from './stats.js';
export { MemoryStorage } from './storage/memory.js';
export type { Storage, StorageOperation, StorageRange } from './storage/types.js';
export type { LatencyRange, MemoryNetworkCounters, MemoryNetworkOptions } from './transport/memory.js';
export { MemoryNetwork } from './transport/memory.js';
export type { RequestHandler, RequestOptions, Transport, TransportByteStats } from './transport/types.js';
export {
  CounterHandle,
  FlagHandle,
  MapHandle,
  MvRegisterHandle,
  RegisterHandle,
  SetHandle,
} from './types/handles.js';
export type {
  CounterOps,
  FlagOps,
  MapOps,
  MapValue,
  MvRegisterOps,
  RegisterOps,
  SetOps,
  TypeValues,
} from './types/ops.js';
export type { TypeName } from './types/state.js';
export type { DataTypeOptions, TypeOperationOptions, TypeReadOptions, TypeResult } from './types/store.js';
export { DATA_TYPE_DEFAULTS } from './types/store.js';
export type { Clock, Timer } from './util/clock.js';
export { systemClock, VirtualClock } from './util/clock.js';
export type { Random } from './util/random.js';
export { seededRandom } from './util/random.js';
export { MAX_TTL_MS } from './versioning/object.js';
