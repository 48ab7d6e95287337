import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { claim } from '../../../src/ring/claim.js';
import { PreferenceTable, preferenceList, primaries } from '../../../src/ring/preference.js';
import { equalMembers, N } from './helpers.js';

const ring = (s: string) => [...s];
const upExcept =
  (...down: string[]) =>
  (id: string) =>
    !down.includes(id);

describe('primaries', () => {
  it('are the first N distinct owners clockwise, wrapping around the end', () => {
    const owners = ring('abacdebf');
    expect(primaries(owners, 0, 3)).toEqual(['a', 'b', 'c']);
    expect(primaries(owners, 6, 3)).toEqual(['b', 'f', 'a']);
    expect(primaries(owners, 7, 4)).toEqual(['f', 'a', 'b', 'c']);
    expect(primaries(owners, 2, 1)).toEqual(['a']);
  });

  it('on a claimed ring: distinct, exactly the N partitions from p on', () => {
    for (const s of [3, 4, 8, 64]) {
      const owners = claim(undefined, equalMembers(s), N, 256);
      const table = new PreferenceTable(owners, N);
      for (let p = 0; p < 256; p++) {
        const ids = primaries(owners, p, N);
        expect(new Set(ids).size).toBe(N);
        if (s > N) expect(ids).toEqual([0, 1, 2].map((k) => owners[(p + k) % 256]));
        expect(table.primaries(p)).toEqual(ids);
        expect(table.primaries(p)).toBe(table.primaries(p)); // cached: the same array
      }
    }
  });

  it('returns fewer than N when the ring has fewer nodes', () => {
    const owners = claim(undefined, equalMembers(2), N, 64);
    for (let p = 0; p < 64; p++) expect(new Set(primaries(owners, p, N)).size).toBe(2);
    expect(primaries(ring('aaaa'), 1, 3)).toEqual(['a']);
  });

  it('rejects a partition out of range', () => {
    expect(() => primaries(ring('abc'), 3, 2)).toThrow(RangeError);
    expect(() => primaries(ring('abc'), -1, 2)).toThrow(RangeError);
    expect(() => new PreferenceTable(ring('abc'), 2).primaries(7)).toThrow(RangeError);
    expect(() => primaries(ring('abc'), 0, 0)).toThrow(RangeError);
  });

  it('a table is not affected by later changes to the array it was built from', () => {
    const owners = ring('abcd');
    const table = new PreferenceTable(owners, 2);
    owners[1] = 'z';
    expect(table.primaries(0)).toEqual(['a', 'b']);
  });
});

describe('preferenceList', () => {
  const owners = ring('abcdefgh');

  it('all up: the primaries, strict or sloppy', () => {
    const all = () => true;
    const expected = [
      { id: 'a', kind: 'primary' },
      { id: 'b', kind: 'primary' },
      { id: 'c', kind: 'primary' },
    ];
    expect(preferenceList(owners, 0, 3, all, true)).toEqual(expected);
    expect(preferenceList(owners, 0, 3, all, false)).toEqual(expected);
    for (const e of preferenceList(owners, 0, 3, all, true)) expect('hintFor' in e).toBe(false);
  });

  it('strict: only the primaries that are up', () => {
    expect(preferenceList(owners, 0, 3, upExcept('b'), false)).toEqual([
      { id: 'a', kind: 'primary' },
      { id: 'c', kind: 'primary' },
    ]);
    expect(preferenceList(owners, 0, 3, () => false, false)).toEqual([]);
  });

  it("sloppy: a down primary's slot goes to the next up node past the last primary, hinted for it", () => {
    expect(preferenceList(owners, 0, 3, upExcept('b'), true)).toEqual([
      { id: 'a', kind: 'primary' },
      { id: 'd', kind: 'fallback', hintFor: 'b' },
      { id: 'c', kind: 'primary' },
    ]);
    expect(preferenceList(owners, 0, 3, upExcept('a', 'c'), true)).toEqual([
      { id: 'd', kind: 'fallback', hintFor: 'a' },
      { id: 'b', kind: 'primary' },
      { id: 'e', kind: 'fallback', hintFor: 'c' },
    ]);
  });

  it('sloppy: fallbacks skip down nodes and nodes already in the list, and wrap around', () => {
    expect(preferenceList(owners, 0, 3, upExcept('b', 'd'), true)).toEqual([
      { id: 'a', kind: 'primary' },
      { id: 'e', kind: 'fallback', hintFor: 'b' },
      { id: 'c', kind: 'primary' },
    ]);
    expect(preferenceList(ring('abcad'), 0, 3, upExcept('b'), true)).toEqual([
      { id: 'a', kind: 'primary' },
      { id: 'd', kind: 'fallback', hintFor: 'b' },
      { id: 'c', kind: 'primary' },
    ]);
    // From partition 6 the primaries are g, h, a; the walk continues at b.
    expect(preferenceList(owners, 6, 3, upExcept('h'), true)).toEqual([
      { id: 'g', kind: 'primary' },
      { id: 'b', kind: 'fallback', hintFor: 'h' },
      { id: 'a', kind: 'primary' },
    ]);
  });

  it('sloppy: fewer entries when there are not enough up nodes', () => {
    const small = ring('abcdabcd');
    expect(preferenceList(small, 0, 3, upExcept('b', 'c'), true)).toEqual([
      { id: 'a', kind: 'primary' },
      { id: 'd', kind: 'fallback', hintFor: 'b' },
    ]);
    expect(preferenceList(small, 0, 3, upExcept('b', 'c', 'd'), true)).toEqual([
      { id: 'a', kind: 'primary' },
    ]);
    expect(preferenceList(ring('abab'), 0, 3, () => true, true)).toEqual([
      { id: 'a', kind: 'primary' },
      { id: 'b', kind: 'primary' },
    ]);
  });

  it('asks isUp at most once per node', () => {
    const calls = new Map<string, number>();
    const isUp = (id: string) => {
      calls.set(id, (calls.get(id) ?? 0) + 1);
      return id !== 'a' && id !== 'e';
    };
    preferenceList(ring('abcdefabcdef'), 0, 3, isUp, true);
    for (const n of calls.values()) expect(n).toBe(1);
  });

  it('property: distinct nodes, up primaries kept in place, fallbacks up and hinted for down primaries', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.constantFrom(16, 64, 256),
        fc.integer({ min: 1, max: 5 }),
        fc.nat(),
        fc.integer({ min: 0, max: 0xffff_ffff }),
        fc.boolean(),
        (s, q, n, pick, downMask, sloppy) => {
          const members = equalMembers(s);
          const owners = claim(undefined, members, n, q);
          const p = pick % q;
          const isUp = (id: string) =>
            ((downMask >>> (members.findIndex((m) => m.id === id) % 32)) & 1) === 0;
          const prim = primaries(owners, p, n);
          const list = preferenceList(owners, p, n, isUp, sloppy);
          expect(new Set(list.map((e) => e.id)).size).toBe(list.length);
          for (const e of list) expect(isUp(e.id)).toBe(true);
          const upPrim = prim.filter(isUp);
          expect(list.filter((e) => e.kind === 'primary').map((e) => e.id)).toEqual(upPrim);
          if (!sloppy) {
            expect(list).toHaveLength(upPrim.length);
            return;
          }
          const downPrim = prim.filter((id) => !isUp(id));
          const spare = members.filter((m) => isUp(m.id) && !prim.includes(m.id)).length;
          expect(list).toHaveLength(upPrim.length + Math.min(downPrim.length, spare));
          const fallbacks = list.filter((e) => e.kind === 'fallback');
          for (const f of fallbacks) expect(prim).not.toContain(f.id);
          expect(fallbacks.map((f) => f.hintFor)).toEqual(downPrim.slice(0, fallbacks.length));
          // Each entry sits in its primary's slot, in ring order of the primaries.
          let i = 0;
          for (const id of prim) {
            const e = list[i];
            if (e === undefined) break;
            if (e.kind === 'primary' ? e.id === id : e.hintFor === id) i++;
          }
          expect(i).toBe(list.length);
          expect(new PreferenceTable(owners, n).preferenceList(p, isUp, sloppy)).toEqual(list);
        },
      ),
      { numRuns: 300, seed: 11 },
    );
  });
});

describe('preferenceList with zones', () => {
  const zone = (id: string) => id[0];
  // Zones a, b, c; walking on from the primaries a1 b1 c1 the next owners are b2 c2 a2.
  const owners = ['a1', 'b1', 'c1', 'b2', 'c2', 'a2', 'b3', 'c3'];

  it('a fallback for a down primary comes from a zone the list lacks: the write still spans every zone', () => {
    expect(preferenceList(owners, 0, 3, upExcept('a1'), true)).toEqual([
      { id: 'b2', kind: 'fallback', hintFor: 'a1' },
      { id: 'b1', kind: 'primary' },
      { id: 'c1', kind: 'primary' },
    ]);
    expect(preferenceList(owners, 0, 3, upExcept('a1'), true, zone)).toEqual([
      { id: 'a2', kind: 'fallback', hintFor: 'a1' },
      { id: 'b1', kind: 'primary' },
      { id: 'c1', kind: 'primary' },
    ]);
    const table = new PreferenceTable(owners, 3);
    expect(table.preferenceList(0, upExcept('a1'), true, zone)).toEqual(
      preferenceList(owners, 0, 3, upExcept('a1'), true, zone),
    );
  });

  it('a whole zone down: the fallbacks come from the zones that are left (as many zones as are reachable)', () => {
    const list = preferenceList(owners, 0, 3, upExcept('a1', 'a2'), true, zone);
    expect(list.map((e) => e.id)).toEqual(['b2', 'b1', 'c1']);
    // Two primaries down: one fallback from each zone the list lacks, when it can.
    const two = preferenceList(owners, 0, 3, upExcept('a1', 'b1'), true, zone);
    expect(two.map((e) => e.id)).toEqual(['b2', 'a2', 'c1']);
    expect(new Set(two.map((e) => zone(e.id))).size).toBe(3);
  });

  it('strict quorum: zones change nothing', () => {
    expect(preferenceList(owners, 0, 3, upExcept('a1'), false, zone)).toEqual(
      preferenceList(owners, 0, 3, upExcept('a1'), false),
    );
  });
});
