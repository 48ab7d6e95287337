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

/** Partitions a plan is made for at once (the rest waits for the next plan). */
const PLAN_WINDOW = 256;

export interface ListerDeps {
  /** This node's id (preferred on ties: a local scan costs no message); a client's id otherwise. */
  self: string;
  partitions: number;
  clock: Clock;
  /** The current ring's primaries. */
  ring(): PrimariesLookup;
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

export class Lister {
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
   * The node for `partition` and the run of partitions after it the plan gives the same node. Nodes
   * believed down are left out unless no other replica is left (down is only this node's opinion).
   */
  private nextRun(
    from: number,
    failed: ReadonlyMap<number, ReadonlySet<string>>,
  ): { node: string; partitions: number[] } | undefined {
    const d = this.deps;
    const ring = d.ring();
    const to = Math.min(d.partitions, from + PLAN_WINDOW);
    const untried = (id: string, p: number) => failed.get(p)?.has(id) !== true;
    let plan = coveragePlan(
      ring,
      from,
      to,
      (id, p) => untried(id, p) && (id === d.self || d.isUp(id)),
      d.self,
    );
    if (plan[0] === undefined) plan = coveragePlan(ring, from, to, untried, d.self);
    const node = plan[0];
    if (node === undefined) return undefined;
    const partitions = [from];
    for (let i = 1; i < plan.length && plan[i] === node && partitions.length < MAX_LIST_PARTITIONS; i++) {
      partitions.push(from + i);
    }
    return { node, partitions };
  }
}

function operationOf(mode: ListMode): 'keys' | 'export' {
  return mode === 'keys' ? 'keys' : 'export';
}
