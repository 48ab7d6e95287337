/** In-memory replicas of one partition for exchange tests: sorted arrays, a tree, real merge. */
import {
  itemHashOf,
  keyHash32,
  LocalPeer,
  MerkleTree,
  type PartitionData,
  RemotePeer,
  serveSync,
} from '../../../src/anti-entropy/index.js';
import { equalBytes } from '../../../src/replica/replica.js';
import {
  decodeMessage,
  decodeReply,
  encodeMessage,
  encodeOk,
  MessageType,
} from '../../../src/transport/wire.js';
import { decodeObject, encodeObject, sync, type VersionedObject } from '../../../src/versioning/index.js';

const utf8 = new TextEncoder();

export function key(i: number | string): Uint8Array {
  return utf8.encode(typeof i === 'number' ? `key:${i}` : i);
}

/** A small realistic object: one live sibling (or a tombstone) written by `actor`. */
export function object(counter: number, value: string | null, actor = 'a@inc1'): Uint8Array {
  const o: VersionedObject = {
    ctx: new Map([[actor, counter]]),
    siblings: [
      { dot: [actor, counter], value: value === null ? null : utf8.encode(value), timestamp: counter },
    ],
  };
  return encodeObject(o);
}

/** One replica of one partition: keys kept sorted, objects beside them, a tree kept current. */
export class ArrayReplica {
  tree = new MerkleTree();
  changeCount = 0;
  distrusted = 0;

  constructor(
    public keys: Uint8Array[] = [],
    public objects: Uint8Array[] = [],
    tree?: MerkleTree,
  ) {
    if (tree) this.tree = tree;
    else
      for (let i = 0; i < keys.length; i++)
        this.tree.add(keyHash32(keys[i]!), itemHashOf(keys[i]!, objects[i]!));
  }

  /** Builds from unsorted entries. */
  static from(entries: [Uint8Array, Uint8Array][]): ArrayReplica {
    const sorted = [...entries].sort((a, b) => Buffer.compare(a[0], b[0]));
    return new ArrayReplica(
      sorted.map((e) => e[0]),
      sorted.map((e) => e[1]),
    );
  }

  /** A copy sharing the key and object buffers (cheap for a million keys). */
  clone(): ArrayReplica {
    return new ArrayReplica(this.keys.slice(), this.objects.slice(), this.tree.clone());
  }

  get(k: Uint8Array): Uint8Array | undefined {
    const i = this.find(k);
    return i >= 0 ? this.objects[i] : undefined;
  }

  /** Sets (or with undefined removes) a key's object, keeping the tree current. */
  set(k: Uint8Array, o: Uint8Array | undefined): void {
    const i = this.find(k);
    const kh = keyHash32(k);
    const before = i >= 0 ? this.objects[i] : undefined;
    this.tree.update(kh, before && itemHashOf(k, before), o && itemHashOf(k, o));
    this.changeCount++;
    if (i >= 0) {
      if (o) this.objects[i] = o;
      else {
        this.keys.splice(i, 1);
        this.objects.splice(i, 1);
      }
    } else if (o) {
      const at = -i - 1;
      this.keys.splice(at, 0, k);
      this.objects.splice(at, 0, o);
    }
  }

  /** The replica merge. */
  merge(k: Uint8Array, incoming: Uint8Array): void {
    const current = this.get(k);
    const merged = current ? encodeObject(sync(decodeObject(current), decodeObject(incoming))) : incoming;
    if (!current || !equalBytes(current, merged)) this.set(k, merged);
  }

  data(): PartitionData {
    return {
      tree: async () => this.tree,
      scan: (after) => this.scan(after),
      get: async (keys) => keys.map((k) => this.get(k)),
      merge: async (k, o) => this.merge(k, o),
      distrust: () => {
        this.distrusted++;
      },
      changes: () => this.changeCount,
    };
  }

  private async *scan(after?: Uint8Array): AsyncGenerator<[Uint8Array, Uint8Array]> {
    let start = 0;
    if (after) {
      const i = this.find(after);
      start = i >= 0 ? i + 1 : -i - 1;
    }
    for (let i = start; i < this.keys.length; i++) yield [this.keys[i]!, this.objects[i]!];
  }

  /** Binary search: index, or -(insertion point) - 1. */
  private find(k: Uint8Array): number {
    let lo = 0;
    let hi = this.keys.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = Buffer.compare(this.keys[mid]!, k);
      if (c === 0) return mid;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -lo - 1;
  }
}

/** A RemotePeer that reaches `replica` through the real message encoding, counting bytes. */
export function remoteOf(replica: ArrayReplica, partitions = 256): RemotePeer {
  const server = new LocalPeer(() => replica.data());
  const limits = { partitions, maxKeyBytes: 1024, maxObjectBytes: 1 << 24 };
  return new RemotePeer(async (message) => {
    const decoded = decodeMessage(encodeMessage(message));
    let fields: unknown[];
    if (decoded[0] === MessageType.Store) {
      await server.store(decoded[1] as number, decoded[3] as [Uint8Array, Uint8Array][]);
      fields = [];
    } else {
      fields = await serveSync(server, decoded, limits);
    }
    return decodeReply(encodeOk(fields));
  }, limits);
}

/**
 * Bytes of a reply listing every (key, 8-byte object hash) of the replica: the naive exchange.
 * Counted as msgpack encodes it (a fixarray of two bins per entry), without building it.
 */
export function fullListBytes(replica: ArrayReplica): number {
  const bin = (n: number) => n + (n < 256 ? 2 : n < 65_536 ? 3 : 5);
  const count = replica.keys.length;
  let bytes = 1 + 1 + (count < 16 ? 1 : count < 65_536 ? 3 : 5); // [0, [entries...]]
  for (const k of replica.keys) bytes += 1 + bin(k.byteLength) + bin(8);
  return bytes;
}

export function sameData(a: ArrayReplica, b: ArrayReplica): boolean {
  if (a.keys.length !== b.keys.length) return false;
  for (let i = 0; i < a.keys.length; i++) {
    if (!equalBytes(a.keys[i]!, b.keys[i]!) || !equalBytes(a.objects[i]!, b.objects[i]!)) return false;
  }
  return true;
}
