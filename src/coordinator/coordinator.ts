/**
 * Request coordination (Dynamo § 4.5, 5): a get asks every replica of the preference list and
 * answers after R replies, merging what it got; a put makes the new dotted version locally,
 * replicates it and answers after W durable stores. Read repair runs after the answer, once every
 * replica has replied or timed out.
 */
import { QuorumError, TimeoutError } from '../errors.js';
import type { Replica } from '../replica/replica.js';
import { equalBytes } from '../replica/replica.js';
import type { PreferenceEntry } from '../ring/index.js';
import { reasonOf, type Rpc } from '../transport/rpc.js';
import { asBytesOrNull, MessageType } from '../transport/wire.js';
import { onAbort } from '../util/abort.js';
import type { Clock, Timer } from '../util/clock.js';
import { decodeObject, encodeObject, sync, type VersionedObject, type VersionVector } from '../versioning/index.js';
import { QuorumTracker } from './quorum.js';

export interface CoordinatorDeps {
  self: string;
  actor: () => string;
  clock: Clock;
  replica: Replica;
  rpc: Rpc;
  requestTimeoutMs: number;
  readRepair: boolean;
  maxObjectBytes: number;
  onReadRepair: (key: Uint8Array, replicas: string[]) => void;
  onBackgroundError: (error: Error, context: string) => void;
}

export interface ReadResult {
  /** Merge of the replies received (undefined: no replica has the key). */
  object: VersionedObject | undefined;
}

interface Reply {
  entry: PreferenceEntry;
  bytes: Uint8Array | undefined;
}

export class Coordinator {
  constructor(private readonly deps: CoordinatorDeps) {}

  async get(
    key: Uint8Array,
    partition: number,
    list: readonly PreferenceEntry[],
    r: number,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<ReadResult> {
    const tracker = new QuorumTracker(r, list.length);
    if (tracker.outcome === 'failed') {
      throw new QuorumError('get', r, 0, [{ node: '*', reason: `only ${list.length} replicas reachable` }]);
    }
    const replies: Reply[] = [];
    const perRequestMs = Math.min(this.deps.requestTimeoutMs, timeoutMs);
    let settled = false;

    const result = new Promise<ReadResult>((resolve, reject) => {
      const finish = (error: unknown) => {
        if (settled) return;
        settled = true;
        timer.cancel();
        removeAbort();
        if (error) reject(error);
        else resolve({ object: mergeReplies(replies) });
      };
      const timer: Timer = this.deps.clock.setTimeout(
        () => finish(quorumTimeout('get', tracker, list)),
        timeoutMs,
      );
      const removeAbort = onAbort(signal, (reason) => finish(reason));
      let done = 0;
      for (const entry of list) {
        this.readOne(entry, key, partition, perRequestMs, signal).then(
          (bytes) => {
            replies.push({ entry, bytes });
            if (tracker.ack(entry.id) === 'met') finish(undefined);
          },
          (err) => {
            if (tracker.fail(entry.id, reasonOf(err)) === 'failed') {
              finish(new QuorumError('get', r, tracker.acked.length, tracker.failures));
            }
          },
        ).finally(() => {
          if (++done === list.length && this.deps.readRepair) this.repair(key, partition, replies);
        });
      }
    });
    return result;
  }

  /**
   * Coordinates a put on this node, which must be in `list`. Stores locally first (the new
   * version depends on the local object), then replicates to the others.
   */
  async put(
    key: Uint8Array,
    partition: number,
    list: readonly PreferenceEntry[],
    value: Uint8Array | null,
    context: VersionVector,
    w: number,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<VersionedObject> {
    const operation = value === null ? 'delete' : 'put';
    const mine = list.find((e) => e.id === this.deps.self);
    if (!mine) throw new RangeError('put: the coordinator must be in the preference list');
    const tracker = new QuorumTracker(w, list.length);
    if (tracker.outcome === 'failed') {
      throw new QuorumError(operation, w, 0, [{ node: '*', reason: `only ${list.length} replicas reachable` }]);
    }
    const object = await this.deps.replica.coordinate(
      partition,
      key,
      context,
      this.deps.actor(),
      value,
      this.deps.clock.now(),
      mine.hintFor ?? null,
    );
    if (tracker.ack(mine.id) === 'met' && list.length === 1) return object;
    const encoded = encodeObject(object);
    const perRequestMs = Math.min(this.deps.requestTimeoutMs, timeoutMs);

    return new Promise<VersionedObject>((resolve, reject) => {
      let settled = false;
      const finish = (error: unknown) => {
        if (settled) return;
        settled = true;
        timer?.cancel();
        removeAbort();
        if (error) reject(error);
        else resolve(object);
      };
      let timer: Timer | undefined;
      const removeAbort = onAbort(signal, (reason) => finish(reason));
      for (const entry of list) {
        if (entry.id === this.deps.self) continue;
        this.deps.rpc
          .call(entry.id, [MessageType.Store, partition, entry.hintFor ?? null, [[key, encoded]]], perRequestMs, signal)
          .then(
            () => {
              if (tracker.ack(entry.id) === 'met') finish(undefined);
            },
            (err) => {
              if (tracker.fail(entry.id, reasonOf(err)) === 'failed') {
                finish(new QuorumError(operation, w, tracker.acked.length, tracker.failures));
              }
            },
          );
      }
      if (tracker.outcome === 'met') finish(undefined);
      else if (!settled) {
        timer = this.deps.clock.setTimeout(() => finish(quorumTimeout(operation, tracker, list)), timeoutMs);
      }
    });
  }

  private async readOne(
    entry: PreferenceEntry,
    key: Uint8Array,
    partition: number,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<Uint8Array | undefined> {
    if (entry.id === this.deps.self) return this.deps.replica.read(partition, key, entry.hintFor ?? null);
    const reply = await this.deps.rpc.call(
      entry.id,
      [MessageType.Read, key, partition, entry.hintFor ?? null],
      timeoutMs,
      signal,
    );
    return asBytesOrNull(reply[0], 'object', this.deps.maxObjectBytes) ?? undefined;
  }

  /** Sends the merged object to every replica that answered with something older or nothing. */
  private repair(key: Uint8Array, partition: number, replies: Reply[]): void {
    let merged: VersionedObject | undefined;
    try {
      merged = mergeReplies(replies);
    } catch (err) {
      this.deps.onBackgroundError(err as Error, 'read repair: corrupt replica object');
      return;
    }
    if (!merged) return;
    const encoded = encodeObject(merged);
    const stale = replies.filter((r) => !r.bytes || !equalBytes(r.bytes, encoded));
    if (stale.length === 0) return;
    this.deps.onReadRepair(
      key,
      stale.map((r) => r.entry.id),
    );
    for (const { entry } of stale) {
      // Merge, not overwrite, at the replica: a repair can never replace a newer version.
      const work =
        entry.id === this.deps.self
          ? this.deps.replica.merge(partition, key, merged, entry.hintFor ?? null)
          : this.deps.rpc.call(
              entry.id,
              [MessageType.Store, partition, entry.hintFor ?? null, [[key, encoded]]],
              this.deps.requestTimeoutMs,
            );
      work.catch((err) => this.deps.onBackgroundError(err as Error, `read repair of ${entry.id}`));
    }
  }
}

function mergeReplies(replies: readonly Reply[]): VersionedObject | undefined {
  let merged: VersionedObject | undefined;
  for (const { bytes } of replies) {
    if (!bytes) continue;
    const object = decodeObject(bytes);
    merged = merged ? sync(merged, object) : object;
  }
  return merged;
}

function quorumTimeout(
  operation: 'get' | 'put' | 'delete',
  tracker: QuorumTracker,
  list: readonly PreferenceEntry[],
): QuorumError {
  const answered = new Set([...tracker.acked, ...tracker.failures.map((f) => f.node)]);
  const failures = [
    ...tracker.failures,
    ...list.filter((e) => !answered.has(e.id)).map((e) => ({ node: e.id, reason: 'DYNAMO_TIMEOUT' })),
  ];
  return new QuorumError(operation, tracker.required, tracker.acked.length, failures, {
    cause: new TimeoutError(`${operation} timed out`),
  });
}
