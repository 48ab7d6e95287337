/**
 * Wire framing for `TcpTransport`: `[u32 BE length][u8 type][u32 BE request id][payload]`, where
 * `length` counts the bytes after the prefix (type + id + payload, so at least 5).
 */

export const FrameType = {
  /** Client -> server: a request; the payload goes to the handler. */
  Request: 0x01,
  /** Server -> client: the handler's resolved bytes. */
  Response: 0x02,
  /** Server -> client: the handler rejected; payload is a UTF-8 message. */
  Error: 0x03,
  /** Client -> server, first frame: version, flags, client nonce, advertised address. */
  Hello: 0x10,
  /** Server -> client (shared secret only): server nonce and the server's proof. */
  Challenge: 0x11,
  /** Client -> server (shared secret only): the client's proof. */
  Proof: 0x12,
  /** Server -> client: handshake complete, requests may flow. */
  Ready: 0x13,
  /** Server -> client: handshake refused (UTF-8 reason); the server closes next. */
  Reject: 0x14,
  /** Server -> client: the server wants to close this idle connection; send no new requests on it. */
  GoAway: 0x20,
} as const;

export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

/** Bytes before the payload: length prefix (4) + type (1) + request id (4). */
export const HEADER_BYTES = 9;
/** Smallest legal value of the length prefix (type + id, empty payload). */
export const MIN_FRAME_LENGTH = 5;

export interface Frame {
  type: number;
  id: number;
  payload: Buffer;
}

export interface OutFrame {
  type: number;
  id: number;
  payload: Uint8Array;
}

/** A peer broke the protocol; the connection that carried it is closed, nothing else happens. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** Encodes one frame into a fresh buffer (handshake frames, tests). */
export function encodeFrame(type: number, id: number, payload: Uint8Array = EMPTY): Buffer {
  return encodeFrames([{ type, id, payload }], HEADER_BYTES + payload.length);
}

const EMPTY = new Uint8Array(0);

/**
 * Encodes a batch of frames into one buffer (`totalBytes` = sum of HEADER_BYTES + payload length),
 * so a turn's worth of frames costs one allocation and one `socket.write`.
 */
export function encodeFrames(frames: readonly OutFrame[], totalBytes: number): Buffer {
  const out = Buffer.allocUnsafe(totalBytes);
  let at = 0;
  for (const f of frames) {
    const payload = f.payload;
    // Header bytes written by hand: `writeUInt32BE` validates its arguments and cost more than
    // the whole header (the values are in range by construction: length <= maxFrameBytes, u32 id).
    const length = MIN_FRAME_LENGTH + payload.length;
    const id = f.id;
    out[at] = length >>> 24;
    out[at + 1] = length >>> 16;
    out[at + 2] = length >>> 8;
    out[at + 3] = length;
    out[at + 4] = f.type;
    out[at + 5] = id >>> 24;
    out[at + 6] = id >>> 16;
    out[at + 7] = id >>> 8;
    out[at + 8] = id;
    out.set(payload, at + HEADER_BYTES);
    at += HEADER_BYTES + payload.length;
  }
  return out;
}

/**
 * Incremental decoder. The length prefix is checked against `maxFrameBytes` as soon as its 4
 * bytes are in, before the body is buffered, so an oversized prefix never causes an allocation.
 * Chunks are kept as a list and joined once per frame (no quadratic re-concatenation for big
 * frames arriving in many reads). A frame lying within one chunk is not copied: its payload is a
 * view of the chunk (the socket hands over a fresh buffer per read, which nothing else reuses).
 */
export class FrameDecoder {
  /** Mutable: the transport raises it once the handshake is done. */
  maxFrameBytes: number;
  private chunks: Buffer[] = [];
  private head = 0;
  private bufferedBytes = 0;

  constructor(maxFrameBytes: number) {
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Bytes received but not yet returned as frames. */
  get buffered(): number {
    return this.bufferedBytes;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
  }

  /** The next complete frame, or undefined if more bytes are needed. Throws `ProtocolError`. */
  next(): Frame | undefined {
    if (this.bufferedBytes < 4) return undefined;
    const length = this.peekLength();
    if (length < MIN_FRAME_LENGTH)
      throw new ProtocolError(`frame length ${length} is shorter than its header`);
    if (length > this.maxFrameBytes) {
      throw new ProtocolError(`frame length ${length} exceeds maxFrameBytes ${this.maxFrameBytes}`);
    }
    if (this.bufferedBytes < 4 + length) return undefined;
    const first = this.chunks[0]!;
    const at = this.head;
    if (first.length - at >= 4 + length) {
      // The common case, wholly within one chunk: one view (the payload), no copy.
      this.bufferedBytes -= 4 + length;
      this.head = at + 4 + length;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
      const id =
        ((first[at + 5]! << 24) | (first[at + 6]! << 16) | (first[at + 7]! << 8) | first[at + 8]!) >>> 0;
      return { type: first[at + 4]!, id, payload: first.subarray(at + HEADER_BYTES, at + 4 + length) };
    }
    const bytes = this.gather(4 + length);
    return { type: bytes[4]!, id: bytes.readUInt32BE(5), payload: bytes.subarray(HEADER_BYTES) };
  }

  /** Drops everything buffered (connection closed). */
  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.bufferedBytes = 0;
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length - this.head >= 4) return first.readUInt32BE(this.head);
    // The prefix straddles chunks: gather its 4 bytes.
    let value = 0;
    let got = 0;
    let offset = this.head;
    for (const chunk of this.chunks) {
      for (let i = offset; i < chunk.length && got < 4; i++, got++) value = value * 256 + chunk[i]!;
      offset = 0;
      if (got === 4) break;
    }
    return value;
  }

  /** Copies the next `n` bytes, which span several chunks, into one buffer. */
  private gather(n: number): Buffer {
    this.bufferedBytes -= n;
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const chunk = this.chunks[0]!;
      const count = Math.min(chunk.length - this.head, n - at);
      chunk.copy(out, at, this.head, this.head + count);
      at += count;
      this.head += count;
      if (this.head === chunk.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    return out;
  }
}
