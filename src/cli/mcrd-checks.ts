import { accessSync, constants, mkdirSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import {
  accountSharing,
  lookupAccount,
  lookupGroup,
  missingCapabilities,
  type AccountEntry,
  type CapabilityName,
} from '../sys/privileges.js';
import { UsageError } from './package-info.js';

// What mcrd checks before it opens or starts anything: the privileges it has, the account its
// workers run as, the memory their rings take. Each failure is one sentence saying what to do.

/**
 * Workers get an account of their own: the kernel lets any process of a worker's uid signal it,
 * so an account shared with other services (nobody) lets any of them stop the relay. Packages
 * create it (sysusers.d), scripts/setup.sh does in a checkout.
 */
export const DEFAULT_USER = 'mcr';

/** A runtime failure mcrd foresees and explains in one sentence: printed without a stack. */
export class StartError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'StartError';
    this.code = code;
  }
}

/** What the supervisor needs each capability for; the error names the missing ones. */
const NEEDED_CAPABILITIES: Partial<Record<CapabilityName, string>> = {
  CAP_NET_RAW: 'CAP_NET_RAW for its AF_PACKET sockets and SO_BINDTODEVICE',
  CAP_NET_ADMIN: 'CAP_NET_ADMIN for socket buffers beyond the sysctl limits',
  CAP_SETUID: 'CAP_SETUID',
  CAP_SETGID: 'CAP_SETGID to start its workers as --user',
  CAP_KILL: 'CAP_KILL to stop workers that run as another account',
};

/** What the XDP path needs beyond NEEDED_CAPABILITIES (CAP_NET_ADMIN is there already). */
const XDP_CAPABILITIES = ['CAP_BPF', 'CAP_PERFMON'] as const;

/**
 * Checked before anything is opened or spawned: without these, mcrd would start and then fail
 * at the first rule (CAP_NET_RAW, CAP_NET_ADMIN) or lose every worker at start (CAP_SETUID,
 * CAP_SETGID), with a message about a symptom rather than the cause.
 */
export function checkCapabilities(): void {
  const names = Object.keys(NEEDED_CAPABILITIES) as CapabilityName[];
  const missing = missingCapabilities(names);
  if (missing.length === 0) return;
  throw new StartError(
    'E_PRIVILEGES',
    `mcrd lacks ${missing.join(', ')}; it needs ${names.map((n) => NEEDED_CAPABILITIES[n]).join(', ')}. ` +
      `Run it as root, or grant the capabilities, with CAP_BPF and CAP_PERFMON for the XDP path ` +
      `(in a systemd unit: AmbientCapabilities=${[...names, ...XDP_CAPABILITIES].join(' ')})`,
  );
}

/**
 * The XDP path needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN in mcrd (only mcrd loads programs; workers keep
 * none). Without them auto rules stay on the worker path: a warning. A rule of the config file
 * that forces xdp could never apply: then mcrd does not start.
 */
export function checkXdpCapabilities(problem: string | null, forcedXdpRules: number, log: Logger): void {
  if (problem === null) return;
  const advice =
    'grant CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (in a systemd unit: AmbientCapabilities and CapabilityBoundingSet)';
  if (forcedXdpRules > 0) {
    throw new StartError(
      'E_PRIVILEGES',
      `${problem}, and ${forcedXdpRules} rule(s) of the config file ask for xdp: ${advice}, or make those outputs auto`,
    );
  }
  log.warn(
    { code: 'E_PRIVILEGES' },
    `${problem}: every rule stays on the worker path (xdp outputs are refused); ${advice}`,
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
export function workerAccount(name: string, chosen: boolean, log: Logger): AccountEntry {
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
export function checkRingMemory(ringMiB: number, workers: number): void {
  const available = memoryAvailable();
  const needed = ringMiB * 2 ** 20 * workers;
  if (available === undefined || needed <= available) return;
  const gib = (bytes: number): string => (bytes / 2 ** 30).toFixed(1);
  throw new UsageError(
    'E_RING_MEMORY',
    `--ring-size ${ringMiB} MiB for each of ${workers} workers is ${gib(needed)} GiB of locked kernel memory per input interface, more than the ${gib(available)} GiB this host has available (MemAvailable); choose a smaller --ring-size or fewer --workers`,
  );
}

/**
 * The state directory, made if missing (mode 0750: runtime rules are the relay's configuration),
 * and checked to be a directory mcrd can write in, before anything starts.
 */
export function prepareStateDirectory(dir: string | undefined): string | undefined {
  if (dir === undefined) return undefined;
  const path = resolve(dir);
  try {
    mkdirSync(path, { recursive: true, mode: 0o750 });
    if (!statSync(path).isDirectory()) throw new Error('it is not a directory');
    accessSync(path, constants.W_OK);
  } catch (err) {
    throw new StartError(
      'E_STATE_DIRECTORY',
      `--state-directory ${path} cannot hold mcrd's runtime rules: ${(err as Error).message}; give a directory mcrd may create and write`,
    );
  }
  return path;
}

/** The control socket's group, by name: it must exist, or mcrctl access would be wrong. */
export function socketGroupId(name: string | undefined): number | undefined {
  if (name === undefined) return undefined;
  const gid = lookupGroup(name);
  if (gid === undefined) {
    throw new UsageError(
      'E_UNKNOWN_GROUP',
      `--socket-group ${name}: no such group on this host; create it (groupadd --system ${name}) and add the operators who may use mcrctl to it`,
    );
  }
  return gid;
}
