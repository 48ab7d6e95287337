/**
 * `dynamo-engine/testing`: tools for testing applications (and implementations) against the engine.
 * @module dynamo-engine/testing
 */

export {
  type CheckOptions,
  type CheckProblem,
  type CheckReport,
  type CheckResult,
  checkAll,
  checkCausal,
  checkConvergence,
  checkCounters,
  checkExpiredReads,
  checkFlags,
  checkListing,
  checkLostAdds,
  checkMvRegisters,
  checkNoResurrection,
  checkOrSets,
  checkSiblingAntichain,
  checkSiblingBounds,
  checkUnexpectedValues,
  type FinalKeyState,
  type FinalState,
  problemKeys,
  type ReplicaSibling,
  type ReplicaSnapshot,
} from './checkers.js';
export { type Cluster, type ClusterOptions, createCluster, drive } from './cluster.js';
export { SkewedClock } from './sim-clock.js';
export {
  type Completion,
  type ExcerptOptions,
  formatContext,
  formatEvent,
  type HistoryEvent,
  HistoryRecorder,
  historyExcerpt,
  type NemesisEvent,
  type Operation,
  type OperationEvent,
  type OperationFunction,
  operations,
} from './sim-history.js';
export { FAULT_KINDS, type FaultKind, type NemesisOptions } from './sim-nemesis.js';
export {
  formatSimulationReport,
  type ResolvedSimulationOptions,
  runSimulation,
  SET_WORKLOADS,
  Simulation,
  type SimulationOptions,
  type SimulationResult,
  type SimulationStats,
  type SimValue,
  type SimWorkload,
} from './simulation.js';
export {
  type StorageComplianceOptions,
  storageComplianceSuite,
} from './storage-compliance.js';
export {
  type TransportComplianceOptions,
  type TransportHarness,
  transportComplianceSuite,
} from './transport-compliance.js';
