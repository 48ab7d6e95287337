/**
 * `npm run sim -- --seed 56 --trace set:2`: prints every storage write of one key during a run
 * (which node, data or hint, the object's ctx and siblings), every coordination (with the client's
 * context) and every incoming replica merge. For finding out *how* a checker's problem happened.
 *
 * The hooks only observe: they run synchronously and hand back the original promises, so the
 * schedule (and the history) is exactly that of the untraced run. Engine internals are patched
 * here, in test code, so the engine itself carries no tracing.
 */
import { DynamoNode } from '../../src/node.js';
import type { DynamoNodeOptions } from '../../src/options.js';
import { parseDataKey, parseHintKey } from '../../src/replica/layout.js';
import { Replica } from '../../src/replica/replica.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import type { Storage, StorageOperation } from '../../src/storage/types.js';
import { SkewedClock } from '../../src/testing/sim-clock.js';
import { defaultCodec } from '../../src/values.js';
import {
  asContext,
  CheckedObject,
  decodeObject,
  type VersionedObject,
  type VersionVector,
} from '../../src/versioning/index.js';

export interface TraceOptions {
  key: string;
  /** Virtual ms since the start of the run (as in the history). */
  from?: number;
  to?: number;
  /** A set element to mark (`*`) in every sibling that holds it. */
  element?: number;
  /** The simulator's virtual-time origin (its EPOCH_MS). */
  epochMs?: number;
}

type Line = (text: string) => void;

export function installTrace(options: TraceOptions, print: Line = console.log): void {
  const epoch = options.epochMs ?? 1_000_000_000;
  const target = new TextEncoder().encode(options.key);
  const owners = new Map<Storage, string>();
  let clock: SkewedClock | undefined;
  const sameKey = (k: Uint8Array) => k.length === target.length && k.every((b, i) => b === target[i]);
  const shortActor = (a: string) => {
    const [node, incarnation = ''] = a.split('@');
    return `${node}@${incarnation.slice(-3)}`;
  };
  // Operation ids (entries "\u0000" + op, see versioning/object.ts opKey) are counted, not listed.
  const vector = (v: VersionVector) => {
    const entries = [...v].filter(([a]) => a.charCodeAt(0) !== 0);
    const ops = v.size - entries.length;
    const list = entries.map(([a, c]) => `${shortActor(a)}:${c > epoch ? c - epoch : c}`).join(' ');
    return `{${list}${ops > 0 ? ` +${ops} ops` : ''}}`;
  };
  const sibling = (s: VersionedObject['siblings'][number]) => {
    const op = s.op === undefined ? '' : `(op ${s.op})`;
    const dot = `${shortActor(s.dot[0])}:${s.dot[1] > epoch ? s.dot[1] - epoch : s.dot[1]}${op}`;
    if (s.value === null) return `${dot}(deleted)`;
    const value = defaultCodec.decode(s.value) as unknown;
    if (!Array.isArray(value)) return `${dot}=${JSON.stringify(value)}`;
    const mark = options.element !== undefined && value.includes(options.element) ? '*' : '';
    return `${dot}=${String(value[value.length - 1])}${mark}`;
  };
  const describe = (o: VersionedObject) => `${vector(o.ctx)} [${o.siblings.map(sibling).join(' ')}]`;
  const log: Line = (text) => {
    if (!clock) return;
    const t = clock.now() - clock.offsetMs - epoch;
    if (t < (options.from ?? Number.NEGATIVE_INFINITY) || t > (options.to ?? Number.POSITIVE_INFINITY))
      return;
    print(`${t.toFixed(3).padStart(11)}  ${text}`);
  };
  const storageOf = (replica: Replica) =>
    owners.get((replica as unknown as { storage: Storage }).storage) ?? '?';

  const start = DynamoNode.start.bind(DynamoNode);
  DynamoNode.start = (<V>(o: DynamoNodeOptions<V>) => {
    owners.set(o.storage, o.id);
    if (o.clock instanceof SkewedClock) clock = o.clock;
    return start<V>(o);
  }) as typeof DynamoNode.start;

  const coordinate = Replica.prototype.coordinate;
  Replica.prototype.coordinate = function (this: Replica, ...args: Parameters<Replica['coordinate']>) {
    const [, key, context, , , , hintFor] = args;
    if (sameKey(key))
      log(
        `${storageOf(this)} coordinates${hintFor ? ` (for ${hintFor})` : ''}, client ctx ${vector(asContext(context).vector)}`,
      );
    return coordinate.apply(this, args);
  };
  const merge = Replica.prototype.merge;
  Replica.prototype.merge = function (this: Replica, ...args: Parameters<Replica['merge']>) {
    const [, key, incoming, hintFor] = args;
    if (sameKey(key))
      log(
        `${storageOf(this)} merges in${hintFor ? ` (hint for ${hintFor})` : ''} ${describe(incoming instanceof CheckedObject ? incoming.object : incoming)}`,
      );
    return merge.apply(this, args);
  };
  const batch = MemoryStorage.prototype.batch;
  MemoryStorage.prototype.batch = function (
    this: MemoryStorage,
    ops: StorageOperation[],
    o?: { sync?: boolean },
  ) {
    for (const op of ops) {
      const k = op.key;
      let where: string | undefined;
      if (k[0] === 1 && sameKey(parseDataKey(k).key)) where = 'data';
      else if (k[0] === 2) {
        const h = parseHintKey(k);
        if (sameKey(h.key)) where = `hint for ${h.target}`;
      }
      if (where === undefined) continue;
      const node = owners.get(this) ?? '?';
      log(`${node} WRITES ${where}: ${op.type === 'put' ? describe(decodeObject(op.value)) : 'deleted'}`);
    }
    return batch.call(this, ops, o);
  };
}
