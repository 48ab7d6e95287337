/**
 * Unknown option names are errors (a typo such as `quorom` would otherwise leave the default in
 * place, silently). The message names the nearest valid option, as a compiler would.
 */

/**
 * Throws a TypeError when `options` has an own enumerable key that `allowed` does not list;
 * `where` names the options object in the message (`DynamoNode options`, `quorum`, ...).
 */
export function checkOptionNames(options: object, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(options)) {
    if (allowed.includes(key)) continue;
    const nearest = nearestName(key, allowed);
    throw new TypeError(
      `${where}: unknown option ${JSON.stringify(key)}${
        nearest === undefined
          ? ` (valid: ${allowed.join(', ')})`
          : ` (did you mean ${JSON.stringify(nearest)}?)`
      }`,
    );
  }
}

/** The keys of a `Record<Name, true>` listing, typed: the compiler checks the listing is complete. */
export function names<T extends string>(listing: Record<T, true>): readonly T[] {
  return Object.keys(listing) as T[];
}

/**
 * The valid name closest to `name` (case-insensitive edit distance, a transposition counting as
 * one edit), when it is close enough to be a likely typo: at most a third of the name's length.
 */
export function nearestName(name: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  const a = name.toLowerCase();
  for (const candidate of allowed) {
    const d = editDistance(a, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(Math.max(name.length, 3) / 3)) ? best : undefined;
}

/** Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps. */
function editDistance(a: string, b: string): number {
  if (a.length > 256 || b.length > 256) return Math.abs(a.length - b.length) + 256;
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row = new Array<number>(b.length + 1);
    row[0] = i;
    rows.push(row);
  }
  for (let j = 0; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      }
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}
