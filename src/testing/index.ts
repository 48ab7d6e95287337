/** dynamo-engine/testing: tools for testing applications (and implementations) against the engine. */
export { type Cluster, type ClusterOptions, createCluster } from './cluster.js';
export {
  type StorageComplianceOptions,
  storageComplianceSuite,
} from './storage-compliance.js';
export {
  type TransportComplianceOptions,
  type TransportHarness,
  transportComplianceSuite,
} from './transport-compliance.js';
