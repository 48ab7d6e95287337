/**
 * AdminService: answers the admin messages (see `protocol.ts`) for one node. Every field is
 * checked before anything happens; bad input (unknown command, wrong version, missing or extra
 * arguments) is a WireError reply and changes nothing. Actions need an authenticated transport.
 */
import { AuthError, NotRunningError } from '../errors.js';
import type { ZoneStatus } from '../membership/status.js';
import type { MemberView } from '../membership/types.js';
import { claimShares } from '../ring/index.js';
import type { NodeStats } from '../stats.js';
import { asString, WireError } from '../transport/wire.js';
import { type DataAdminService, isDataCommand } from './data.js';
import {
  type ActionReport,
  ADMIN_ACTIONS,
  ADMIN_PROTOCOL_VERSION,
  type AdminReports,
  adminArity,
  isAdminCommand,
  MAX_ADMIN_ARG_LENGTH,
  type NodeIdentity,
  type RingReport,
  type TransferReportEntry,
} from './protocol.js';

export interface AdminDeps {
  self: () => NodeIdentity;
  partitions: number;
  n: number;
  ringStatus: () => {
    version: number;
    settled: boolean;
    claimant: string;
    pending: readonly TransferReportEntry[];
    members: readonly MemberView[];
    zones?: ZoneStatus | null;
  };
  stats: () => NodeStats;
  /** Starts leaving; the promise settles once the node has left and stopped. */
  leave: () => Promise<void>;
  remove: (id: string) => void;
  /** Whether the transport authenticates every peer (`Transport.authenticated`). */
  authenticated: () => boolean;
  now: () => number;
  onError: (error: Error, context: string) => void;
  /** The data commands (keys, export, import; see data.ts). */
  data?: DataAdminService;
}

export class AdminService {
  constructor(private readonly deps: AdminDeps) {}

  /** The reply fields for one admin message; throws on bad input or a refused action. */
  handle(message: readonly unknown[]): Promise<unknown[]> {
    const d = this.deps;
    if (message[1] !== ADMIN_PROTOCOL_VERSION) {
      throw new WireError(
        `admin protocol version ${String(message[1])} not supported (this node speaks ${ADMIN_PROTOCOL_VERSION})`,
      );
    }
    const command = asString(message[2], 'admin command', 32);
    if (d.data && isDataCommand(command)) return d.data.handle(command, message.slice(3));
    if (!isAdminCommand(command)) throw new WireError(`unknown admin command ${JSON.stringify(command)}`);
    const args = message.slice(3);
    const arity = adminArity(command);
    if (args.length !== arity) {
      throw new WireError(
        `admin ${command} takes ${arity} argument${arity === 1 ? '' : 's'}, got ${args.length}`,
      );
    }
    if (ADMIN_ACTIONS.has(command) && !d.authenticated()) {
      throw new AuthError(
        `admin ${command} refused: ${d.self().id}'s transport does not authenticate its peers (configure its secret or tls)`,
      );
    }
    const report: AdminReports[typeof command] = this.run(command, args);
    return Promise.resolve([JSON.stringify(report)]);
  }

  private run(command: keyof AdminReports, args: unknown[]): AdminReports[keyof AdminReports] {
    const d = this.deps;
    const node = d.self();
    switch (command) {
      case 'status': {
        const ring = d.ringStatus();
        return {
          node,
          ring: {
            version: ring.version,
            settled: ring.settled,
            claimant: ring.claimant,
            partitions: d.partitions,
            n: d.n,
            zones: ring.zones ? { required: ring.zones.required, violations: ring.zones.violations } : null,
          },
          members: ring.members.map((m) => ({ ...m, ownership: m.partitions / d.partitions })),
        };
      }
      case 'ring':
        return this.ringReport(node);
      case 'transfers': {
        const ring = d.ringStatus();
        return { node, version: ring.version, settled: ring.settled, pending: [...ring.pending] };
      }
      case 'stats':
        return { node, nowMs: d.now(), stats: d.stats() };
      case 'leave':
        return this.leave(node);
      case 'remove': {
        const id = asString(args[0], 'member id', MAX_ADMIN_ARG_LENGTH);
        d.remove(id);
        return { node, action: 'remove', member: id };
      }
    }
  }

  private ringReport(node: NodeIdentity): RingReport {
    const d = this.deps;
    const ring = d.ringStatus();
    // Leaving members end up with nothing: the fair shares are those of the members that stay.
    const staying = ring.members.filter((m) => m.status !== 'leaving');
    const totalWeight = staying.reduce((sum, m) => sum + m.weight, 0);
    // With zones a member's fair share is its share of what the guarantee lets its zone hold.
    const zoned =
      ring.zones && staying.length > 0
        ? claimShares(
            staying.map((m) => ({ id: m.id, weight: m.weight, zone: m.zone ?? '' })),
            d.n,
            d.partitions,
          )
        : undefined;
    const members = ring.members.map((m) => ({
      id: m.id,
      status: m.status,
      weight: m.weight,
      ...(m.zone === undefined ? {} : { zone: m.zone }),
      partitions: m.partitions,
      share: m.partitions / d.partitions,
      idealShare:
        m.status === 'leaving' || totalWeight === 0
          ? 0
          : zoned
            ? (zoned.get(m.id) ?? 0) / d.partitions
            : m.weight / totalWeight,
    }));
    const ratios = members.filter((m) => m.idealShare > 0).map((m) => m.share / m.idealShare);
    return {
      node,
      version: ring.version,
      settled: ring.settled,
      claimant: ring.claimant,
      partitions: d.partitions,
      n: d.n,
      members,
      balance: {
        maxOverIdeal: ratios.length ? Math.max(...ratios) : 0,
        minOverIdeal: ratios.length ? Math.min(...ratios) : 0,
      },
      pendingTransfers: ring.pending.length,
      zones: ring.zones ?? null,
    };
  }

  /** Answers at once: leaving streams every partition away first, and ends with the node stopped. */
  private leave(node: NodeIdentity): ActionReport {
    if (node.status !== 'running') throw new NotRunningError(`node ${node.id} is ${node.status}`);
    this.deps.leave().catch((err: Error) => this.deps.onError(err, 'leaving the cluster (admin leave)'));
    return { node, action: 'leave', member: node.id };
  }
}
