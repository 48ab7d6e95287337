import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStorage, QuorumError, TimeoutError } from '../../src/index.js';
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

describe('a put’s timeoutMs bounds the whole put', () => {
  it('fails within timeoutMs when its coordinator’s own storage stops answering before the version is made', async () => {
    cluster = await createCluster({
      nodes: 3,
      storage: (id) => {
        const s = new StallingStorage();
        storages.set(id, s);
        return s;
      },
    });
    const [a] = cluster.nodes;
    await drive(cluster.clock, a!.put('k', 'v1'));
    storages.get(a!.id)!.stalled = true;
    const started = cluster.clock.now();
    let settledAt: number | undefined;
    const put = a!.put('k', 'v2', { timeoutMs: 300 }).finally(() => {
      settledAt = cluster!.clock.now();
    });
    put.catch(() => {});
    while (settledAt === undefined && cluster.clock.now() - started < 5_000) await cluster.clock.advance(10);
    const err = await put.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(QuorumError);
    expect((err as QuorumError).cause).toBeInstanceOf(TimeoutError);
    expect(settledAt! - started).toBeLessThanOrEqual(310);
  });

  it('counts the wait for its own storage in timeoutMs when the other replicas do not answer either', async () => {
    cluster = await createCluster({
      nodes: 3,
      storage: (id) => {
        const s = new StallingStorage();
        storages.set(id, s);
        return s;
      },
    });
    const [a, b, c] = cluster.nodes;
    await drive(cluster.clock, a!.put('k', 'v1'));
    // a's disk answers after 200 ms; b and c are cut off from a (and there is no other node).
    cluster.network.partition([a!.id], [b!.id, c!.id]);
    const disk = storages.get(a!.id)!;
    disk.stalled = true;
    cluster.clock.setTimeout(() => disk.resume(), 200);
    const started = cluster.clock.now();
    let settledAt: number | undefined;
    const put = a!.put('k', 'v2', { timeoutMs: 300 }).finally(() => {
      settledAt = cluster!.clock.now();
    });
    put.catch(() => {});
    while (settledAt === undefined && cluster.clock.now() - started < 5_000) await cluster.clock.advance(10);
    const err = await put.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(QuorumError);
    expect(settledAt! - started).toBeLessThanOrEqual(310);
    cluster.network.heal();
  });
});
