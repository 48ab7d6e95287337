/**
 * Ready-made resolvers. A resolver turns concurrent siblings into one value; with one set,
 * `get` returns at most one value and writes the merge back.
 */
import type { Resolver } from './options.js';

/**
 * Keeps the sibling with the newest timestamp (ties: the larger node id). Loses concurrent
 * updates by design (Jepsen measured most acknowledged writes lost under contention): use it
 * only for values where the latest write should simply win.
 */
function lastWriteWins<V>(): Resolver<V> {
  return (siblings, info) => {
    let best = 0;
    for (let i = 1; i < siblings.length; i++) {
      const a = info.versions[i]!;
      const b = info.versions[best]!;
      if (a.timestamp > b.timestamp || (a.timestamp === b.timestamp && a.nodeId > b.nodeId)) best = i;
    }
    return siblings[best]!;
  };
}

/** The default: no resolver, so `get` returns every concurrent sibling and the application decides. */
function keepSiblings<V>(): Resolver<V> | undefined {
  return undefined;
}

/**
 * Folds siblings pairwise with `fn` (for example set union for a shopping cart). `fn` should be
 * commutative and associative so the result does not depend on sibling order.
 */
function merge<V>(fn: (a: V, b: V) => V): Resolver<V> {
  return (siblings) => siblings.reduce((acc, v) => fn(acc, v));
}

/** Ready-made resolvers for the `resolver` option: `lastWriteWins()`, `keepSiblings()`, `merge(fn)`. */
export const resolvers = {
  /** Keeps the sibling with the newest timestamp (ties: the larger node id); loses concurrent updates by design. */
  lastWriteWins,
  /** No resolver: `get` returns every concurrent sibling and the application decides (the default). */
  keepSiblings,
  /** Folds siblings pairwise with a commutative, associative `fn` (e.g. set union). */
  merge,
};
