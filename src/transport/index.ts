export type { LatencyRange, MemoryNetworkCounters, MemoryNetworkOptions } from './memory.js';
export { MemoryNetwork } from './memory.js';
export type { RequestHandler, RequestOptions, Transport, TransportByteStats } from './types.js';
