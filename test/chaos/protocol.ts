/** What the harness (`run.ts`) and its node processes (`node-process.ts`) say to each other. */
import { defaultCodec } from '../../src/values.js';

/** The set workload's merge: union of numbers, sorted (the resolver, and each add). */
export function union(a: readonly number[], b: readonly number[]): number[] {
  return [...new Set([...a, ...b])].sort((x, y) => x - y);
}

/** A stored sibling's value (msgpack, the default codec) as the set it holds. */
export function decodeSet(bytes: Uint8Array): unknown {
  return (defaultCodec as { decode(b: Uint8Array): unknown }).decode(bytes);
}

export type Request =
  /** Adds `element` to the set under `key` through `node.update()` (the resolver merges siblings). */
  | { cmd: 'update'; key: string; element: number }
  /** The same add as `node.get()` then `node.put()` with the read's context. */
  | { cmd: 'getput'; key: string; element: number }
  /** Register keys (nodes without a resolver): a read, then a put of `value` with its context. */
  | { cmd: 'write'; key: string; value: string }
  | { cmd: 'read'; key: string; r: number }
  | { cmd: 'members' }
  | { cmd: 'state' }
  | { cmd: 'primaries'; keys: string[] }
  | { cmd: 'snapshot'; keys: string[] }
  | { cmd: 'stop' };

/** One replica's object for a key, as the checkers' `ReplicaSnapshot` less the node id. */
export interface Snapshot {
  encoded: string;
  ctx: [string, number][];
  siblings: { dot: [string, number]; timestamp: number; tombstone: boolean; value?: unknown }[];
}

export interface Reply {
  ok: boolean;
  /** Error code (`DYNAMO_QUORUM`, ...) when not ok. */
  error?: string;
  message?: string;
  /** Whole operation, and its get and put halves (getput), ms. */
  ms?: number;
  getMs?: number;
  putMs?: number;
  /** A failed add that certainly wrote nothing (its read failed). */
  definite?: boolean;
  values?: unknown[];
  /** `write`: the context sent, the context the put returned, and the values the read showed. */
  context?: string;
  resultContext?: string;
  observed?: unknown[];
  members?: [string, string][];
  hintsPending?: number;
  readRepairs?: number;
  forwarded?: number;
  deadConnections?: number;
  primaries?: string[][];
  snapshots?: (Snapshot | null)[];
}
