/**
 * Storage key layout: one keyspace, three prefixes.
 *   0x00 ‖ name                               node metadata (incarnation, cluster state)
 *   0x01 ‖ partition (u16 BE) ‖ key           data: one partition is one range scan
 *   0x02 ‖ len(target) (u16 BE) ‖ target ‖ partition (u16 BE) ‖ key
 *                                             hints held for `target`, one per key: repeated
 *                                             writes to a key merge into one hint
 */
const META = 0x00;
const DATA = 0x01;
const HINT = 0x02;
const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

export function metaKey(name: string): Uint8Array {
  const n = utf8.encode(name);
  const out = new Uint8Array(1 + n.length);
  out[0] = META;
  out.set(n, 1);
  return out;
}

export function dataKey(partition: number, key: Uint8Array): Uint8Array {
  const out = new Uint8Array(3 + key.length);
  out[0] = DATA;
  out[1] = partition >>> 8;
  out[2] = partition & 0xff;
  out.set(key, 3);
  return out;
}

/** [gte, lt) of one partition's data. */
export function dataRange(partition: number): { gte: Uint8Array; lt: Uint8Array } {
  const next = partition + 1;
  return {
    gte: Uint8Array.of(DATA, partition >>> 8, partition & 0xff),
    lt: next > 0xffff ? Uint8Array.of(DATA + 1) : Uint8Array.of(DATA, next >>> 8, next & 0xff),
  };
}

/** The smallest key greater than `key` in byte order (resume a scan after the last key read). */
export function keyAfter(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out.set(key);
  return out;
}

export function parseDataKey(storageKey: Uint8Array): { partition: number; key: Uint8Array } {
  return { partition: (storageKey[1]! << 8) | storageKey[2]!, key: storageKey.subarray(3) };
}

function hintPrefix(target: string): Uint8Array {
  const t = utf8.encode(target);
  const out = new Uint8Array(3 + t.length);
  out[0] = HINT;
  out[1] = t.length >>> 8;
  out[2] = t.length & 0xff;
  out.set(t, 3);
  return out;
}

export function hintKey(target: string, partition: number, key: Uint8Array): Uint8Array {
  const prefix = hintPrefix(target);
  const out = new Uint8Array(prefix.length + 2 + key.length);
  out.set(prefix, 0);
  out[prefix.length] = partition >>> 8;
  out[prefix.length + 1] = partition & 0xff;
  out.set(key, prefix.length + 2);
  return out;
}

/** [gte, lt) of every hint for `target`. */
export function hintRangeFor(target: string): { gte: Uint8Array; lt: Uint8Array } {
  const gte = hintPrefix(target);
  const lt = gte.slice();
  // Targets are length-prefixed, so no other target's prefix extends this one, and the last byte
  // is UTF-8 (never 0xff), so bumping it cannot overflow.
  lt[lt.length - 1]! += 1;
  return { gte, lt };
}

/** [gte, lt) of all hints. */
export const allHintsRange = { gte: Uint8Array.of(HINT), lt: Uint8Array.of(HINT + 1) };

export function parseHintKey(storageKey: Uint8Array): { target: string; partition: number; key: Uint8Array } {
  const len = (storageKey[1]! << 8) | storageKey[2]!;
  const target = utf8d.decode(storageKey.subarray(3, 3 + len));
  const p = 3 + len;
  return { target, partition: (storageKey[p]! << 8) | storageKey[p + 1]!, key: storageKey.subarray(p + 2) };
}
