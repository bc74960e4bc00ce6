import { Command, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Supervisor } from '../supervisor/supervisor.js';
import { allowedCpus } from '../sys/affinity.js';
import {
  accountSharing,
  lookupAccount,
  missingCapabilities,
  type AccountEntry,
  type CapabilityName,
} from '../sys/privileges.js';
import { seccompSupported } from '../sys/seccomp.js';
import { createLogger, LOG_LEVELS } from './logger.js';
import { DEFAULT_SOCKET, packageVersion, socketPathFrom, UsageError } from './package-info.js';

const EXIT_RUNTIME = 1;
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

/**
 * Workers get an account of their own: the kernel lets any process of a worker's uid signal it,
 * so an account shared with other services (nobody) lets any of them stop the relay. Packages
 * create it (sysusers.d), scripts/setup.sh does in a checkout.
 */
const DEFAULT_USER = 'mcr';

const cpus = allowedCpus();
const defaultWorkers = Math.min(cpus.length, MAX_WORKERS);

const program = new Command('mcrd')
  .description(
    'The mcr supervisor: owns the rules and sockets, runs the packet-moving workers and serves the ' +
      'control socket that mcrctl talks to. Runs in the foreground; needs root, or CAP_NET_RAW, ' +
      'CAP_NET_ADMIN, CAP_SETUID and CAP_SETGID (it creates the raw sockets, then runs workers as an ' +
      'unprivileged user).',
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
    `receive ring per input interface and worker, in MiB (1-${MAX_RING_MIB}: locked kernel memory, which a worker sets up without answering heartbeats)`,
    boundedInt(
      1,
      MAX_RING_MIB,
      'a ring is locked kernel memory per input and worker, and a worker answers no heartbeat while it sets one up (4 GiB took over a second)',
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
  .addOption(new Option('-l, --log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
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
      '  SIGHUP                    reload the configuration: nothing to reload yet, logged\n' +
      '  SIGUSR1                   logged and ignored: Node\u2019s inspector stays closed\n' +
      '  SIGUSR2, SIGALRM, SIGVTALRM, SIGIO, SIGPWR, SIGSTKFLT  logged and ignored\n' +
      '  Others keep their default action: SIGPROF (V8\u2019s profiler uses it), SIGTRAP, SIGSYS\n' +
      '  and the fault signals (a crash; the next mcrd replaces the stale socket).\n' +
      '  Workers ignore SIGINT, SIGQUIT, SIGHUP and the rest above (the supervisor decides);\n' +
      '  SIGTERM or SIGXCPU ends one and the supervisor starts another.\n\n' +
      'Exit status:\n' +
      '  0  stopped cleanly by SIGTERM, SIGINT or SIGQUIT; --help, --version\n' +
      `  1  runtime error: missing capabilities, no ${DEFAULT_USER} account (the default --user), the socket\n` +
      '     path is taken or unusable, a worker could not start, a system call failed; a stop on\n' +
      '     SIGXCPU or a second stop signal\n' +
      "  2  bad usage: an unknown option, a value out of range, --user unknown, privileged or mcrd's\n" +
      '     own, an empty or too long socket path, rings larger than the memory this host has available\n\n' +
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

function boundedInt(min: number, max: number, why?: string): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max)
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}${why ? `: ${why}` : ''}`);
    return Number(value);
  };
}

const log = createLogger(options.logLevel);

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
 * Logged and ignored:
 *   SIGHUP           - will mean "reload the configuration"; there is none to reload yet.
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
  SIGHUP: 'SIGHUP asks mcrd to reload its configuration, but there is nothing to reload yet; nothing changed',
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

/** A runtime failure mcrd foresees and explains in one sentence: printed without a stack. */
class StartError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'StartError';
    this.code = code;
  }
}

/** What the supervisor needs each capability for; the error names the missing ones. */
const NEEDED_CAPABILITIES: Record<CapabilityName, string> = {
  CAP_NET_RAW: 'CAP_NET_RAW for its AF_PACKET sockets and SO_BINDTODEVICE',
  CAP_NET_ADMIN: 'CAP_NET_ADMIN for socket buffers beyond the sysctl limits',
  CAP_SETUID: 'CAP_SETUID',
  CAP_SETGID: 'CAP_SETGID to start its workers as --user',
};

/**
 * Checked before anything is opened or spawned: without these, mcrd would start and then fail
 * at the first rule (CAP_NET_RAW, CAP_NET_ADMIN) or lose every worker at start (CAP_SETUID,
 * CAP_SETGID), with a message about a symptom rather than the cause.
 */
function checkCapabilities(): void {
  const names = Object.keys(NEEDED_CAPABILITIES) as CapabilityName[];
  const missing = missingCapabilities(names);
  if (missing.length === 0) return;
  throw new StartError(
    'E_PRIVILEGES',
    `mcrd lacks ${missing.join(', ')}; it needs ${names.map((n) => NEEDED_CAPABILITIES[n]).join(', ')}. ` +
      `Run it as root, or grant the capabilities (in a systemd unit: AmbientCapabilities=${names.join(' ')})`,
  );
}

/** How to create a worker account, for error messages: a system account, no login, no home. */
function createAccountCommand(name: string): string {
  return `useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin ${name}`;
}

/**
 * The account workers run as. It must exist, must not be root, and must not be mcrd's own: those
 * are refused. One that other processes are bound to share (nobody, an account people log in
 * as) is allowed with a warning, since every such process can signal the workers.
 */
function workerAccount(name: string, chosen: boolean): AccountEntry {
  const account = lookupAccount(name);
  if (!account && !chosen) {
    // Not the operator's doing: the host lacks what mcr's packages or setup script create.
    throw new StartError(
      'E_NO_WORKER_ACCOUNT',
      `workers run as the account ${name}, which does not exist on this host. Create it as root, a system account with no login and no home: ${createAccountCommand(name)} (in a checkout scripts/setup.sh does this; packages create it with systemd-sysusers). Or name another account that nothing else runs as with --user`,
    );
  }
  if (!account) {
    throw new UsageError(
      'E_UNKNOWN_USER',
      `--user ${name}: no such user on this host; create it (${createAccountCommand(name)}) or name an existing unprivileged account that nothing else runs as (default ${DEFAULT_USER})`,
    );
  }
  const supervisorUids = [process.getuid!(), process.geteuid!()];
  switch (accountSharing(account, supervisorUids)) {
    case 'root':
      throw new UsageError(
        'E_PRIVILEGED_USER',
        `--user ${name} has uid ${account.uid} and gid ${account.gid}: workers must not run as root (uid 0) or with the root group (gid 0), since they handle traffic from the network; name an unprivileged account (default ${DEFAULT_USER})`,
      );
    case 'supervisor':
      throw new UsageError(
        'E_SHARED_USER',
        `--user ${name} is the account mcrd itself runs as (uid ${account.uid}): its workers could signal the supervisor and reach every file it owns; give them an account of their own (default ${DEFAULT_USER}) and run mcrd as another`,
      );
    case 'overflow':
      log.warn(
        { code: 'W_SHARED_USER', user: name, uid: account.uid },
        `--user ${name}: every other process running as ${name} (uid ${account.uid}, the account services fall back to) can signal the workers and stop the relay; give them an account of their own: the default ${DEFAULT_USER} (${createAccountCommand(DEFAULT_USER)}) or another that nothing else runs as`,
      );
      break;
    case 'login':
      log.warn(
        { code: 'W_SHARED_USER', user: name, uid: account.uid },
        `--user ${name} has a login shell (${account.shell || '/bin/sh'}): whoever logs in as ${name}, and everything they run, can signal the workers and stop the relay; give them an account of their own with no login: the default ${DEFAULT_USER} (${createAccountCommand(DEFAULT_USER)}) or another`,
      );
      break;
    case undefined:
      break;
  }
  return account;
}

/** MemAvailable from /proc/meminfo, in bytes; undefined if the kernel does not say. */
function memoryAvailable(): number | undefined {
  try {
    const match = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined; // no /proc/meminfo: the check is a courtesy, the kernel will still refuse
  }
}

/**
 * Every worker maps a ring of --ring-size for each input interface, out of locked kernel memory.
 * If one input's rings alone exceed what the host has available, nothing could be relayed.
 */
function checkRingMemory(ringMiB: number, workers: number): void {
  const available = memoryAvailable();
  const needed = ringMiB * 2 ** 20 * workers;
  if (available === undefined || needed <= available) return;
  const gib = (bytes: number): string => (bytes / 2 ** 30).toFixed(1);
  throw new UsageError(
    'E_RING_MEMORY',
    `--ring-size ${ringMiB} MiB for each of ${workers} workers is ${gib(needed)} GiB of locked kernel memory per input interface, more than the ${gib(available)} GiB this host has available (MemAvailable); choose a smaller --ring-size or fewer --workers`,
  );
}

async function main(): Promise<void> {
  // Bad usage first, then what this host lets mcrd do; nothing is opened or spawned before both.
  const socketPath = socketPathFrom(options.socket);
  const account = workerAccount(options.user, program.getOptionValueSource('user') !== 'default');
  const workers = options.workers ?? defaultWorkers;
  checkRingMemory(options.ringSize, workers);
  checkCapabilities();
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
  process.exit(e instanceof UsageError ? EXIT_USAGE : EXIT_RUNTIME);
});
