/**
 * What both floors (`floor-node.ts`, one process of the 3-process TCP floor, and
 * `floor-inprocess.ts`, three replicas in one process) do per operation without an engine: quorum
 * counting, records that stand in for versioned objects (merged as bytes), the reads of a turn as
 * one storage read and the writes of a turn as one storage write, a per-key lock around each
 * read-modify-write.
 */

export const N = 3;
export const W = 2;
export const R = 2;
const PARTITIONS = 1024;
/** Record header standing in for the engine's encoded version vector: count, 3 × (actor, counter), time. */
export const HEADER_BYTES = 24;
const ACTORS = 3;

export type Answer = Uint8Array | null;

/** One client operation: counts replies against its quorum, compares what replicas returned. */
export class Quorum {
  private replies = 0;
  private failures = 0;
  private first: Answer = null;

  constructor(
    private readonly need: number,
    private readonly resolve: (answer: Answer) => void,
    private readonly reject: (error: Error) => void,
    /** Told when a reply differs byte-wise from the first (read repair's check). */
    private readonly onMismatch: () => void,
  ) {}

  reply(answer: Answer): void {
    const n = ++this.replies;
    if (n === 1) this.first = answer;
    else if (!sameAnswer(this.first, answer)) this.onMismatch();
    if (n === this.need) this.resolve(this.first);
  }

  /** A replica failed; the operation fails once the quorum can no longer be met. */
  fail(): void {
    if (++this.failures === N - this.need + 1) this.reject(new Error('quorum not met'));
  }
}

function sameAnswer(a: Answer, b: Answer): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** 2-byte partition (FNV-1a of the key, mod PARTITIONS) + the key's UTF-8 bytes, off the V8 heap. */
export function storageKey(key: string): Buffer {
  const n = Buffer.byteLength(key);
  // allocUnsafe takes small buffers from Node's off-heap pool.
  const out = Buffer.allocUnsafe(2 + n);
  out.write(key, 2);
  let h = 0x811c9dc5;
  for (let i = 2; i < out.length; i++) h = Math.imul(h ^ out[i]!, 0x01000193);
  const partition = (h >>> 0) % PARTITIONS;
  out[0] = partition >>> 8;
  out[1] = partition & 0xff;
  return out;
}

/** The next record after `before` at `actor` (0..2): its counters, ours incremented, the time, the value. */
export function makeRecord(before: Uint8Array | undefined, value: Uint8Array, actor: number): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + value.length);
  if (before && before.length >= HEADER_BYTES) out.set(before.subarray(0, HEADER_BYTES));
  else {
    out.fill(0, 0, HEADER_BYTES);
    out[0] = ACTORS;
    for (let a = 0; a < ACTORS; a++) out[1 + a * 5] = a;
  }
  const at = 2 + actor * 5;
  out.writeUInt32BE(out.readUInt32BE(at) + 1, at);
  out.writeDoubleBE(Date.now(), 16);
  out.set(value, HEADER_BYTES);
  return out;
}

/** A replica keeps `before` when it already has every counter of `incoming` (a stale or repeated store). */
export function covers(before: Uint8Array, incoming: Uint8Array): boolean {
  for (let a = 0; a < ACTORS; a++) {
    const at = 2 + a * 5;
    const b = (before[at]! << 24) | (before[at + 1]! << 16) | (before[at + 2]! << 8) | before[at + 3]!;
    const i =
      (incoming[at]! << 24) | (incoming[at + 1]! << 16) | (incoming[at + 2]! << 8) | incoming[at + 3]!;
    if (i >>> 0 > b >>> 0) return false;
  }
  return true;
}

type ReadDone = (value: Uint8Array | undefined, error?: unknown) => void;
type WriteDone = (error?: unknown) => void;

export interface RmwJob {
  key: Uint8Array;
  /** The engine's lock id: the storage key as a latin1 string. */
  lock: string;
  /** The record to write given the current one, or undefined to write nothing. */
  next(before: Uint8Array | undefined): Uint8Array | undefined;
  /** After the write resolved (or there was none), or on failure. */
  done(error?: unknown): void;
}

/** The storage calls a floor makes: one read of many keys, one write of many records. */
export interface FloorDb {
  /** False once closed (a stopped run fails what was queued instead of throwing). */
  isOpen(): boolean;
  getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]>;
  putMany(keys: Uint8Array[], values: Uint8Array[]): Promise<void>;
}

/** What the per-turn coalescing achieved (counted, not timed). */
export interface StoreCounts {
  /** Keys read, and `getMany` calls they took. */
  reads: number;
  getManys: number;
  /** Records written, and `putMany` calls they took. */
  writes: number;
  batches: number;
}

/** The reads of a turn as one `getMany`, the writes of a turn as one `putMany`, per-key locks. */
export class Store {
  private readKeys: Uint8Array[] = [];
  private readDone: ReadDone[] = [];
  private writeKeys: Uint8Array[] = [];
  private writeValues: Uint8Array[] = [];
  private writeDone: WriteDone[] = [];
  /** Keys under read-modify-write, with the jobs waiting for them (undefined: none yet). */
  private readonly held = new Map<string, RmwJob[] | undefined>();

  constructor(
    readonly db: FloorDb,
    /** When a turn's queued reads and writes go out. */
    private readonly defer: (fn: () => void) => void,
    private readonly counts: StoreCounts,
  ) {}

  read(key: Uint8Array, done: ReadDone): void {
    if (this.readKeys.length === 0) this.defer(this.flushReads);
    this.readKeys.push(key);
    this.readDone.push(done);
  }

  write(key: Uint8Array, value: Uint8Array, done: WriteDone): void {
    if (this.writeKeys.length === 0) this.defer(this.flushWrites);
    this.writeKeys.push(key);
    this.writeValues.push(value);
    this.writeDone.push(done);
  }

  /** Read, decide, write, under the key's lock (a second writer of the key waits, as in the engine). */
  rmw(job: RmwJob): void {
    if (this.held.has(job.lock)) {
      const waiting = this.held.get(job.lock);
      if (waiting) waiting.push(job);
      else this.held.set(job.lock, [job]);
      return;
    }
    this.held.set(job.lock, undefined);
    this.read(job.key, (before, error) => {
      if (error) return this.finish(job, error);
      const record = job.next(before);
      if (record === undefined) return this.finish(job);
      this.write(job.key, record, (e) => this.finish(job, e));
    });
  }

  private finish(job: RmwJob, error?: unknown): void {
    const waiting = this.held.get(job.lock);
    this.held.delete(job.lock);
    job.done(error);
    if (waiting) for (const next of waiting) this.rmw(next);
  }

  private readonly flushReads = (): void => {
    const keys = this.readKeys;
    const done = this.readDone;
    this.readKeys = [];
    this.readDone = [];
    if (!this.db.isOpen()) {
      for (const d of done) d(undefined, new Error('database closed'));
      return;
    }
    this.counts.reads += keys.length;
    this.counts.getManys++;
    this.db.getMany(keys).then(
      (values) => {
        for (let i = 0; i < done.length; i++) done[i]!(values[i]);
      },
      (error: unknown) => {
        for (const d of done) d(undefined, error);
      },
    );
  };

  private readonly flushWrites = (): void => {
    const keys = this.writeKeys;
    const values = this.writeValues;
    const done = this.writeDone;
    this.writeKeys = [];
    this.writeValues = [];
    this.writeDone = [];
    if (!this.db.isOpen()) {
      for (const d of done) d(new Error('database closed'));
      return;
    }
    this.counts.writes += keys.length;
    this.counts.batches++;
    this.db.putMany(keys, values).then(
      () => {
        for (const d of done) d();
      },
      (error: unknown) => {
        for (const d of done) d(error);
      },
    );
  };
}
