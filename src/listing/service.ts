/**
 * Wiring of listings for a DynamoNode (serves List requests from its storage, and lists locally
 * when the plan names it) or a DynamoClient (no storage: every scan is a request to a replica).
 */
import type { Storage } from '../storage/types.js';
import type { Rpc } from '../transport/rpc.js';
import { MessageType, WireError } from '../transport/wire.js';
import type { Clock } from '../util/clock.js';
import { decodeObject, isDeadAt } from '../versioning/index.js';
import { Lister, type ListingRing } from './lister.js';
import {
  type ListRequest,
  listReplyFields,
  listRequestFields,
  parseListReply,
  parseListRequest,
  SCAN_PER_KEY,
  type ScanResult,
  scanPartitions,
} from './scan.js';

export interface ListingServiceDeps {
  self: string;
  partitions: number;
  clock: Clock;
  rpc: Rpc;
  /** The current ring's owners. */
  owners(): readonly string[];
  /** The partition's primaries in `owners`. */
  primaries(owners: readonly string[], partition: number): readonly string[];
  isUp(id: string): boolean;
  requestTimeoutMs: number;
  maxKeyBytes: number;
  maxObjectBytes: number;
  /** A node's own data; absent for a client. */
  local?: {
    storage: Storage;
    /** True while this node is a primary of `partition` in its current ring. */
    holds(partition: number): boolean;
  };
}

/** One List request may take this many request timeouts (it scans up to SCAN_PER_KEY keys per key returned). */
const LIST_TIMEOUT_FACTOR = 5;

export class ListingService {
  readonly lister: Lister;
  private ringCache: ListingRing | undefined;

  constructor(private readonly deps: ListingServiceDeps) {
    this.lister = new Lister({
      self: deps.self,
      partitions: deps.partitions,
      clock: deps.clock,
      ring: () => this.ring(),
      isUp: deps.isUp,
      requestTimeoutMs: deps.requestTimeoutMs * LIST_TIMEOUT_FACTOR,
      request: (id, request, timeoutMs, signal) =>
        id === deps.self && deps.local
          ? this.scanLocal(request)
          : this.scanRemote(id, request, timeoutMs, signal),
    });
  }

  private ring(): ListingRing {
    const owners = this.deps.owners();
    if (this.ringCache?.owners !== owners) {
      const primaries = this.deps.primaries;
      this.ringCache = {
        owners,
        members: [...new Set(owners)].sort(),
        primaries: (p) => primaries(owners, p),
      };
    }
    return this.ringCache;
  }

  /** Serves a peer's List message. */
  async handle(message: readonly unknown[]): Promise<unknown[]> {
    const request = parseListRequest(message, this.deps.partitions, this.deps.maxKeyBytes);
    return listReplyFields(await this.scanLocal(request), request.mode);
  }

  private scanLocal(request: ListRequest): Promise<ScanResult> {
    const local = this.deps.local;
    if (!local) return Promise.reject(new RangeError('a DynamoClient holds no data'));
    return scanPartitions(
      local.storage,
      request.partitions,
      request.after,
      { maxKeys: request.maxKeys, maxBytes: request.maxBytes, maxScanned: request.maxKeys * SCAN_PER_KEY },
      request.mode,
      (object) => liveObject(object, this.deps.clock.now()),
      local.holds,
    );
  }

  private async scanRemote(
    id: string,
    request: ListRequest,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<ScanResult> {
    const fields = await this.deps.rpc.call(
      id,
      [MessageType.List, ...listRequestFields(request)],
      timeoutMs,
      signal,
    );
    if (!Array.isArray(fields)) throw new WireError('list reply is not an array');
    return parseListReply(fields, request, this.deps.maxKeyBytes, this.deps.maxObjectBytes);
  }
}

/**
 * True when the stored object has a sibling live at `now` (not a tombstone, not expired). Objects
 * of two or three fields (no expiry list: 0x92, 0x93) with no nil byte (0xc0, a tombstone's value)
 * and at least one sibling (an empty sibling list ends the object with 0x90) are live without a
 * decode.
 */
export function liveObject(object: Uint8Array, now: number): boolean {
  if (object[0]! < 0x94 && object.indexOf(0xc0) < 0 && object[object.byteLength - 1] !== 0x90) return true;
  return !isDeadAt(decodeObject(object), now);
}
