/** Shared builders and arbitraries for the versioning tests. */
import fc from 'fast-check';
import {
  encodeObject,
  type Sibling,
  sync,
  update,
  type VersionedObject,
  type VersionVector,
} from '../../../src/versioning/index.js';

export const vv = (o: Record<string, number>): VersionVector => new Map(Object.entries(o));

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array | null): string | null =>
  b === null ? null : new TextDecoder().decode(b);

/** Live values of an object, as strings, in sibling order. */
export const values = (o: VersionedObject): (string | null)[] => o.siblings.map((s) => text(s.value));

export const hex = (o: VersionedObject): string => Buffer.from(encodeObject(o)).toString('hex');

export const ACTORS = ['1', '2', '3', '4'] as const;

export const vectorArb = (maxCounter = 6): fc.Arbitrary<VersionVector> =>
  fc
    .array(fc.tuple(fc.constantFrom(...ACTORS), fc.integer({ min: 1, max: maxCounter })), { maxLength: 4 })
    .map((entries) => new Map(entries));

/**
 * An arbitrary object whose siblings are a subset of the dots its ctx covers. A sibling's content
 * is a function of its dot (as dots are unique in a real cluster), so objects drawn independently
 * agree on every dot they share.
 */
export const objectArb: fc.Arbitrary<VersionedObject> = vectorArb()
  .chain((ctx) => {
    const dots: [string, number][] = [];
    for (const [a, n] of ctx) for (let c = 1; c <= n; c++) dots.push([a, c]);
    return fc.tuple(fc.constant(ctx), fc.subarray(dots, { maxLength: Math.min(4, dots.length) }));
  })
  // Sorted like every object update and sync produce.
  .map(([ctx, dots]) => ({
    ctx,
    siblings: dots
      .sort((p, q) => (p[0] < q[0] ? -1 : p[0] > q[0] ? 1 : p[1] - q[1]))
      .map(([a, c]) => siblingFor(a, c)),
  }));

export function siblingFor(actor: string, counter: number): Sibling {
  return {
    dot: [actor, counter],
    value: counter % 3 === 0 ? null : bytes(`${actor}:${counter}`),
    timestamp: counter * 10,
  };
}

export type Command =
  | { kind: 'put'; at: number; ctx: number; tombstone: boolean }
  | { kind: 'sync'; from: number; to: number }
  | { kind: 'read'; a: number; b: number };

/** Commands over 3 replicas; `ctx` picks one of the contexts seen so far (0 = none). */
export const commandsArb: fc.Arbitrary<Command[]> = fc.array(
  fc.oneof(
    fc.record({
      kind: fc.constant('put' as const),
      at: fc.nat(2),
      ctx: fc.nat(40),
      tombstone: fc.boolean(),
    }),
    fc.record({ kind: fc.constant('sync' as const), from: fc.nat(2), to: fc.nat(2) }),
    fc.record({ kind: fc.constant('read' as const), a: fc.nat(2), b: fc.nat(2) }),
  ),
  { maxLength: 30 },
);

export interface History {
  /** Current object per replica (actor of replica i is String(i + 1)). */
  replicas: (VersionedObject | undefined)[];
  /** Every object any replica ever held, oldest first. */
  snapshots: VersionedObject[];
  /** Contexts clients obtained (put responses, reads); index 0 is the empty context. */
  contexts: VersionVector[];
}

/**
 * Plays commands against 3 replicas the way the engine does: a put is coordinated by a replica
 * with its own actor, replication and read repair are sync.
 */
export function play(commands: readonly Command[]): History {
  const replicas: (VersionedObject | undefined)[] = [undefined, undefined, undefined];
  const snapshots: VersionedObject[] = [];
  const contexts: VersionVector[] = [new Map()];
  let clock = 0;
  const store = (i: number, o: VersionedObject) => {
    replicas[i] = o;
    snapshots.push(o);
  };
  for (const c of commands) {
    if (c.kind === 'put') {
      const ctx = contexts[c.ctx % contexts.length]!;
      const o = update(
        replicas[c.at],
        ctx,
        String(c.at + 1),
        c.tombstone ? null : bytes(`v${clock}`),
        clock++,
      );
      store(c.at, o);
      contexts.push(o.ctx);
    } else if (c.kind === 'sync') {
      const from = replicas[c.from];
      if (from === undefined) continue;
      const to = replicas[c.to];
      store(c.to, to === undefined ? from : sync(to, from));
    } else {
      const a = replicas[c.a];
      const b = replicas[c.b];
      if (a === undefined || b === undefined) continue;
      contexts.push(sync(a, b).ctx);
    }
  }
  return { replicas, snapshots, contexts };
}
