import { afterEach, describe, expect, it } from 'vitest';
import { type DynamoNode, MemoryStorage, QuorumError, TimeoutError } from '../../src/index.js';
import { type Cluster, createCluster, drive } from '../../src/testing/index.js';

/** A MemoryStorage whose reads wait while `stalled` (a disk that stopped answering) until `resume()`. */
class StallingStorage extends MemoryStorage {
  stalled = false;
  private waiting: (() => void)[] = [];
  resume(): void {
    this.stalled = false;
    for (const go of this.waiting.splice(0)) go();
  }
  private async gate(): Promise<void> {
    if (this.stalled) await new Promise<void>((go) => this.waiting.push(go));
  }
  override async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    await this.gate();
    return super.get(key);
  }
  override async getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    await this.gate();
    return super.getMany(keys);
  }
}

let cluster: Cluster<unknown> | undefined;
afterEach(async () => {
  for (const s of storages.values()) s.resume();
  await cluster?.stop();
  cluster = undefined;
});
const storages = new Map<string, StallingStorage>();

/** Three nodes on stalling storages, `k` written once. */
async function start(): Promise<Cluster<unknown>> {
  cluster = await createCluster({
    nodes: 3,
    storage: (id) => {
      const s = new StallingStorage();
      storages.set(id, s);
      return s;
    },
  });
  await drive(cluster.clock, cluster.nodes[0]!.put('k', 'v1'));
  return cluster;
}

/** A put with `timeoutMs: 300` through `node`, in virtual time: its error and how long it took. */
async function timedPut(
  c: Cluster<unknown>,
  node: DynamoNode<unknown>,
): Promise<{ err: unknown; tookMs: number }> {
  const started = c.clock.now();
  let settledAt: number | undefined;
  const put = node.put('k', 'v2', { timeoutMs: 300 }).finally(() => {
    settledAt = c.clock.now();
  });
  put.catch(() => {});
  while (settledAt === undefined && c.clock.now() - started < 5_000) await c.clock.advance(10);
  const err = await put.then(
    () => undefined,
    (e: unknown) => e,
  );
  return { err, tookMs: settledAt! - started };
}

describe('a put’s timeoutMs bounds the whole put', () => {
  it('fails within timeoutMs when its coordinator’s own storage stops answering before the version is made', async () => {
    const c = await start();
    const a = c.nodes[0]!;
    storages.get(a.id)!.stalled = true;
    const { err, tookMs } = await timedPut(c, a);
    expect(err).toBeInstanceOf(QuorumError);
    expect((err as QuorumError).cause).toBeInstanceOf(TimeoutError);
    expect(tookMs).toBeLessThanOrEqual(310);
  });

  it('counts the wait for its own storage in timeoutMs when the other replicas do not answer either', async () => {
    const c = await start();
    const [a, b, d] = c.nodes;
    // a's disk answers after 200 ms; the other two are cut off from a (and there is no other node).
    c.network.partition([a!.id], [b!.id, d!.id]);
    const disk = storages.get(a!.id)!;
    disk.stalled = true;
    c.clock.setTimeout(() => disk.resume(), 200);
    const { err, tookMs } = await timedPut(c, a!);
    expect(err).toBeInstanceOf(QuorumError);
    expect(tookMs).toBeLessThanOrEqual(310);
    c.network.heal();
  });
});
