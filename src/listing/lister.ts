/**
 * The coordinating side of a listing: one page at a time, from a position, over a coverage plan
 * (one replica per partition, as few nodes as possible), in partition then key order. A replica
 * that fails or refuses is left out for the partitions it was asked for, and the plan is made
 * again for what is left (per-partition fallback); a partition none of whose replicas answers
 * fails the page with a QuorumError. Nothing is kept between pages: the position is the state.
 */
import { QuorumError, type ReplicaFailure, TimeoutError } from '../errors.js';
import { reasonOf } from '../transport/rpc.js';
import { throwIfAborted } from '../util/abort.js';
import type { Clock } from '../util/clock.js';
import { coveragePlan, type PrimariesLookup } from './coverage.js';
import type { ListPosition } from './cursor.js';
import {
  type ListEntry,
  type ListMode,
  type ListRequest,
  MAX_LIST_PARTITIONS,
  type ScanResult,
} from './scan.js';

export interface ListerDeps {
  /** This node's id (preferred on ties: a local scan costs no message); a client's id otherwise. */
  self: string;
  partitions: number;
  clock: Clock;
  /** The current ring: its owners array (one per ring version), distinct members, and primaries. */
  ring(): ListingRing;
  isUp(id: string): boolean;
  /** Runs one List request at `id` (locally when it is this node). */
  request(
    id: string,
    request: ListRequest,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<ScanResult>;
  /** Longest one List request may take, ms. */
  requestTimeoutMs: number;
}

export interface ListPage {
  entries: ListEntry[];
  /** Where the next page starts; null: the listing is complete. */
  next: ListPosition | null;
}

export interface ListingRing extends PrimariesLookup {
  owners: readonly string[];
  /** The distinct owners. */
  members: readonly string[];
}

export class Lister {
  private cached: { owners: readonly string[]; health: string; plan: (string | undefined)[] } | undefined;

  constructor(private readonly deps: ListerDeps) {}

  /**
   * Up to `limit` entries (and about `maxBytes`) after `from`. Fewer only at the end of the key
   * space, or when the page's `timeoutMs` ran out after at least one entry.
   */
  async page(
    mode: ListMode,
    from: ListPosition,
    limit: number,
    maxBytes: number,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<ListPage> {
    const d = this.deps;
    const deadline = d.clock.now() + timeoutMs;
    const failed = new Map<number, Set<string>>();
    const failures: ReplicaFailure[] = [];
    const entries: ListEntry[] = [];
    let bytes = 0;
    let position = from;
    while (entries.length < limit && bytes < maxBytes && position.partition < d.partitions) {
      throwIfAborted(signal);
      const left = deadline - d.clock.now();
      if (left <= 0) {
        if (entries.length > 0) break;
        throw new QuorumError(operationOf(mode), 1, 0, failures, {
          cause: new TimeoutError(`${operationOf(mode)} page timed out`),
        });
      }
      const run = this.nextRun(position.partition, failed);
      if (run === undefined) {
        throw new QuorumError(operationOf(mode), 1, 0, failures, {
          reason: `no replica of partition ${position.partition} answered`,
        });
      }
      const request: ListRequest = {
        partitions: run.partitions,
        after: position.after,
        maxKeys: limit - entries.length,
        maxBytes: maxBytes - bytes,
        mode,
      };
      let result: ScanResult;
      try {
        result = await d.request(run.node, request, Math.min(d.requestTimeoutMs, left), signal);
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        failures.push({ node: run.node, reason: reasonOf(err) });
        for (const p of run.partitions) {
          const ids = failed.get(p) ?? new Set<string>();
          ids.add(run.node);
          failed.set(p, ids);
        }
        continue;
      }
      for (const e of result.entries) {
        entries.push(e);
        bytes += e.key.byteLength + (e.object?.byteLength ?? 0);
      }
      position = result.stop ?? { partition: run.partitions[run.partitions.length - 1]! + 1, after: null };
    }
    return { entries, next: position.partition >= d.partitions ? null : position };
  }

  /**
   * The node for `partition` and the run of partitions after it the plan gives the same node. The
   * plan covers the whole ring (so every page of a listing uses the same few nodes) and is kept
   * while the ring and the health of its nodes stay the same and nothing failed. Nodes believed
   * down are left out unless no other replica is left (down is only this node's opinion).
   */
  private nextRun(
    from: number,
    failed: ReadonlyMap<number, ReadonlySet<string>>,
  ): { node: string; partitions: number[] } | undefined {
    const d = this.deps;
    const ring = d.ring();
    const untried = (id: string, p: number) => failed.get(p)?.has(id) !== true;
    const healthy = (id: string) => id === d.self || d.isUp(id);
    let plan: readonly (string | undefined)[];
    if (failed.size === 0) {
      const health = ring.members.map(healthy).join();
      if (this.cached?.owners !== ring.owners || this.cached.health !== health) {
        this.cached = {
          owners: ring.owners,
          health,
          plan: coveragePlan(ring, 0, d.partitions, (id) => healthy(id), d.self),
        };
      }
      plan = this.cached.plan;
    } else plan = coveragePlan(ring, 0, d.partitions, (id, p) => untried(id, p) && healthy(id), d.self);
    if (plan[from] === undefined) plan = coveragePlan(ring, 0, d.partitions, untried, d.self);
    const node = plan[from];
    if (node === undefined) return undefined;
    const partitions = [from];
    for (
      let p = from + 1;
      p < d.partitions && plan[p] === node && partitions.length < MAX_LIST_PARTITIONS;
      p++
    ) {
      partitions.push(p);
    }
    return { node, partitions };
  }
}

function operationOf(mode: ListMode): 'keys' | 'export' {
  return mode === 'keys' ? 'keys' : 'export';
}
