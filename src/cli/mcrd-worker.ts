import { Command } from 'commander';
import { getPriority, setPriority } from 'node:os';
import type { Logger } from 'pino';
import { encodeMessage } from '../protocol/worker-messages.js';
import { pinToCpu } from '../sys/affinity.js';
import { FdChannel } from '../sys/fd-channel.js';
import { dropPrivileges } from '../sys/privileges.js';
import { confineWorker } from '../sys/seccomp.js';
import { Worker } from '../worker/worker.js';
import { createLogger } from './logger.js';

// Entry of a worker process, started by mcrd (as root) with its channel as fd 3. Not for operators.
const WORKER_CHANNEL_FD = 3;

/** Filled in as start-up proceeds; signal handlers run from the very start and look here. */
const running: { log?: Logger; worker?: Worker } = {};

/**
 * Signals, installed before anything else and kept for the life of the process. Before the
 * worker drops its privileges only root can signal it; afterwards any process of its account can.
 * SIGUSR1 would make Node open its inspector on 127.0.0.1:9229, a debugger for whoever connects,
 * in a process holding raw sockets; a listener keeps it closed (Node 20 has no
 * --disable-sigusr1), and removing the last listener would restore the default action.
 *
 * The supervisor decides when workers stop: SIGINT and SIGQUIT (which a terminal sends to the
 * whole process group) are ignored quietly; SIGHUP, SIGUSR1, SIGUSR2 and the signals nobody
 * should send are logged and ignored. SIGTERM stops the worker. SIGXCPU (its CPU-time limit)
 * stops it too: the supervisor starts a fresh one, which SIGKILL at the hard limit would only
 * delay. The others keep their default action for the reasons given in mcrd.ts.
 */
process.on('SIGUSR1', () =>
  running.log?.warn({ signal: 'SIGUSR1' }, 'SIGUSR1 ignored: workers do not open the Node inspector'),
);
for (const signal of ['SIGINT', 'SIGQUIT'] as const) process.on(signal, () => undefined);
for (const signal of ['SIGHUP', 'SIGUSR2', 'SIGALRM', 'SIGVTALRM', 'SIGIO', 'SIGPWR', 'SIGSTKFLT'] as const) {
  process.on(signal, () =>
    running.log?.warn({ signal }, `${signal} ignored: the supervisor decides what workers do`),
  );
}
process.on('SIGTERM', () => (running.worker ? running.worker.stop(0) : process.exit(0)));
process.on('SIGXCPU', () => {
  running.log?.error(
    { signal: 'SIGXCPU' },
    'CPU time limit (RLIMIT_CPU) reached: exiting; the supervisor starts a fresh worker',
  );
  if (running.worker) running.worker.stop(1);
  else process.exit(1);
});

const options = new Command('mcrd-worker')
  .requiredOption('--worker-id <n>')
  .requiredOption('--cpu <n>', 'CPU to pin this worker to')
  .requiredOption('--nice <n>', 'nice value of the packet thread (this, the main thread)')
  .requiredOption('--user <name>')
  .requiredOption('--uid <n>')
  .requiredOption('--gid <n>')
  .option('--log-level <level>', 'log level', 'info')
  .option('--log-format <format>', 'json or text', 'json')
  .parse()
  .opts<{
    workerId: string;
    cpu: string;
    nice: string;
    user: string;
    uid: string;
    gid: string;
    logLevel: string;
    logFormat: 'json' | 'text';
  }>();

const log = createLogger(options.logLevel, { worker: Number(options.workerId) }, options.logFormat);
running.log = log;
const account = { name: options.user, uid: Number(options.uid), gid: Number(options.gid) };
startUp(() => pinToCpu(Number(options.cpu)), `could not pin itself to CPU ${options.cpu}`);
takePriority(Number(options.nice));
// Before the first packet, and for good: a worker only ever uses descriptors it is handed.
startUp(
  () => dropPrivileges(account),
  `could not switch to user ${account.name} (uid ${account.uid}, gid ${account.gid})`,
  'mcrd needs CAP_SETUID and CAP_SETGID, and in a user namespace that account must be mapped',
);
/**
 * Then the system-call filter, before the worker reads its first message (so before its first
 * descriptor and packet): no new sockets, no bind or connect, no programs, no signals to other
 * processes, on every thread (TSYNC). It comes after dropping privileges, which sets
 * no_new_privs: the kernel takes a filter from a process without CAP_SYS_ADMIN only with it.
 */
const confinement = startUp(
  () => confineWorker(),
  'could not apply its seccomp filter',
  'the kernel must allow seccomp filters (CONFIG_SECCOMP_FILTER; a container or sandbox may forbid them); on this architecture workers run confined or not at all',
);
if (!confinement.confined) {
  // Loud, at every start: mcrctl workers shows confined false too.
  log.warn(
    { code: 'W_UNCONFINED' },
    `running WITHOUT a system-call filter: ${confinement.reason}; a compromised worker could open sockets, re-bind the ones it holds and run programs`,
  );
}
running.worker = new Worker(WORKER_CHANNEL_FD, log);
log.info(
  { cpu: Number(options.cpu), user: options.user, confined: confinement.confined },
  'worker running unprivileged',
);

/**
 * Gives this thread, the one that moves packets, its nice value, while the worker may still raise
 * its priority (root, CAP_SYS_NICE, or RLIMIT_NICE as the unit's LimitNICE sets). On Linux this
 * sets the calling thread only, which is the one that matters. The receive work that fills the
 * ring runs at nice 0 (a NAPI thread, ksoftirqd): on a shared core, under overload, at equal
 * weights it took most of the core and the worker forwarded a fraction of its own maximum
 * (docs/PERFORMANCE.md, overload). Refused, the worker runs at the nice it has and says why: it
 * forwards as before, only less well under overload.
 */
function takePriority(nice: number): void {
  try {
    setPriority(nice);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    log.warn(
      { code: 'W_WORKER_NICE', errno: code, nice },
      `could not set its nice value to ${nice} (${String(code)}): mcrd needs CAP_SYS_NICE, or an RLIMIT_NICE that allows it (LimitNICE=${nice} in the unit); it runs at nice ${currentNice()}, and under overload the kernel's receive work may take most of its core`,
    );
  }
}

function currentNice(): string {
  try {
    return String(getPriority());
  } catch {
    return 'unknown';
  }
}

/**
 * Runs one start-up step. If it fails, the worker tells the supervisor why on its channel (mcrd
 * puts that in its own error) and exits with 78, EX_CONFIG: restarting would not help.
 */
function startUp<T>(step: () => T, what: string, hint?: string): T {
  try {
    return step();
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    const call = (e as NodeJS.ErrnoException).syscall;
    const code = (e as { code?: unknown }).code;
    const errno = typeof code === 'string' && /^E[A-Z0-9]+$/.test(code);
    // Node's errors from setgroups/setuid say only "EPERM, Operation not permitted".
    const cause =
      call !== undefined && !e.message.includes(call) ? `${call} failed: ${e.message}` : e.message;
    const reason = `${what}: ${cause}${errno && hint ? `; ${hint}` : ''}`;
    // A refused system call is foreseen and the reason says it all; anything else is a bug.
    if (errno) log.fatal({ code }, reason);
    else log.fatal({ err: e }, reason);
    try {
      new FdChannel(WORKER_CHANNEL_FD).send(
        encodeMessage({ type: 'fatal', code: 'E_WORKER_START', message: reason }),
        [],
        false,
      );
    } catch (sendErr) {
      log.warn({ err: sendErr }, 'could not tell the supervisor why');
    }
    process.exit(78);
  }
}
