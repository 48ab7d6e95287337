/**
 * Preference lists (Dynamo § 4.3, § 4.6): the nodes responsible for a partition, found by walking
 * the ring clockwise from it and keeping distinct owners. Pure: health comes in as `isUp`, like
 * riak_core's `get_apl(Key, N, Ring, UpNodes)`.
 */

export interface PreferenceEntry {
  id: string;
  kind: 'primary' | 'fallback';
  /** For a fallback: the down primary it stands in for (hinted handoff target). */
  hintFor?: string;
}

function checkArgs(owners: readonly string[], partition: number, n: number): void {
  if (!Number.isInteger(partition) || partition < 0 || partition >= owners.length) {
    throw new RangeError(`partition ${partition} out of range 0..${owners.length - 1}`);
  }
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`n must be a positive integer, got ${n}`);
}

/**
 * Walks clockwise from `partition` collecting up to `n` distinct owners; returns them and the
 * number of partitions visited, so a caller can keep walking past the last one.
 */
function walk(owners: readonly string[], partition: number, n: number): { ids: string[]; visited: number } {
  const q = owners.length;
  const ids: string[] = [];
  let k = 0;
  for (; k < q && ids.length < n; k++) {
    const id = owners[(partition + k) % q]!;
    if (!ids.includes(id)) ids.push(id);
  }
  return { ids, visited: k };
}

/** Primaries only: the first N distinct owners clockwise from `partition`, ignoring health. */
export function primaries(owners: readonly string[], partition: number, n: number): string[] {
  checkArgs(owners, partition, n);
  return walk(owners, partition, n).ids;
}

/**
 * The N nodes a request for `partition` goes to, in ring order of the primaries.
 *
 * - strict (`sloppy` false): the primaries that are up, nothing else.
 * - sloppy: every primary that is down keeps its slot but is replaced by a fallback
 *   (`hintFor` = that primary): fallbacks are the distinct owners found walking further clockwise
 *   past the last primary, skipping nodes that are down or already in the list, handed to the down
 *   primaries' slots in order. With `zoneOf` (members in zones), a fallback from a zone the list
 *   lacks comes before one from a zone it already has, so the write spans as many zones as it can.
 *
 * Returns fewer than N entries when the ring has fewer usable nodes. `isUp` is called at most once
 * per distinct node.
 */
export function preferenceList(
  owners: readonly string[],
  partition: number,
  n: number,
  isUp: (id: string) => boolean,
  sloppy: boolean,
  zoneOf?: (id: string) => string | undefined,
): PreferenceEntry[] {
  checkArgs(owners, partition, n);
  const { ids, visited } = walk(owners, partition, n);
  return fillFallbacks(owners, partition, ids, visited, isUp, sloppy, zoneOf);
}

/**
 * Distinct candidates a zone-aware fallback search looks at before settling for the next one
 * clockwise: on a zoned ring every live zone shows up within a few windows, so this only bounds
 * the search when no live member is in a zone the list lacks (a whole zone is down).
 */
const MAX_ZONE_CANDIDATES = 64;

function fillFallbacks(
  owners: readonly string[],
  partition: number,
  ids: readonly string[],
  visited: number,
  isUp: (id: string) => boolean,
  sloppy: boolean,
  zoneOf?: (id: string) => string | undefined,
): PreferenceEntry[] {
  const up = ids.map((id) => isUp(id));
  const out: PreferenceEntry[] = [];
  if (!sloppy || up.every(Boolean)) {
    for (let i = 0; i < ids.length; i++) if (up[i]) out.push({ id: ids[i]!, kind: 'primary' });
    return out;
  }
  // Candidate fallbacks in ring order after the last primary; each checked once.
  const q = owners.length;
  const seen = new Set(ids);
  let k = visited;
  const nextFallback = (): string | undefined => {
    for (; k < q; k++) {
      const id = owners[(partition + k) % q]!;
      if (seen.has(id)) continue;
      seen.add(id);
      if (isUp(id)) {
        k++;
        return id;
      }
    }
    return undefined;
  };
  if (zoneOf === undefined) {
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (up[i]) {
        out.push({ id, kind: 'primary' });
        continue;
      }
      const fallback = nextFallback();
      if (fallback !== undefined) out.push({ id: fallback, kind: 'fallback', hintFor: id });
    }
    return out;
  }
  // Zones: each fallback is the first candidate clockwise from a zone the list does not have yet
  // (the write then spans as many zones as are reachable), else the first candidate.
  const covered = new Set<string | undefined>();
  for (let i = 0; i < ids.length; i++) if (up[i]) covered.add(zoneOf(ids[i]!));
  const skipped: string[] = [];
  let looked = 0;
  const zonedFallback = (): string | undefined => {
    for (let j = 0; j < skipped.length; j++) {
      if (!covered.has(zoneOf(skipped[j]!))) return skipped.splice(j, 1)[0];
    }
    while (looked < MAX_ZONE_CANDIDATES) {
      const id = nextFallback();
      if (id === undefined) break;
      looked++;
      if (!covered.has(zoneOf(id))) return id;
      skipped.push(id);
    }
    return skipped.shift() ?? nextFallback();
  };
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (up[i]) {
      out.push({ id, kind: 'primary' });
      continue;
    }
    const fallback = zonedFallback();
    if (fallback === undefined) continue;
    covered.add(zoneOf(fallback));
    out.push({ id: fallback, kind: 'fallback', hintFor: id });
  }
  return out;
}

/**
 * Primaries per partition for one owners array (one ring version), computed lazily and cached, so
 * a lookup on the request path is an array index. Build a new table when the ring changes.
 */
export class PreferenceTable {
  readonly n: number;
  readonly partitions: number;
  private readonly owners: readonly string[];
  private readonly cache: (readonly string[] | undefined)[];
  /** Partitions the walk visited to find each cached list (where a fallback walk resumes). */
  private readonly visited: Int32Array;

  constructor(owners: readonly string[], n: number) {
    if (owners.length === 0) throw new RangeError('owners must not be empty');
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`n must be a positive integer, got ${n}`);
    this.owners = owners.slice(); // a ring version is immutable; the caller's array may not be
    this.n = n;
    this.partitions = owners.length;
    this.cache = new Array<readonly string[] | undefined>(owners.length).fill(undefined);
    this.visited = new Int32Array(owners.length);
  }

  primaries(partition: number): readonly string[] {
    const hit = this.cache[partition];
    if (hit !== undefined) return hit;
    checkArgs(this.owners, partition, this.n);
    const found = walk(this.owners, partition, this.n);
    const ids = Object.freeze(found.ids);
    this.cache[partition] = ids;
    this.visited[partition] = found.visited;
    return ids;
  }

  /** Same result as the free function `preferenceList`, reusing the cached primaries. */
  preferenceList(
    partition: number,
    isUp: (id: string) => boolean,
    sloppy: boolean,
    zoneOf?: (id: string) => string | undefined,
  ): PreferenceEntry[] {
    const ids = this.primaries(partition);
    return fillFallbacks(this.owners, partition, ids, this.visited[partition]!, isUp, sloppy, zoneOf);
  }
}
