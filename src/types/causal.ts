/**
 * Causal context: the one piece of causal metadata a data-type object carries (Almeida, Shoker &
 * Baquero, "Delta State Replicated Data Types", § 5; riak_dt's ORSWOT clock). A version vector
 * (every dot (a, 1..vv[a]) has been seen) plus a dot cloud for dots seen out of order. Joining
 * compacts the cloud into the vector wherever it becomes contiguous, so in the common case (each
 * actor's writes build on its previous ones) the cloud stays empty and the metadata is one
 * counter per actor, not one dot per element per replica.
 */

/** A write event: actor and that actor's counter (1, 2, ...). */
export type Dot = readonly [actor: string, counter: number];

/** The set of dots a state or a read has seen: a version vector plus dots seen out of order. */
export interface CausalContext {
  /** actor → n: dots (actor, 1..n) are all seen. */
  readonly vv: Map<string, number>;
  /** actor → counters above vv[actor] seen out of order (never empty sets). */
  readonly cloud: Map<string, Set<number>>;
}

export function emptyContext(): CausalContext {
  return { vv: new Map(), cloud: new Map() };
}

export function dotKey(dot: Dot): string {
  return `${dot[1]}\u0000${dot[0]}`;
}

export function seen(ctx: CausalContext, dot: Dot): boolean {
  const [actor, n] = dot;
  if (n <= (ctx.vv.get(actor) ?? 0)) return true;
  return ctx.cloud.get(actor)?.has(n) ?? false;
}

/** The next dot `actor` may use on top of `ctx`: above every dot of its that ctx has seen. */
export function nextDot(ctx: CausalContext, actor: string): Dot {
  let max = ctx.vv.get(actor) ?? 0;
  for (const n of ctx.cloud.get(actor) ?? []) if (n > max) max = n;
  return [actor, max + 1];
}

/** Adds `dot` to `ctx` in place, compacting. */
export function addDot(ctx: CausalContext, dot: Dot): void {
  const [actor, n] = dot;
  const base = ctx.vv.get(actor) ?? 0;
  if (n <= base) return;
  let cloud = ctx.cloud.get(actor);
  if (!cloud) {
    cloud = new Set();
    ctx.cloud.set(actor, cloud);
  }
  cloud.add(n);
  compactActor(ctx, actor);
}

function compactActor(ctx: CausalContext, actor: string): void {
  const cloud = ctx.cloud.get(actor);
  if (!cloud) return;
  let base = ctx.vv.get(actor) ?? 0;
  for (const n of cloud) if (n <= base) cloud.delete(n);
  while (cloud.delete(base + 1)) base++;
  if (base > 0) ctx.vv.set(actor, base);
  if (cloud.size === 0) ctx.cloud.delete(actor);
}

export function joinContexts(a: CausalContext, b: CausalContext): CausalContext {
  const out = cloneContext(a);
  joinInto(out, b);
  return out;
}

/** Joins `b` into `out` in place, compacting. */
export function joinInto(out: CausalContext, b: CausalContext): void {
  for (const [actor, n] of b.vv) if (n > (out.vv.get(actor) ?? 0)) out.vv.set(actor, n);
  for (const [actor, dots] of b.cloud) {
    let cloud = out.cloud.get(actor);
    if (!cloud) {
      cloud = new Set();
      out.cloud.set(actor, cloud);
    }
    for (const n of dots) cloud.add(n);
  }
  for (const actor of new Set([...b.vv.keys(), ...out.cloud.keys()])) compactActor(out, actor);
}

export function cloneContext(ctx: CausalContext): CausalContext {
  return {
    vv: new Map(ctx.vv),
    cloud: new Map([...ctx.cloud].map(([a, s]) => [a, new Set(s)])),
  };
}

/** Distinct actors named by the context. */
export function contextActors(ctx: CausalContext): Set<string> {
  return new Set([...ctx.vv.keys(), ...ctx.cloud.keys()]);
}

export function cloudSize(ctx: CausalContext): number {
  let n = 0;
  for (const s of ctx.cloud.values()) n += s.size;
  return n;
}
