/**
 * Backup and restore: a 5-node cluster with plain values, concurrent siblings, tombstones and a
 * data type is exported through the file format and imported into an empty 3-node cluster. Every
 * get answers the same there; importing again changes no stored byte; importing into a cluster
 * that has newer writes loses none of them and adds no sibling.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  CorruptValueError,
  decodeExport,
  ExportEncoder,
  type ExportRecord,
  LimitError,
  VirtualClock,
} from '../../src/index.js';
import type { Storage } from '../../src/storage/types.js';
import { type Cluster, createCluster, drive } from '../../src/testing/index.js';

const clusters: Cluster<unknown>[] = [];
afterEach(async () => {
  for (const c of clusters.splice(0)) await c.stop();
});

async function start(nodes: number, seed: number): Promise<Cluster<unknown>> {
  const c = await createCluster<unknown>({
    nodes: Array.from({ length: nodes }, (_, i) => `${seed === 1 ? 'a' : 'b'}${i + 1}`),
    seed,
    clock: new VirtualClock(1_000_000 * seed),
    nodeOptions: { partitions: 64, requestTimeoutMs: 200, gossipIntervalMs: 200 },
  });
  clusters.push(c);
  await drive(c.clock, Promise.all(c.nodes.map((n) => n.ready())));
  return c;
}

/** The export of `c` as file bytes, and its records decoded back from them. */
async function exportFile(c: Cluster<unknown>): Promise<Uint8Array> {
  const encoder = new ExportEncoder();
  const parts: Uint8Array[] = [encoder.header({ partitions: 64, createdAt: new Date(0), source: 'test' })];
  for await (const r of c.nodes[2]!.exportObjects({ pageSize: 7 })) parts.push(encoder.record(r));
  parts.push(encoder.trailer());
  return Buffer.concat(parts);
}

async function readFile(bytes: Uint8Array, chunk = 13): Promise<ExportRecord[]> {
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += chunk) chunks.push(bytes.subarray(i, i + chunk));
  const out: ExportRecord[] = [];
  for await (const r of decodeExport(chunks, { maxKeyBytes: 1024, maxObjectBytes: 1 << 20 })) out.push(r);
  return out;
}

async function dump(storage: Storage): Promise<string[]> {
  const out: string[] = [];
  for await (const [k, v] of storage.iterate({ gte: Uint8Array.of(0x01), lt: Uint8Array.of(0x02) })) {
    out.push(`${Buffer.from(k).toString('hex')}=${Buffer.from(v).toString('hex')}`);
  }
  return out;
}

const KEYS = Array.from({ length: 60 }, (_, i) => `key:${i}`);

/** Plain values, siblings, tombstones (alone and beside a value) and a counter. */
async function populate(c: Cluster<unknown>): Promise<void> {
  const [n1, n2, n3] = c.nodes;
  for (const [i, key] of KEYS.entries()) {
    const before = (await n2!.get(key)).context; // of the absent key
    await n1!.put(key, { i, text: `value ${i}` });
    if (i % 5 === 1) await n2!.put(key, `concurrent ${i}`); // no context: a sibling
    if (i % 5 === 2) await n3!.delete(key, { context: (await n3!.get(key)).context });
    if (i % 5 === 3) await n2!.delete(key, { context: before }); // a tombstone beside the value
  }
  await c.nodes[4]!.counter('visits').increment(7);
  await c.settle();
}

async function answers(c: Cluster<unknown>, keys: string[]): Promise<unknown[][]> {
  const out: unknown[][] = [];
  for (const key of keys) out.push((await c.nodes[0]!.get(key, { r: 3 })).values);
  return out;
}

describe('export and import', () => {
  it('restores a 5-node cluster into an empty 3-node one: same answers, siblings included; twice is once', async () => {
    const source = await start(5, 1);
    await populate(source);
    const file = await exportFile(source);
    const records = await readFile(file);
    expect(records.length).toBe(KEYS.length + 1);

    const target = await start(3, 2);
    const imported = await drive(target.clock, target.nodes[0]!.importObjects(records, { concurrency: 8 }));
    expect(imported.imported).toBe(records.length);
    await target.settle();
    const expected = await answers(source, KEYS);
    expect(expected.filter((v) => v.length === 2).length).toBe(12);
    expect(expected.filter((v) => v.length === 0).length).toBe(12);
    expect(await answers(target, KEYS)).toEqual(expected);
    expect(await target.nodes[1]!.counter('visits').value()).toBe(7);
    // Deleted keys are not listed there either; the tombstones came along.
    const listed = [];
    for await (const k of target.nodes[2]!.allKeys()) listed.push(k);
    expect(listed.length).toBe(KEYS.length - 12 + 1);

    const before = await Promise.all(['b1', 'b2', 'b3'].map((id) => dump(target.storage(id))));
    await drive(target.clock, target.nodes[1]!.importObjects(await readFile(file, 1000)));
    await target.settle();
    const after = await Promise.all(['b1', 'b2', 'b3'].map((id) => dump(target.storage(id))));
    expect(after).toEqual(before);
  });

  it('loses none of the newer writes of the cluster it is imported into, and adds no sibling', async () => {
    const source = await start(5, 1);
    await populate(source);
    const records = await readFile(await exportFile(source));
    const target = await start(3, 2);
    await drive(target.clock, target.nodes[0]!.importObjects(records));
    // Newer writes over what was imported: updates, a delete, a resolved sibling pair.
    for (const key of ['key:0', 'key:1', 'key:4', 'key:6']) {
      const read = await target.nodes[2]!.get(key);
      if (key === 'key:4') await target.nodes[2]!.delete(key, { context: read.context });
      else await target.nodes[2]!.put(key, `newer ${key}`, { context: read.context });
    }
    await target.settle();
    const expected = await answers(target, KEYS);
    await drive(target.clock, target.nodes[1]!.importObjects(records));
    await target.settle();
    expect(await answers(target, KEYS)).toEqual(expected);
    expect(expected[0]).toEqual(['newer key:0']);
    expect(expected[1]).toEqual(['newer key:1']);
    expect(expected[4]).toEqual([]);
  });

  it('refuses corrupt, truncated and foreign files, and objects over the limits', async () => {
    const source = await start(5, 1);
    await source.nodes[0]!.put('k', 'v');
    const file = await exportFile(source);
    const flipped = Buffer.from(file);
    flipped[flipped.length - 40]! ^= 0xff;
    await expect(readFile(flipped)).rejects.toBeInstanceOf(CorruptValueError);
    await expect(readFile(file.subarray(0, file.length - 1))).rejects.toThrow(/ends inside/);
    await expect(readFile(Buffer.concat([file, Uint8Array.of(0)]))).rejects.toThrow(/after the trailer/);
    const foreign = Buffer.from(file);
    foreign.write('NOTDYNAM', 0, 'latin1');
    await expect(readFile(foreign)).rejects.toThrow(/not a dynamo-engine export/);
    await expect(readFile(file)).resolves.toHaveLength(1);
    const header = JSON.stringify({
      format: 'dynamo-engine-export',
      version: 2,
      partitions: 64,
      createdAt: '',
      source: '',
    });
    const v2 = Buffer.concat([
      Buffer.from('DYNAMOEX'),
      Buffer.from([0, 0, 0, header.length]),
      Buffer.from(header),
    ]);
    await expect(readFile(v2)).rejects.toThrow(/version 2/);

    const node = source.nodes[0]!;
    const [record] = await readFile(file);
    await expect(
      node.importObjects([{ key: new Uint8Array(2000), object: record!.object }]),
    ).rejects.toBeInstanceOf(LimitError);
    await expect(
      node.importObjects([{ key: record!.key, object: Uint8Array.of(1, 2, 3) }]),
    ).rejects.toBeInstanceOf(CorruptValueError);
    await expect(node.importObjects([], { bogus: true } as never)).rejects.toBeInstanceOf(TypeError);
  });
});
