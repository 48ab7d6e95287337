import BTreeModule from 'sorted-btree';
import { StorageError } from '../errors.js';
import { fromLatin1, MAX_LATIN1_BYTES, toLatin1 } from './latin1.js';
import type { Storage, StorageOperation, StorageRange } from './types.js';
import { checkBytes, checkOperations, checkRange } from './validate.js';

type BTreeClass = typeof BTreeModule.default;
// sorted-btree is CommonJS with `exports.default`: Node's ESM loader hands us `module.exports`,
// bundlers and test runners hand us the class itself. Accept both.
const BTree: BTreeClass =
  (BTreeModule as unknown as { default?: BTreeClass }).default ?? (BTreeModule as unknown as BTreeClass);
type Tree = BTreeModule.default<string, string>;

// Plain string order (sorted-btree's default comparator also handles numbers, dates and arrays,
// and pays for it on every comparison).
const compareKeys = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * In-memory `Storage` on a B+ tree: the default for tests and the simulator, deterministic
 * (every call settles in the same microtask order on every run).
 *
 * - Keys are held as latin1 strings (one char per byte). JS string comparison is by UTF-16 code
 *   unit, which for chars 0..255 is exactly unsigned byte order, and it runs natively: about twice
 *   the put/get rate of a JS byte comparator over `Uint8Array` keys (measured).
 * - Values are held as latin1 strings too: one heap object each instead of a Uint8Array's two plus
 *   its off-heap memory, which in the get-then-put micro-benchmark takes about 10 % less CPU per
 *   operation (mostly garbage collection) and half the memory per 100-byte entry. Hence values are
 *   limited to `MAX_LATIN1_BYTES` (V8's string length limit, about 512 MiB): a longer one is a
 *   RangeError.
 * - Keys and values are copied on the way in and on the way out, so callers may reuse or mutate
 *   their buffers as soon as `batch()` returns, and mutating a returned buffer changes nothing.
 * - `batch()` validates every operation before applying any (all or nothing) and applies them in
 *   order, so a later operation on the same key wins.
 * - `iterate()` reads a snapshot taken when iteration starts (the first `next()`): an O(1)
 *   copy-on-write clone of the tree, so writes during an iteration are not seen by it, as with
 *   LevelDB's implicit iterator snapshots.
 * - `close()` keeps the data: `open()` on the same instance sees it again (a restarted node in the
 *   simulator reuses its `MemoryStorage`). `supports.permanence` is still `false` because nothing
 *   survives the process. Calls while closed reject with `StorageError`.
 */
export class MemoryStorage implements Storage {
  /** Nothing survives the process: `permanence` is false. */
  readonly supports: { readonly permanence: boolean } = Object.freeze({ permanence: false });

  #tree: Tree = new BTree<string, string>(undefined, compareKeys);
  // Point reads from a hash map (O(1)); the tree serves ordered scans. Both hold the same entries
  // (the same value strings), which costs one map entry per key for ~4x faster gets on large stores.
  readonly #map = new Map<string, string>();
  #open = false;
  // Bumped by close(): an iteration started before a close() fails instead of reading on.
  #epoch = 0;

  /** Number of keys stored (readable while closed). */
  get size(): number {
    return this.#tree.size;
  }

  async open(): Promise<void> {
    this.#open = true;
  }

  async close(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    this.#epoch++;
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    checkBytes(key, 'get(key)');
    this.#assertOpen('get');
    const value = this.#map.get(toLatin1(key));
    return value === undefined ? undefined : fromLatin1(value);
  }

  async getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    if (!Array.isArray(keys)) throw new TypeError('getMany(keys): keys must be an array of Uint8Array');
    for (let i = 0; i < keys.length; i++) checkBytes(keys[i], `getMany(keys): keys[${i}]`);
    this.#assertOpen('getMany');
    return keys.map((key) => {
      const value = this.#map.get(toLatin1(key));
      return value === undefined ? undefined : fromLatin1(value);
    });
  }

  async batch(operations: StorageOperation[], _options?: { sync?: boolean }): Promise<void> {
    checkOperations(operations);
    this.#assertOpen('batch');
    // Convert everything first so that nothing below can fail halfway through the batch.
    const n = operations.length;
    const keys = new Array<string>(n);
    const values = new Array<string | undefined>(n);
    for (let i = 0; i < n; i++) {
      const op = operations[i]!;
      if (op.type === 'put' && op.value.length > MAX_LATIN1_BYTES) {
        throw new RangeError(
          `batch(operations): operations[${i}].value is longer than MemoryStorage's ${MAX_LATIN1_BYTES} bytes`,
        );
      }
      keys[i] = toLatin1(op.key);
      values[i] = op.type === 'put' ? toLatin1(op.value) : undefined;
    }
    const tree = this.#tree;
    const map = this.#map;
    for (let i = 0; i < n; i++) {
      const value = values[i];
      if (value === undefined) {
        tree.delete(keys[i]!);
        map.delete(keys[i]!);
      } else {
        tree.set(keys[i]!, value);
        map.set(keys[i]!, value);
      }
    }
  }

  iterate(range: StorageRange): AsyncIterable<[Uint8Array, Uint8Array]> {
    const { gte, lt, limit } = checkRange(range);
    return this.#iterate(
      gte === undefined ? undefined : toLatin1(gte),
      lt === undefined ? undefined : toLatin1(lt),
      limit,
    );
  }

  async *#iterate(
    gte: string | undefined,
    lt: string | undefined,
    limit: number,
  ): AsyncGenerator<[Uint8Array, Uint8Array]> {
    this.#assertOpen('iterate');
    if (limit === 0 || (gte !== undefined && lt !== undefined && gte >= lt)) return;
    const epoch = this.#epoch;
    const snapshot = this.#tree.clone();
    let count = 0;
    for (const [k, v] of snapshot.entries(gte)) {
      if (lt !== undefined && k >= lt) return;
      yield [fromLatin1(k), fromLatin1(v)];
      if (++count >= limit) return;
      if (this.#epoch !== epoch) throw new StorageError('MemoryStorage: closed during iterate()');
    }
  }

  #assertOpen(method: string): void {
    if (!this.#open) throw new StorageError(`MemoryStorage is not open: cannot call ${method}()`);
  }
}
