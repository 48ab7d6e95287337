/**
 * The CLI commands that move data: `keys` (every live key, one per line on stdout), `export --out
 * FILE` and `import --in FILE` (the file format of src/export/format.ts). They page through the
 * admin data commands (src/admin/data.ts) of the one node asked, which plans the work over the
 * cluster; progress goes to stderr, about once a second.
 */
import { createReadStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { AdminClient } from '../admin/client.js';
import { fetchExportPage, fetchKeys, sendImport } from '../admin/data.js';
import { decodeExport, ExportEncoder } from '../export/format.js';
import type { ExportRecord } from '../listing/listing.js';
import { systemClock } from '../util/clock.js';

export interface DataCliIo {
  out(text: string): void;
  err(text: string): void;
}

/** `act` of run.ts: runs `work` against the node, maps failures to exit codes. */
export type Act = (
  command: Command,
  work: (client: AdminClient, g: { json?: boolean }) => Promise<string | object>,
) => () => Promise<void>;

/** Progress lines at most this often, ms. */
const PROGRESS_MS = 1000;
/** What an import file may hold per record, whatever the cluster's own (lower) limits say. */
const FILE_MAX_KEY_BYTES = 64 * 1024;
const FILE_MAX_OBJECT_BYTES = 64 * 1024 * 1024;

export function addDataCommands(program: Command, act: Act, io: DataCliIo): void {
  const keys = program
    .command('keys')
    .description('every live key of the cluster, one per line (the node lists one replica per partition)')
    .option('--page-size <n>', 'keys per request', count('page size', 10_000), 1000)
    .addOption(
      new Option('--encoding <encoding>', 'how keys are printed')
        .choices(['utf8', 'hex', 'base64'])
        .default('utf8'),
    );
  keys.action(
    act(keys, async (client) => {
      const o = keys.opts<{ pageSize: number; encoding: string }>();
      const print = keyPrinter(o.encoding);
      const progress = new Progress(io, 'listed', 'keys');
      let cursor: string | undefined;
      do {
        const page = await fetchKeys(client, cursor, o.pageSize);
        if (page.keys.length > 0) io.out(`${page.keys.map(print).join('\n')}\n`);
        progress.add(page.keys.length);
        cursor = page.cursor;
      } while (cursor !== undefined);
      progress.done();
      return '';
    }),
  );

  const exporter = program
    .command('export')
    .description("write every key's stored object (values, siblings, tombstones, causal context) to a file")
    .requiredOption(
      '--out <file>',
      'the export file to write (written as FILE.partial, renamed when complete)',
    )
    .option('--page-size <n>', 'objects per request', count('page size', 10_000), 1000)
    .option(
      '--page-bytes <n>',
      'bytes per request (one larger object comes alone)',
      count('page bytes', 8 << 20),
      4 << 20,
    );
  exporter.action(
    act(exporter, async (client, g) => {
      const o = exporter.opts<{ out: string; pageSize: number; pageBytes: number }>();
      const partial = `${o.out}.partial`;
      const file = await open(partial, 'w');
      const encoder = new ExportEncoder();
      const progress = new Progress(io, 'exported', 'objects');
      let bytes = 0;
      try {
        let cursor: string | undefined;
        let first = true;
        do {
          const page = await fetchExportPage(client, cursor, o.pageSize, o.pageBytes);
          const parts: Uint8Array[] = [];
          if (first) {
            parts.push(
              encoder.header({
                partitions: page.partitions,
                createdAt: new Date(systemClock.now()),
                source: page.node,
              }),
            );
            first = false;
          }
          for (const r of page.records) parts.push(encoder.record(r));
          const chunk = Buffer.concat(parts);
          await file.write(chunk);
          bytes += chunk.byteLength;
          progress.add(page.records.length, bytes);
          cursor = page.cursor;
        } while (cursor !== undefined);
        const trailer = encoder.trailer();
        await file.write(trailer);
        bytes += trailer.byteLength;
        await file.sync();
      } catch (err) {
        await file.close();
        await rm(partial, { force: true });
        throw err;
      }
      await file.close();
      await rename(partial, o.out);
      progress.done(bytes);
      const result = { file: o.out, objects: encoder.records, bytes };
      return g.json
        ? result
        : `exported ${result.objects} objects (${result.bytes} bytes) to ${result.file}\n`;
    }),
  );

  const importer = program
    .command('import')
    .description('merge every object of an export file into the cluster (needs an authenticated transport)')
    .requiredOption('--in <file>', 'the export file to read')
    .option('--w <n>', "replicas that must store each object (default: the node's quorum.w)", count('w', 64))
    .option('--batch-size <n>', 'objects per request', count('batch size', 10_000), 500)
    .option(
      '--batch-bytes <n>',
      'bytes per request (one larger object goes alone)',
      count('batch bytes', 8 << 20),
      4 << 20,
    );
  importer.action(
    act(importer, async (client, g) => {
      const o = importer.opts<{ in: string; w?: number; batchSize: number; batchBytes: number }>();
      const progress = new Progress(io, 'imported', 'objects');
      let imported = 0;
      let batch: ExportRecord[] = [];
      let batchBytes = 0;
      const flush = async () => {
        if (batch.length === 0) return;
        imported += await sendImport(client, batch, o.w);
        progress.add(batch.length);
        batch = [];
        batchBytes = 0;
      };
      const records = decodeExport(createReadStream(o.in), {
        maxKeyBytes: FILE_MAX_KEY_BYTES,
        maxObjectBytes: FILE_MAX_OBJECT_BYTES,
      });
      for await (const record of records) {
        const size = record.key.byteLength + record.object.byteLength;
        if (batch.length >= o.batchSize || (batch.length > 0 && batchBytes + size > o.batchBytes))
          await flush();
        batch.push(record);
        batchBytes += size;
      }
      await flush();
      progress.done();
      const result = { file: o.in, imported };
      return g.json ? result : `imported ${imported} objects from ${o.in}\n`;
    }),
  );
}

/** Counts and prints progress to stderr at most once per PROGRESS_MS. */
class Progress {
  private total = 0;
  private bytes = 0;
  private last: number;

  constructor(
    private readonly io: DataCliIo,
    private readonly verb: string,
    private readonly noun: string,
  ) {
    this.last = systemClock.now();
  }

  add(n: number, bytes?: number): void {
    this.total += n;
    if (bytes !== undefined) this.bytes = bytes;
    const now = systemClock.now();
    if (now - this.last >= PROGRESS_MS) {
      this.last = now;
      this.print();
    }
  }

  done(bytes?: number): void {
    if (bytes !== undefined) this.bytes = bytes;
    this.print();
  }

  private print(): void {
    const size = this.bytes > 0 ? ` (${(this.bytes / 1e6).toFixed(1)} MB)` : '';
    this.io.err(`${this.verb} ${this.total} ${this.noun}${size}\n`);
  }
}

function keyPrinter(encoding: string): (key: Uint8Array) => string {
  const e = encoding === 'hex' || encoding === 'base64' ? encoding : 'utf8';
  return (key) => Buffer.from(key).toString(e);
}

function count(name: string, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1 || n > max) {
      throw new InvalidArgumentError(`${name} must be an integer in [1, ${max}]`);
    }
    return n;
  };
}
