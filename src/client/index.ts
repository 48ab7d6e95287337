/**
 * `dynamo-engine/client`: a process that reads and writes the cluster without storing anything
 * (client-driven coordination, Dynamo § 6.4).
 * @module dynamo-engine/client
 */

export type { LatencyStats } from '../coordinator/latency-routing.js';
export type { ClientStats, DynamoClientEvents, DynamoClientOptions } from './client.js';
export { DynamoClient } from './client.js';
