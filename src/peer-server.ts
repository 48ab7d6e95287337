/**
 * PeerServer: answers what other nodes send (replica reads and stores, forwarded puts, gossip,
 * probes, anti-entropy). Every field of a decoded message is checked before anything is applied;
 * a malformed message gets an error reply and changes nothing.
 */
import type { AntiEntropy } from './anti-entropy/anti-entropy.js';
import type { Router } from './coordinator/router.js';
import { NotRunningError } from './errors.js';
import type { HintedHandoff } from './handoff/hints.js';
import type { Membership } from './membership/membership.js';
import { stateToWire } from './membership/state.js';
import type { ReadHandler, Replica } from './replica/replica.js';
import { partitionOf } from './ring/index.js';
import { MAX_BATCH_MESSAGES } from './transport/rpc.js';
import {
  asBytes,
  asBytesOrNull,
  asInt,
  asString,
  asStringOrNull,
  decodeMessage,
  encodeReply,
  failureOf,
  isBatchable,
  MessageType,
  okReply,
} from './transport/wire.js';
import {
  type CheckedObject,
  type Context,
  checkObject,
  decodeContext,
  MAX_OP_CHARS,
  MAX_TTL_MS,
} from './versioning/index.js';

/** Forwarded puts remembered by request id, so a duplicate gets the first one's answer. */
const MAX_REMEMBERED_FORWARDS = 10_000;
/** Entries in one Store message. */
const MAX_STORE_ENTRIES = 10_000;

export interface PeerServerDeps {
  self: string;
  partitions: number;
  n: number;
  maxKeyBytes: number;
  maxValueBytes: number;
  /** Most entries a client context may have (see node.ts `maxContextEntries`). */
  maxContextEntries: number;
  maxObjectBytes: number;
  replica: Replica;
  handoff: HintedHandoff;
  router: Router;
  membership: Membership;
  antiEntropy: AntiEntropy;
  /** This node's incarnation (answered to Ping). */
  incarnation: () => string;
  /** False until the node has loaded its state, and once it stopped: requests are refused with NotRunningError. */
  serving: () => boolean;
  /** Throws NotRunningError unless the node accepts client operations (forwarded puts). */
  ensureRunning: () => void;
  /** Coordinates a put forwarded by another node; resolves to the new context string. */
  coordinatePut: (
    key: Uint8Array,
    partition: number,
    value: Uint8Array | null,
    context: Context,
    w: number,
    timeoutMs: number,
    op: string,
    ttlMs: number | undefined,
    /** Acknowledgements must span this many zones (undefined: no zone condition). */
    minZones: number | undefined,
  ) => Promise<{ context: string }>;
  onHintStored: (key: Uint8Array, target: string) => void;
  /** Serves an admin message (src/admin); throws on bad input or a refused action. */
  admin: (message: unknown[]) => Promise<unknown[]>;
  /** Serves a List message (src/listing); throws on bad input or a partition not held. */
  list: (message: unknown[]) => Promise<unknown[]>;
}

export class PeerServer {
  /** Requests served, by message type. */
  readonly served: Record<string, number> = {};
  private readonly forwardedPuts = new Map<string, Promise<{ context: string }>>();

  constructor(private readonly deps: PeerServerDeps) {}

  /** Serves one request; always resolves to an encoded reply (a failure reply on bad input). */
  handle(from: string, payload: Uint8Array): Promise<Uint8Array> {
    let work: Promise<unknown[]>;
    try {
      const message = decodeMessage(payload);
      work = message[0] === MessageType.Batch ? this.serveBatch(from, message) : this.serve(from, message);
    } catch (err) {
      work = Promise.reject(err);
    }
    return work.then(encodeOk, encodeFailure);
  }

  /**
   * Each message of a Batch is served on its own and answered in order (see MessageType.Batch).
   * Counted by hand rather than with Promise.all, and Reads are answered by callback (one object
   * per read instead of three promises): under load every replica read of every get comes here.
   */
  private serveBatch(from: string, message: unknown[]): Promise<unknown[]> {
    const messages = message[1];
    if (!Array.isArray(messages) || messages.length > MAX_BATCH_MESSAGES) {
      throw new TypeError(`batch: at most ${MAX_BATCH_MESSAGES} messages`);
    }
    return new Promise((resolve) => {
      const batch = new BatchReplies(messages.length, resolve);
      for (let i = 0; i < messages.length; i++) {
        const m: unknown = messages[i];
        if (!Array.isArray(m) || !isBatchable(m[0]))
          batch.settle(i, failureOf(new TypeError('batch: only Read and Store')));
        else if (m[0] === MessageType.Read) {
          try {
            this.read(m, new BatchRead(batch, i));
          } catch (err) {
            batch.settle(i, failureOf(err));
          }
        } else
          this.serve(from, m).then(
            (fields) => batch.settle(i, okReply(fields)),
            (err: unknown) => batch.settle(i, failureOf(err)),
          );
      }
    });
  }

  /** Checks a Read (throwing on bad input) and has the replica answer `handler`. */
  private read(message: unknown[], handler: ReadHandler): void {
    const d = this.deps;
    if (!d.serving()) throw new NotRunningError(`${d.self} is not serving (starting or stopped)`);
    this.count(MessageType.Read);
    const key = asBytes(message[1], 'key', d.maxKeyBytes);
    const partition = asInt(message[2], 'partition', 0, d.partitions - 1);
    const hintFor = asStringOrNull(message[3], 'hintFor');
    d.replica.readWith(partition, key, hintFor, handler);
  }

  private count(type: unknown): void {
    this.served[String(type)] = (this.served[String(type)] ?? 0) + 1;
  }

  /** The reply fields for one decoded message; bad input rejects. */
  private serve(from: string, message: unknown[]): Promise<unknown[]> {
    try {
      return this.dispatch(from, message);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Checks the message (throwing on bad input) and starts its work. Not an async function: under
   * load this runs for every replica read and store, and each async layer costs promises.
   */
  private dispatch(from: string, message: unknown[]): Promise<unknown[]> {
    const d = this.deps;
    if (!d.serving()) throw new NotRunningError(`${d.self} is not serving (starting or stopped)`);
    const type = message[0];
    if (type === MessageType.Read)
      return new Promise((resolve, reject) =>
        this.read(message, { read: (bytes) => resolve(objectFields(bytes)), failed: reject }),
      );
    this.count(type);
    switch (type) {
      case MessageType.Store: {
        const partition = asInt(message[1], 'partition', 0, d.partitions - 1);
        const hintFor = asStringOrNull(message[2], 'hintFor');
        const entries = message[3];
        if (!Array.isArray(entries) || entries.length > MAX_STORE_ENTRIES)
          throw new TypeError(`store: entries must be an array of at most ${MAX_STORE_ENTRIES}`);
        const decoded = entries.map((e) => {
          if (!Array.isArray(e) || e.length !== 2) throw new TypeError('store: entry must be [key, object]');
          // Checked as decodeObject would, decoded only if a replica has something to merge it with.
          const object = checkObject(asBytes(e[1], 'object', d.maxObjectBytes));
          return [asBytes(e[0], 'key', d.maxKeyBytes), object] as const;
        });
        // Every entry is checked above before any is applied; most Stores carry one.
        const work = decoded.map(([key, object]) => this.store(partition, hintFor, key, object));
        return (work.length === 1 ? work[0]! : Promise.all(work)).then(noFields);
      }
      case MessageType.CoordinatePut:
        return this.forwardedPut(from, message).then((r) => [r.context]);
      case MessageType.Join:
        return d.membership.handleJoin(message[1], message[2]);
      case MessageType.Gossip:
        return Promise.resolve(d.membership.handleGossip(message[1], message[2]));
      case MessageType.Ping:
        // Who answers here: a seed asked to admit a node under a member's id checks the member's
        // incarnation (one live node per id).
        return Promise.resolve([d.self, d.incarnation()]);
      case MessageType.State:
        return Promise.resolve([stateToWire(d.membership.state), [d.self, d.partitions, d.n]]);
      case MessageType.AeHashes:
      case MessageType.AeKeys:
      case MessageType.AeFetch:
      case MessageType.AePurge:
        return d.antiEntropy.handle(message);
      case MessageType.Admin:
        return d.admin(message);
      case MessageType.List:
        return d.list(message);
      default:
        throw new TypeError(`unknown message type ${String(type)}`);
    }
  }

  private forwardedPut(from: string, message: unknown[]): Promise<{ context: string }> {
    const d = this.deps;
    d.ensureRunning();
    const key = asBytes(message[1], 'key', d.maxKeyBytes);
    const value = asBytesOrNull(message[2], 'value', d.maxValueBytes);
    const context = decodeContext(asString(message[3], 'context'), d.maxContextEntries);
    const w = asInt(message[4], 'w', 1, d.n);
    const timeoutMs = asInt(message[5], 'timeoutMs', 1, 3_600_000);
    const op = asString(message[6], 'op', MAX_OP_CHARS);
    if (op.length === 0) throw new TypeError('op must not be empty');
    // Absent from nodes that predate expiry: no TTL.
    const ttlMs =
      message[7] === null || message[7] === undefined ? undefined : asInt(message[7], 'ttlMs', 1, MAX_TTL_MS);
    if (ttlMs !== undefined && value === null) throw new TypeError('ttlMs applies to put, not delete');
    // A ninth field: the put's minZones (absent: none).
    const minZones = message.length > 8 ? asInt(message[8], 'minZones', 1, d.n) : undefined;
    const requestId = `${from}\u0000${op}`;
    // A duplicated forward (the network delivered it twice) gets the first one's answer without
    // coordinating again. Correctness does not depend on it (a write whose op the replica has
    // seen adds no dot); a failed one is forgotten, so that a retry is coordinated afresh.
    let result = this.forwardedPuts.get(requestId);
    if (!result) {
      result = d.coordinatePut(
        key,
        partitionOf(key, d.partitions),
        value,
        context,
        w,
        timeoutMs,
        op,
        ttlMs,
        minZones,
      );
      this.forwardedPuts.set(requestId, result);
      result.catch(() => {
        if (this.forwardedPuts.get(requestId) === result) this.forwardedPuts.delete(requestId);
      });
      if (this.forwardedPuts.size > MAX_REMEMBERED_FORWARDS) {
        this.forwardedPuts.delete(this.forwardedPuts.keys().next().value!);
      }
    }
    return result;
  }

  /** Applies one replicated version: as data, as a hint it stands in for, or forwarded as hints. */
  private store(
    partition: number,
    hintFor: string | null,
    key: Uint8Array,
    object: CheckedObject,
  ): Promise<unknown> {
    const d = this.deps;
    if (hintFor !== null && hintFor !== d.self) {
      return d.handoff.store(hintFor, partition, key, object.object).then(() => d.onHintStored(key, hintFor));
    }
    if (d.router.holds(partition)) return d.replica.merge(partition, key, object, null);
    // A sender with an older ring: keep the version as hints for the partition's current
    // replicas rather than as data nobody will read here.
    return Promise.all(
      d.router
        .primaries(d.membership.owners, partition)
        .map((owner) => d.handoff.store(owner, partition, key, object.object)),
    );
  }
}

/** The replies of one Batch, resolved once every message has its own. */
class BatchReplies {
  private readonly replies: unknown[];
  private left: number;

  constructor(
    size: number,
    private readonly resolve: (fields: unknown[]) => void,
  ) {
    this.replies = new Array(size);
    this.left = size;
    if (size === 0) resolve([this.replies]);
  }

  settle(i: number, reply: unknown): void {
    this.replies[i] = reply;
    if (--this.left === 0) this.resolve([this.replies]);
  }
}

/** A Read inside a Batch: its replica's answer becomes reply `i`. */
class BatchRead implements ReadHandler {
  constructor(
    private readonly batch: BatchReplies,
    private readonly i: number,
  ) {}

  read(bytes: Uint8Array | undefined): void {
    this.batch.settle(this.i, okReply(objectFields(bytes)));
  }

  failed(error: unknown): void {
    this.batch.settle(this.i, failureOf(error));
  }
}

function encodeOk(fields: unknown[]): Uint8Array {
  return encodeReply(okReply(fields));
}

function encodeFailure(err: unknown): Uint8Array {
  return encodeReply(failureOf(err));
}

function objectFields(bytes: Uint8Array | undefined): unknown[] {
  return [bytes ?? null];
}

function noFields(): unknown[] {
  return [];
}
