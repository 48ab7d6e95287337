/**
 * Which partitions move where when the ring changes (pure). A node holds partition k's data when
 * it is one of k's N primaries, so a ring change from `from` to `to` means: every node in
 * prefs_to(k) but not in prefs_from(k) must receive k's data from a node that has it.
 *
 * Deterministic, so every node computes the same plan from the same gossiped state and knows
 * which streams it must send.
 */
import { PreferenceTable } from '../ring/index.js';

export interface TransferTask {
  partition: number;
  /** A current replica of the partition that streams its data. */
  source: string;
  /** The node that gains the partition. */
  target: string;
}

export function taskId(t: { partition: number; target: string }): string {
  return `${t.partition}>${t.target}`;
}

/**
 * `canSend(id)`: whether a node may be a source (not removed). A gaining node is paired with the
 * node it replaces when that one can send (the old copy moves to the new owner, as in Dynamo
 * § 4.9), else with the first old replica that can.
 */
export function transferPlan(
  from: readonly string[],
  to: readonly string[],
  n: number,
  canSend: (id: string) => boolean,
): TransferTask[] {
  if (from.length === 0) return [];
  const before = new PreferenceTable(from, n);
  const after = new PreferenceTable(to, n);
  const tasks: TransferTask[] = [];
  for (let k = 0; k < to.length; k++) {
    const old = before.primaries(k);
    const next = after.primaries(k);
    const gained = next.filter((id) => !old.includes(id));
    if (gained.length === 0) continue;
    const lost = old.filter((id) => !next.includes(id) && canSend(id));
    const others = old.filter((id) => next.includes(id) && canSend(id));
    gained.forEach((target, i) => {
      const source = lost[i] ?? others[0] ?? lost[0];
      if (source !== undefined) tasks.push({ partition: k, source, target });
    });
  }
  return tasks;
}

/** Partitions whose data `id` holds under `owners` (it is one of their N primaries). */
export function heldPartitions(owners: readonly string[], n: number, id: string): Set<number> {
  const table = new PreferenceTable(owners, n);
  const held = new Set<number>();
  for (let k = 0; k < owners.length; k++) if (table.primaries(k).includes(id)) held.add(k);
  return held;
}
