import { Command, InvalidArgumentError, Option } from 'commander';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorKind, isErrorCode } from '../protocol/error-codes.js';
import { readConfigFile, type ConfigFile } from '../supervisor/config-file.js';
import { xdpPrivilegeProblem } from '../supervisor/xdp-system.js';
import {
  METRICS_ADDRESS_FORM,
  parseMetricsAddress,
  type MetricsAddress,
} from '../supervisor/metrics-address.js';
import { Supervisor } from '../supervisor/supervisor.js';
import { allowedCpus } from '../sys/affinity.js';
import { seccompSupported } from '../sys/seccomp.js';
import { createLogger, LOG_FORMATS, LOG_LEVELS } from './logger.js';
import {
  checkCapabilities,
  checkXdpCapabilities,
  checkRingMemory,
  DEFAULT_USER,
  prepareStateDirectory,
  socketGroupId,
  workerAccount,
} from './mcrd-checks.js';
import { mergeSettings, restartNeeded, type DaemonSettings, type ValueSource } from './mcrd-settings.js';
import { DEFAULT_SOCKET, packageVersion, socketPathFrom, UsageError } from './package-info.js';
import { endQuietlyWhenReaderLeaves } from './closed-pipe.js';

endQuietlyWhenReaderLeaves();

const EXIT_RUNTIME = 1;
/**
 * sysexits' EX_CONFIG: the config file or the host must change first (a file with problems, a
 * missing capability, account or directory). A service manager should not retry it; mcr's unit
 * lists it in RestartPreventExitStatus=.
 */
const EXIT_SETUP = 78;
const EXIT_USAGE = 2;

/**
 * A PACKET_FANOUT group joined with the plain socket option holds at most 256 sockets (the 257th
 * join fails with ENOSPC, measured), and every worker has one in each input's group.
 */
const MAX_WORKERS = 256;
/**
 * A ring is locked kernel memory for every input and worker, and a worker sets it up in one
 * system call during which it answers no heartbeat: 1 GiB took 0.2 s here, 4 GiB over a second
 * (the heartbeat deadline is 1.5 s), and a ring over 4 GiB cannot be viewed from Node at all
 * (the worker aborted). 1 GiB, 256 times the default, keeps well clear of both.
 */
const MAX_RING_MIB = 1024;

const cpus = allowedCpus();
const defaultWorkers = Math.min(cpus.length, MAX_WORKERS);

const program = new Command('mcrd')
  .description(
    'The mcr supervisor: owns the rules and sockets, runs the packet-moving workers and serves the ' +
      'control socket that mcrctl talks to. Runs in the foreground; needs root, or CAP_NET_RAW, ' +
      'CAP_NET_ADMIN, CAP_SETUID, CAP_SETGID and CAP_KILL (it creates the raw sockets, then runs workers ' +
      'as an unprivileged user it must be able to stop), and CAP_BPF and CAP_PERFMON for the XDP path ' +
      '(without them every rule stays on the worker path).',
  )
  // commander exits 1 on its own usage errors; mcr's programs exit 2 on bad usage.
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE))
  .configureOutput({ outputError: (text, write) => write(`mcrd: ${text.replace(/^error: /, '')}`) })
  .showHelpAfterError('(run mcrd --help for usage)')
  .version(packageVersion(), '-V, --version')
  .option('-s, --socket <path>', `control socket path (default: $MCR_SOCKET or ${DEFAULT_SOCKET})`)
  .option(
    '-w, --workers <n>',
    `worker processes, each pinned to a CPU; they share every input through PACKET_FANOUT (1-${MAX_WORKERS}; default: one per usable CPU, here ${defaultWorkers})`,
    boundedInt(1, MAX_WORKERS, `a PACKET_FANOUT group holds at most ${MAX_WORKERS} sockets, one per worker`),
  )
  .addOption(
    new Option(
      '--fanout <mode>',
      'how the kernel spreads an input over workers: hash keeps each flow on one worker, in order',
    )
      .choices(['hash', 'cpu'])
      .default('hash'),
  )
  .option(
    '-u, --user <name>',
    'the account workers run as: unprivileged, and used by nothing else (any process of that account can signal them)',
    DEFAULT_USER,
  )
  .option('--no-qdisc-bypass', 'send raw egress through the queueing discipline (default: bypass it)')
  .option(
    '--ring-size <MiB>',
    `receive ring per input interface and worker, in MiB (1-${MAX_RING_MIB}: locked kernel memory, which mcrd sets up without answering anything meanwhile)`,
    boundedInt(
      1,
      MAX_RING_MIB,
      'a ring is locked kernel memory per input and worker, and mcrd answers nothing while it sets one up (4 GiB took over a second)',
    ),
    4,
  )
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
  .option(
    '--worker-nice <n>',
    'nice value of each worker’s packet thread (-20 to 19): below the kernel’s receive work (0), so under overload a worker keeps its share of the core instead of losing it to frames it will drop; needs CAP_SYS_NICE or RLIMIT_NICE (the unit sets LimitNICE)',
    niceValue,
    -10,
  )
  .addOption(new Option('-l, --log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
  .addOption(
    new Option('--log-format <format>', 'json: one JSON object per line; text: for reading by eye')
      .choices(LOG_FORMATS)
      .default('json'),
  )
  .option(
    '-c, --config <file>',
    'rules and daemon settings from this JSON5 file; SIGHUP (or mcrctl config reload) applies what changed in it',
  )
  .option('--check-config <file>', 'check a config file: print every problem in it, then exit 0 (none) or 1')
  .option(
    '--state-directory <dir>',
    'keep the rules added at runtime (mcrctl add) in this directory, so they survive a restart',
  )
  .addOption(
    new Option('--socket-mode <octal>', 'file mode of the control socket')
      .default(0o660, '0660')
      .argParser(octalMode),
  )
  .option(
    '--socket-group <group>',
    "group of the control socket: its members may use mcrctl (default: mcrd's own group)",
  )
  .option(
    '--metrics-listen <host:port>',
    'serve Prometheus metrics at http://HOST:PORT/metrics, e.g. 127.0.0.1:9464 (no authentication: keep it on loopback or behind a firewall; default: not served)',
    metricsAddressArgument,
  )
  .addOption(new Option('--debug-methods', 'expose fault-injection control methods (tests only)').hideHelp())
  .addHelpText(
    'after',
    '\nWorkers: each is pinned to one CPU and, before it touches a packet, switches to --user (default\n' +
      `${DEFAULT_USER}, a system account of their own) with no capabilities and no_new_privs, then installs a\n` +
      'system-call filter (seccomp, x64): it opens, binds and connects no socket, runs no program and\n' +
      'signals no other process; it only uses the sockets the supervisor hands it. A worker that exits\n' +
      'or stops answering heartbeats is restarted (backoff from 100 ms up to 10 s) and re-synced.\n\n' +
      'Logs are JSON lines on stderr. A second mcrd on the same socket path refuses to start.\n\n' +
      'Signals:\n' +
      '  SIGTERM, SIGINT, SIGQUIT  stop: workers drained, final counters logged, control socket\n' +
      '                            removed (a second one exits at once)\n' +
      '  SIGXCPU                   the same, on reaching the CPU-time limit; exit status 1\n' +
      '  SIGHUP                    reload the config file: only what changed is applied\n' +
      '  SIGUSR1                   logged and ignored: Node\u2019s inspector stays closed\n' +
      '  SIGUSR2, SIGALRM, SIGVTALRM, SIGIO, SIGPWR, SIGSTKFLT  logged and ignored\n' +
      '  Others keep their default action: SIGPROF (V8\u2019s profiler uses it), SIGTRAP, SIGSYS\n' +
      '  and the fault signals (a crash; the next mcrd replaces the stale socket).\n' +
      '  Workers ignore SIGINT, SIGQUIT, SIGHUP and the rest above (the supervisor decides);\n' +
      '  SIGTERM or SIGXCPU ends one and the supervisor starts another.\n\n' +
      'Exit status:\n' +
      '  0  stopped cleanly by SIGTERM, SIGINT or SIGQUIT; --help, --version\n' +
      '  1  runtime error, which may pass: another mcrd serves the socket, a worker could not start,\n' +
      '     a system call failed; a stop on SIGXCPU or a second stop signal\n' +
      "  2  bad usage: an unknown option, a value out of range, --user unknown, privileged or mcrd's\n" +
      '     own, an empty or too long socket path, rings larger than the memory this host has available\n' +
      `  78 the file or the host must change first (EX_CONFIG; not worth a retry): a config file\n` +
      `     with problems, missing capabilities, no ${DEFAULT_USER} account (the default --user), an\n` +
      '     unusable socket path or state directory, a metrics address in use or not this host\u2019s\n\n' +
      'Example:\n  mcrd --socket /run/mcr/mcrd.sock --workers 2 --log-level info',
  )
  .parse();

/** The command line: each daemon setting (absent ones undefined), and what only it can say. */
const flags = program.opts<
  DaemonSettings & { debugMethods?: boolean; config?: string; checkConfig?: string }
>();

/** Checked here for the usage error; kept as text, as the config file gives it. */
function metricsAddressArgument(value: string): string {
  const parsed = parseMetricsAddress(value);
  if (!parsed.ok)
    throw new InvalidArgumentError(
      `${JSON.stringify(value)} ${parsed.why} (expected ${METRICS_ADDRESS_FORM})`,
    );
  return parsed.address.text;
}

/** The merged setting (the file's was checked when it was read). */
function metricsAddress(text: string | undefined): MetricsAddress | undefined {
  if (text === undefined) return undefined;
  const parsed = parseMetricsAddress(text);
  if (!parsed.ok) throw new UsageError('E_USAGE', `metrics.listen ${JSON.stringify(text)} ${parsed.why}`);
  return parsed.address;
}

function octalMode(value: string): number {
  if (!/^0?[0-7]{3}$/.test(value)) throw new InvalidArgumentError('expected an octal file mode such as 0660');
  return parseInt(value, 8);
}

if (flags.checkConfig !== undefined) checkConfigAndExit(flags.checkConfig);

/** mcrd --check-config FILE: every problem, one per line; exit 0 or 1. Needs no privilege. */
function checkConfigAndExit(file: string): never {
  const result = readConfigFile(file);
  if (result.ok) {
    const n = result.config.rules.length;
    process.stdout.write(`${file}: OK, ${n} rule${n === 1 ? '' : 's'}\n`);
    for (const warning of result.config.warnings) process.stdout.write(`warning: ${warning}\n`);
    process.exit(0);
  }
  for (const problem of result.problems) process.stderr.write(`${problem.message}\n`);
  process.stderr.write(`mcrd: E_CONFIG_INVALID: ${file} has ${result.problems.length} problem(s)\n`);
  process.exit(EXIT_RUNTIME);
}

/** The config file, read before anything else: its settings are part of what mcrd starts with. */
const configFile = readStartConfig(flags.config);

function readStartConfig(file: string | undefined): ConfigFile | undefined {
  if (file === undefined) return undefined;
  const result = readConfigFile(file);
  if (result.ok) return result.config;
  for (const problem of result.problems) process.stderr.write(`${problem.message}\n`);
  process.stderr.write(
    `mcrd: E_CONFIG_INVALID: ${file} has ${result.problems.length} problem(s); mcrd did not start (mcrd --check-config ${file} lists them)\n`,
  );
  process.exit(EXIT_SETUP);
}

const settingSource = (key: keyof DaemonSettings): ValueSource =>
  program.getOptionValueSource(key) as ValueSource;
/** In force: the command line over the config file over the defaults. */
const options = mergeSettings(flags, settingSource, configFile?.settings);

function boundedInt(min: number, max: number, why?: string): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max)
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}${why ? `: ${why}` : ''}`);
    return Number(value);
  };
}

/** A nice value, -20 to 19 (boundedInt takes no sign). */
function niceValue(value: string): number {
  if (!/^[-+]?\d{1,2}$/.test(value) || Number(value) < -20 || Number(value) > 19)
    throw new InvalidArgumentError('expected a nice value, a whole number from -20 to 19');
  return Number(value);
}

const log = createLogger(options.logLevel, {}, options.logFormat);

/**
 * What mcrd does with every signal whose default action would end it. A process that dies on a
 * signal removes nothing: its control socket stays behind and every rule is lost, so each such
 * signal either stops mcrd cleanly or is logged and ignored, unless there is a reason below to
 * leave it alone. The README's "Signals" section is the operator's copy of this table.
 *
 * Clean shutdown (workers drained, final counters logged, socket removed):
 *   SIGTERM, SIGINT  - the ordinary requests to stop.
 *   SIGQUIT          - Ctrl-\ asks to quit; a core dump of the supervisor helps nobody.
 *   SIGXCPU          - the CPU-time limit (RLIMIT_CPU) is reached and SIGKILL follows at the hard
 *                      limit; stopping cleanly beats that. Exit status 1: nobody asked for it.
 * Reload:
 *   SIGHUP           - the config file (--config) again: only what changed in it is applied; a
 *                      file with problems changes nothing (logged, each problem named).
 * Logged and ignored:
 *   SIGUSR1          - Node would open its inspector on 127.0.0.1:9229, a debugger any local user
 *                      could connect to and run code as root. A listener keeps it closed (Node 20
 *                      has no --disable-sigusr1). bin/mcrd installs a silent one before any module
 *                      loads, this table adds one that logs as soon as the logger exists; both
 *                      stay for the life of the process, since removing the last one would
 *                      restore the default action.
 *   SIGUSR2          - no meaning to mcrd.
 *   SIGALRM, SIGVTALRM, SIGIO (= SIGPOLL), SIGPWR, SIGSTKFLT - mcrd arms no timer, asks for no
 *                      asynchronous I/O signal, and is no UPS daemon: only a stray kill sends them.
 * Left alone, on purpose:
 *   SIGPROF          - V8's CPU profiler (--cpu-prof) samples with it; a listener took its ticks
 *                      (measured: the profile was lost and the process died).
 *   SIGTRAP, SIGSYS, SIGILL, SIGFPE, SIGSEGV, SIGBUS, SIGABRT - a fault, a breakpoint or a system
 *                      call refused by seccomp: carrying on would be wrong. The next mcrd replaces
 *                      the stale socket.
 *   SIGPIPE, SIGXFSZ - Node ignores both; the write fails with EPIPE or EFBIG instead.
 *   SIGTSTP, SIGTTIN, SIGTTOU - job control stops, as asked; SIGCONT resumes.
 *   SIGKILL, SIGSTOP - cannot be caught. Real-time signals (SIGRTMIN+n): Node offers no listener.
 */
const STOP_SIGNALS = { SIGTERM: 0, SIGINT: 0, SIGQUIT: 0, SIGXCPU: 1 } as const;
const IGNORED_SIGNALS = {
  SIGUSR1:
    'SIGUSR1 ignored: mcrd does not open the Node inspector (a debugger port would let any local user run code as root)',
  SIGUSR2: 'SIGUSR2 ignored: it has no meaning to mcrd',
  SIGALRM: 'SIGALRM ignored: mcrd sets no alarm, so someone sent it by hand',
  SIGVTALRM: 'SIGVTALRM ignored: mcrd sets no timer, so someone sent it by hand',
  SIGIO: 'SIGIO ignored: mcrd asks for no I/O signals, so someone sent it by hand',
  SIGPWR: 'SIGPWR ignored: mcrd does not handle power events',
  SIGSTKFLT: 'SIGSTKFLT ignored: it has no meaning to mcrd',
} as const;

let supervisor: Supervisor | undefined;
/** Set by the first stop signal; a stop requested while mcrd starts waits for the start to end. */
let stopping: { signal: NodeJS.Signals; exitCode: number } | undefined;

process.on('SIGHUP', () => {
  if (supervisor) supervisor.reload('SIGHUP');
  else
    log.warn(
      { signal: 'SIGHUP' },
      'SIGHUP while mcrd starts: the config it is starting with is the one just read',
    );
});
for (const [signal, message] of Object.entries(IGNORED_SIGNALS)) {
  process.on(signal, () => log.warn({ signal }, message));
}
for (const [signal, exitCode] of Object.entries(STOP_SIGNALS)) {
  process.on(signal, () => requestStop(signal as NodeJS.Signals, exitCode));
}

function requestStop(signal: NodeJS.Signals, exitCode: number): void {
  if (stopping) {
    log.warn({ signal }, 'second signal: exiting now');
    process.exit(1);
  }
  stopping = { signal, exitCode };
  if (signal === 'SIGXCPU') log.error({ signal }, 'CPU time limit (RLIMIT_CPU) reached: shutting down');
  else log.info({ signal }, 'shutting down');
  if (supervisor) stopAndExit(supervisor, exitCode);
}

function stopAndExit(running: Supervisor, exitCode: number): void {
  running.stop().then(
    () => process.exit(exitCode),
    (err: unknown) => {
      log.error({ err }, 'shutdown failed');
      process.exit(1);
    },
  );
}

async function main(): Promise<void> {
  // Bad usage first, then what this host lets mcrd do; nothing is opened or spawned before both.
  const socketPath = socketPathFrom(options.socket);
  const account = workerAccount(options.user, settingSource('user') !== 'default', log);
  const workers = options.workers ?? defaultWorkers;
  checkRingMemory(options.ringSize, workers);
  checkCapabilities();
  const forcedXdp = (configFile?.rules ?? []).filter((r) => r.outputs.some((o) => o.mode === 'xdp')).length;
  checkXdpCapabilities(xdpPrivilegeProblem(), forcedXdp, log);
  if (!seccompSupported()) {
    // Each worker says so too, at every start, and mcrctl workers shows confined: no.
    log.warn(
      { code: 'W_UNCONFINED', arch: process.arch },
      `workers will run without a system-call filter: mcr has none for ${process.arch} yet (x64 only); they still run without privileges, as --user`,
    );
  }
  supervisor = await Supervisor.start({
    socketPath,
    workers,
    cpus,
    account,
    fanout: options.fanout,
    debugMethods: flags.debugMethods === true,
    qdiscBypass: options.qdiscBypass,
    workerEntry: fileURLToPath(new URL('./mcrd-worker.js', import.meta.url)),
    workerNice: options.workerNice,
    logLevel: options.logLevel,
    logFormat: options.logFormat,
    log,
    version: packageVersion(),
    settings: {
      ringBytes: options.ringSize * 1024 * 1024,
      batchSize: options.batchSize,
      batchesPerWakeup: options.batchBudget,
      coalesceUs: options.coalesce,
      statsIntervalMs: 1000,
    },
    config: configFile,
    configPath: flags.config === undefined ? undefined : resolve(flags.config),
    stateDirectory: prepareStateDirectory(options.stateDirectory),
    socketAccess: { mode: options.socketMode, gid: socketGroupId(options.socketGroup) },
    metrics: metricsAddress(options.metricsListen),
    applySettings: (file) => {
      const next = mergeSettings(options, settingSource, file);
      // The log level changes at once (unless the command line set it); the rest needs a restart.
      if (next.logLevel !== log.level && settingSource('logLevel') !== 'cli') log.level = next.logLevel;
      return restartNeeded(options, next);
    },
  });
  if (stopping) stopAndExit(supervisor, stopping.exitCode);
}

/**
 * Errors that carry one of our stable codes (E_...) or an errno name (EACCES) were foreseen and
 * say what happened; anything else is a bug, whose stack is worth logging.
 */
function isForeseen(err: Error): err is Error & { code: string } {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^(E_[A-Z0-9_]+|E[A-Z0-9]+)$/.test(code);
}

main().catch((err: unknown) => {
  const e = err instanceof Error ? err : new Error(String(err));
  if (isForeseen(e)) log.fatal({ code: e.code }, e.message);
  else log.fatal({ err: e }, e.message);
  process.stderr.write(`mcrd: ${isForeseen(e) ? `${e.code}: ` : ''}${e.message}\n`);
  process.exit(exitStatusFor(e));
});

/** 2 for bad usage, 78 for what the file or the host must change first, else 1. */
function exitStatusFor(e: Error): number {
  if (e instanceof UsageError) return EXIT_USAGE;
  const code = (e as { code?: unknown }).code;
  // An errno from a system call may pass (an interface not up yet): retrying is worth it.
  if (typeof code !== 'string' || !isErrorCode(code)) return EXIT_RUNTIME;
  const kind = errorKind(code);
  if (kind === 'usage') return EXIT_USAGE;
  return kind === 'config' || kind === 'host' ? EXIT_SETUP : EXIT_RUNTIME;
}
