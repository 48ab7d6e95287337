/**
 * The floor of the in-process cluster benchmark (`cluster.ts`): the storage and message work of
 * three replicas in one process, N=3 W=2 / R=2, with no engine, so the engine's in-process figures
 * can be quoted against what the same work costs at best in JavaScript on the same storage.
 *
 * Per put: the coordinating replica reads its record, makes the next one from it, writes it and
 * sends it to both peers at once; each peer reads its record, keeps it if it already covers the
 * incoming one (the version check, on bytes), else writes, and acks; the put resolves on 2 of the 3
 * acks (a write counts once its storage write resolved). Per get: a local read and a Read to each
 * peer, resolved on 2 of the 3 replies, every reply compared byte-wise with the first (read repair's
 * check). As the TCP floor (`floor-node.ts`, sharing `floor-core.ts`): the reads of a turn are one
 * `getMany`, the writes of a turn one `batch` of the project's own Storage (MemoryStorage or
 * LevelStorage: the engine's storage, with its own coalescing), a per-key lock around each
 * read-modify-write, the messages from one replica to another in a turn as one msgpack-encoded
 * batch, copied once as MemoryNetwork copies a payload, answered by one batch of replies. A turn
 * ends at `process.nextTick`, as the engine's Rpc and Replica batching.
 *
 * Left out, because an engine could do without them or they are not the request path's work:
 * version vectors and their codec, routing, membership, hints, timeouts, argument checks, stats.
 */
import { Packr } from 'msgpackr';
import type { Storage } from '../../src/index.js';
import {
  type Answer,
  covers,
  type FloorDb,
  HEADER_BYTES,
  makeRecord,
  Quorum,
  R,
  Store,
  type StoreCounts,
  storageKey,
  W,
} from './floor-core.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: false, moreTypes: false, int64AsType: 'number' });
const afterTurn = (fn: () => void) => process.nextTick(fn);

export interface InProcessFloorCounts extends StoreCounts {
  /** Requests and replies sent, and the batches (one encode, one copy, one decode each) they took. */
  messages: number;
  frames: number;
  /** Replies of a get that differed byte-wise from its first reply (should stay 0). */
  mismatches: number;
}

function storageDb(storage: Storage): { db: FloorDb; open: { value: boolean } } {
  const open = { value: true };
  return {
    open,
    db: {
      isOpen: () => open.value,
      getMany: (keys) => storage.getMany(keys),
      putMany: (keys, values) =>
        storage.batch(keys.map((key, i) => ({ type: 'put', key, value: values[i]! }))),
    },
  };
}

/** Messages from one replica to another in a turn, as one encoded batch; replies come back likewise. */
class Link {
  private requests: unknown[] = [];
  private replies: unknown[] = [];
  private nextId = 0;
  private readonly pending = new Map<number, Quorum>();

  constructor(
    private readonly to: FloorReplica,
    private readonly counts: InProcessFloorCounts,
  ) {}

  /** `record` null: a Read. */
  request(q: Quorum, key: Uint8Array, record: Uint8Array | null): void {
    this.nextId = (this.nextId + 1) >>> 0;
    this.pending.set(this.nextId, q);
    if (this.requests.length === 0) afterTurn(this.flushRequests);
    this.requests.push(this.nextId, key, record);
  }

  private answer(id: number, answer: Uint8Array | boolean | null): void {
    if (this.replies.length === 0) afterTurn(this.flushReplies);
    this.replies.push(id, answer);
  }

  private readonly flushRequests = (): void => {
    const entries = this.requests;
    this.requests = [];
    this.counts.messages += entries.length / 3;
    const batch = this.transmit(entries);
    for (let i = 0; i < batch.length; i += 3) {
      const id = batch[i] as number;
      const key = batch[i + 1] as Uint8Array;
      const record = batch[i + 2] as Uint8Array | null;
      if (record === null)
        this.to.store.read(key, (value, error) => this.answer(id, error ? false : (value ?? null)));
      else if (record.length < HEADER_BYTES) throw new Error('malformed record');
      else
        this.to.store.rmw({
          key,
          lock: (key as Buffer).toString('latin1'),
          next: (before) => (before && covers(before, record) ? undefined : record),
          done: (error) => this.answer(id, !error),
        });
    }
  };

  private readonly flushReplies = (): void => {
    const entries = this.replies;
    this.replies = [];
    this.counts.messages += entries.length / 2;
    const batch = this.transmit(entries);
    for (let i = 0; i < batch.length; i += 2) {
      const id = batch[i] as number;
      const q = this.pending.get(id);
      if (!q) throw new Error(`reply to unknown request ${id}`);
      this.pending.delete(id);
      const answer = batch[i + 1];
      if (answer === true) q.reply(null);
      else if (answer === null || answer instanceof Uint8Array) q.reply(answer);
      else q.fail();
    }
  };

  /** Encode, copy (the sender may reuse its buffer), decode: what a byte transport costs at least. */
  private transmit(entries: unknown[]): unknown[] {
    this.counts.frames++;
    return packr.unpack(packr.pack(entries).slice()) as unknown[];
  }
}

class FloorReplica {
  readonly store: Store;
  links: Link[] = [];

  constructor(
    db: FloorDb,
    private readonly actor: number,
    counts: InProcessFloorCounts,
  ) {
    this.store = new Store(db, afterTurn, counts);
  }

  put(key: string, value: Uint8Array, q: Quorum): void {
    const skey = storageKey(key);
    // As the engine's coordinator: the new version is made from the local record, then goes to
    // the peers while the local write is under way; the local write counts once it resolved.
    this.store.rmw({
      key: skey,
      lock: skey.toString('latin1'),
      next: (before) => {
        const record = makeRecord(before, value, this.actor);
        for (const link of this.links) link.request(q, skey, record);
        return record;
      },
      done: (error) => (error ? q.fail() : q.reply(null)),
    });
  }

  get(key: string, q: Quorum): void {
    const skey = storageKey(key);
    for (const link of this.links) link.request(q, skey, null);
    this.store.read(skey, (value, error) => (error ? q.fail() : q.reply(value ?? null)));
  }
}

/** Three replicas in this process; `put`/`get` coordinate at replica `node` (0..2). */
export class InProcessFloor {
  readonly counts: InProcessFloorCounts = {
    reads: 0,
    getManys: 0,
    writes: 0,
    batches: 0,
    messages: 0,
    frames: 0,
    mismatches: 0,
  };
  private readonly replicas: FloorReplica[];
  private readonly onMismatch = () => {
    this.counts.mismatches++;
  };

  private constructor(
    private readonly storages: Storage[],
    private readonly open: { value: boolean }[],
    dbs: FloorDb[],
  ) {
    this.replicas = dbs.map((db, i) => new FloorReplica(db, i, this.counts));
    for (const a of this.replicas)
      a.links = this.replicas.filter((b) => b !== a).map((b) => new Link(b, this.counts));
  }

  static async start(storages: Storage[]): Promise<InProcessFloor> {
    await Promise.all(storages.map((s) => s.open()));
    const made = storages.map(storageDb);
    return new InProcessFloor(
      storages,
      made.map((m) => m.open),
      made.map((m) => m.db),
    );
  }

  put(node: number, key: string, value: Uint8Array): Promise<Answer> {
    return new Promise((resolve, reject) =>
      this.replicas[node]!.put(key, value, new Quorum(W, resolve, reject, this.onMismatch)),
    );
  }

  get(node: number, key: string): Promise<Answer> {
    return new Promise((resolve, reject) =>
      this.replicas[node]!.get(key, new Quorum(R, resolve, reject, this.onMismatch)),
    );
  }

  async stop(): Promise<void> {
    for (const o of this.open) o.value = false;
    await Promise.all(this.storages.map((s) => s.close()));
  }
}
