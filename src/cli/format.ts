/** Text renderings of the admin reports (the `--json` output is the reports themselves). */
import type {
  ActionReport,
  NodeIdentity,
  RingReport,
  StatsReport,
  StatusReport,
  TransfersReport,
} from '../admin/protocol.js';

/** Operations per second of each client operation between two `stats` samples. */
export interface OperationRates {
  intervalMs: number;
  get: number;
  put: number;
  delete: number;
}

const OPS = ['get', 'put', 'delete'] as const;

export function rates(first: StatsReport, last: StatsReport): OperationRates {
  const intervalMs = Math.max(1, last.nowMs - first.nowMs);
  const rate = (op: (typeof OPS)[number]) =>
    round(((last.stats[op].count - first.stats[op].count) * 1000) / intervalMs, 1);
  return { intervalMs, get: rate('get'), put: rate('put'), delete: rate('delete') };
}

export function formatStatus(r: StatusReport): string {
  const counts = new Map<string, number>();
  for (const m of r.members) counts.set(m.status, (counts.get(m.status) ?? 0) + 1);
  const summary = [...counts].map(([status, count]) => `${count} ${status}`).join(', ');
  const zoned = r.ring.zones !== null && r.ring.zones !== undefined;
  return [
    `${who(r.node)}. ${ringLine(r.ring)}`,
    `${r.members.length} member${r.members.length === 1 ? '' : 's'}: ${summary}.${zoned ? ` ${zoneLine(r.ring.zones!)}` : ''}`,
    '',
    table(
      ['Status', 'ID', 'Address', ...(zoned ? ['Zone'] : []), 'Weight', 'Partitions', 'Owns'],
      r.members.map((m) => [
        m.status,
        m.id,
        m.address,
        ...(zoned ? [zoneName(m.zone)] : []),
        m.weight,
        m.partitions,
        percent(m.ownership),
      ]),
    ),
    '',
  ].join('\n');
}

/** The zone guarantee in one sentence. */
function zoneLine(z: { required: number; violations: number }): string {
  return z.violations === 0
    ? `Zones: every key's replicas span ${z.required} zone${z.required === 1 ? '' : 's'}.`
    : `WARNING: ${z.violations} partition${z.violations === 1 ? ' has' : 's have'} replicas in fewer than ${z.required} zones (the zones cannot meet the guarantee as configured).`;
}

function zoneName(zone: string | undefined): string {
  return zone === undefined || zone === '' ? '(none)' : zone;
}

export function formatRing(r: RingReport): string {
  const pending =
    r.pendingTransfers === 0 ? 'no transfers pending' : `${r.pendingTransfers} transfers pending`;
  const zones = r.zones ?? null;
  const lines = [
    `${ringLine(r)} ${capitalize(pending)}.`,
    '',
    table(
      ['ID', 'Status', ...(zones ? ['Zone'] : []), 'Weight', 'Partitions', 'Share', 'Fair share', 'Ratio'],
      r.members.map((m) => [
        m.id,
        m.status,
        ...(zones ? [zoneName(m.zone)] : []),
        m.weight,
        m.partitions,
        percent(m.share),
        percent(m.idealShare),
        m.idealShare > 0 ? round(m.share / m.idealShare, 2).toFixed(2) : '-',
      ]),
    ),
    '',
    `Balance: the largest share is ${r.balance.maxOverIdeal.toFixed(2)}x its fair share, the smallest ${r.balance.minOverIdeal.toFixed(2)}x.`,
  ];
  if (zones) {
    lines.push(
      '',
      table(
        ['Zone', 'Members', 'Weight', 'Partitions', 'Share', 'Target share'],
        zones.list.map((z) => [
          zoneName(z.zone),
          z.members,
          percent(z.weightShare),
          z.partitions,
          percent(z.share),
          percent(z.targetShare),
        ]),
      ),
      '',
      zoneLine(zones),
    );
    const skewed = zones.list.filter((z) => Math.abs(z.targetShare - z.weightShare) > 0.005);
    if (skewed.length > 0) {
      lines.push(
        `Zone capacities are uneven for the guarantee: ${skewed
          .map(
            (z) =>
              `${zoneName(z.zone)} holds ${percent(z.targetShare)} for ${percent(z.weightShare)} of the weight`,
          )
          .join(', ')}.`,
      );
    }
  }
  lines.push('');
  return lines.join('\n');
}

export function formatTransfers(r: TransfersReport): string {
  if (r.pending.length === 0) {
    return r.settled
      ? `Ring version ${r.version}: no transfers pending; the ring is settled.\n`
      : `Ring version ${r.version}: no transfers pending, but the ring is not settled yet (a change is being planned or gossiped).\n`;
  }
  const sent = r.pending.reduce((sum, t) => sum + t.keysSent, 0);
  return [
    `Ring version ${r.version}: ${r.pending.length} transfer${r.pending.length === 1 ? '' : 's'} pending, ${sent} keys sent so far (as ${r.node.id} last heard).`,
    '',
    table(
      ['Partition', 'From', 'To', 'Keys sent', 'Total', 'Progress'],
      r.pending.map((t) => [
        t.partition,
        t.from,
        t.to,
        t.keysSent,
        t.total ?? '-',
        t.total === null ? 'waiting' : t.total === 0 ? '100%' : percent(Math.min(1, t.keysSent / t.total)),
      ]),
    ),
    '',
  ].join('\n');
}

export function formatStats(r: StatsReport, ops: OperationRates | null): string {
  const s = r.stats;
  const window = ops ? `rates over the last ${ops.intervalMs} ms` : 'totals';
  const bytes = s.transport
    ? `Transport: ${size(s.transport.bytesSent)} sent, ${size(s.transport.bytesReceived)} received.`
    : 'Transport: no byte counters.';
  return [
    `${who(r.node)}: ${window}, latencies since start.`,
    '',
    table(
      ['Op', 'Ops/s', 'Count', 'Failures', 'p50 ms', 'p99 ms', 'p99.9 ms'],
      OPS.map((op) => [
        op,
        ops ? ops[op].toFixed(1) : '-',
        s[op].count,
        s[op].failures,
        ms(s[op].p50Ms),
        ms(s[op].p99Ms),
        ms(s[op].p999Ms),
      ]),
    ),
    '',
    `Siblings: ${s.siblings.conflictedReads} reads found more than one, at most ${s.siblings.maxSeen} on one read. Read repairs: ${s.readRepairs}. Forwarded puts: ${s.forwarded}.`,
    `Hints: ${s.hints.pending} pending (stored ${s.hints.stored}, delivered ${s.hints.delivered}, refused ${s.hints.refused}).`,
    `Anti-entropy: ${s.antiEntropy.exchanges} exchanges (${s.antiEntropy.failed} failed), ${s.antiEntropy.keysRepaired} keys repaired, ${s.antiEntropy.purged} tombstones purged.`,
    bytes,
    '',
  ].join('\n');
}

export function formatAction(r: ActionReport, waited: boolean): string {
  if (r.action === 'remove') {
    return `${r.member} is removed from the cluster (asked ${r.node.id}): its partitions are reassigned and refilled from the surviving replicas.\n`;
  }
  return waited
    ? `Node ${r.node.id} (${r.node.address}) has left the cluster and stopped.\n`
    : `${who(r.node)} is leaving: it streams its partitions to the other members, then stops. Follow it with \`dynamo-engine transfers\` on another member.\n`;
}

function who(node: NodeIdentity): string {
  return `Node ${node.id} (${node.address}), ${node.status}`;
}

function ringLine(r: { version: number; settled: boolean; claimant: string; partitions: number; n: number }) {
  return `Ring version ${r.version} (claimant ${r.claimant}), ${r.partitions} partitions, n = ${r.n}: ${r.settled ? 'settled' : 'not settled'}.`;
}

/** Left-aligned columns, two spaces apart (no trailing newline). */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  return cells
    .map((row) =>
      row
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function percent(fraction: number): string {
  return `${(fraction * 100).toFixed(1)}%`;
}

function ms(value: number): string {
  return value < 10 ? value.toFixed(2) : value.toFixed(1);
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
