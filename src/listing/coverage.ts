/**
 * Coverage plans (riak_core's `riak_core_coverage_plan`, in spirit): which replica answers for each
 * partition when something must visit the whole key space (listing keys, export). One replica per
 * partition, and as few distinct nodes as possible, so a listing leaves the other replicas alone.
 *
 * Pure: the ring comes in as a primaries lookup and health as a predicate (`usable`), so a caller
 * recomputes the plan for the partitions left whenever a replica fails (per-partition fallback).
 */

/** The N primaries of a partition (e.g. a `PreferenceTable`). */
export interface PrimariesLookup {
  primaries(partition: number): readonly string[];
}

/**
 * For each partition in [from, to): the node that answers for it, or undefined when none of its
 * primaries is usable. Nodes are chosen greedily (set cover: the node that serves most partitions
 * still uncovered, ties to `prefer` and then to the smaller id, so the plan is deterministic);
 * each partition then goes to the chosen node that served the partition before it when it can, so
 * consecutive partitions share a node and one request covers a run of them.
 */
export function coveragePlan(
  ring: PrimariesLookup,
  from: number,
  to: number,
  usable: (id: string, partition: number) => boolean,
  prefer?: string,
): (string | undefined)[] {
  const count = Math.max(0, to - from);
  const candidates: string[][] = new Array(count);
  for (let i = 0; i < count; i++)
    candidates[i] = ring.primaries(from + i).filter((id) => usable(id, from + i));
  const chosen: string[] = [];
  const chosenSet = new Set<string>();
  const covered = new Array<boolean>(count).fill(false);
  let left = candidates.reduce((sum, c) => sum + (c.length > 0 ? 1 : 0), 0);
  while (left > 0) {
    const gain = new Map<string, number>();
    for (let i = 0; i < count; i++) {
      if (covered[i]) continue;
      for (const id of candidates[i]!) gain.set(id, (gain.get(id) ?? 0) + 1);
    }
    let best: string | undefined;
    let bestGain = 0;
    for (const [id, g] of gain) {
      const tie = g === bestGain && best !== undefined && (id === prefer || (best !== prefer && id < best));
      if (g > bestGain || tie) {
        best = id;
        bestGain = g;
      }
    }
    if (best === undefined) break;
    chosen.push(best);
    chosenSet.add(best);
    for (let i = 0; i < count; i++) {
      if (!covered[i] && candidates[i]!.includes(best)) {
        covered[i] = true;
        left--;
      }
    }
  }
  const plan: (string | undefined)[] = new Array(count);
  let previous: string | undefined;
  for (let i = 0; i < count; i++) {
    const options = candidates[i]!.filter((id) => chosenSet.has(id));
    if (options.length === 0) {
      plan[i] = undefined;
      continue;
    }
    const pick =
      previous !== undefined && options.includes(previous)
        ? previous
        : chosen.find((id) => options.includes(id))!;
    plan[i] = pick;
    previous = pick;
  }
  return plan;
}
