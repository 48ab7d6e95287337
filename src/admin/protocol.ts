/**
 * The admin message set, served on a node's own transport port next to the peer messages
 * (`MessageType.Admin`): `[Admin, version, command, ...args] → [reportJson]`. Read-only commands
 * (status, ring, transfers, stats) answer anyone the transport let in; actions (leave, remove)
 * only on a transport that authenticates its peers (`Transport.authenticated`). Replies are JSON:
 * small, versioned by `ADMIN_PROTOCOL_VERSION`, and exactly what `dynamo-engine --json` prints.
 */
import type { ZoneStatus } from '../membership/status.js';
import type { MemberView, NodeStatus } from '../membership/types.js';
import type { NodeStats } from '../stats.js';
import { MessageType } from '../transport/wire.js';

export const ADMIN_PROTOCOL_VERSION = 1;
export const ADMIN_COMMANDS = ['status', 'ring', 'transfers', 'stats', 'leave', 'remove'] as const;
export type AdminCommand = (typeof ADMIN_COMMANDS)[number];
/** Commands that change the cluster: refused unless the node's transport authenticates its peers. */
export const ADMIN_ACTIONS: ReadonlySet<AdminCommand> = new Set<AdminCommand>(['leave', 'remove']);
/** Longest member id `remove` accepts. */
export const MAX_ADMIN_ARG_LENGTH = 256;

export function isAdminCommand(value: string): value is AdminCommand {
  return (ADMIN_COMMANDS as readonly string[]).includes(value);
}

/** Arguments each command takes (`remove <id>`; the rest none). */
export function adminArity(command: AdminCommand): number {
  return command === 'remove' ? 1 : 0;
}

export function adminRequest(command: string, args: readonly unknown[] = []): unknown[] {
  return [MessageType.Admin, ADMIN_PROTOCOL_VERSION, command, ...args];
}

/** The node that answered. */
export interface NodeIdentity {
  id: string;
  address: string;
  status: NodeStatus;
}

/** `status`: every member as the answering node sees it, like `nodetool status`. */
export interface StatusReport {
  node: NodeIdentity;
  ring: {
    version: number;
    settled: boolean;
    claimant: string;
    partitions: number;
    n: number;
    /** Zones each key's replicas must span and the partitions that fall short (null without zones). */
    zones?: { required: number; violations: number } | null;
  };
  /** `ownership`: the member's fraction of the ring's partitions (0..1). */
  members: (MemberView & { ownership: number })[];
}

/** `ring`: ownership per member against its weighted fair share, and the balance. */
export interface RingReport {
  node: NodeIdentity;
  version: number;
  settled: boolean;
  claimant: string;
  partitions: number;
  n: number;
  members: {
    id: string;
    status: MemberView['status'];
    weight: number;
    /** The member's zone, when it has one. */
    zone?: string;
    partitions: number;
    /**
     * Fraction of the partitions it owns, and its fair share (weight / total weight of the members
     * that stay; with zones, its weighted share of what the guarantee lets its zone hold).
     */
    share: number;
    idealShare: number;
  }[];
  /** Per zone, and how the ring meets the zone guarantee (null or absent without zones). */
  zones?: ZoneStatus | null;
  /** Largest and smallest share / idealShare over the members that stay (1 = perfect balance). */
  balance: { maxOverIdeal: number; minOverIdeal: number };
  pendingTransfers: number;
}

/** One pending partition move (`node.ringStatus().pending`). */
export interface TransferReportEntry {
  partition: number;
  from: string;
  to: string;
  keysSent: number;
  /** Keys the sender counted when it started; null before it started. */
  total: number | null;
}

/** `transfers`: the moves of the rebalance in progress, with their progress. */
export interface TransfersReport {
  node: NodeIdentity;
  version: number;
  settled: boolean;
  pending: TransferReportEntry[];
}

/** `stats`: `node.stats()` and the node's clock, so a client can turn two samples into rates. */
export interface StatsReport {
  node: NodeIdentity;
  nowMs: number;
  stats: NodeStats;
}

/** `leave` / `remove`: the action was accepted (leaving runs on in the background). */
export interface ActionReport {
  node: NodeIdentity;
  action: 'leave' | 'remove';
  member: string;
}

export interface AdminReports {
  status: StatusReport;
  ring: RingReport;
  transfers: TransfersReport;
  stats: StatsReport;
  leave: ActionReport;
  remove: ActionReport;
}
