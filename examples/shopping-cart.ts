/**
 * `npm run demo`: five Dynamo nodes in one process keep a shopping cart, an observed-remove set
 * (`node.set(key)`), available through a network partition and a node failure. Two shoppers add
 * and remove items on opposite sides of the split; when the network heals, the set merges itself:
 * every add survives unless its remover had seen it, no removed item comes back, and the
 * application never sees a sibling or writes a merge function.
 *
 * Runs on the real clock with short timeouts so it finishes in a few seconds.
 */
import { DynamoNode, MemoryNetwork, MemoryStorage, QuorumError } from 'dynamo-engine';

const say = (text: string) => console.log(text);
const show = (cart: string[]) => (cart.length > 0 ? `[${cart.join(', ')}]` : '(empty)');
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A node cut off from a key's owners needs a timeout or two to route around them (sloppy quorum). */
async function retrying<T>(what: string, op: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      if (!(err instanceof QuorumError) || attempt > 5) throw err;
      await pause(100);
      say(`   (${what}: attempt ${attempt} timed out on unreachable owners; retrying around them)`);
    }
  }
}

async function main(): Promise<void> {
  const network = new MemoryNetwork();
  const ids = ['a', 'b', 'c', 'd', 'e'];
  const nodes: DynamoNode[] = [];
  say('1. Starting five nodes (N=3 replicas per key, R=2, W=2) on an in-process network.');
  for (const id of ids) {
    nodes.push(
      await DynamoNode.start({
        id,
        transport: network.connect(id),
        storage: new MemoryStorage(),
        seeds: id === 'a' ? [] : ['a'],
        quorum: { n: 3, r: 2, w: 2 },
        requestTimeoutMs: 150,
        gossipIntervalMs: 100,
        hintedHandoff: { intervalMs: 100 },
      }),
    );
  }
  await pause(300); // let gossip spread the ring
  const [a, b, , d] = nodes as [DynamoNode, DynamoNode, DynamoNode, DynamoNode, DynamoNode];
  // A cart whose replicas live mostly on the side of the coming split that Bob cannot reach.
  const key =
    ['cart:alice', 'cart:bob', 'cart:carol', 'cart:dave', 'cart:erin'].find(
      (k) => a.preferenceList(k).filter((e) => ['a', 'b', 'c'].includes(e.id)).length >= 2,
    ) ?? 'cart:alice';
  say(
    `   "${key}" lives on ${a
      .preferenceList(key)
      .map((e) => e.id)
      .join(', ')}.`,
  );
  const cartAt = (node: DynamoNode) => node.set(key);

  say('\n2. Alice puts a book and a pen in the cart through node a.');
  await cartAt(a).add(['book', 'pen']);
  const bobSaw = await cartAt(d).read();
  say(`   Bob looks at the cart through node d: ${show(bobSaw.value)}.`);

  say('\n3. The network splits: {a, b, c} | {d, e}.');
  network.partition(['a', 'b', 'c'], ['d', 'e']);
  say('   Alice removes the pen, adds a mug, and adds a second book (a gift) through node a.');
  await cartAt(a).remove('pen');
  await cartAt(a).add(['mug', 'book']);
  say(`   a's side: ${show(await cartAt(a).value())}`);
  say('   Bob adds a lamp, and removes the book he saw before the split, through node d.');
  // Only one of the cart's owners (d) is on Bob's side, so his operations settle for one reply
  // and one durable copy there; the owners on Alice's side catch up after the split (read repair,
  // anti-entropy). Dynamo's per-request R and W are for exactly this.
  const onBobsSide = { r: 1, w: 1 };
  await retrying('lamp', () => cartAt(d).add('lamp', onBobsSide));
  await retrying('remove', () => cartAt(d).remove('book', { ...onBobsSide, context: bobSaw.context }));
  say(`   d's side: ${show(await cartAt(d).value(onBobsSide))}`);

  say('\n4. The network heals. The next read merges both sides and writes the merge back.');
  network.heal();
  await pause(300);

  say('\n5. Node b fails. The cart is still read and written through the others.');
  await b.stop();
  const merged = await retrying('read', () => cartAt(d).value());
  say(`   cart = ${show(merged)} (through node d, merged by the set itself, no sibling to resolve):`);
  say('   - the pen stays removed (Alice saw it), the mug and the lamp are in;');
  say('   - the book is in: Bob removed the book he had seen, not the one Alice added after.');
  await retrying('add', () => cartAt(a).add('umbrella'));
  say('   Alice adds an umbrella through node a, with b still down.');

  say('\n6. Every surviving node reads the same cart.');
  for (const n of nodes.filter((x) => x.status === 'running')) {
    say(`   node ${n.id}: ${show(await retrying('read', () => cartAt(n).value()))}`);
  }
  await Promise.all(nodes.map((n) => n.stop()));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
