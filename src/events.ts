import type { JoinAttempt } from './membership/bootstrap.js';
import type { NodeStatus } from './membership/types.js';

/** Key as given by the caller (string or bytes). */
export type Key = string | Uint8Array;

/** Every event carries one payload object. Listeners run synchronously; keep them cheap. */
export interface DynamoNodeEvents {
  /** The local failure detector found a member up again. */
  'member:up': (e: { id: string; address: string }) => void;
  /** The local failure detector marked a member down (`reason`: what failed). */
  'member:down': (e: { id: string; address: string; reason: string }) => void;
  /** A member became valid in the ring. */
  'member:join': (e: { id: string; address: string }) => void;
  /** A member was removed (it left, or was removed). */
  'member:leave': (e: { id: string }) => void;
  /** A new ring version arrived (`owners`: partition → member id). */
  'ring:change': (e: { version: number; owners: readonly string[] }) => void;
  /**
   * The current ring leaves `violations` partitions whose N replicas span fewer than `required`
   * zones (the zones' layout cannot meet the guarantee; see `ringStatus().zones`). Emitted (and
   * logged) whenever the ring or the members' zones change and violations remain.
   */
  'zone:violation': (e: { version: number; violations: number; required: number; zones: number }) => void;
  /** This node stored a hint for `target`, which was unreachable. */
  'hint:stored': (e: { key: Key; target: string }) => void;
  /** `target` acknowledged `count` hints (deleted here). */
  'hint:delivered': (e: { target: string; count: number }) => void;
  /** Read repair sent the merged object of `key` to stale replicas. */
  'repair:read': (e: { key: Key; replicas: string[] }) => void;
  /** An anti-entropy exchange of one partition with `peer` finished. */
  'sync:complete': (e: {
    partition: number;
    peer: string;
    keysCompared: number;
    keysRepaired: number;
    bytes: number;
  }) => void;
  /** Progress of a partition streamed to `to` (on the sending node). */
  'handoff:progress': (e: { partition: number; to: string; keysSent: number; total: number }) => void;
  /** A client get / put / delete on this node finished (`ok`: it succeeded), after `durationMs`. */
  'request:complete': (e: { op: 'get' | 'put' | 'delete'; durationMs: number; ok: boolean }) => void;
  /** A read found more than one concurrent sibling. */
  conflict: (e: { key: Key; siblings: number }) => void;
  /** The node's lifecycle status changed. */
  status: (e: { status: NodeStatus }) => void;
  /**
   * One round of asking the seeds to let this node in (on start, `join()`, and a restarted node's
   * rejoin): every seed asked and what it answered. Listen from the start with the `on` option.
   */
  'join:attempt': (e: JoinAttempt) => void;
  /** A background task failed (also logged). */
  error: (e: { error: Error; context: string }) => void;
}

/** Every event name (the compiler keeps this complete): what the `on` option accepts. */
export const EVENT_NAMES: Record<keyof DynamoNodeEvents, true> = {
  'member:up': true,
  'member:down': true,
  'member:join': true,
  'member:leave': true,
  'ring:change': true,
  'zone:violation': true,
  'hint:stored': true,
  'hint:delivered': true,
  'repair:read': true,
  'sync:complete': true,
  'handoff:progress': true,
  'request:complete': true,
  conflict: true,
  status: true,
  'join:attempt': true,
  error: true,
};
