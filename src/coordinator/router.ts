/**
 * Where this node sends the requests for a partition: the primaries of the ring it knows, replaced
 * by fallbacks where it believes them down (sloppy quorum), plus the nodes gaining the partition
 * while a rebalance moves it. While every member is up a partition's routing is built once per
 * ring and reused, so the request path allocates nothing here.
 */
import { type PreferenceEntry, PreferenceTable, preferenceList } from '../ring/index.js';
import type { Routing } from './coordinator.js';

export interface RouterDeps {
  self: string;
  /** Replicas per key. */
  n: number;
  sloppyQuorum: boolean;
  /** The ring this node knows, and the one a rebalance is moving to. */
  ring: () => { owners: readonly string[]; pending: { owners: readonly string[] } | null };
  /** This node's failure detector. */
  detector: { isUp(id: string): boolean; readonly downCount: number };
  /** Members' zones, when any member has one (fallbacks then keep writes spread over zones). */
  zoneOf?: () => ((id: string) => string | undefined) | undefined;
}

export class Router {
  private readonly tables = new WeakMap<readonly string[], PreferenceTable>();
  private cache: { owners: readonly string[] | undefined; routes: (Routing | undefined)[] } = {
    owners: undefined,
    routes: [],
  };

  constructor(private readonly deps: RouterDeps) {}

  /**
   * Cached primaries while every node is up. During a rebalance, writes also go to the partition's
   * gaining nodes (`extra`, not counted for W), so nothing written while it streams is missing when
   * ownership switches.
   */
  route(partition: number): Routing {
    const routing = this.baseRoute(partition);
    const pending = this.deps.ring().pending;
    if (!pending) return routing;
    const listed = new Set(routing.list.map((e) => e.id));
    const extra = this.primaries(pending.owners, partition)
      .filter((id) => !listed.has(id))
      .map((id) => ({ id, kind: 'primary' as const }));
    return extra.length > 0 ? { ...routing, extra } : routing;
  }

  /** True when this node is a replica of the partition in the current ring or the one it moves to. */
  holds(partition: number): boolean {
    const { owners, pending } = this.deps.ring();
    const self = this.deps.self;
    if (this.primaries(owners, partition).includes(self)) return true;
    return pending !== null && this.primaries(pending.owners, partition).includes(self);
  }

  /** The partition's N primaries in `owners` (memoised per ring). */
  primaries(owners: readonly string[], partition: number): readonly string[] {
    let table = this.tables.get(owners);
    if (!table) {
      table = new PreferenceTable(owners, this.deps.n);
      this.tables.set(owners, table);
    }
    return table.primaries(partition);
  }

  private baseRoute(partition: number): Routing {
    const { self, n, sloppyQuorum, detector } = this.deps;
    const owners = this.deps.ring().owners;
    if (this.cache.owners !== owners) this.cache = { owners, routes: new Array(owners.length) };
    if (detector.downCount === 0) {
      let routing = this.cache.routes[partition];
      if (!routing) {
        const list = this.primaries(owners, partition).map((id) => ({ id, kind: 'primary' as const }));
        routing = { list, unavailable: [], nextFallback: this.fallbackFinder(partition) };
        this.cache.routes[partition] = routing;
      }
      return routing;
    }
    const isUp = (id: string) => id === self || detector.isUp(id);
    const list: PreferenceEntry[] = preferenceList(
      owners,
      partition,
      n,
      isUp,
      sloppyQuorum,
      this.deps.zoneOf?.(),
    );
    const covered = new Set<string>();
    for (const e of list) covered.add(e.hintFor ?? e.id);
    const unavailable = this.primaries(owners, partition).filter((id) => !covered.has(id));
    if (sloppyQuorum && unavailable.length > 0) {
      // No healthy stand-in left: ask the primaries believed down anyway. Down is only this
      // node's opinion, and a request that may time out beats one that cannot succeed.
      return {
        list: [...list, ...unavailable.map((id) => ({ id, kind: 'primary' as const }))],
        unavailable: [],
      };
    }
    return { list, unavailable, nextFallback: this.fallbackFinder(partition) };
  }

  /**
   * Sloppy quorum: the next healthy owner clockwise from the partition not yet asked; with zones,
   * the first one from a zone that the replicas asked and not failed lack, if any.
   */
  private fallbackFinder(partition: number): Routing['nextFallback'] {
    if (!this.deps.sloppyQuorum) return undefined;
    return (exclude, failed) => {
      const owners = this.deps.ring().owners;
      const zoneOf = this.deps.zoneOf?.();
      const q = owners.length;
      let covered: Set<string | undefined> | undefined;
      if (zoneOf) {
        covered = new Set();
        for (const id of exclude) if (!failed?.has(id)) covered.add(zoneOf(id));
      }
      let first: string | undefined;
      for (let k = 0; k < q; k++) {
        const id = owners[(partition + k) % q]!;
        if (exclude.has(id) || (id !== this.deps.self && !this.deps.detector.isUp(id))) continue;
        if (!covered?.has(zoneOf!(id))) return id;
        first ??= id;
      }
      return first;
    };
  }
}
