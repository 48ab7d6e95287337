/**
 * dynamo-engine/types: the data types' pure core (state-based CRDTs with one causal context per
 * object), for use outside a node, e.g. to merge states in your own tests or tools. On a node use
 * `node.counter(key)`, `node.set(key)`, `node.map(key)`, `node.register(key)`,
 * `node.mvRegister(key)` and `node.flag(key)`.
 * @module dynamo-engine/types
 */
export type { CausalContext, Dot } from './causal.js';
export {
  decodeState,
  decodeTypeContext,
  encodeState,
  encodeTypeContext,
  isTypedValue,
} from './codec.js';
export type { MapValue, OperationLimits, TypeValues } from './ops.js';
export {
  CounterOps,
  FlagOps,
  MapOps,
  Mutation,
  MvRegisterOps,
  opsFor,
  RegisterOps,
  SetOps,
  typeValue,
} from './ops.js';
export type { Deferred, DotFun, Entry, Field, Store, TypedState, TypeName } from './state.js';
export { emptyState, join, TYPE_NAMES } from './state.js';
export type { DataTypeOptions, TypeOperationOptions, TypeReadOptions, TypeResult } from './store.js';
export { DATA_TYPE_DEFAULTS } from './store.js';
