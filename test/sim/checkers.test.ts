import { describe, expect, it } from 'vitest';
import {
  checkAll,
  checkCausal,
  checkConvergence,
  checkExpiredReads,
  checkListing,
  checkLostAdds,
  checkNoResurrection,
  checkSiblingAntichain,
  checkSiblingBounds,
  checkUnexpectedValues,
  type FinalKeyState,
  type FinalState,
  HistoryRecorder,
  historyExcerpt,
  operations,
  type ReplicaSnapshot,
  SkewedClock,
} from '../../src/testing/index.js';
import { VirtualClock } from '../../src/util/clock.js';
import { encodeContext } from '../../src/versioning/index.js';

const ctx = (entries: [string, number][]) => encodeContext(new Map(entries));

function final(keys: FinalKeyState[], extra: Partial<FinalState> = {}): FinalState {
  return { n: 3, resolver: 'siblings', maxSiblings: 100, hintsPending: 0, keys, ...extra };
}

/** Three identical replicas holding `siblings` (values), with dots a:1, a:2, ... */
function replicas(
  values: unknown[],
  ctxEntries: [string, number][] = [['a', values.length]],
): ReplicaSnapshot[] {
  const siblings = values.map((value, i) => ({
    dot: ['a', i + 1] as [string, number],
    timestamp: 0,
    tombstone: false,
    value,
  }));
  return ['n1', 'n2', 'n3'].map((node) => ({
    node,
    encoded: `same:${JSON.stringify(values)}`,
    ctx: ctxEntries,
    siblings,
  }));
}

describe('history', () => {
  it('pairs invocations with completions per process, and cuts excerpts per key', () => {
    let t = 0;
    const h = new HistoryRecorder(() => t++);
    h.invoke('c0', 'add', 'set:0', 'n1', 1);
    h.invoke('c1', 'add', 'set:1', 'n2', 2);
    h.nemesis('start', 'isolate', 'n3');
    h.ok('c1', 'add', 'set:1', 'n2', { siblings: 1 });
    h.fail('c0', 'add', 'set:0', 'n1', { error: 'DYNAMO_QUORUM', definite: false });
    h.invoke('c0', 'add', 'set:0', 'n1', 3);
    const ops = operations(h.events);
    expect(ops.map((o) => [o.process, o.value, o.outcome])).toEqual([
      ['c0', 1, 'fail'],
      ['c1', 2, 'ok'],
      ['c0', 3, 'pending'],
    ]);
    expect(h.events.map((e) => e.index)).toEqual([0, 1, 2, 3, 4, 5]);
    const excerpt = historyExcerpt(h.events, 'set:0');
    // The three events on set:0 and the nemesis event between them; nothing of set:1.
    expect(excerpt).toHaveLength(4);
    expect(excerpt.join('\n')).toMatch(/nemesis +start +isolate: n3/);
    expect(excerpt.join('\n')).not.toMatch(/set:1/);
  });
});

describe('checkLostAdds (Jepsen set checker)', () => {
  const h = new HistoryRecorder(() => 0);
  h.invoke('c0', 'add', 'set:0', 'n1', 1);
  h.ok('c0', 'add', 'set:0', 'n1');
  h.invoke('c0', 'add', 'set:0', 'n1', 2);
  h.ok('c0', 'add', 'set:0', 'n1');
  h.invoke('c1', 'add', 'set:0', 'n2', 3);
  h.fail('c1', 'add', 'set:0', 'n2', { error: 'DYNAMO_QUORUM' });

  it('passes when every acknowledged add is in the final set (an indeterminate one may be too)', () => {
    const r = checkLostAdds(
      h.events,
      final([{ key: 'set:0', kind: 'set', values: [[1, 3], [2]], replicas: [] }]),
    );
    expect(r.ok).toBe(true);
    expect(r.stats).toMatchObject({ acknowledged: 2, lost: 0, recovered: 1 });
  });

  it('reports acknowledged adds missing from the final set', () => {
    const r = checkLostAdds(h.events, final([{ key: 'set:0', kind: 'set', values: [[1]], replicas: [] }]));
    expect(r.ok).toBe(false);
    expect(r.stats.lost).toBe(1);
    expect(r.problems[0]).toMatchObject({ key: 'set:0' });
    expect(r.problems[0]!.message).toMatch(/1 acknowledged add missing from the final set: 2 \(by c0/);
  });
});

describe('checkUnexpectedValues', () => {
  it('reports set elements and register values never written to the key', () => {
    const h = new HistoryRecorder(() => 0);
    h.invoke('c0', 'add', 'set:0', 'n1', 1);
    h.invoke('c1', 'write', 'reg:0', 'n1', 'c1:0');
    const ok = checkUnexpectedValues(
      h.events,
      final([
        { key: 'set:0', kind: 'set', values: [[1]], replicas: [] },
        { key: 'reg:0', kind: 'register', values: ['c1:0'], replicas: [] },
      ]),
    );
    expect(ok.ok).toBe(true);
    const bad = checkUnexpectedValues(
      h.events,
      final([
        { key: 'set:0', kind: 'set', values: [[1, 9]], replicas: [] },
        { key: 'reg:0', kind: 'register', values: ['c1:0'], replicas: replicas(['zz']) },
      ]),
    );
    expect(bad.problems.map((p) => [p.key, p.message])).toEqual([
      ['set:0', 'value never written to this key: 9'],
      ['reg:0', 'value never written to this key: "zz"'],
    ]);
  });
});

describe('checkConvergence', () => {
  it('passes when all N primaries hold the same bytes and no hint is pending', () => {
    expect(
      checkConvergence([], final([{ key: 'k', kind: 'register', values: ['x'], replicas: replicas(['x']) }]))
        .ok,
    ).toBe(true);
  });

  it('reports diverged replicas, missing primaries and pending hints', () => {
    const rs = replicas(['x']);
    rs[2] = { node: 'n3', encoded: null, ctx: [], siblings: [] };
    const r = checkConvergence(
      [],
      final(
        [
          { key: 'k', kind: 'register', values: ['x'], replicas: rs },
          { key: 'j', kind: 'register', values: [], replicas: rs.slice(0, 2) },
        ],
        { hintsPending: 4 },
      ),
    );
    expect(r.ok).toBe(false);
    expect(r.problems.map((p) => p.message)).toEqual([
      expect.stringMatching(
        /^replicas differ after settling: n1: ctx \{a:1\} siblings \[a:1\]; .*n3: nothing$/,
      ),
      '2 primaries known (n1, n2), expected 3',
      '4 hints still pending after settling',
    ]);
  });
});

describe('causal checks (antichain, resurrection)', () => {
  // c0 writes "v1" and gets back {a:1}; c1 then writes "v2" with a context that has seen v1.
  const h = new HistoryRecorder(() => 0);
  h.invoke('c0', 'write', 'reg:0', 'n1', 'v1');
  h.ok('c0', 'write', 'reg:0', 'n1', { context: ctx([]), resultContext: ctx([['a', 1]]) });
  h.invoke('c1', 'write', 'reg:0', 'n1', 'v2');
  h.ok('c1', 'write', 'reg:0', 'n1', { context: ctx([['a', 1]]), resultContext: ctx([['a', 2]]) });
  h.invoke('c2', 'write', 'reg:0', 'n2', 'v3');
  h.ok('c2', 'write', 'reg:0', 'n2', { context: ctx([]), resultContext: ctx([['b', 1]]) });

  it('accepts concurrent siblings (neither writer saw the other)', () => {
    const f = final([
      { key: 'reg:0', kind: 'register', values: ['v2', 'v3'], replicas: replicas(['v2', 'v3']) },
    ]);
    expect(checkSiblingAntichain(h.events, f).ok).toBe(true);
    expect(checkNoResurrection(h.events, f).ok).toBe(true);
  });

  it('reports a sibling its fellow sibling’s writer had already seen', () => {
    const f = final([
      { key: 'reg:0', kind: 'register', values: ['v1', 'v2'], replicas: replicas(['v1', 'v2']) },
    ]);
    const r = checkSiblingAntichain(h.events, f);
    expect(r.ok).toBe(false);
    expect(r.problems[0]!.message).toMatch(
      /write "v1" \(c0.*coexists with .*write "v2" \(c1.*whose context had seen it/,
    );
    const s = checkNoResurrection(h.events, f);
    expect(s.ok).toBe(false);
    expect(s.problems[0]!.message).toMatch(/was overwritten by write "v2"/);
  });

  it('reports a value that comes back after an acknowledged delete that had seen it', () => {
    const d = new HistoryRecorder(() => 0);
    d.invoke('c0', 'write', 'reg:1', 'n1', 'v1');
    d.ok('c0', 'write', 'reg:1', 'n1', { context: ctx([]), resultContext: ctx([['a', 1]]) });
    d.invoke('c1', 'delete', 'reg:1', 'n1');
    d.ok('c1', 'delete', 'reg:1', 'n1', { context: ctx([['a', 1]]), resultContext: ctx([['a', 2]]) });
    const deleted = final([{ key: 'reg:1', kind: 'register', values: [], replicas: [] }]);
    expect(checkNoResurrection(d.events, deleted).ok).toBe(true);
    const back = final([{ key: 'reg:1', kind: 'register', values: ['v1'], replicas: replicas(['v1']) }]);
    const r = checkNoResurrection(d.events, back);
    expect(r.ok).toBe(false);
    expect(r.problems[0]!.message).toMatch(
      /was deleted by delete \(c1 .*yet is live in the final read, n1, n2, n3/,
    );
  });

  it('reports a value back after a delete without a context whose returned context covered it', () => {
    const d = new HistoryRecorder(() => 0);
    d.invoke('c0', 'write', 'reg:1', 'n1', 'v1');
    d.ok('c0', 'write', 'reg:1', 'n1', { context: ctx([]), resultContext: ctx([['a', 1]]) });
    d.invoke('c1', 'delete-found', 'reg:1', 'n2');
    d.ok('c1', 'delete-found', 'reg:1', 'n2', { resultContext: ctx([['a', 2]]) });
    const back = final([{ key: 'reg:1', kind: 'register', values: ['v1'], replicas: replicas(['v1']) }]);
    const r = checkNoResurrection(d.events, back);
    expect(r.ok).toBe(false);
    expect(r.problems[0]!.message).toMatch(/was deleted by delete without a context \(c1 /);
    // A delete whose coordinator had not read v1 (its context misses a:1) did not delete it.
    const blind = new HistoryRecorder(() => 0);
    blind.invoke('c0', 'write', 'reg:1', 'n1', 'v1');
    blind.ok('c0', 'write', 'reg:1', 'n1', { context: ctx([]), resultContext: ctx([['a', 1]]) });
    blind.invoke('c1', 'delete-found', 'reg:1', 'n2');
    blind.ok('c1', 'delete-found', 'reg:1', 'n2', { resultContext: ctx([['b', 1]]) });
    expect(checkNoResurrection(blind.events, back).ok).toBe(true);
  });

  it('finds the writer of a set sibling by its last element', () => {
    const s = new HistoryRecorder(() => 0);
    s.invoke('c0', 'add', 'set:0', 'n1', 5);
    s.ok('c0', 'add', 'set:0', 'n1', { context: ctx([]), resultContext: ctx([['a', 1]]) });
    s.invoke('c1', 'add', 'set:0', 'n1', 6);
    s.ok('c1', 'add', 'set:0', 'n1', { context: ctx([['a', 1]]), resultContext: ctx([['a', 2]]) });
    const f = final([
      { key: 'set:0', kind: 'set', values: [[5], [5, 6]], replicas: replicas([[5], [5, 6]]) },
    ]);
    expect(checkSiblingAntichain(s.events, f).ok).toBe(false);
  });

  it('checks structure only when reads use a resolver (write-backs re-write old values)', () => {
    const f = final([{ key: 'reg:0', kind: 'register', values: ['v2'], replicas: replicas(['v1', 'v2']) }], {
      resolver: 'lww',
    });
    expect(checkSiblingAntichain(h.events, f).ok).toBe(true);
    expect(checkNoResurrection(h.events, f).note).toMatch(/skipped/);
    const broken = replicas(['v1']);
    broken[0] = { ...broken[0]!, ctx: [] };
    const g = final([{ key: 'reg:0', kind: 'register', values: ['v1'], replicas: broken }], {
      resolver: 'lww',
    });
    expect(checkSiblingAntichain(h.events, g).problems[0]!.message).toBe(
      'n1: sibling dot a:1 is not covered by the ctx',
    );
  });
});

describe('checkCausal (no write gone unless a writer had been shown it)', () => {
  /** c0 writes v0; c1 writes v1 having been shown `observed` (with some context). */
  function twoWrites(observed: unknown[] | undefined) {
    const h = new HistoryRecorder(() => 0);
    h.invoke('c0', 'write', 'reg:0', 'n1', 'v0');
    h.ok('c0', 'write', 'reg:0', 'n1', { context: ctx([]), resultContext: ctx([['a', 1]]), observed: [] });
    h.invoke('c1', 'write', 'reg:0', 'n2', 'v1');
    h.ok('c1', 'write', 'reg:0', 'n2', {
      context: ctx([['a', 1]]),
      resultContext: ctx([['a', 2]]),
      observed,
    });
    return h.events;
  }
  const onlyV1 = final([{ key: 'reg:0', kind: 'register', values: ['v1'], replicas: replicas(['v1']) }]);

  it('accepts a write superseded by a writer that had been shown it', () => {
    const r = checkCausal(twoWrites(['v0']), onlyV1);
    expect(r.ok).toBe(true);
    expect(r.stats).toMatchObject({ acknowledged: 2, superseded: 1, lost: 0 });
  });

  it('reports an acknowledged write gone although no writer had been shown it', () => {
    const r = checkCausal(twoWrites([]), onlyV1);
    expect(r.ok).toBe(false);
    expect(r.problems[0]!.message).toMatch(/acknowledged write "v0".*no write had been shown it/);
  });

  it('assumes a write with a context but no record of what it was shown may have seen anything', () => {
    expect(checkCausal(twoWrites(undefined), onlyV1).ok).toBe(true);
  });

  it('accepts a write gone by a delete without a context that returned a context covering it, and only that', () => {
    const deleted = (resultContext: string | undefined, ok = true) => {
      const h = new HistoryRecorder(() => 0);
      h.invoke('c0', 'write', 'reg:0', 'n1', 'v0');
      h.ok('c0', 'write', 'reg:0', 'n1', { context: ctx([]), resultContext: ctx([['a', 1]]), observed: [] });
      h.invoke('c1', 'delete-found', 'reg:0', 'n2');
      if (ok) h.ok('c1', 'delete-found', 'reg:0', 'n2', { resultContext });
      else h.fail('c1', 'delete-found', 'reg:0', 'n2', { error: 'DYNAMO_TIMEOUT', definite: false });
      return h.events;
    };
    const gone = final([{ key: 'reg:0', kind: 'register', values: [], replicas: replicas([]) }]);
    expect(checkCausal(deleted(ctx([['a', 2]])), gone).stats).toMatchObject({ superseded: 1, lost: 0 });
    // Its coordinator read something else: v0 was not what it deleted.
    const r = checkCausal(deleted(ctx([['b', 1]])), gone);
    expect(r.ok).toBe(false);
    expect(r.problems[0]!.message).toMatch(/acknowledged write "v0"/);
    // A failed one may have read and deleted anything.
    expect(checkCausal(deleted(undefined, false), gone).ok).toBe(true);
  });

  it('accepts concurrent writes that are both still there', () => {
    const both = final([
      { key: 'reg:0', kind: 'register', values: ['v0', 'v1'], replicas: replicas(['v0', 'v1']) },
    ]);
    expect(checkCausal(twoWrites([]), both).ok).toBe(true);
  });
});

describe('checkSiblingBounds', () => {
  it('reports objects and reads over maxSiblings and register keys over the stale-context bound', () => {
    const h = new HistoryRecorder(() => 0);
    h.invoke('c0', 'add', 'set:0', 'n1', 1);
    h.ok('c0', 'add', 'set:0', 'n1', { siblings: 4 });
    const f = final(
      [
        { key: 'set:0', kind: 'set', values: [], replicas: replicas([[1], [2], [3]], [['a', 3]]) },
        { key: 'reg:0', kind: 'register', values: [], replicas: replicas(['x', 'y', 'z'], [['a', 3]]) },
      ],
      { maxSiblings: 3 },
    );
    expect(checkSiblingBounds(h.events, f).problems.map((p) => p.message)).toEqual([
      expect.stringMatching(/saw 4 siblings, over maxSiblings 3/),
    ]);
    const r = checkSiblingBounds(h.events, f, { registerSiblingBound: 2 });
    expect(r.problems).toHaveLength(4);
    expect(r.stats).toEqual({ maxSetSiblings: 3, maxRegisterSiblings: 3, maxSiblingsRead: 4 });
  });
});

describe('checkAll', () => {
  it('is ok only when every checker is', () => {
    const f = final([{ key: 'reg:0', kind: 'register', values: [], replicas: replicas([]) }]);
    const report = checkAll([], f);
    expect(report.results.map((r) => r.checker)).toEqual([
      'lost-adds',
      'unexpected-values',
      'convergence',
      'sibling-antichain',
      'sibling-bounds',
      'no-resurrection',
      'causal',
      'counters',
      'orsets',
      'flags',
      'mv-registers',
      'expired-reads',
      'listing',
    ]);
    expect(report.ok).toBe(true);
    expect(checkAll([], { ...f, hintsPending: 1 }).ok).toBe(false);
  });
});

describe('checkListing', () => {
  function history() {
    let t = 0;
    const h = new HistoryRecorder(() => t++);
    h.invoke('c0', 'write', 'reg:0', 'n1', 'v0');
    h.ok('c0', 'write', 'reg:0', 'n1', {});
    h.invoke('c1', 'list', '*', 'n2');
    h.ok('c1', 'list', '*', 'n2', { value: ['reg:0', 'reg:0'] });
    h.invoke('c0', 'write', 'reg:1', 'n1', 'v1');
    h.ok('c0', 'write', 'reg:1', 'n1', {});
    h.invoke('c0', 'delete', 'reg:1', 'n1');
    h.ok('c0', 'delete', 'reg:1', 'n1', {});
    return h;
  }
  const keys: FinalKeyState[] = [
    { key: 'reg:0', kind: 'register', values: ['v0'], replicas: replicas(['v0']) },
    { key: 'reg:1', kind: 'register', values: [], replicas: replicas([]) },
  ];

  it('accepts listings of written keys (a key twice included) and a final listing of exactly the live keys', () => {
    const r = checkListing(history().events, final(keys, { listed: ['reg:0'] }));
    expect(r.ok).toBe(true);
    expect(r.stats).toMatchObject({ listings: 1, keysListed: 2, finalListed: 1, missing: 0, extra: 0 });
  });

  it('reports a key listed before anything was written to it', () => {
    const h = history();
    h.invoke('c2', 'list', '*', 'n3');
    h.ok('c2', 'list', '*', 'n3', { value: ['reg:0', 'reg:7'] });
    const r = checkListing(h.events, final(keys, { listed: ['reg:0'] }));
    expect(r.problems.map((p) => p.message)).toEqual([
      expect.stringMatching(
        /c2's listing at t=\d+ \(@n3\) returned reg:7, which nothing had been written to/,
      ),
    ]);
  });

  it('reports a live key the final listing lacks, and a deleted key it returns', () => {
    const r = checkListing(history().events, final(keys, { listed: ['reg:1'] }));
    expect(r.problems.map((p) => p.message)).toEqual([
      'the final listing lacks reg:0, whose final read found a value',
      'the final listing returned reg:1, whose final read found none',
    ]);
  });

  it('reports a final listing that failed', () => {
    const h = history();
    h.invoke('final', 'list', '*', 'n1');
    h.fail('final', 'list', '*', 'n1', { error: 'DYNAMO_QUORUM', definite: true });
    expect(checkListing(h.events, final(keys)).problems[0]!.message).toBe(
      'the final listing failed: DYNAMO_QUORUM',
    );
  });
});

describe('SkewedClock', () => {
  it('offsets now() but fires timers on the shared timeline', async () => {
    const base = new VirtualClock(1000);
    const skewed = new SkewedClock(base, -300);
    expect(skewed.now()).toBe(700);
    const fired: number[] = [];
    skewed.setTimeout(() => fired.push(base.now()), 50);
    base.setTimeout(() => fired.push(base.now()), 40);
    await base.advance(100);
    expect(fired).toEqual([1040, 1050]);
    skewed.offsetMs = 500;
    expect(skewed.now()).toBe(1600);
  });
});

describe('checkExpiredReads', () => {
  /** A write of `value` with `ttlMs` from t=0 to t=10, then reads at the given times returning `returns`. */
  function history(
    ttlMs: number,
    reads: [number, string[]][],
    outcome: 'ok' | 'fail' = 'ok',
    definite = false,
  ) {
    let t = 0;
    const h = new HistoryRecorder(() => t);
    h.invoke('c0', 'write', 'ttl:0', 'n1', 'c0:1', ttlMs);
    t = 10;
    if (outcome === 'ok') h.ok('c0', 'write', 'ttl:0', 'n1', {});
    else h.fail('c0', 'write', 'ttl:0', 'n1', { error: 'DYNAMO_QUORUM', definite });
    for (const [at, values] of reads) {
      t = at;
      h.invoke('c1', 'read', 'ttl:0', 'n2');
      h.ok('c1', 'read', 'ttl:0', 'n2', { value: values });
    }
    return h.events;
  }

  it('allows a value until its expiry passed on every clock, and flags it after', () => {
    // Expiry at most 10 + 1000 + 250 on the timeline; every clock past it 250 ms later: t = 1510.
    const ok = checkExpiredReads(
      history(1000, [
        [1509, ['c0:1']],
        [1600, []],
      ]),
      { clockSkewMs: 250 },
    );
    expect(ok.ok).toBe(true);
    expect(ok.stats).toMatchObject({ ttlWrites: 1, readsChecked: 2, expiredChecked: 1 });
    const late = checkExpiredReads(history(1000, [[1510, ['c0:1']]]), { clockSkewMs: 250 });
    expect(late.ok).toBe(false);
    expect(late.problems[0]!.message).toMatch(/returned "c0:1".*ttlMs 1000.*t=1510/);
  });

  it('gives an indeterminate put lateMs more, and ignores a put that certainly failed', () => {
    expect(checkExpiredReads(history(1000, [[2000, ['c0:1']]], 'fail'), { clockSkewMs: 250 }).ok).toBe(true);
    expect(checkExpiredReads(history(1000, [[2510, ['c0:1']]], 'fail'), { clockSkewMs: 250 }).ok).toBe(false);
    expect(checkExpiredReads(history(1000, [[9000, ['c0:1']]], 'fail', true), { clockSkewMs: 250 }).ok).toBe(
      true,
    );
  });

  it('is skipped without a clock skew bound', () => {
    const r = checkExpiredReads(history(10, [[9000, ['c0:1']]]));
    expect(r.ok).toBe(true);
    expect(r.note).toMatch(/skipped/);
  });
});
