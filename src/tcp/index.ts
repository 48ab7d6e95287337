/** `dynamo-engine/tcp`: the TCP (optionally TLS) transport. */

export type { TcpTlsOptions, TcpTransportOptions } from './options.js';
export { TCP_DEFAULTS } from './options.js';
export type { TcpTransportStats } from './transport.js';
export { TcpTransport } from './transport.js';
