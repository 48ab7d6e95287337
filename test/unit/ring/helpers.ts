/** Checkers for claim results, written independently of src/ring/claim.ts. */
import type { ClaimMember } from '../../../src/ring/claim.js';

export const N = 3;

/** Deterministic ids whose sort order differs from their creation order. */
export function memberId(i: number): string {
  return `n${(Math.imul(i + 1, 2654435761) >>> 0).toString(36)}`;
}

export function equalMembers(count: number, from = 0): ClaimMember[] {
  return Array.from({ length: count }, (_, i) => ({ id: memberId(from + i), weight: 1 }));
}

export function counts(owners: readonly string[]): Map<string, number> {
  const c = new Map<string, number>();
  for (const o of owners) c.set(o, (c.get(o) ?? 0) + 1);
  return c;
}

/**
 * Start indices of the windows of min(n, Q) consecutive partitions, wrapping past the end of the
 * ring, that hold some owner twice.
 */
export function repeatedWindows(owners: readonly string[], n: number): number[] {
  const q = owners.length;
  const l = Math.min(n, q);
  const out: number[] = [];
  for (let s = 0; s < q; s++) {
    const seen = new Set<string>();
    for (let k = 0; k < l; k++) seen.add(owners[(s + k) % q]!);
    if (seen.size < l) out.push(s);
  }
  return out;
}

/** Every member holds ⌊Q·w/Σw⌋ or ⌈Q·w/Σw⌉ partitions; only members own partitions; total = Q. */
export function balanceErrors(owners: readonly string[], members: readonly ClaimMember[]): string[] {
  const q = owners.length;
  const total = members.reduce((a, m) => a + m.weight, 0);
  const c = counts(owners);
  const errors: string[] = [];
  for (const m of members) {
    const k = c.get(m.id) ?? 0;
    const lo = Math.floor((q * m.weight) / total);
    const hi = Math.ceil((q * m.weight) / total);
    if (k < lo || k > hi) errors.push(`${m.id} holds ${k}, share is ${(q * m.weight) / total}`);
  }
  const ids = new Set(members.map((m) => m.id));
  for (const o of c.keys()) if (!ids.has(o)) errors.push(`non-member ${o} owns partitions`);
  let sum = 0;
  for (const k of c.values()) sum += k;
  if (sum !== q) errors.push(`total ${sum} != ${q}`);
  return errors;
}

/**
 * Whether counts within floor/ceil exist that allow no repeated window: a member holding c
 * partitions needs c·L ≤ Q (c copies at least L apart around a ring of Q); that is also enough
 * (the column-wise deal achieves it).
 */
export function spreadFeasible(members: readonly ClaimMember[], q: number, n: number): boolean {
  const l = Math.min(n, q);
  const total = members.reduce((a, m) => a + m.weight, 0);
  let floors = 0;
  let roomForCeil = 0;
  for (const m of members) {
    const f = Math.floor((q * m.weight) / total);
    floors += f;
    if (f * l > q) return false;
    if ((q * m.weight) % total !== 0 && (f + 1) * l <= q) roomForCeil++;
  }
  return roomForCeil >= q - floors;
}

export function moved(a: readonly string[], b: readonly string[]): number[] {
  const out: number[] = [];
  for (let p = 0; p < a.length; p++) if (a[p] !== b[p]) out.push(p);
  return out;
}

/**
 * Repeated windows the claim must reach with S equal members: none when possible; with S = N and
 * N ∤ Q, N − 1 (the windows crossing the wrap of an otherwise round-robin ring). That is the
 * minimum for N = 3: the member holding ⌈Q/3⌉ needs two windows (one gap of 1, or two of 2), and
 * when two members hold the extra one no window of 3 can repeat both.
 */
export function expectedRepeatedWindows(q: number, s: number, n: number): number | undefined {
  if (s < n) return undefined; // every window repeats someone; nothing to assert
  if (Math.ceil(q / s) * n <= q) return 0;
  if (s === n) return n - 1;
  return undefined;
}

/** A member with a zone, for the zone properties. */
export interface ZonedClaimMember extends ClaimMember {
  zone: string;
}

/**
 * Partitions whose preference list (first n distinct owners clockwise) spans fewer than
 * min(n, Q, zones among the owners) zones: an independent count of what the zone guarantee forbids.
 */
export function zoneSpanViolations(
  owners: readonly string[],
  members: readonly ZonedClaimMember[],
  n: number,
): number[] {
  const zone = new Map(members.map((m) => [m.id, m.zone]));
  const q = owners.length;
  const distinct = [...new Set(owners)];
  const zones = new Set(distinct.map((o) => zone.get(o)));
  const required = Math.min(n, q, zones.size);
  const out: number[] = [];
  for (let p = 0; p < q; p++) {
    const ids: string[] = [];
    for (let k = 0; k < q && ids.length < Math.min(n, distinct.length); k++) {
      const o = owners[(p + k) % q]!;
      if (!ids.includes(o)) ids.push(o);
    }
    if (new Set(ids.map((id) => zone.get(id))).size < required) out.push(p);
  }
  return out;
}

/**
 * The share of the partitions each zone may hold so that every key's replicas can span
 * K = min(n, Q, zones) zones: with every zone required, at least 1 of L replicas; at most
 * min(members, L − K + 1) of them (L = min(n, Q)).
 */
export function zoneBand(members: readonly ZonedClaimMember[], n: number, q: number) {
  const zones = [...new Set(members.map((m) => m.zone))];
  const l = Math.min(n, q);
  const k = Math.min(l, zones.length);
  return new Map(
    zones.map((z) => {
      const count = members.filter((m) => m.zone === z).length;
      return [z, { lo: k === zones.length ? 1 / l : 0, hi: Math.min(count, l - k + 1) / l }];
    }),
  );
}

export function zoneCounts(owners: readonly string[], members: readonly ZonedClaimMember[]) {
  const zone = new Map(members.map((m) => [m.id, m.zone]));
  const c = new Map<string, number>();
  for (const o of owners) c.set(zone.get(o)!, (c.get(zone.get(o)!) ?? 0) + 1);
  return c;
}
