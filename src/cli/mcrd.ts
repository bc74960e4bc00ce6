import { Command, InvalidArgumentError, Option } from 'commander';
import { fileURLToPath } from 'node:url';
import { Supervisor } from '../supervisor/supervisor.js';
import { allowedCpus } from '../sys/affinity.js';
import { lookupAccount } from '../sys/privileges.js';
import { createLogger, LOG_LEVELS } from './logger.js';
import { DEFAULT_SOCKET, packageVersion, socketPathFrom } from './package-info.js';

const cpus = allowedCpus();

const program = new Command('mcrd')
  .description(
    'The mcr supervisor: owns the rules and sockets, runs the packet-moving workers and serves the ' +
      'control socket that mcrctl talks to. Runs in the foreground; needs root (it creates the raw ' +
      'sockets, then runs workers as an unprivileged user).',
  )
  .version(packageVersion(), '-V, --version')
  .option('-s, --socket <path>', `control socket path (default: $MCR_SOCKET or ${DEFAULT_SOCKET})`)
  .option(
    '-w, --workers <n>',
    `worker processes, each pinned to a CPU; they share every input through PACKET_FANOUT (default: one per usable CPU, here ${cpus.length})`,
    positiveInt,
  )
  .addOption(
    new Option(
      '--fanout <mode>',
      'how the kernel spreads an input over workers: hash keeps each flow on one worker, in order',
    )
      .choices(['hash', 'cpu'])
      .default('hash'),
  )
  .option('-u, --user <name>', 'the unprivileged account workers run as', 'nobody')
  .option('--no-qdisc-bypass', 'send raw egress through the queueing discipline (default: bypass it)')
  .option('--ring-size <MiB>', 'receive ring per input interface and worker, in MiB', positiveInt, 4)
  .option(
    '--batch-size <frames>',
    'frames a worker takes from a ring per batch, and packets per sendmmsg (1-1024)',
    boundedInt(1, 1024),
    64,
  )
  .option(
    '--batch-budget <batches>',
    'batches a worker takes per wakeup before yielding to its event loop (1-1024)',
    boundedInt(1, 1024),
    16,
  )
  .option(
    '--coalesce <µs>',
    'after emptying a ring, a worker waits this long before it looks again, taking several packets per wakeup (like a NIC’s rx-usecs); adds at most this much latency, 0 turns it off (0-1000)',
    boundedInt(0, 1000),
    0,
  )
  .addOption(new Option('-l, --log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
  .addOption(new Option('--debug-methods', 'expose fault-injection control methods (tests only)').hideHelp())
  .addHelpText(
    'after',
    '\nWorkers: each is pinned to one CPU and, before it touches a packet, switches to --user with no\n' +
      'capabilities and no_new_privs; it only uses the sockets the supervisor hands it. A worker that\n' +
      'exits or stops answering heartbeats is restarted (backoff from 100 ms up to 10 s) and re-synced.\n\n' +
      'Logs are JSON lines on stderr. SIGTERM or SIGINT stops the workers, logs the final counters\n' +
      'and removes the control socket. A second mcrd on the same socket path refuses to start.\n\n' +
      'Example:\n  mcrd --socket /run/mcr/mcrd.sock --workers 2 --log-level info',
  )
  .parse();

const options = program.opts<{
  socket?: string;
  workers?: number;
  fanout: 'hash' | 'cpu';
  user: string;
  ringSize: number;
  batchSize: number;
  batchBudget: number;
  coalesce: number;
  logLevel: string;
  debugMethods?: boolean;
  qdiscBypass: boolean;
}>();

function boundedInt(min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max)
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return Number(value);
  };
}

function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1)
    throw new InvalidArgumentError('expected a whole number of at least 1');
  return Number(value);
}

const log = createLogger(options.logLevel);

async function main(): Promise<void> {
  const account = lookupAccount(options.user);
  if (!account)
    throw Object.assign(new Error(`--user ${options.user}: no such user on this host`), {
      code: 'E_UNKNOWN_USER',
    });
  const supervisor = await Supervisor.start({
    socketPath: socketPathFrom(options.socket),
    workers: options.workers ?? cpus.length,
    cpus,
    account,
    fanout: options.fanout,
    debugMethods: options.debugMethods === true,
    qdiscBypass: options.qdiscBypass,
    workerEntry: fileURLToPath(new URL('./mcrd-worker.js', import.meta.url)),
    logLevel: options.logLevel,
    log,
    version: packageVersion(),
    settings: {
      ringBytes: options.ringSize * 1024 * 1024,
      batchSize: options.batchSize,
      batchesPerWakeup: options.batchBudget,
      coalesceUs: options.coalesce,
      statsIntervalMs: 1000,
    },
  });
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    supervisor.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((err: unknown) => {
  const e = err as Error & { code?: string };
  log.fatal({ err: e, code: e.code }, e.message);
  process.stderr.write(`mcrd: ${e.code ? `${e.code}: ` : ''}${e.message}\n`);
  process.exit(1);
});
