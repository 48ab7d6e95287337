/**
 * `dynamo-engine/discovery`: seed sources for `seeds` (DNS for containers). Uses `node:dns`.
 * @module dynamo-engine/discovery
 */

export type { DnsResolver, DnsSeedsOptions, SrvRecord } from './dns.js';
export { dnsSeeds, MAX_DNS_SEEDS } from './dns.js';
