/**
 * The harness's network: one Linux network namespace per node, each with a veth whose other end
 * is a port of a bridge living in a namespace of its own. Nothing is connected to the host's
 * network and no namespace has a default route, so traffic can only go between the namespaces
 * made here (addresses `SUBNET.1..k`, private, used nowhere else).
 *
 * Partitions drop packets silently, as a failed switch or a firewall would: the receiving node's
 * namespace gets a policy rule `from <peer> iif eth0 blackhole` (ahead of the local table), so its
 * kernel discards what the peer sends without a reset or an ICMP error; the sender learns nothing
 * and retransmits. Blocking both directions of a pair puts a rule in both namespaces.
 */
import { execFileSync } from 'node:child_process';

/** Private addresses used only inside the namespaces this module creates. */
export const SUBNET = '10.213.47';
/** Policy-rule priority of the partition rules (the local table is moved behind them, to 1000). */
const BLOCK_PREF = '100';
/** Bound on one `ip` command, ms. */
const IP_TIMEOUT_MS = 10_000;

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe', timeout: IP_TIMEOUT_MS });
}

/** Why namespaces cannot be made here, or undefined when they can (tries one, then removes it). */
export function unavailableReason(prefix: string): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    return 'network namespaces need root (run as root)';
  const name = `${prefix}-check`;
  try {
    ip(['netns', 'add', name]);
  } catch (err) {
    return `\`ip netns add\` failed: ${firstLine(err)}`;
  }
  try {
    ip(['-n', name, 'link', 'add', 'chk0', 'type', 'veth', 'peer', 'name', 'chk1']);
    ip(['-n', name, 'link', 'add', 'br0', 'type', 'bridge']);
  } catch (err) {
    return `veth or bridge devices cannot be created: ${firstLine(err)}`;
  } finally {
    try {
      ip(['netns', 'del', name]);
    } catch {
      // Reported by the caller's cleanup, if it matters.
    }
  }
  return undefined;
}

function firstLine(err: unknown): string {
  const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
  return (stderr || (err instanceof Error ? err.message : String(err))).split('\n')[0]!;
}

export class ChaosNetwork {
  /** Namespaces this instance created and has not removed yet. */
  private readonly made: string[] = [];
  /** Directed blocks in force: `${from}>${to}` (packets from `from` dropped at `to`). */
  private readonly blocks = new Set<string>();

  constructor(
    private readonly prefix: string,
    readonly ids: readonly string[],
  ) {}

  namespace(id: string): string {
    return `${this.prefix}-${id}`;
  }

  addressOf(id: string): string {
    return `${SUBNET}.${this.ids.indexOf(id) + 1}`;
  }

  create(): void {
    const bridge = `${this.prefix}-br`;
    this.add(bridge);
    ip(['-n', bridge, 'link', 'add', 'br0', 'type', 'bridge']);
    ip(['-n', bridge, 'link', 'set', 'br0', 'up']);
    for (const [i, id] of this.ids.entries()) {
      const ns = this.namespace(id);
      this.add(ns);
      const port = `v${i + 1}`;
      ip(['-n', bridge, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      ip(['-n', bridge, 'link', 'set', port, 'master', 'br0']);
      ip(['-n', bridge, 'link', 'set', port, 'up']);
      ip(['-n', ns, 'addr', 'add', `${this.addressOf(id)}/24`, 'dev', 'eth0']);
      ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      // Partition rules must be consulted before the local table, which normally comes first.
      ip(['-n', ns, 'rule', 'add', 'pref', '1000', 'lookup', 'local']);
      ip(['-n', ns, 'rule', 'del', 'pref', '0']);
    }
  }

  /** Drops every packet between each node of `a` and each node of `b`, both ways. */
  partition(a: readonly string[], b: readonly string[]): void {
    for (const x of a) {
      for (const y of b) {
        this.block(x, y);
        this.block(y, x);
      }
    }
  }

  /** Cuts `id` off from every other node. */
  isolate(id: string): void {
    this.partition(
      [id],
      this.ids.filter((x) => x !== id),
    );
  }

  /** Removes every partition rule in force. */
  heal(): void {
    for (const key of [...this.blocks]) {
      const [from, to] = key.split('>') as [string, string];
      ip(['-n', this.namespace(to), 'rule', 'del', ...this.blockSelector(from)]);
      this.blocks.delete(key);
    }
  }

  /** Removes every namespace made (their devices go with them). Never throws; returns what failed. */
  destroy(): string[] {
    const failed: string[] = [];
    this.blocks.clear();
    while (this.made.length > 0) {
      const ns = this.made.pop()!;
      try {
        ip(['netns', 'del', ns]);
      } catch (err) {
        failed.push(`${ns}: ${firstLine(err)}`);
      }
    }
    return failed;
  }

  private add(ns: string): void {
    ip(['netns', 'add', ns]);
    this.made.push(ns);
  }

  private block(from: string, to: string): void {
    const key = `${from}>${to}`;
    if (this.blocks.has(key)) return;
    ip(['-n', this.namespace(to), 'rule', 'add', ...this.blockSelector(from)]);
    this.blocks.add(key);
  }

  private blockSelector(from: string): string[] {
    return ['pref', BLOCK_PREF, 'from', this.addressOf(from), 'iif', 'eth0', 'blackhole'];
  }
}
