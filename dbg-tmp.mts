import { DynamoNode, MemoryNetwork, MemoryStorage } from './src/index.js';
import { LevelStorage } from './src/level/index.js';
import { runClosedLoop } from './test/bench/lib.js';
import { mkdtemp, rm } from 'node:fs/promises'; import { tmpdir } from 'node:os'; import { join } from 'node:path';
const VALUE = new Uint8Array(100).fill(7);
const codec = { encode: (v: Uint8Array) => v, decode: (b: Uint8Array) => b };
const root = await mkdtemp(join(tmpdir(), 'dbgb-'));
for (const kind of ['memory', 'level']) {
const net = new MemoryNetwork();
const nodes: DynamoNode<Uint8Array>[] = [];
for (const id of ['a','b','c']) nodes.push(await DynamoNode.start<Uint8Array>({ id, transport: net.connect(id), storage: kind === 'memory' ? new MemoryStorage() : new LevelStorage({ path: join(root, kind + id) }), seeds: id === 'a' ? [] : ['a'], quorum: {n:3,r:2,w:2}, codec }));
await new Promise(r => setTimeout(r, 500));
console.log(kind, nodes[0]!.members().map(m => m.partitions));
const put = await runClosedLoop(30000, 128, (i) => nodes[i % 3]!.put(`key-${i}`, VALUE));
const get = await runClosedLoop(30000, 128, (i) => nodes[i % 3]!.get(`key-${i}`));
console.log(kind, 'put', Math.round(put.opsPerSec), 'get', Math.round(get.opsPerSec));
await Promise.all(nodes.map(n => n.stop()));
}
await rm(root, { recursive: true, force: true });
