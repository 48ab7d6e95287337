/**
 * TcpTransport micro-benchmark: two transports in one process over loopback, an echo handler,
 * 100-byte payloads, 256 requests in flight. Run alone with `npx tsx test/bench/micro-tcp.ts`.
 */
import { pathToFileURL } from 'node:url';
import { TcpTransport } from '../../src/tcp/index.js';
import { type BenchRow, formatTable, runClosedLoop } from './lib.js';

export async function benchTcp(): Promise<BenchRow[]> {
  const total = 200_000;
  const concurrency = 256;
  const payload = new Uint8Array(100).fill(7);
  const rows: BenchRow[] = [];
  for (const variant of ['plain', 'shared secret'] as const) {
    const secret = variant === 'shared secret' ? 'bench' : undefined;
    const server = new TcpTransport({ secret });
    const client = new TcpTransport({ secret });
    await server.start(async (_from, p) => p);
    await client.start(async (_from, p) => p);
    try {
      // Warm-up: connection, JIT.
      await runClosedLoop(100_000, concurrency, () =>
        client.request(server.address, payload, { timeoutMs: 10_000 }),
      );
      const before = client.stats();
      // CPU per request (both transports, this process): steadier than ops/s on a shared machine.
      const cpu0 = process.cpuUsage();
      const r = await runClosedLoop(total, concurrency, () =>
        client.request(server.address, payload, { timeoutMs: 10_000 }),
      );
      const cpu = process.cpuUsage(cpu0);
      const after = client.stats();
      rows.push({
        scenario: `TcpTransport echo, ${variant}, 100 B, ${concurrency} in flight (1 process)`,
        ...r,
        extra: {
          cpuUsPerReq: ((cpu.user + cpu.system) / total).toFixed(2),
          framesPerWrite: ((after.framesSent - before.framesSent) / (after.writes - before.writes)).toFixed(
            1,
          ),
        },
      });
    } finally {
      await Promise.all([client.stop(), server.stop()]);
    }
  }
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchTcp().then((rows) => console.log(formatTable(rows)));
}
