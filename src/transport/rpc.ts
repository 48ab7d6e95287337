/**
 * Request/reply between nodes on top of a Transport: encodes messages, decodes replies, applies
 * timeouts, and tells the failure detector what it learnt (a timeout or a broken connection
 * marks the peer down; any reply, even an error, proves it is up).
 */
import { TimeoutError, TransportError } from '../errors.js';
import type { Transport } from './types.js';
import { decodeReply, encodeMessage, RemoteError } from './wire.js';

export interface RpcHealth {
  reportFailure(id: string, reason: string): void;
  reportSuccess(id: string): void;
}

export class Rpc {
  constructor(
    private readonly transport: Transport,
    private readonly addressOf: (id: string) => string | undefined,
    private readonly health: RpcHealth,
  ) {}

  /** Sends to a member by id. Rejects with TransportError when the id has no known address. */
  async call(
    id: string,
    message: readonly unknown[],
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<unknown[]> {
    const address = this.addressOf(id);
    if (address === undefined) throw new TransportError(`no address known for member ${id}`);
    try {
      const reply = await this.transport.request(address, encodeMessage(message), { timeoutMs, signal });
      this.health.reportSuccess(id);
      return decodeReply(reply);
    } catch (err) {
      if (err instanceof RemoteError) this.health.reportSuccess(id);
      else if (err instanceof TimeoutError || err instanceof TransportError) {
        this.health.reportFailure(id, err.code);
      }
      throw err;
    }
  }

  /** Sends to an address whose member id is not known yet (seeds). */
  async callAddress(address: string, message: readonly unknown[], timeoutMs: number): Promise<unknown[]> {
    const reply = await this.transport.request(address, encodeMessage(message), { timeoutMs });
    return decodeReply(reply);
  }
}

/** Short reason for a replica failure, for QuorumError.failures. */
export function reasonOf(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') {
    return err instanceof RemoteError ? `${err.code}: ${err.message}` : err.code;
  }
  return err instanceof Error ? err.message : String(err);
}
