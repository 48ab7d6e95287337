/** `host:port` addresses, with IPv6 hosts in brackets (`[::1]:4000`), as peers dial them. */
import { isIP } from 'node:net';

export interface HostPort {
  host: string;
  port: number;
}

export function formatAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Parses `host:port` / `[v6]:port`; undefined when malformed (addresses come from the network). */
export function parseAddress(address: string): HostPort | undefined {
  const colon = address.lastIndexOf(':');
  if (colon <= 0) return undefined;
  let host = address.slice(0, colon);
  const portText = address.slice(colon + 1);
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port < 1 || port > 65535) return undefined;
  if (host.startsWith('[') && host.endsWith(']')) {
    host = host.slice(1, -1);
    if (isIP(host) !== 6) return undefined;
  } else if (host.includes(':')) {
    return undefined;
  }
  if (host.length === 0) return undefined;
  return { host, port };
}

/** Whether binding `host` exposes the listener only to this machine. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}
