import { Command, InvalidArgumentError, Option } from 'commander';
import { fileURLToPath } from 'node:url';
import { Supervisor } from '../supervisor/supervisor.js';
import { createLogger, LOG_LEVELS } from './logger.js';
import { DEFAULT_SOCKET, packageVersion, socketPathFrom } from './package-info.js';

const program = new Command('mcrd')
  .description(
    'The mcr supervisor: owns the rules and sockets, runs the packet-moving workers and serves the ' +
      'control socket that mcrctl talks to. Runs in the foreground; needs root (CAP_NET_RAW, CAP_NET_ADMIN).',
  )
  .version(packageVersion(), '-V, --version')
  .option('-s, --socket <path>', `control socket path (default: $MCR_SOCKET or ${DEFAULT_SOCKET})`)
  .option(
    '-w, --workers <n>',
    'worker processes; several share each input through PACKET_FANOUT',
    positiveInt,
    1,
  )
  .addOption(
    new Option('--fanout <mode>', 'how the kernel spreads frames over workers')
      .choices(['hash', 'cpu'])
      .default('hash'),
  )
  .option('--ring-size <MiB>', 'receive ring per input interface and worker, in MiB', positiveInt, 4)
  .addOption(new Option('-l, --log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
  .addHelpText(
    'after',
    '\nLogs are JSON lines on stderr. SIGTERM or SIGINT stops the workers, logs the final counters\n' +
      'and removes the control socket. A second mcrd on the same socket path refuses to start.\n\n' +
      'Example:\n  mcrd --socket /run/mcr/mcrd.sock --log-level info',
  )
  .parse();

const options = program.opts<{
  socket?: string;
  workers: number;
  fanout: 'hash' | 'cpu';
  ringSize: number;
  logLevel: string;
}>();

function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1)
    throw new InvalidArgumentError('expected a whole number of at least 1');
  return Number(value);
}

const log = createLogger(options.logLevel);

async function main(): Promise<void> {
  const supervisor = await Supervisor.start({
    socketPath: socketPathFrom(options.socket),
    workers: options.workers,
    fanout: options.fanout,
    workerEntry: fileURLToPath(new URL('./mcrd-worker.js', import.meta.url)),
    logLevel: options.logLevel,
    log,
    version: packageVersion(),
    settings: {
      ringBytes: options.ringSize * 1024 * 1024,
      batchSize: 64,
      batchesPerWakeup: 16,
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
