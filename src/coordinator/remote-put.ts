/**
 * A put coordinated by a replica of the key on behalf of a caller that cannot coordinate it (a
 * DynamoClient, which owns no dots: the new version depends on a replica's local object). The
 * candidates are asked in turn with one operation id, so copies stored by two coordinators (the
 * first timed out but applied the put) are one write, and a network duplicate is answered once.
 */
import { DynamoError, QuorumError } from '../errors.js';
import type { PreferenceEntry } from '../ring/index.js';
import type { Rpc } from '../transport/rpc.js';
import { asString, MessageType, RemoteError, rebuildRemoteError } from '../transport/wire.js';

export interface RemotePut {
  key: Uint8Array;
  value: Uint8Array | null;
  context: string;
  w: number;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  /** Operation id (see `newOpId`): the same for every candidate. */
  op: string;
  /** The put's `ttlMs` (the coordinator makes the expiry). */
  ttlMs: number | undefined;
  /** Acknowledgements must span this many zones (undefined: no zone condition). */
  minZones?: number;
}

/**
 * Asks each candidate in order to coordinate; resolves with the new context and who coordinated.
 * A candidate that fails with a transport-level reason (unreachable, timed out, stopped, not a
 * replica of the key in its ring) is skipped and reported to `onSkipped`; any other failure of the
 * coordinated put (QuorumError, LimitError, a bad context) is the put's outcome.
 */
export async function putThroughReplicas(
  rpc: Rpc,
  candidates: readonly PreferenceEntry[],
  put: RemotePut,
  onSkipped: (id: string, error: unknown) => void,
): Promise<{ context: string; coordinator: string }> {
  const operation = put.value === null ? 'delete' : 'put';
  const failures: { node: string; reason: string }[] = [];
  // Eighth field the TTL (null: none), ninth the zone condition (absent: none).
  const message: unknown[] = [
    MessageType.CoordinatePut,
    put.key,
    put.value,
    put.context,
    put.w,
    put.timeoutMs,
    put.op,
    put.ttlMs ?? null,
  ];
  if (put.minZones !== undefined) message.push(put.minZones);
  for (const entry of candidates) {
    try {
      const reply = await rpc.call(entry.id, message, put.timeoutMs, put.signal);
      return { context: asString(reply[0], 'context'), coordinator: entry.id };
    } catch (err) {
      if (
        err instanceof RemoteError &&
        err.code !== 'DYNAMO_TRANSPORT' &&
        err.code !== 'DYNAMO_NOT_RUNNING'
      ) {
        throw rebuildRemoteError(err, operation);
      }
      if (put.signal?.aborted) throw put.signal.reason;
      failures.push({ node: entry.id, reason: err instanceof DynamoError ? err.code : String(err) });
      onSkipped(entry.id, err);
    }
  }
  throw new QuorumError(operation, put.w, 0, failures);
}
