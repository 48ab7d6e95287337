/**
 * The `dynamo-engine` command line: operator commands against one running node, over the node's
 * own TCP port (see src/admin). `runCli` is the whole program minus the process: it takes argv
 * and output functions and resolves to the exit code (see `EXIT`), so it is testable in-process.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { AdminClient, type AdminClientOptions } from '../admin/client.js';
import type { AdminReports, StatsReport } from '../admin/protocol.js';
import { AuthError, DynamoError } from '../errors.js';
import { parseAddress } from '../tcp/address.js';
import { RemoteError } from '../transport/wire.js';
import { systemClock } from '../util/clock.js';
import { addDataCommands } from './data.js';
import { formatAction, formatRing, formatStats, formatStatus, formatTransfers, rates } from './format.js';

/** Exit codes (documented in docs/operating/cli.md). */
export const EXIT = {
  ok: 0,
  /** The node answered with an error (unknown member, node not running, malformed request). */
  failed: 1,
  /** Bad command line: unknown command or option, missing argument, bad value. */
  usage: 2,
  /** The node could not be reached (refused, timed out, connection lost). */
  unreachable: 3,
  /** Authentication failed: wrong or missing secret, certificate rejected. */
  auth: 4,
  /** The node refused an action (leave, remove) because its transport does not authenticate peers. */
  refused: 5,
} as const;

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

interface GlobalOptions {
  node?: string;
  host: string;
  port: number;
  secret?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  timeoutMs: number;
  json?: boolean;
}

/** Polling period of `leave --wait`, ms. */
const LEAVE_POLL_MS = 500;

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let code: number = EXIT.ok;
  const program = new Command('dynamo-engine')
    .description('Operate a dynamo-engine cluster: every command asks one running node over its TCP port.')
    .addOption(
      new Option('--node <host:port>', 'the node to ask (overrides --host/--port)').env('DYNAMO_NODE'),
    )
    .option('--host <host>', "the node's host", '127.0.0.1')
    .option('--port <port>', "the node's transport port", integer('port', 1, 65535), 7001)
    .addOption(
      new Option('--secret <secret>', "the cluster's shared secret (TcpTransport secret)").env(
        'DYNAMO_SECRET',
      ),
    )
    .option('--tls-ca <file>', 'mutual TLS: CA certificate (PEM) that signed the nodes')
    .option('--tls-cert <file>', 'mutual TLS: this client certificate (PEM), signed by the same CA')
    .option('--tls-key <file>', 'mutual TLS: the key of --tls-cert (PEM)')
    .option(
      '--timeout-ms <ms>',
      'bound on each request, connecting included',
      integer('timeout', 1, 3_600_000),
      5000,
    )
    .option('--json', 'print the report as JSON (one object) instead of text')
    .version(packageVersion(), '-V, --version', 'print the version of dynamo-engine and exit')
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');

  /** Runs one command against the node; maps every failure to its exit code. */
  const act =
    (command: Command, work: (client: AdminClient, g: GlobalOptions) => Promise<string | object>) =>
    async () => {
      const g = command.optsWithGlobals<GlobalOptions>();
      let client: AdminClient;
      try {
        client = new AdminClient(nodeAddress(g), clientOptions(g));
      } catch (err) {
        io.err(`dynamo-engine: ${messageOf(err)}\n`);
        code = EXIT.usage;
        return;
      }
      try {
        const result = await work(client, g);
        io.out(typeof result === 'string' ? result : `${JSON.stringify(result, null, 2)}\n`);
      } catch (err) {
        code = exitCodeOf(err);
        let message = messageOf(err);
        // A TLS node closes a plain connection without a word: say what is missing.
        if (code === EXIT.unreachable && !usesTls(g) && (await speaksTls(client.address, g.timeoutMs))) {
          code = EXIT.auth;
          message = `${client.address} requires mutual TLS: give --tls-ca, --tls-cert and --tls-key (${message})`;
        }
        // Transport errors name the address already; the node's own answers do not.
        io.err(
          `dynamo-engine: ${message.startsWith(client.address) ? '' : `${client.address}: `}${message}\n`,
        );
      } finally {
        await client.close();
      }
    };
  /** A read-only report: JSON as the node sent it, or its text rendering. */
  const report = <C extends 'status' | 'ring' | 'transfers'>(
    name: C,
    description: string,
    format: (r: AdminReports[C]) => string,
  ) => {
    const command = program.command(name).description(description);
    command.action(
      act(command, async (client, g) => ((r) => (g.json ? r : format(r)))(await client.call(name))),
    );
  };

  report('status', 'members with their status, weight and partitions (like nodetool status)', formatStatus);
  report('ring', 'partition ownership per member against its fair share, and the balance', formatRing);
  report('transfers', 'partition moves of the rebalance in progress, with their progress', formatTransfers);

  const stats = program
    .command('stats')
    .description('per-operation rates (over --interval-ms) and latency percentiles (since start)')
    .option(
      '--interval-ms <ms>',
      'sampling window for the rates; 0: totals only',
      integer('interval', 0, 3_600_000),
      1000,
    );
  stats.action(
    act(stats, async (client, g) => {
      const intervalMs = stats.opts<{ intervalMs: number }>().intervalMs;
      let first: StatsReport | undefined;
      if (intervalMs > 0) {
        first = await client.call('stats');
        await sleep(intervalMs);
      }
      const last = await client.call('stats');
      const r = first ? rates(first, last) : null;
      return g.json ? { ...last, rates: r } : formatStats(last, r);
    }),
  );

  const leave = program
    .command('leave')
    .description(
      'the node hands every partition to the others, then stops (needs an authenticated transport)',
    )
    .option('--wait', 'wait until the node has left and stopped')
    .option(
      '--wait-timeout-ms <ms>',
      'give up waiting after this long',
      integer('wait timeout', 1, 86_400_000),
      600_000,
    );
  leave.action(
    act(leave, async (client, g) => {
      const o = leave.opts<{ wait?: boolean; waitTimeoutMs: number }>();
      const accepted = await client.call('leave');
      if (o.wait) await waitUntilGone(client, o.waitTimeoutMs);
      return g.json ? { ...accepted, left: o.wait === true } : formatAction(accepted, o.wait === true);
    }),
  );

  const remove = program
    .command('remove')
    .description(
      'remove a member that is gone for good; the survivors refill its partitions (authenticated transport)',
    )
    .argument('<id>', 'the member id');
  remove.action(
    act(remove, async (client, g) => {
      const accepted = await client.call('remove', [String(remove.args[0])]);
      return g.json ? accepted : formatAction(accepted, false);
    }),
  );

  addDataCommands(program, act, io);

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // `help <command>` (help asked for) exits 0; help shown for a missing command is an error.
      const helpAsked = err.code === 'commander.help' && err.exitCode === 0;
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || helpAsked
        ? EXIT.ok
        : EXIT.usage;
    }
    throw err;
  }
  return code;
}

function nodeAddress(g: GlobalOptions): string {
  const address = g.node ?? `${g.host.includes(':') ? `[${g.host}]` : g.host}:${g.port}`;
  if (!parseAddress(address))
    throw new InvalidArgumentError(`--node must be host:port, got ${JSON.stringify(address)}`);
  return address;
}

function clientOptions(g: GlobalOptions): AdminClientOptions {
  const options: AdminClientOptions = { timeoutMs: g.timeoutMs };
  if (g.secret !== undefined && g.secret !== '') options.secret = g.secret;
  const files = [g.tlsCa, g.tlsCert, g.tlsKey];
  if (files.some((f) => f !== undefined)) {
    if (files.some((f) => f === undefined)) {
      throw new InvalidArgumentError('mutual TLS needs all of --tls-ca, --tls-cert and --tls-key');
    }
    options.tls = {
      ca: readFileSync(g.tlsCa!),
      cert: readFileSync(g.tlsCert!),
      key: readFileSync(g.tlsKey!),
    };
  }
  return options;
}

function usesTls(g: GlobalOptions): boolean {
  return g.tlsCa !== undefined || g.tlsCert !== undefined || g.tlsKey !== undefined;
}

/**
 * Whether a TLS server answers at `address`: a handshake gets as far as the server's certificate
 * (or a TLS alert, such as "certificate required"). A plain node closes the connection instead.
 */
function speaksTls(address: string, timeoutMs: number): Promise<boolean> {
  const target = parseAddress(address);
  if (!target) return Promise.resolve(false);
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host: target.host,
      port: target.port,
      rejectUnauthorized: false,
      timeout: timeoutMs,
    });
    const done = (tls: boolean) => {
      socket.destroy();
      resolve(tls);
    };
    socket.once('secureConnect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', (err: NodeJS.ErrnoException) => done(/^ERR_SSL_.*ALERT/.test(err.code ?? '')));
  });
}

/** The version in the package's package.json (found upwards from this file: src/cli or dist). */
function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'dynamo-engine' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // Not here: one directory up.
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

function exitCodeOf(err: unknown): number {
  if (err instanceof RemoteError) return err.remoteCode === 'DYNAMO_AUTH' ? EXIT.refused : EXIT.failed;
  if (err instanceof AuthError) return EXIT.auth;
  if (err instanceof DynamoError && (err.code === 'DYNAMO_TRANSPORT' || err.code === 'DYNAMO_TIMEOUT')) {
    return EXIT.unreachable;
  }
  return EXIT.failed;
}

/** Polls until the node stops answering (it stops once it has left), or gives up. */
async function waitUntilGone(client: AdminClient, timeoutMs: number): Promise<void> {
  const deadline = systemClock.now() + timeoutMs;
  for (;;) {
    try {
      await client.call('status');
    } catch (err) {
      // Refused or reset: the node has stopped. A node still stopping answers NotRunningError.
      if (!(err instanceof RemoteError) && exitCodeOf(err) === EXIT.unreachable) return;
    }
    if (systemClock.now() >= deadline) {
      throw new Error(`still leaving after ${timeoutMs} ms (it goes on in the background)`);
    }
    await sleep(LEAVE_POLL_MS);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => systemClock.setTimeout(resolve, ms));
}

function integer(name: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}]`);
    }
    return n;
  };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
