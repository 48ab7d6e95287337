/**
 * `node.ready()`: waits until this node's ring is settled with the node in it, then pushes that
 * ring to every member it believes up, so a request made right after finds the same ring on the
 * replicas and coordinators it reaches (Riak's `wait-for-service`). Timers come from the clock.
 */
import { NotRunningError, TimeoutError } from '../errors.js';
import { onAbort, throwIfAborted } from '../util/abort.js';
import type { Clock } from '../util/clock.js';
import type { Membership } from './membership.js';
import { isReady } from './status.js';

/** Options of `node.ready()` (and of `waitUntilReady` on start). */
export interface ReadyOptions {
  /** Longest wait, ms; then `ready()` rejects with TimeoutError. Default `DEFAULTS.readyTimeoutMs`. */
  timeoutMs?: number;
  /** Aborting rejects `ready()` with the signal's reason. */
  signal?: AbortSignal;
}

export async function waitUntilReady(
  membership: Membership,
  self: string,
  clock: Clock,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  throwIfAborted(signal);
  let fail: (reason: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  failed.catch(() => {});
  const timer = clock.setTimeout(
    () => fail(new TimeoutError(`node ${self} not ready after ${timeoutMs} ms: ${whyNotReady(membership)}`)),
    timeoutMs,
  );
  const removeAbort = onAbort(signal, (reason) => fail(reason));
  let unwatch = () => {};
  try {
    for (;;) {
      await Promise.race([
        failed,
        new Promise<void>((resolve) => {
          const check = () => {
            if (!membership.isStopped && !isReady(membership.state, self, membership.n)) return false;
            resolve();
            return true;
          };
          if (!check()) unwatch = membership.watch(check);
        }),
      ]);
      if (membership.isStopped) throw new NotRunningError(`node ${self} stopped while waiting to be ready`);
      await Promise.race([failed, membership.syncRing()]);
      // A peer may have answered with a newer ring (a join meanwhile): wait for that one too.
      if (isReady(membership.state, self, membership.n)) return;
    }
  } finally {
    unwatch();
    timer.cancel();
    removeAbort();
  }
}

/** What the ring is still waiting for, for the timeout's message. */
export function whyNotReady(membership: Membership): string {
  const { members, ring } = membership.state;
  if (ring.owners.length === 0) return 'not in a ring yet';
  if (ring.pending)
    return `rebalance to ring ${ring.version + 1} has ${membership.openTasks().length} transfers left`;
  const changing = members.filter((m) => m.state === 'joining' || m.state === 'leaving');
  if (changing.length > 0) return `waiting for ${changing.map((m) => `${m.id} (${m.state})`).join(', ')}`;
  return 'ring not balanced over its valid members';
}
