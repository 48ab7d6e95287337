import { describe, expect, it } from 'vitest';
import {
  checkAll,
  checkCounters,
  checkFlags,
  checkMvRegisters,
  checkOrSets,
  type FinalKeyState,
  type FinalState,
  HistoryRecorder,
  runSimulation,
} from '../../src/testing/index.js';

function final(keys: FinalKeyState[]): FinalState {
  return { n: 3, resolver: 'siblings', maxSiblings: 100, hintsPending: 0, keys };
}
const key = (k: string, kind: FinalKeyState['kind'], value: unknown): FinalKeyState => ({
  key: k,
  kind,
  values: [value],
  replicas: [],
});

describe('checkCounters', () => {
  const history = () => {
    const h = new HistoryRecorder(() => 0);
    h.invoke('c0', 'increment', 'counter:0', 'n1', 5);
    h.ok('c0', 'increment', 'counter:0', 'n1');
    h.invoke('c1', 'increment', 'counter:0', 'n2', 3);
    h.fail('c1', 'increment', 'counter:0', 'n2', { error: 'DYNAMO_QUORUM', definite: false });
    h.invoke('c2', 'increment', 'counter:0', 'n3', 100);
    h.fail('c2', 'increment', 'counter:0', 'n3', { error: 'DYNAMO_NOT_RUNNING', definite: true });
    return h.events;
  };

  it('accepts a final value between the acknowledged sum and that plus the indeterminate sum', () => {
    for (const v of [5, 8]) {
      const r = checkCounters(history(), final([key('counter:0', 'counter', v)]));
      expect(r.ok).toBe(true);
      expect(r.stats).toMatchObject({ acknowledged: 5, indeterminate: 3, difference: v - 5 });
    }
  });

  it('reports a lost acknowledged increment, a double count, and a definite failure that counted', () => {
    for (const v of [4, 9, 105]) {
      const r = checkCounters(history(), final([key('counter:0', 'counter', v)]));
      expect(r.ok, String(v)).toBe(false);
      expect(r.problems[0]!.message).toContain(`final value ${v}`);
    }
    expect(checkCounters(history(), final([key('counter:0', 'counter', 'x')])).ok).toBe(false);
  });
});

describe('checkOrSets', () => {
  const history = () => {
    const h = new HistoryRecorder(() => 0);
    for (const [p, e] of [
      ['c0', 'e1'],
      ['c1', 'e2'],
      ['c2', 'e3'],
    ] as const) {
      h.invoke(p, 'sadd', 'orset:0', 'n1', e);
      h.ok(p, 'sadd', 'orset:0', 'n1');
    }
    h.invoke('c0', 'srem', 'orset:0', 'n2');
    h.ok('c0', 'srem', 'orset:0', 'n2', { value: 'e1' });
    h.invoke('c1', 'srem', 'orset:0', 'n2');
    h.fail('c1', 'srem', 'orset:0', 'n2', { value: 'e2', error: 'DYNAMO_TIMEOUT', definite: false });
    return h.events;
  };

  it('accepts removed elements gone and an indeterminate remove either way', () => {
    expect(checkOrSets(history(), final([key('orset:0', 'orset', ['e3'])])).ok).toBe(true);
    expect(checkOrSets(history(), final([key('orset:0', 'orset', ['e2', 'e3'])])).ok).toBe(true);
  });

  it('reports a lost add, a resurrected element, and an element nobody added', () => {
    const lost = checkOrSets(history(), final([key('orset:0', 'orset', ['e2'])]));
    expect(lost.ok).toBe(false);
    expect(lost.stats.lost).toBe(1);
    expect(lost.problems[0]!.message).toContain('e3');
    const back = checkOrSets(history(), final([key('orset:0', 'orset', ['e1', 'e3'])]));
    expect(back.stats.resurrected).toBe(1);
    const extra = checkOrSets(history(), final([key('orset:0', 'orset', ['e3', 'e9'])]));
    expect(extra.problems[0]!.message).toContain('never added');
  });

  it('is part of checkAll', () => {
    const r = checkAll(history(), final([key('orset:0', 'orset', ['e1', 'e3'])]));
    expect(r.ok).toBe(false);
    expect(r.results.find((x) => x.checker === 'orsets')!.ok).toBe(false);
  });
});

describe('checkFlags (enable wins)', () => {
  /** c0 enables at t=0..1; a disable by c1 over [from, to] (to: undefined = never completed). */
  function history(disable?: { from: number; to?: number; ok?: boolean }) {
    let t = 0;
    const h = new HistoryRecorder(() => t);
    h.invoke('c0', 'enable', 'map:0/f', 'n1');
    t = 1;
    h.ok('c0', 'enable', 'map:0/f', 'n1');
    if (disable) {
      t = disable.from;
      h.invoke('c1', 'disable', 'map:0/f', 'n2');
      if (disable.to !== undefined) {
        t = disable.to;
        if (disable.ok === false)
          h.fail('c1', 'disable', 'map:0/f', 'n2', { error: 'DYNAMO_TIMEOUT', definite: false });
        else h.ok('c1', 'disable', 'map:0/f', 'n2');
      }
    }
    return h.events;
  }

  it('reports a flag off whose acknowledged enable no disable could have seen', () => {
    const r = checkFlags(history(), final([key('map:0/f', 'flag', false)]));
    expect(r.problems[0]!.message).toMatch(/reads false, yet its enable \(c0 at t=0\) was acknowledged/);
    // A disable that completed before the enable began could not have removed it.
    expect(checkFlags(history({ from: -2, to: -1 }), final([key('map:0/f', 'flag', false)])).ok).toBe(false);
  });

  it('accepts it off when a disable after (or unfinished) may have seen the enable, and on in any case', () => {
    expect(checkFlags(history({ from: 2, to: 3 }), final([key('map:0/f', 'flag', false)])).ok).toBe(true);
    expect(
      checkFlags(history({ from: -1, to: 5, ok: false }), final([key('map:0/f', 'flag', false)])).ok,
    ).toBe(true);
    expect(checkFlags(history(), final([key('map:0/f', 'flag', true)])).ok).toBe(true);
  });
});

describe('checkMvRegisters', () => {
  function history(second: 'after' | 'before') {
    let t = 0;
    const h = new HistoryRecorder(() => t);
    if (second === 'before') {
      h.invoke('c1', 'assign', 'map:0/r', 'n2', 'v2');
      t = 1;
      h.ok('c1', 'assign', 'map:0/r', 'n2');
    }
    t = 2;
    h.invoke('c0', 'assign', 'map:0/r', 'n1', 'v1');
    t = 3;
    h.ok('c0', 'assign', 'map:0/r', 'n1');
    if (second === 'after') {
      t = 4;
      h.invoke('c1', 'assign', 'map:0/r', 'n2', 'v2');
      t = 5;
      h.ok('c1', 'assign', 'map:0/r', 'n2');
    }
    return h.events;
  }

  it('accepts an assignment superseded by a later one, and concurrent values kept', () => {
    expect(
      checkMvRegisters(history('after'), final([key('map:0/r', 'mvregister', ['v2'])])).stats,
    ).toMatchObject({
      acknowledged: 2,
      superseded: 1,
    });
    expect(checkMvRegisters(history('after'), final([key('map:0/r', 'mvregister', ['v1', 'v2'])])).ok).toBe(
      true,
    );
  });

  it('reports the latest assignment gone although no assignment could have seen it, and values from nowhere', () => {
    const r = checkMvRegisters(history('before'), final([key('map:0/r', 'mvregister', ['v2'])]));
    expect(r.problems[0]!.message).toMatch(/acknowledged assignment "v1" \(c0 at t=2\) is gone/);
    const extra = checkMvRegisters(history('after'), final([key('map:0/r', 'mvregister', ['v2', 'v9'])]));
    expect(extra.problems[0]!.message).toBe('final value "v9" was never assigned');
  });
});

/** CI seeds of the typed workloads (default settings, every fault kind); `SEED=n npm run sim -- --workload W` replays one. */
describe('simulation: data-type workloads', () => {
  for (const [workload, seed] of [
    ['counter', 1],
    ['counter', 2],
    ['orset', 1],
    ['orset', 3],
    ['map', 1],
    ['map', 2],
  ] as const) {
    it(`${workload} seed ${seed}: every checker passes`, async () => {
      const result = await runSimulation({ seed, workload, operations: 600 });
      const failed = result.report.results.filter((r) => !r.ok);
      expect(failed, JSON.stringify(failed, null, 1)).toEqual([]);
      const stats = result.report.results.find(
        (r) => r.checker === (workload === 'counter' ? 'counters' : 'orsets'),
      )!.stats;
      expect(stats.keys).toBe(5);
      expect(stats.acknowledged).toBeGreaterThan(
        workload === 'counter' ? 1000 : workload === 'map' ? 100 : 300,
      );
      if (workload === 'map') {
        // Both embedded counters (the map's and its embedded map's) of the 5 maps are checked.
        const counters = result.report.results.find((r) => r.checker === 'counters')!.stats;
        expect(counters.keys).toBe(10);
        expect(counters.acknowledged).toBeGreaterThan(500);
        const flags = result.report.results.find((r) => r.checker === 'flags')!.stats;
        expect(flags.mustBeOn).toBeGreaterThan(0);
        const mv = result.report.results.find((r) => r.checker === 'mv-registers')!.stats;
        expect(mv.acknowledged).toBeGreaterThan(50);
      }
    });
  }
});
