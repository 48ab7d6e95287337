/**
 * Per-key mutual exclusion for read-merge-write. Two merges of one key racing through storage
 * would otherwise both read the old object and the second write would drop the first's
 * siblings. Memory is bounded by the number of keys with work in flight.
 */
export class KeyLocks {
  private readonly tails = new Map<string, Promise<void>>();

  get size(): number {
    return this.tails.size;
  }

  isHeld(id: string): boolean {
    return this.tails.has(id);
  }

  /**
   * Takes the locks of `ids`, none of which may be held, with one shared release: a batch of
   * steps holds its keys together. Later `run`s of any of them wait for the release.
   */
  holdAll(ids: Iterable<string>): () => void {
    let release!: () => void;
    const tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    for (const id of ids) this.tails.set(id, tail);
    return () => {
      release();
      for (const id of ids) if (this.tails.get(id) === tail) this.tails.delete(id);
    };
  }

  async run<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(id);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous ? previous.then(() => mine) : mine;
    this.tails.set(id, tail);
    try {
      if (previous) await previous;
      return await fn();
    } finally {
      release();
      if (this.tails.get(id) === tail) this.tails.delete(id);
    }
  }
}
