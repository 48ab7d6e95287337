/**
 * Connection handshake. Every connection starts with one, with or without a shared secret:
 *
 *   client -> Hello(version, flags, nonceC, advertised address)
 *   no secret:  server -> Ready
 *   secret:     server -> Challenge(nonceS, macS)   client checks macS
 *               client -> Proof(macC)               server checks macC
 *               server -> Ready
 *
 * macS = HMAC-SHA256(secret, "dynamo-engine/tcp/1 server" ‖ nonceC ‖ nonceS ‖ address),
 * macC = the same with "client". Both sides contribute a fresh 32-byte nonce, so no proof can be
 * replayed; the role label stops a proof being reflected back; the address is bound so a peer
 * cannot swap the `from` it announced after proving itself. The server proves itself first, so a
 * client holding the secret never sends a request to an impostor.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ProtocolError } from './frame.js';

export const PROTOCOL_VERSION = 1;
export const NONCE_BYTES = 32;
export const MAC_BYTES = 32;
/** Largest advertised address accepted in a Hello (bytes of UTF-8). */
export const MAX_ADDRESS_BYTES = 255;
/** Frame size limit before the handshake completes: unauthenticated peers cannot make us buffer more. */
export const HANDSHAKE_MAX_FRAME_BYTES = 1024;

const FLAG_SECRET = 0x01;

export interface Hello {
  version: number;
  /** The client holds a shared secret (and will insist the server proves it holds it too). */
  secret: boolean;
  nonce: Buffer;
  /** The client's advertised address; '' when it does not listen. */
  address: string;
  /** The raw address bytes, as bound into the MACs. */
  addressBytes: Buffer;
}

export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

export function encodeHello(secret: boolean, nonce: Buffer, address: string): Buffer {
  const addr = Buffer.from(address, 'utf8');
  if (addr.length > MAX_ADDRESS_BYTES) throw new RangeError(`address longer than ${MAX_ADDRESS_BYTES} bytes`);
  const out = Buffer.allocUnsafe(2 + NONCE_BYTES + 2 + addr.length);
  out[0] = PROTOCOL_VERSION;
  out[1] = secret ? FLAG_SECRET : 0;
  nonce.copy(out, 2);
  out.writeUInt16BE(addr.length, 2 + NONCE_BYTES);
  addr.copy(out, 4 + NONCE_BYTES);
  return out;
}

export function decodeHello(payload: Buffer): Hello {
  if (payload.length < 4 + NONCE_BYTES) throw new ProtocolError('hello too short');
  const version = payload[0]!;
  if (version !== PROTOCOL_VERSION) throw new ProtocolError(`unsupported protocol version ${version}`);
  const flags = payload[1]!;
  const addrLen = payload.readUInt16BE(2 + NONCE_BYTES);
  if (addrLen > MAX_ADDRESS_BYTES || payload.length !== 4 + NONCE_BYTES + addrLen) {
    throw new ProtocolError('malformed hello');
  }
  const addressBytes = Buffer.from(payload.subarray(4 + NONCE_BYTES));
  const address = addressBytes.toString('utf8');
  // Reject bytes that are not valid UTF-8 or contain control characters: `from` reaches user code.
  if (!Buffer.from(address, 'utf8').equals(addressBytes) || hasControlCharacter(address)) {
    throw new ProtocolError('malformed address in hello');
  }
  return {
    version,
    secret: (flags & FLAG_SECRET) !== 0,
    nonce: Buffer.from(payload.subarray(2, 2 + NONCE_BYTES)),
    address,
    addressBytes,
  };
}

export function encodeChallenge(nonce: Buffer, mac: Buffer): Buffer {
  return Buffer.concat([nonce, mac]);
}

export function decodeChallenge(payload: Buffer): { nonce: Buffer; mac: Buffer } {
  if (payload.length !== NONCE_BYTES + MAC_BYTES) throw new ProtocolError('malformed challenge');
  return { nonce: payload.subarray(0, NONCE_BYTES), mac: payload.subarray(NONCE_BYTES) };
}

export function computeMac(
  secret: Buffer,
  role: 'server' | 'client',
  clientNonce: Buffer,
  serverNonce: Buffer,
  addressBytes: Buffer,
): Buffer {
  return createHmac('sha256', secret)
    .update(`dynamo-engine/tcp/${PROTOCOL_VERSION} ${role}`)
    .update(clientNonce)
    .update(serverNonce)
    .update(addressBytes)
    .digest();
}

/** Constant-time comparison (lengths are public: both are fixed at 32). */
export function macEquals(expected: Buffer, actual: Buffer): boolean {
  return actual.length === expected.length && timingSafeEqual(expected, actual);
}

function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
