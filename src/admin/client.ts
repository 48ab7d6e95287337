/**
 * AdminClient: sends admin messages to one node over a client-only TcpTransport (it listens on
 * nothing), authenticating exactly like a peer: the same `secret` and/or `tls` options.
 */

import type { TcpTlsOptions } from '../tcp/options.js';
import { TcpTransport } from '../tcp/transport.js';
import { asString, decodeReply, encodeMessage, WireError } from '../transport/wire.js';
import { type AdminCommand, type AdminReports, adminRequest } from './protocol.js';

export interface AdminClientOptions {
  secret?: string;
  tls?: TcpTlsOptions;
  /** Bound on each admin request, connecting included, ms. Default 5000. */
  timeoutMs?: number;
}

/** Longest admin reply accepted, characters of JSON. */
const MAX_REPLY_CHARS = 16 * 1024 * 1024;

export class AdminClient {
  private readonly transport: TcpTransport;
  private readonly timeoutMs: number;

  constructor(
    readonly address: string,
    options: AdminClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.transport = new TcpTransport({
      ...(options.secret !== undefined ? { secret: options.secret } : {}),
      ...(options.tls ? { tls: options.tls } : {}),
      connectTimeoutMs: this.timeoutMs,
      handshakeTimeoutMs: this.timeoutMs,
    });
  }

  /**
   * Sends one command. Rejects with `AuthError` (authentication failed), `TransportError` /
   * `TimeoutError` (unreachable), or `RemoteError` (the node refused or failed the command).
   */
  async call<C extends AdminCommand>(command: C, args: readonly string[] = []): Promise<AdminReports[C]> {
    const reply = await this.send(command, args);
    const json = asString(reply[0], 'admin reply', MAX_REPLY_CHARS);
    try {
      return JSON.parse(json) as AdminReports[C];
    } catch (err) {
      throw new WireError('admin reply is not JSON', { cause: err });
    }
  }

  /** Sends one admin message and returns the reply's fields as they came (the data commands carry bytes). */
  async send(command: string, args: readonly unknown[]): Promise<unknown[]> {
    return decodeReply(
      await this.transport.request(this.address, encodeMessage(adminRequest(command, args)), {
        timeoutMs: this.timeoutMs,
      }),
    );
  }

  close(): Promise<void> {
    return this.transport.stop();
  }
}
