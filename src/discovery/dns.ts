/**
 * Seeds from DNS, for containers whose peers' addresses are not known in advance (a Kubernetes
 * headless service answers with one A/AAAA record per pod, and SRV records naming each pod).
 * `dnsSeeds` returns a seed source: DynamoNode asks it again before every round of join attempts,
 * so pods that appear while a node retries are found.
 */
import { promises as dns } from 'node:dns';
import { formatAddress } from '../tcp/address.js';
import { checkOptionNames } from '../util/option-names.js';

/** One SRV record (as `node:dns` gives it). */
export interface SrvRecord {
  /** The target host. */
  name: string;
  /** The target port. */
  port: number;
  /** Lower is preferred (not used: every target is a seed). */
  priority: number;
  /** Relative weight among equal priorities (not used). */
  weight: number;
}

/** The part of `node:dns/promises` (or a `Resolver`) that `dnsSeeds` uses; tests inject one. */
export interface DnsResolver {
  /** IPv4 addresses of `hostname` (A records). */
  resolve4(hostname: string): Promise<string[]>;
  /** IPv6 addresses of `hostname` (AAAA records). */
  resolve6(hostname: string): Promise<string[]>;
  /** SRV records of `hostname`: each target's name and port. */
  resolveSrv(hostname: string): Promise<SrvRecord[]>;
}

/** Options of `dnsSeeds`. */
export interface DnsSeedsOptions {
  /**
   * `'addresses'` (default): A and AAAA records of `name`, each with `port`. `'srv'`: SRV records
   * of `name` (e.g. `_peer._tcp.dynamo.svc.cluster.local`), each target with the record's port.
   */
  records?: 'addresses' | 'srv';
  /** Default: the system's DNS servers (`node:dns` promises API). */
  resolver?: DnsResolver;
}

/** Most addresses one answer yields (the rest are dropped, after sorting): the join limit. */
export const MAX_DNS_SEEDS = 1024;

/** Answers that mean "no such records", not "DNS failed". */
const EMPTY_CODES = new Set(['ENODATA', 'ENOTFOUND', 'NOTFOUND', 'NODATA']);

const systemResolver: DnsResolver = {
  resolve4: (h) => dns.resolve4(h),
  resolve6: (h) => dns.resolve6(h),
  resolveSrv: (h) => dns.resolveSrv(h),
};

/**
 * `seeds: dnsSeeds('dynamo.default.svc.cluster.local', 7001)`. Each call resolves `name` afresh
 * and resolves to `host:port` addresses, sorted and deduplicated. No records is an empty list
 * (the node retries); a DNS failure rejects (the node reports it and retries). Set the transport's
 * `advertise` to the address form DNS gives (pod IP, or pod DNS name with SRV), so a node can
 * tell its own entry from its peers'.
 */
export function dnsSeeds(name: string, port: number, options: DnsSeedsOptions = {}): () => Promise<string[]> {
  if (typeof name !== 'string' || name.length === 0 || name.length > 253) {
    throw new TypeError('dnsSeeds: name must be a DNS name of 1..253 characters');
  }
  checkOptionNames(options, ['records', 'resolver'], 'dnsSeeds options');
  const records = options.records ?? 'addresses';
  if (records !== 'addresses' && records !== 'srv') {
    throw new TypeError(`dnsSeeds: records must be 'addresses' or 'srv', got ${String(records)}`);
  }
  if (records === 'addresses' && !(Number.isInteger(port) && port >= 1 && port <= 65535)) {
    throw new RangeError(`dnsSeeds: port must be in 1..65535, got ${String(port)}`);
  }
  const resolver = options.resolver ?? systemResolver;
  return async () => {
    const found =
      records === 'srv'
        ? (await orEmpty(resolver.resolveSrv(name)))
            .filter((r) => r.port >= 1 && r.port <= 65535 && r.name.length > 0)
            .map((r) => formatAddress(r.name, r.port))
        : await addresses(resolver, name, port);
    return [...new Set(found)].sort().slice(0, MAX_DNS_SEEDS);
  };
}

/** A and AAAA together: one family missing is normal; no address and a failed query is an error. */
async function addresses(resolver: DnsResolver, name: string, port: number): Promise<string[]> {
  const [v4, v6] = await Promise.allSettled([
    orEmpty(resolver.resolve4(name)),
    orEmpty(resolver.resolve6(name)),
  ]);
  const ips = [
    ...(v4.status === 'fulfilled' ? v4.value : []),
    ...(v6.status === 'fulfilled' ? v6.value : []),
  ];
  if (ips.length === 0) {
    if (v4.status === 'rejected') throw v4.reason;
    if (v6.status === 'rejected') throw v6.reason;
  }
  return ips.map((ip) => formatAddress(ip, port));
}

async function orEmpty<T>(answer: Promise<T[]>): Promise<T[]> {
  try {
    return await answer;
  } catch (err) {
    if (EMPTY_CODES.has((err as { code?: string }).code ?? '')) return [];
    throw err;
  }
}
