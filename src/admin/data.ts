/**
 * The admin commands that move data (`keys`, `export`, `import`), next to the operator reports of
 * protocol.ts, on the same message (`[Admin, version, command, ...args]`) and the same auth. They
 * page: each request carries the cursor the previous reply returned, so a node keeps nothing
 * between requests, and every reply is bounded (keys and bytes).
 *
 *   keys    [cursor | null, limit]            → [json { cursor, count }, keys[]]
 *   export  [cursor | null, limit, maxBytes]  → [json { cursor, count, partitions }, [key, object, ...]]
 *   import  [[key, object, ...], w | null]    → [json { imported }]     authenticated transport only
 *
 * `keys` and `export` read, like a `get` through the peer port (answered to anyone the transport
 * lets in); `import` writes, so like `leave` it needs a transport that authenticates its peers.
 */
import { AuthError } from '../errors.js';
import type { ImportResult } from '../export/import.js';
import type { ExportPage, ExportRecord, KeysPage } from '../listing/listing.js';
import { MAX_LIST_BYTES, MAX_LIST_KEYS } from '../listing/scan.js';
import { asBytes, asInt, asString, WireError } from '../transport/wire.js';
import type { AdminClient } from './client.js';

export const DATA_COMMANDS = ['keys', 'export', 'import'] as const;
export type DataCommand = (typeof DATA_COMMANDS)[number];

/** Records in one import request at most. */
export const MAX_IMPORT_RECORDS = 10_000;
/** Longest cursor accepted, characters. */
const MAX_CURSOR_CHARS = 4096;

export function isDataCommand(value: string): value is DataCommand {
  return (DATA_COMMANDS as readonly string[]).includes(value);
}

export interface KeysReport {
  cursor: string | null;
  count: number;
}

export interface ExportReport {
  cursor: string | null;
  count: number;
  /** The cluster's partition count and the answering node (written into the export file's header). */
  partitions: number;
  node: string;
}

export interface ImportReport {
  imported: number;
}

export interface DataAdminDeps {
  partitions: number;
  maxKeyBytes: number;
  maxObjectBytes: number;
  keys(cursor: string | undefined, limit: number): Promise<KeysPage<Uint8Array>>;
  exportPage(cursor: string | undefined, limit: number, maxBytes: number): Promise<ExportPage>;
  importObjects(records: ExportRecord[], w: number | undefined): Promise<ImportResult>;
  /** Whether the transport authenticates every peer (`Transport.authenticated`). */
  authenticated(): boolean;
  self(): string;
}

export class DataAdminService {
  constructor(private readonly deps: DataAdminDeps) {}

  /** The reply fields of one data command; throws on bad input or a refused import. */
  async handle(command: DataCommand, args: readonly unknown[]): Promise<unknown[]> {
    const d = this.deps;
    switch (command) {
      case 'keys': {
        arity(command, args, 2);
        const page = await d.keys(cursorArg(args[0]), asInt(args[1], 'limit', 1, MAX_LIST_KEYS));
        const report: KeysReport = { cursor: page.cursor ?? null, count: page.keys.length };
        return [JSON.stringify(report), page.keys];
      }
      case 'export': {
        arity(command, args, 3);
        const page = await d.exportPage(
          cursorArg(args[0]),
          asInt(args[1], 'limit', 1, MAX_LIST_KEYS),
          asInt(args[2], 'maxBytes', 1, MAX_LIST_BYTES),
        );
        const flat: Uint8Array[] = [];
        for (const r of page.records) flat.push(r.key, r.object);
        const report: ExportReport = {
          cursor: page.cursor ?? null,
          count: page.records.length,
          partitions: d.partitions,
          node: d.self(),
        };
        return [JSON.stringify(report), flat];
      }
      case 'import': {
        arity(command, args, 2);
        if (!d.authenticated()) {
          throw new AuthError(
            `admin import refused: ${d.self()}'s transport does not authenticate its peers (configure its secret or tls)`,
          );
        }
        const flat = args[0];
        if (!Array.isArray(flat) || flat.length % 2 !== 0 || flat.length / 2 > MAX_IMPORT_RECORDS) {
          throw new WireError(`import: records must be [key, object, ...], at most ${MAX_IMPORT_RECORDS}`);
        }
        const records: ExportRecord[] = [];
        for (let i = 0; i < flat.length; i += 2) {
          records.push({
            key: asBytes(flat[i], 'key', d.maxKeyBytes),
            object: asBytes(flat[i + 1], 'object', d.maxObjectBytes),
          });
        }
        const w = args[1] === null ? undefined : asInt(args[1], 'w', 1, 64);
        const report: ImportReport = await d.importObjects(records, w);
        return [JSON.stringify(report)];
      }
    }
  }
}

function arity(command: DataCommand, args: readonly unknown[], n: number): void {
  if (args.length !== n) throw new WireError(`admin ${command} takes ${n} arguments, got ${args.length}`);
}

function cursorArg(value: unknown): string | undefined {
  return value === null ? undefined : asString(value, 'cursor', MAX_CURSOR_CHARS);
}

// --- the client side ------------------------------------------------------------------------------

function report<T>(fields: unknown[]): T {
  try {
    return JSON.parse(asString(fields[0], 'admin reply', 1024 * 1024)) as T;
  } catch (err) {
    if (err instanceof WireError) throw err;
    throw new WireError('admin reply is not JSON', { cause: err });
  }
}

/** One page of keys from the node behind `client`. */
export async function fetchKeys(
  client: AdminClient,
  cursor: string | undefined,
  limit: number,
): Promise<{ keys: Uint8Array[]; cursor: string | undefined }> {
  const fields = await client.send('keys', [cursor ?? null, limit]);
  const r = report<KeysReport>(fields);
  const keys = fields[1];
  if (!Array.isArray(keys) || keys.length !== r.count || !keys.every((k) => k instanceof Uint8Array)) {
    throw new WireError('keys reply: bad key list');
  }
  return { keys: keys as Uint8Array[], cursor: r.cursor ?? undefined };
}

/** One page of stored objects from the node behind `client`. */
export async function fetchExportPage(
  client: AdminClient,
  cursor: string | undefined,
  limit: number,
  maxBytes: number,
): Promise<{ records: ExportRecord[]; cursor: string | undefined; partitions: number; node: string }> {
  const fields = await client.send('export', [cursor ?? null, limit, maxBytes]);
  const r = report<ExportReport>(fields);
  const flat = fields[1];
  if (!Array.isArray(flat) || flat.length !== r.count * 2 || !flat.every((b) => b instanceof Uint8Array)) {
    throw new WireError('export reply: bad record list');
  }
  const records: ExportRecord[] = [];
  const bytes = flat as Uint8Array[];
  for (let i = 0; i < bytes.length; i += 2) records.push({ key: bytes[i]!, object: bytes[i + 1]! });
  return { records, cursor: r.cursor ?? undefined, partitions: r.partitions, node: r.node };
}

/** Sends records to the node behind `client` to import; resolves with the count it imported. */
export async function sendImport(
  client: AdminClient,
  records: readonly ExportRecord[],
  w: number | undefined,
): Promise<number> {
  const flat: Uint8Array[] = [];
  for (const r of records) flat.push(r.key, r.object);
  return report<ImportReport>(await client.send('import', [flat, w ?? null])).imported;
}
