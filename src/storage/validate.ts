/**
 * Argument checks shared by the built-in storages. A malformed call is a programmer mistake: it
 * fails with `TypeError`/`RangeError` before anything is written (the batch stays atomic).
 */
import type { StorageOperation, StorageRange } from './types.js';

export function checkBytes(value: unknown, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array))
    throw new TypeError(`${what} must be a Uint8Array, got ${describe(value)}`);
}

/** Validates a whole batch; throws on the first bad operation. */
export function checkOperations(operations: unknown): asserts operations is StorageOperation[] {
  if (!Array.isArray(operations)) throw new TypeError('batch(operations): operations must be an array');
  for (let i = 0; i < operations.length; i++) {
    const op: unknown = operations[i];
    if (typeof op !== 'object' || op === null) {
      throw new TypeError(`batch(operations): operations[${i}] must be an object, got ${describe(op)}`);
    }
    const { type, key, value } = op as { type?: unknown; key?: unknown; value?: unknown };
    checkBytes(key, `batch(operations): operations[${i}].key`);
    if (type === 'put') checkBytes(value, `batch(operations): operations[${i}].value`);
    else if (type !== 'del') {
      throw new TypeError(
        `batch(operations): operations[${i}].type must be 'put' or 'del', got ${describe(type)}`,
      );
    }
  }
}

/** Validates a range; `limit` comes back as a number (`Infinity` when absent). */
export function checkRange(range: StorageRange | undefined): {
  gte: Uint8Array | undefined;
  lt: Uint8Array | undefined;
  limit: number;
} {
  const { gte, lt, limit } = range ?? {};
  if (gte !== undefined) checkBytes(gte, 'iterate(range): range.gte');
  if (lt !== undefined) checkBytes(lt, 'iterate(range): range.lt');
  if (limit !== undefined && !(limit === Infinity || (Number.isInteger(limit) && limit >= 0))) {
    throw new RangeError(`iterate(range): range.limit must be an integer >= 0 or Infinity, got ${limit}`);
  }
  return { gte, lt, limit: limit ?? Infinity };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'an object';
  return typeof value === 'string' ? `string ${JSON.stringify(value.slice(0, 40))}` : String(value);
}
