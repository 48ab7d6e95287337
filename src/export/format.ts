/**
 * The export file format (docs/operating/backup-and-restore.md): a header, one record per key, a trailer.
 * All integers big-endian.
 *
 *   header   "DYNAMOEX" (8 bytes) | u32 length | that many bytes of UTF-8 JSON:
 *            { "format": "dynamo-engine-export", "version": 1, "partitions": Q,
 *              "createdAt": ISO 8601, "source": node or client id }
 *   record   0x01 | u32 key length | key | u32 object length | object
 *            (the object bytes exactly as the engine stores them: `encodeObject`, so values,
 *            siblings, tombstones and causal context travel unchanged)
 *   trailer  0x00 | u64 record count | SHA-256 of every record's bytes, in order (32 bytes)
 *
 * A reader refuses another magic or a version it does not know, checks every length against its
 * limits before buffering the bytes, and checks the trailer, so a truncated or corrupted file is an
 * error (`CorruptValueError`) rather than a silently partial restore. Pure: bytes in, bytes out;
 * the caller owns files and streams.
 */
import { createHash, type Hash } from 'node:crypto';
import { CorruptValueError } from '../errors.js';
import type { ExportRecord } from '../listing/listing.js';

export const EXPORT_MAGIC = 'DYNAMOEX';
/** The export file format version this engine writes and reads. */
export const EXPORT_FORMAT_VERSION = 1;
/** Longest header JSON accepted, bytes. */
const MAX_HEADER_BYTES = 64 * 1024;
const RECORD = 0x01;
const RECORD_TAG = Uint8Array.of(RECORD);
const TRAILER = 0x00;
const DIGEST_BYTES = 32;

/** What an export file's header says (UTF-8 JSON after the magic bytes and their length). */
export interface ExportHeader {
  /** Always `dynamo-engine-export`. */
  format: 'dynamo-engine-export';
  /** `EXPORT_FORMAT_VERSION` of the engine that wrote it. */
  version: number;
  /** The exporting cluster's partition count (informational: import places keys by the target's ring). */
  partitions: number;
  /** The `createdAt` the writer gave `header()`, ISO 8601. */
  createdAt: string;
  /** Where the data came from, as the writer named it (the CLI: the id of the node asked). */
  source: string;
}

/** What a whole export file held: its header and its record count. */
export interface ExportSummary {
  /** The file's header. */
  header: ExportHeader;
  /** Records in the file (the trailer's count, checked). */
  records: number;
}

/** Turns records into the bytes of an export file, piece by piece. */
export class ExportEncoder {
  private count = 0;
  private readonly digest: Hash = createHash('sha256');

  /** The file's first bytes: the magic, the header's length and the header. */
  header(info: { partitions: number; createdAt: Date; source: string }): Uint8Array {
    const header: ExportHeader = {
      format: 'dynamo-engine-export',
      version: EXPORT_FORMAT_VERSION,
      partitions: info.partitions,
      createdAt: info.createdAt.toISOString(),
      source: info.source,
    };
    const json = Buffer.from(JSON.stringify(header), 'utf8');
    const out = Buffer.alloc(12 + json.length);
    out.write(EXPORT_MAGIC, 0, 'latin1');
    out.writeUInt32BE(json.length, 8);
    json.copy(out, 12);
    return out;
  }

  /** One record's bytes (its key and object), counted and added to the checksum. */
  record(record: ExportRecord): Uint8Array {
    const { key, object } = record;
    const out = Buffer.alloc(9 + key.byteLength + object.byteLength);
    out[0] = RECORD;
    out.writeUInt32BE(key.byteLength, 1);
    out.set(key, 5);
    out.writeUInt32BE(object.byteLength, 5 + key.byteLength);
    out.set(object, 9 + key.byteLength);
    this.count++;
    this.digest.update(out);
    return out;
  }

  /** The file's last bytes: the record count and the SHA-256 of every record's bytes. */
  trailer(): Uint8Array {
    const out = Buffer.alloc(9 + DIGEST_BYTES);
    out[0] = TRAILER;
    out.writeBigUInt64BE(BigInt(this.count), 1);
    this.digest.digest().copy(out, 9);
    return out;
  }

  /** Records encoded so far. */
  get records(): number {
    return this.count;
  }
}

/** Limits and hooks of `decodeExport`. */
export interface DecodeExportOptions {
  /** Longest key accepted (the target cluster's `limits.maxKeyBytes`). */
  maxKeyBytes: number;
  /** Largest object accepted, bytes. */
  maxObjectBytes: number;
  /** Told the header once it is read. */
  onHeader?: (header: ExportHeader) => void;
}

/**
 * The records of an export file read from `chunks` (e.g. a `fs.createReadStream`). Throws
 * `CorruptValueError` for anything that is not a complete file of a known version within the
 * limits; the records before the fault have been yielded by then.
 */
export async function* decodeExport(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: DecodeExportOptions,
): AsyncGenerator<ExportRecord, ExportSummary> {
  const input = new ChunkReader(chunks);
  const magic = await input.take(8, 'header');
  if (Buffer.from(magic).toString('latin1') !== EXPORT_MAGIC)
    throw corrupt('not a dynamo-engine export file');
  const headerLength = readU32(await input.take(4, 'header'));
  if (headerLength > MAX_HEADER_BYTES) throw corrupt(`header of ${headerLength} bytes`);
  const header = parseHeader(await input.take(headerLength, 'header'));
  options.onHeader?.(header);
  let count = 0n;
  const digest = createHash('sha256');
  for (;;) {
    const tag = (await input.take(1, 'record'))[0];
    if (tag === TRAILER) {
      const trailer = Buffer.from(await input.take(8 + DIGEST_BYTES, 'trailer'));
      if (trailer.readBigUInt64BE(0) !== count) {
        throw corrupt(`trailer counts ${trailer.readBigUInt64BE(0)} records, the file holds ${count}`);
      }
      if (!digest.digest().equals(trailer.subarray(8))) throw corrupt('checksum mismatch');
      if (!(await input.atEnd())) throw corrupt('bytes after the trailer');
      return { header, records: Number(count) };
    }
    if (tag !== RECORD) throw corrupt(`unknown record tag ${tag}`);
    const keyHeader = await input.take(4, 'record');
    const keyLength = readU32(keyHeader);
    if (keyLength > options.maxKeyBytes)
      throw corrupt(`key of ${keyLength} bytes (maxKeyBytes ${options.maxKeyBytes})`);
    const key = await input.take(keyLength, 'record');
    const objectHeader = await input.take(4, 'record');
    const objectLength = readU32(objectHeader);
    if (objectLength > options.maxObjectBytes) throw corrupt(`object of ${objectLength} bytes`);
    const object = await input.take(objectLength, 'record');
    count++;
    digest.update(RECORD_TAG).update(keyHeader).update(key).update(objectHeader).update(object);
    yield { key, object };
  }
}

function parseHeader(bytes: Uint8Array): ExportHeader {
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw corrupt('header is not JSON', err);
  }
  const h = header as Partial<ExportHeader> | null;
  if (h === null || typeof h !== 'object' || h.format !== 'dynamo-engine-export') {
    throw corrupt('header does not name the dynamo-engine-export format');
  }
  if (h.version !== EXPORT_FORMAT_VERSION) {
    throw corrupt(
      `export format version ${String(h.version)} (this engine reads version ${EXPORT_FORMAT_VERSION})`,
    );
  }
  if (typeof h.partitions !== 'number' || typeof h.createdAt !== 'string' || typeof h.source !== 'string') {
    throw corrupt('header fields missing');
  }
  return h as ExportHeader;
}

function readU32(bytes: Uint8Array): number {
  return Buffer.from(bytes.buffer, bytes.byteOffset, 4).readUInt32BE(0);
}

function corrupt(message: string, cause?: unknown): CorruptValueError {
  return new CorruptValueError(`export file: ${message}`, cause === undefined ? undefined : { cause });
}

/** Exact-length reads over a stream of chunks; holds at most one chunk beyond what was asked. */
class ChunkReader {
  private readonly iterator: AsyncIterator<Uint8Array> | Iterator<Uint8Array>;
  private buffered: Uint8Array[] = [];
  private length = 0;
  private done = false;

  constructor(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) {
    this.iterator =
      Symbol.asyncIterator in chunks
        ? (chunks as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]()
        : (chunks as Iterable<Uint8Array>)[Symbol.iterator]();
  }

  async take(n: number, what: string): Promise<Uint8Array> {
    while (this.length < n) {
      if (!(await this.pull())) throw corrupt(`file ends inside a ${what}`);
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const head = this.buffered[0]!;
      const part = Math.min(head.byteLength, n - filled);
      out.set(head.subarray(0, part), filled);
      filled += part;
      if (part === head.byteLength) this.buffered.shift();
      else this.buffered[0] = head.subarray(part);
    }
    this.length -= n;
    return out;
  }

  async atEnd(): Promise<boolean> {
    while (this.length === 0) if (!(await this.pull())) return true;
    return false;
  }

  private async pull(): Promise<boolean> {
    if (this.done) return false;
    const next = await this.iterator.next();
    if (next.done) {
      this.done = true;
      return false;
    }
    const chunk = next.value;
    if (!(chunk instanceof Uint8Array)) throw new TypeError('export chunks must be Uint8Array (Buffer)');
    if (chunk.byteLength > 0) {
      this.buffered.push(chunk);
      this.length += chunk.byteLength;
    }
    return true;
  }
}
