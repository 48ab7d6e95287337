/**
 * The nemesis: a seeded schedule of faults injected while the workload runs. One round at a time:
 * wait, inject one fault (sometimes two of different kinds at once), hold it, undo it. Every
 * choice comes from one forked generator and every wait from the virtual clock, so the schedule
 * is a pure function of the seed.
 */
import type { LatencyRange, MemoryNetwork } from '../transport/memory.js';
import type { Random } from '../util/random.js';

/** Every fault the nemesis knows. */
export const FAULT_KINDS = [
  /** Split the nodes into two random halves (both non-empty). */
  'partition-halves',
  /** Cut one node off from all others. */
  'isolate',
  /** Two halves that cannot talk, joined by one node that talks to both (Jepsen's bridge). */
  'bridge',
  /** One node's messages to some others are lost; theirs to it still arrive. */
  'one-way',
  /** Lose a share of all messages (5–30 %). */
  'drop',
  /** Deliver a share of requests twice (10–50 %). */
  'duplicate',
  /** Latency spike: one-way delays up to 20–300 ms (request timeouts are 200 ms by default). */
  'latency',
  /** Stop a node (clean stop, data kept) and restart it later with the same storage. */
  'crash',
  /** Stop a node and restart it with an empty storage (a lost disk); at most `maxWipes` per run. */
  'crash-wipe',
  /** Jump one node's clock to a new offset within ± `clockSkewMs` (not undone). */
  'clock-jump',
  /**
   * A whole zone lost (zoned simulations only): every node of one zone partitioned away from the
   * others (and from the clients, which run in the other zones), or every one of them crashed.
   */
  'zone-outage',
] as const;

/** One kind of fault the nemesis injects (see `FAULT_KINDS`). */
export type FaultKind = (typeof FAULT_KINDS)[number];

/** The fault schedule of a simulation. */
export interface NemesisOptions {
  /** Faults to choose from (uniformly). Default: all of `FAULT_KINDS`. */
  faults?: readonly FaultKind[];
  /** Quiet time before each fault, ms of virtual time. Default { min: 200, max: 1500 }. */
  intervalMs?: LatencyRange;
  /** How long a fault is held, ms of virtual time. Default { min: 300, max: 3000 }. */
  durationMs?: LatencyRange;
  /**
   * Most `crash-wipe` faults per run (later ones become plain crashes). Default 1: with W >= 2 an
   * acknowledged write is on at least two nodes, so one lost disk cannot lose it, while two lost
   * disks legitimately can, and the lost-adds checker would then blame the engine for it.
   */
  maxWipes?: number;
  /** Probability that a round injects a second fault of another category at the same time. Default 0.3. */
  combineProbability?: number;
}

/** What the nemesis acts on (the simulation provides it). */
export interface NemesisTarget {
  readonly network: MemoryNetwork;
  readonly ids: readonly string[];
  readonly baseLatency: LatencyRange;
  readonly clockSkewMs: number;
  /** Ids of nodes currently running. */
  running(): string[];
  crash(id: string): Promise<void>;
  restart(id: string, wipe: boolean): Promise<void>;
  setClockOffset(id: string, offsetMs: number): void;
  /** The nodes of each zone (zoned simulations; absent or one group: no zone outage). */
  readonly zones?: readonly (readonly string[])[];
  /** Nodes the clients cannot reach (their zone is cut off), or [] once it is back. */
  setUnreachable?(ids: readonly string[]): void;
  sleep(ms: number): Promise<void>;
  record(phase: 'start' | 'stop', f: string, value: string): void;
}

type Category = 'partition' | 'network' | 'process' | 'clock' | 'zone';

const CATEGORY: Record<FaultKind, Category> = {
  'partition-halves': 'partition',
  isolate: 'partition',
  bridge: 'partition',
  'one-way': 'partition',
  drop: 'network',
  duplicate: 'network',
  latency: 'network',
  crash: 'process',
  'crash-wipe': 'process',
  'clock-jump': 'clock',
  'zone-outage': 'zone',
};

// Undo order: restarts come last, after partitions are healed, so a restarting node can reach
// its seeds (a wiped node must join again before it serves).
const UNDO_ORDER: Category[] = ['clock', 'network', 'partition', 'process', 'zone'];

interface Applied {
  kind: FaultKind;
  description: string;
  undo: () => Promise<void> | void;
}

export class Nemesis {
  private stopped = false;
  private wipes = 0;
  readonly counts: Partial<Record<FaultKind, number>> = {};
  private readonly faults: readonly FaultKind[];
  private readonly interval: LatencyRange;
  private readonly duration: LatencyRange;
  private readonly maxWipes: number;
  private readonly combine: number;

  constructor(
    private readonly target: NemesisTarget,
    private readonly random: Random,
    options: NemesisOptions = {},
  ) {
    // Faults that cannot apply are left out of the choice (so a run without zones draws exactly as
    // it did before zone outages existed).
    this.faults = (options.faults ?? FAULT_KINDS).filter(
      (f) =>
        (f !== 'bridge' || target.ids.length >= 3) &&
        (f !== 'zone-outage' || (target.zones?.length ?? 0) >= 2),
    );
    for (const f of this.faults) {
      if (!FAULT_KINDS.includes(f)) throw new RangeError(`unknown fault ${String(f)}`);
    }
    this.interval = options.intervalMs ?? { min: 200, max: 1500 };
    this.duration = options.durationMs ?? { min: 300, max: 3000 };
    this.maxWipes = options.maxWipes ?? 1;
    this.combine = options.combineProbability ?? 0.3;
  }

  get wiped(): number {
    return this.wipes;
  }

  /** Ends the schedule after the current round (its faults are undone first). */
  stop(): void {
    this.stopped = true;
  }

  /** Runs rounds until `stop()`. */
  async run(): Promise<void> {
    if (this.faults.length === 0 || this.target.ids.length < 2) return;
    while (!this.stopped) {
      await this.target.sleep(this.between(this.interval));
      if (this.stopped) return;
      const kinds = [this.pick(this.faults)];
      if (this.random.next() < this.combine) {
        const others = this.faults.filter((f) => CATEGORY[f] !== CATEGORY[kinds[0]!]);
        if (others.length > 0) kinds.push(this.pick(others));
      }
      const applied: Applied[] = [];
      for (const kind of kinds) {
        const a = await this.apply(kind);
        if (!a) continue;
        applied.push(a);
        this.counts[a.kind] = (this.counts[a.kind] ?? 0) + 1;
        this.target.record('start', a.kind, a.description);
      }
      await this.target.sleep(this.between(this.duration));
      applied.sort((x, y) => UNDO_ORDER.indexOf(CATEGORY[x.kind]) - UNDO_ORDER.indexOf(CATEGORY[y.kind]));
      for (const a of applied) {
        await a.undo();
        this.target.record('stop', a.kind, a.description);
      }
    }
  }

  private async apply(kind: FaultKind): Promise<Applied | undefined> {
    const t = this.target;
    const net = t.network;
    const ids = [...t.ids];
    switch (kind) {
      case 'partition-halves': {
        const shuffled = this.shuffle(ids);
        const cut = 1 + this.random.int(ids.length - 1);
        const a = shuffled.slice(0, cut).sort();
        const b = shuffled.slice(cut).sort();
        net.partition(a, b);
        return { kind, description: `${a.join(' ')} | ${b.join(' ')}`, undo: () => net.heal() };
      }
      case 'isolate': {
        const id = this.pick(ids);
        net.partition([id]);
        return { kind, description: id, undo: () => net.heal() };
      }
      case 'bridge': {
        const shuffled = this.shuffle(ids);
        const bridge = shuffled[0]!;
        const rest = shuffled.slice(1);
        const cut = Math.max(1, Math.floor(rest.length / 2));
        const a = rest.slice(0, cut).sort();
        const b = rest.slice(cut).sort();
        net.partition(a, b);
        return {
          kind,
          description: `${a.join(' ')} | ${b.join(' ')} bridged by ${bridge}`,
          undo: () => net.heal(),
        };
      }
      case 'one-way': {
        const from = this.pick(ids);
        const others = this.shuffle(ids.filter((x) => x !== from));
        const to = others.slice(0, 1 + this.random.int(others.length)).sort();
        for (const x of to) net.partitionOneWay(from, x);
        return { kind, description: `${from} -> ${to.join(' ')} lost`, undo: () => net.heal() };
      }
      case 'drop': {
        const rate = round(0.05 + this.random.next() * 0.25);
        net.setDropRate(rate);
        return { kind, description: `drop ${rate}`, undo: () => net.setDropRate(0) };
      }
      case 'duplicate': {
        const rate = round(0.1 + this.random.next() * 0.4);
        net.setDuplicateRate(rate);
        return { kind, description: `duplicate ${rate}`, undo: () => net.setDuplicateRate(0) };
      }
      case 'latency': {
        const max = Math.round(20 + this.random.next() * 280);
        const spike = { min: Math.min(t.baseLatency.min, max), max };
        net.setLatency(spike);
        return {
          kind,
          description: `latency ${spike.min}-${spike.max} ms`,
          undo: () => net.setLatency(t.baseLatency),
        };
      }
      case 'crash':
      case 'crash-wipe': {
        const running = t.running();
        // Keep a majority up: a cluster that lost most of its nodes only fails requests.
        if (running.length < 2 || running.length - 1 < Math.ceil(t.ids.length / 2)) return undefined;
        const id = this.pick(running);
        const wipe = kind === 'crash-wipe' && this.wipes < this.maxWipes;
        if (wipe) this.wipes++;
        await t.crash(id);
        return {
          kind: wipe ? 'crash-wipe' : 'crash',
          description: wipe ? `${id} (storage wiped)` : id,
          undo: () => t.restart(id, wipe),
        };
      }
      case 'clock-jump': {
        const id = this.pick(ids);
        const offset = Math.round((this.random.next() * 2 - 1) * t.clockSkewMs);
        t.setClockOffset(id, offset);
        return { kind, description: `${id} offset ${offset} ms`, undo: () => {} };
      }
      case 'zone-outage': {
        const zone = [...this.pick(t.zones!)].sort();
        const others = ids.filter((id) => !zone.includes(id)).sort();
        if (this.random.next() < 0.5) {
          net.partition(zone, others);
          t.setUnreachable?.(zone);
          return {
            kind,
            description: `${zone.join(' ')} partitioned away`,
            undo: () => {
              net.heal();
              t.setUnreachable?.([]);
            },
          };
        }
        const crashed = zone.filter((id) => t.running().includes(id));
        for (const id of crashed) await t.crash(id);
        return {
          kind,
          description: `${zone.join(' ')} crashed`,
          undo: async () => {
            for (const id of crashed) await t.restart(id, false);
          },
        };
      }
    }
  }

  private between(r: LatencyRange): number {
    return Math.round(r.min + this.random.next() * (r.max - r.min));
  }

  private pick<T>(items: readonly T[]): T {
    return items[this.random.int(items.length)]!;
  }

  private shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.random.int(i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
