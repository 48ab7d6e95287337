// Traces every storage write of one key during a simulation, without perturbing the schedule:
// hooks only observe synchronously and return the original promises.
import { unpack } from 'msgpackr';
import { parseDataKey, parseHintKey } from '../../src/replica/layout.js';
import { Replica } from '../../src/replica/replica.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import { Simulation } from '../../src/testing/index.js';
import { decodeObject } from '../../src/versioning/index.js';

const seed = Number(process.env.SEED ?? 5);
const key = process.env.KEY ?? 'set:4';
const from = Number(process.env.FROM ?? 0),
  to = Number(process.env.TO ?? 1e12);
const el = process.env.EL ? Number(process.env.EL) : undefined;
const sim = new Simulation({ seed }) as any;
const EPOCH = 1_000_000_000;
const nodeOfStorage = (st: any) => {
  for (const [id, s] of sim.storages) if (st === s) return id;
  return '?';
};
const short = (a: string) => a.split('@')[0] + '@' + a.split('@')[1]!.slice(-3);
const vec = (v: any) => `{${[...v].map(([a, c]: any) => short(a) + ':' + (c - EPOCH)).join(' ')}}`;
const desc = (o: any) =>
  o
    ? `${vec(o.ctx)} [${o.siblings.map((s: any) => short(s.dot[0]) + ':' + (s.dot[1] - EPOCH) + (s.value ? '=' + String((unpack(s.value) as any[]).at?.(-1) ?? unpack(s.value)) + (el !== undefined && (unpack(s.value) as number[]).includes?.(el) ? '*' : '') : '(x)')).join(' ')}]`
    : '-';
const kb = new TextEncoder().encode(key);
const eq = (k: Uint8Array) => k.length === kb.length && k.every((b, i) => b === kb[i]);
const log = (s: string) => {
  const t = sim.clock.now() - EPOCH;
  if (t >= from && t <= to) console.log(t.toFixed(3).padStart(10), s);
};
const oc = Replica.prototype.coordinate;
Replica.prototype.coordinate = function (
  this: any,
  p: number,
  k: Uint8Array,
  ctx: any,
  actor: string,
  value: any,
  ts: number,
  hintFor: any,
) {
  const r = oc.call(this, p, k, ctx, actor, value, ts, hintFor);
  if (eq(k)) log(`${nodeOfStorage(this.storage)} COORD hintFor=${hintFor} clientctx=${vec(ctx)}`);
  return r;
} as any;
const om = Replica.prototype.merge;
Replica.prototype.merge = function (this: any, p: number, k: Uint8Array, inc: any, hintFor: any) {
  if (eq(k)) log(`${nodeOfStorage(this.storage)} merge-in hintFor=${hintFor} ${desc(inc)}`);
  return om.call(this, p, k, inc, hintFor);
} as any;
const ob = MemoryStorage.prototype.batch;
MemoryStorage.prototype.batch = function (this: any, ops: any[], o?: any) {
  for (const op of ops) {
    const k: Uint8Array = op.key;
    if (k[0] === 1 && eq(parseDataKey(k).key))
      log(`${nodeOfStorage(this)} WRITE data ${op.type === 'put' ? desc(decodeObject(op.value)) : 'DELETE'}`);
    if (k[0] === 2) {
      const h = parseHintKey(k);
      if (eq(h.key))
        log(
          `${nodeOfStorage(this)} WRITE hint(${h.target}) ${op.type === 'put' ? desc(decodeObject(op.value)) : 'DELETE'}`,
        );
    }
  }
  return ob.call(this, ops, o);
} as any;
const res = await sim.run();
console.log(
  'ok',
  res.ok,
  JSON.stringify(
    res.report.results
      .filter((r: any) => !r.ok)
      .map((r: any) => r.problems.map((p: any) => p.message.slice(0, 200))),
  ),
);
