/**
 * `createCluster`: an in-process cluster on a MemoryNetwork and (by default) a VirtualClock, for
 * applications' unit tests and ours. Nodes are started one after another, each seeded with the
 * first, and the cluster is settled so every node sees the same ring before the first request.
 */
import { DynamoNode } from '../node.js';
import type { DynamoNodeOptions, QuorumOptions } from '../options.js';
import { MemoryStorage } from '../storage/memory.js';
import type { Storage } from '../storage/types.js';
import { MemoryNetwork, type MemoryNetworkOptions } from '../transport/memory.js';
import { VirtualClock } from '../util/clock.js';
import { checkOptionNames, names } from '../util/option-names.js';
import { seededRandom } from '../util/random.js';

/** Options of `createCluster`. Unknown names are errors. */
export interface ClusterOptions<V> {
  /** Node count (ids "n1".."nK") or explicit ids. */
  nodes: number | string[];
  /** N, R and W of every node. Default { n: 3, r: 2, w: 2 }. */
  quorum?: Partial<QuorumOptions>;
  /** Seeds the network's faults and every node's randomness. Default 1. */
  seed?: number | string;
  /** Default: a new VirtualClock (time moves only through `settle()` / `clock.advance()`). */
  clock?: VirtualClock;
  /** Storage per node id; default MemoryStorage (kept across `restart` unless wiped). */
  storage?: (id: string) => Storage;
  /** The MemoryNetwork's latency, drop and duplicate rates (its clock and seed are the cluster's). */
  network?: Omit<MemoryNetworkOptions, 'clock' | 'seed'>;
  /** Any other node option, applied to every node (per node: a function of the id). */
  nodeOptions?: Partial<DynamoNodeOptions<V>> | ((id: string) => Partial<DynamoNodeOptions<V>>);
}

/** An in-process cluster for tests (`createCluster`). */
export interface Cluster<V> {
  /** The clock every node and the network run on. */
  readonly clock: VirtualClock;
  /** The network: partition, heal, drop, delay. */
  readonly network: MemoryNetwork;
  /** Running nodes, in id order of creation (a stopped node stays in the list until restarted). */
  readonly nodes: DynamoNode<V>[];
  /** The running node with this id (throws if there is none). */
  node(id: string): DynamoNode<V>;
  /** Storage of a node (the same object survives restarts). */
  storage(id: string): Storage;
  /** Advances virtual time (default 10 gossip intervals) so gossip, hints and probes run. */
  settle(ms?: number): Promise<void>;
  /** Stops a node cleanly (data kept). */
  stopNode(id: string): Promise<void>;
  /** Restarts a stopped node with the same id and storage (`wipe`: with an empty new storage). */
  restart(id: string, options?: { wipe?: boolean }): Promise<DynamoNode<V>>;
  /** Stops every node. */
  stop(): Promise<void>;
}

/**
 * Awaits `work` while moving `clock` forward in `stepMs` steps, so requests that wait on timeouts
 * (partitions, drops, retries) complete. Rejects once `maxMs` of virtual time passed without it.
 */
export async function drive<T>(
  clock: VirtualClock,
  work: Promise<T>,
  stepMs = 10,
  maxMs = 600_000,
): Promise<T> {
  let done = false;
  const settled = work.finally(() => {
    done = true;
  });
  settled.catch(() => {});
  for (let waited = 0; !done; waited += stepMs) {
    if (waited >= maxMs) throw new Error(`drive: not settled after ${maxMs} ms of virtual time`);
    await clock.advance(stepMs);
  }
  return settled;
}

/**
 * Starts an in-process cluster: the nodes one after another, each seeded with the first, on one
 * MemoryNetwork and (by default) a VirtualClock; resolves once every node sees the same ring.
 */
export async function createCluster<V = unknown>(options: ClusterOptions<V>): Promise<Cluster<V>> {
  checkOptionNames(
    options,
    names<keyof ClusterOptions<V>>({
      nodes: true,
      quorum: true,
      seed: true,
      clock: true,
      storage: true,
      network: true,
      nodeOptions: true,
    }),
    'createCluster options',
  );
  const ids =
    typeof options.nodes === 'number'
      ? Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`)
      : options.nodes;
  if (ids.length === 0) throw new RangeError('a cluster needs at least one node');
  const clock = options.clock ?? new VirtualClock();
  const seed = options.seed ?? 1;
  const network = new MemoryNetwork({ ...options.network, clock, seed });
  const random = seededRandom(seed);
  const storages = new Map<string, Storage>();
  const storageFor = (id: string) => {
    let s = storages.get(id);
    if (!s) {
      s = options.storage ? options.storage(id) : new MemoryStorage();
      storages.set(id, s);
    }
    return s;
  };
  const perNode = (id: string) =>
    typeof options.nodeOptions === 'function' ? options.nodeOptions(id) : (options.nodeOptions ?? {});
  const gossipMs = (id: string) => perNode(id).gossipIntervalMs ?? 1000;

  const startNode = (id: string, seeds: string[]) =>
    DynamoNode.start<V>({
      quorum: options.quorum,
      ...perNode(id),
      id,
      transport: network.connect(id),
      storage: storageFor(id),
      seeds,
      clock,
      random: random.fork(`node:${id}`),
    });

  // Joining may wait on timers (a joiner waits for the rebalance in progress, seeds are retried
  // with backoff), so virtual time moves while a node starts.
  const driven = <T>(work: Promise<T>): Promise<T> => drive(clock, work);

  const nodes: DynamoNode<V>[] = [];
  for (const id of ids) nodes.push(await driven(startNode(id, id === ids[0] ? [] : [ids[0]!])));

  const cluster: Cluster<V> = {
    clock,
    network,
    nodes,
    node(id) {
      const n = nodes.find((x) => x.id === id);
      if (!n) throw new RangeError(`no node ${id}`);
      return n;
    },
    storage: (id) => storageFor(id),
    async settle(ms) {
      await clock.advance(ms ?? gossipMs(ids[0]!) * 10);
    },
    async stopNode(id) {
      await cluster.node(id).stop();
    },
    async restart(id, restartOptions = {}) {
      const index = nodes.findIndex((x) => x.id === id);
      if (index < 0) throw new RangeError(`no node ${id}`);
      const old = nodes[index]!;
      if (old.status !== 'stopped') await old.stop();
      if (restartOptions.wipe)
        storages.set(id, options.storage ? options.storage(`${id}-wiped`) : new MemoryStorage());
      const seeds = ids.filter((x) => x !== id).slice(0, 1);
      const started = await driven(startNode(id, seeds));
      nodes[index] = started;
      return started;
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
  // Let the claimant's broadcast and a few gossip rounds reach everyone before the first request.
  await cluster.settle(gossipMs(ids[0]!) * 3);
  return cluster;
}
