/**
 * Per-key mutual exclusion for read-merge-write. Two merges of one key racing through storage
 * would otherwise both read the old object and the second write would drop the first's
 * siblings. Memory is bounded by the number of keys with work in flight.
 *
 * Callback-based, not promise-based: the replica takes and releases the locks of every batch of
 * steps it runs, so a promise per batch (and one per waiter) was a cost on every write.
 */
export class KeyLocks {
  /** Held keys, each with the work waiting for it in order (undefined: nothing waits). */
  private readonly held = new Map<string, (() => void)[] | undefined>();

  get size(): number {
    return this.held.size;
  }

  isHeld(id: string): boolean {
    return this.held.has(id);
  }

  /** Takes the lock of `id` if it is free (true); leaves it to its holder otherwise (false). */
  tryHold(id: string): boolean {
    if (this.held.has(id)) return false;
    this.held.set(id, undefined);
    return true;
  }

  /** Runs `start` at once if `id` is free, else when every earlier holder released it; `start` then holds it. */
  acquire(id: string, start: () => void): void {
    if (!this.held.has(id)) {
      this.held.set(id, undefined);
      start();
      return;
    }
    const waiting = this.held.get(id);
    if (waiting) waiting.push(start);
    else this.held.set(id, [start]);
  }

  /** Releases `ids`; the next waiter of each, if any, takes its lock over and starts. */
  releaseAll(ids: Iterable<string>): void {
    // Mostly nothing waits: no array for the next starters unless one does.
    let next: (() => void)[] | undefined;
    for (const id of ids) {
      const waiting = this.held.get(id);
      if (waiting === undefined) {
        this.held.delete(id);
        continue;
      }
      const first = waiting.shift()!;
      if (waiting.length === 0) this.held.set(id, undefined);
      if (next) next.push(first);
      else next = [first];
    }
    // Started once every lock is in its new state, so a starter sees a consistent table.
    if (next) for (const start of next) start();
  }
}
