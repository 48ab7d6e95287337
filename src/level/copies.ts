/**
 * Cheap copies of keys and values on their way into classic-level.
 *
 * V8 keeps a typed array of up to 64 bytes inside the JS heap, with no ArrayBuffer behind it.
 * When native code reads one (classic-level reads every key and value through Node-API), V8 first
 * moves it out: a new ArrayBuffer and backing store per argument, a copy, and more garbage-collector
 * work later. Copying into memory that is already off the heap costs less: about a third off the
 * synchronous cost of a chained-batch put, or of a getMany per key, and about 10 % off LevelStorage's
 * main-thread CPU per get-then-put (test/bench/micro-storage.ts). Short keys are the common case: the
 * engine builds a fresh one per operation.
 */

/** V8's `--typed-array-max-size-in-heap` (default 64): longer arrays are off the heap already. */
const ON_HEAP_MAX_BYTES = 64;

const ARENA_BYTES = 8192;

/**
 * Copies that stay valid as long as they are referenced: each one is a view of its own range in an
 * 8 KiB off-heap chunk (a new chunk when the current one is full). For keys that must outlive the
 * call that received them, e.g. until a coalesced read is issued on the next turn.
 */
export class CopyArena {
  #chunk = new Uint8Array(0);
  #used = 0;

  copy(bytes: Uint8Array): Uint8Array {
    const n = bytes.length;
    // A long one is off the heap anyway and would waste most of a chunk.
    if (n > ARENA_BYTES / 4) return bytes.slice();
    if (this.#used + n > this.#chunk.length) {
      this.#chunk = new Uint8Array(ARENA_BYTES);
      this.#used = 0;
    }
    const copy = this.#chunk.subarray(this.#used, this.#used + n);
    copy.set(bytes);
    this.#used += n;
    return copy;
  }
}

/**
 * One reusable off-heap buffer, with one view per length: `stage(bytes)` returns `bytes` itself
 * when it is off the heap already, else a copy in the view of its length, which the next `stage`
 * of the same length overwrites. For arguments that native code copies before returning (a chained
 * batch's put/del), so the copy is dead by the next call. Two arguments of one call need two
 * instances.
 */
export class Scratch {
  readonly #views: Uint8Array[];

  constructor() {
    // An explicit ArrayBuffer: a 64-byte `new Uint8Array(64)` would itself be on the heap.
    const buffer = new ArrayBuffer(ON_HEAP_MAX_BYTES);
    this.#views = Array.from({ length: ON_HEAP_MAX_BYTES + 1 }, (_, n) => new Uint8Array(buffer, 0, n));
  }

  stage(bytes: Uint8Array): Uint8Array {
    const n = bytes.length;
    if (n > ON_HEAP_MAX_BYTES) return bytes;
    const view = this.#views[n]!;
    view.set(bytes);
    return view;
  }
}
