/** Shared by the TCP tests: a throwaway PKI made with the openssl CLI, and small socket helpers. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Frame, FrameDecoder } from '../../../src/tcp/frame.js';
import { TcpTransport, type TcpTransportOptions } from '../../../src/tcp/index.js';
import type { TransportHarness } from '../../../src/testing/transport-compliance.js';
import type { Transport } from '../../../src/transport/types.js';

export interface KeyPair {
  key: Buffer;
  cert: Buffer;
}

export interface TestPki {
  dir: string;
  ca: Buffer;
  /** Two node certificates issued by `ca`. */
  nodeA: KeyPair;
  nodeB: KeyPair;
  /** A certificate issued by a different CA (and that CA). */
  rogue: KeyPair;
  rogueCa: Buffer;
  cleanup(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

function makeCa(dir: string, name: string): void {
  openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

function makeLeaf(dir: string, name: string, ca: string, serial: number): KeyPair {
  openssl(dir, [
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${name}`,
  ]);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-set_serial',
    String(serial),
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-extfile',
    'leaf.cnf',
  ]);
  return { key: readFileSync(join(dir, `${name}.key`)), cert: readFileSync(join(dir, `${name}.crt`)) };
}

/** A CA with two node certificates, plus a rogue CA with one: generated fresh in a temp dir. */
export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'dynamo-tcp-pki-'));
  writeFileSync(
    join(dir, 'leaf.cnf'),
    'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n',
  );
  makeCa(dir, 'ca');
  makeCa(dir, 'rogue-ca');
  const nodeA = makeLeaf(dir, 'node-a', 'ca', 2);
  const nodeB = makeLeaf(dir, 'node-b', 'ca', 3);
  const rogue = makeLeaf(dir, 'rogue', 'rogue-ca', 4);
  return {
    dir,
    ca: readFileSync(join(dir, 'ca.crt')),
    rogueCa: readFileSync(join(dir, 'rogue-ca.crt')),
    nodeA,
    nodeB,
    rogue,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Compliance harness over real sockets. An endpoint created again under the name of a stopped
 * one binds the same port, as a restarted node would.
 */
export function tcpHarness(options: (name: string) => TcpTransportOptions): TransportHarness {
  const made: Transport[] = [];
  const ports = new Map<string, number>();
  const byName = new Map<string, TcpTransport>();
  return {
    create(name) {
      const previous = byName.get(name);
      if (previous) ports.set(name, Number(previous.address.slice(previous.address.lastIndexOf(':') + 1)));
      const t = new TcpTransport({ ...options(name), port: ports.get(name) ?? 0 });
      byName.set(name, t);
      made.push(t);
      return t;
    },
    wait: (ms) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
    async close() {
      await Promise.all(made.map((t) => t.stop()));
    },
  };
}

export function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

/** A raw TCP client to 127.0.0.1:port, connected. */
export function rawConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Resolves when `socket` closed (at once if it already has). Unread input is drained: a paused socket never sees its end. */
export function closed(socket: net.Socket): Promise<void> {
  socket.resume();
  return new Promise((resolve) => {
    if (socket.closed) resolve();
    else socket.once('close', () => resolve());
  });
}

/** Polls `condition` each `stepMs` (real time) until it holds; fails after `maxMs`. */
export async function eventually(
  condition: () => boolean,
  what: string,
  maxMs = 5000,
  stepMs = 5,
): Promise<void> {
  for (let waited = 0; !condition(); waited += stepMs) {
    if (waited >= maxMs) throw new Error(`still waiting after ${maxMs} ms for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
}

/** Collects the frames a raw socket receives. */
export function frameReader(socket: net.Socket) {
  const decoder = new FrameDecoder(64 * 1024 * 1024);
  const frames: Frame[] = [];
  const waiters: (() => void)[] = [];
  socket.on('data', (chunk: Buffer) => {
    decoder.push(chunk);
    for (let f = decoder.next(); f; f = decoder.next()) frames.push(f);
    for (const w of waiters.splice(0)) w();
  });
  socket.on('close', () => {
    for (const w of waiters.splice(0)) w();
  });
  return {
    frames,
    /** Resolves with the first frame of `type` (waiting for it), or undefined if the socket closes first. */
    async waitFor(type: number): Promise<Frame | undefined> {
      for (;;) {
        const found = frames.find((f) => f.type === type);
        if (found) return found;
        if (socket.closed || socket.destroyed) return undefined;
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
  };
}
