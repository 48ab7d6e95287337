/** `dynamo-engine/tcp`: the TCP (optionally TLS) transport. */
export { TcpTransport } from './transport.js';
export type { TcpTransportStats } from './transport.js';
export type { TcpTlsOptions, TcpTransportOptions } from './options.js';
export { TCP_DEFAULTS } from './options.js';
