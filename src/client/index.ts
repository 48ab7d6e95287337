export type { LatencyStats } from '../coordinator/latency-routing.js';
export type { ClientStats, DynamoClientEvents, DynamoClientOptions } from './client.js';
export { DynamoClient } from './client.js';
