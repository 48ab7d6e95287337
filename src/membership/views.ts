/** What DynamoNode and DynamoClient report about the cluster state they know, pure. */
import type { ClusterState, MemberView } from './types.js';

/** `members()`: every member not removed, with its partition count and local up/down opinion. */
export function memberViews(state: ClusterState, isUp: (id: string) => boolean): MemberView[] {
  const owned = new Map<string, number>();
  for (const o of state.ring.owners) owned.set(o, (owned.get(o) ?? 0) + 1);
  return state.members
    .filter((m) => m.state !== 'removed')
    .map((m) => ({
      id: m.id,
      address: m.address,
      status:
        m.state === 'joining' || (m.state === 'valid' && !owned.has(m.id))
          ? 'joining'
          : m.state === 'leaving'
            ? 'leaving'
            : isUp(m.id)
              ? 'up'
              : 'down',
      weight: m.weight,
      partitions: owned.get(m.id) ?? 0,
    }));
}

/** The events a change of state means: members that joined or left, a new ring. */
export type MembershipEvent =
  | { name: 'member:join'; id: string; address: string }
  | { name: 'member:leave'; id: string }
  | { name: 'ring:change'; version: number; owners: readonly string[] };

export function membershipEvents(before: ClusterState, after: ClusterState, self: string): MembershipEvent[] {
  const events: MembershipEvent[] = [];
  const was = new Map(before.members.map((m) => [m.id, m.state]));
  for (const m of after.members) {
    if (m.state === 'valid' && was.get(m.id) !== 'valid' && m.id !== self) {
      events.push({ name: 'member:join', id: m.id, address: m.address });
    }
    if (m.state === 'removed' && was.get(m.id) !== 'removed') events.push({ name: 'member:leave', id: m.id });
  }
  if (after.ring.version !== before.ring.version) {
    events.push({ name: 'ring:change', version: after.ring.version, owners: after.ring.owners });
  }
  return events;
}
