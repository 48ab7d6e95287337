/**
 * `npm run demo`: five Dynamo nodes in one process keep a shopping cart available through a
 * network partition. Two shoppers add items on opposite sides of the split, the cart diverges
 * into two siblings, and after the network heals the application's merge function (set union)
 * turns them back into one cart. Nothing is lost, and nobody was refused a write.
 *
 * Runs on the real clock with short timeouts so it finishes in a few seconds.
 */
import { DynamoNode, MemoryNetwork, MemoryStorage, QuorumError, resolvers } from '../src/index.js';

type Cart = string[];

const say = (text: string) => console.log(text);
const show = (cart: Cart | undefined) => (cart && cart.length > 0 ? `[${cart.join(', ')}]` : '(empty)');
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// The application's merge: a cart is a set of items, so concurrent versions merge by union.
const mergeCarts = resolvers.merge<Cart>((a, b) => [...new Set([...a, ...b])].sort());

async function main(): Promise<void> {
  const network = new MemoryNetwork();
  const ids = ['a', 'b', 'c', 'd', 'e'];
  const nodes: DynamoNode<Cart>[] = [];
  say('1. Starting five nodes (N=3 replicas per key, R=2, W=2) on an in-process network.');
  for (const id of ids) {
    nodes.push(
      await DynamoNode.start<Cart>({
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
  const [a, , , d] = nodes as [
    DynamoNode<Cart>,
    DynamoNode<Cart>,
    DynamoNode<Cart>,
    DynamoNode<Cart>,
    DynamoNode<Cart>,
  ];
  for (const m of a.members()) say(`   node ${m.id}: ${m.status}, owns ${m.partitions} of 256 partitions`);
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

  say('\n2. Alice adds a book through node a.');
  await a.update(key, (cart) => [...(cart ?? []), 'book']);
  say(`   cart = ${show((await d.get(key)).values[0])} (read through node d)`);

  say('\n3. The network splits: {a, b, c} | {d, e}.');
  network.partition(['a', 'b', 'c'], ['d', 'e']);

  say('   Alice adds a pen through node a; Bob, sharing the cart, adds a lamp through node d.');
  await a.update(key, (cart) => [...(cart ?? []), 'pen']);
  say('   a accepted the pen.');
  // d first has to find out that a, b and c are unreachable (the failure detector marks them
  // down when requests time out); then sloppy quorum lets d and e take the write with hints.
  for (let attempt = 1; ; attempt++) {
    try {
      await d.update(key, (cart) => [...(cart ?? []), 'lamp']);
      const hints = nodes.reduce((sum, n) => sum + n.stats().hints.pending, 0);
      say(
        `   d accepted the lamp (attempt ${attempt}); ${hints} hint(s) wait on d and e for the unreachable owners.`,
      );
      break;
    } catch (err) {
      if (!(err instanceof QuorumError) || attempt > 5) throw err;
      say(`   attempt ${attempt}: ${err.message} — d now routes around the unreachable nodes.`);
    }
  }
  say(
    `   a's side sees ${show((await a.get(key)).values[0])}; d's side sees ${show((await d.get(key)).values[0])}.`,
  );

  say('\n4. The network heals; hinted handoff delivers the lamp to its owners.');
  network.heal();
  await pause(600);
  say(`   hints still waiting: ${nodes.reduce((sum, n) => sum + n.stats().hints.pending, 0)}`);
  const raw = await a.get(key);
  say(`   A read now finds ${raw.values.length} concurrent versions (siblings):`);
  for (const v of raw.values) say(`     - ${show(v)}`);

  say('\n5. The application resolves them with its merge function (union) and writes the result back.');
  const merged = mergeCarts(raw.values, { key, versions: [] });
  await a.put(key, merged, { context: raw.context });
  const final = await d.get(key);
  say(`   cart = ${show(final.values[0])}, ${final.values.length} version. Nothing lost, no write refused.`);

  const s = a.stats();
  say(
    `\n   node a: ${s.put.count} puts, ${s.get.count} gets, ${s.siblings.conflictedReads} conflicted read(s).`,
  );
  await Promise.all(nodes.map((n) => n.stop()));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
