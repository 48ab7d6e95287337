/**
 * `dynamo-engine/tcp`: the TCP (optionally TLS) transport.
 * @module dynamo-engine/tcp
 */

export type { TcpTlsOptions, TcpTransportOptions } from './options.js';
export { TCP_DEFAULTS } from './options.js';
export type { TcpTransportStats } from './transport.js';
export { TcpTransport } from './transport.js';
