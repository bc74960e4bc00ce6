import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, sleep, type RunningProcess } from './topology.js';
import { setprivCapability, type UnitFile } from './unit-file.js';

// mcrd started the way packaging/systemd/mcr.service starts it, without systemd (which is not
// PID 1 on test machines): the unit's account and groups, exactly its capabilities, no_new_privs,
// its umask, its ExecStart= options, and the directories systemd would make for it, in a
// temporary directory instead of /run, /var/lib and /etc.

/** The unit's directories, made as systemd makes them, and the socket path in the first. */
export interface ServicePlaces {
  /** Holds the rest; removed by the test. */
  base: string;
  /** RuntimeDirectory= (/run/mcr): mcrd's, 0755. */
  runtime: string;
  socketPath: string;
  /** StateDirectory= (/var/lib/mcr): mcrd's, 0750. */
  stateDir: string;
  /** The config file in ConfigurationDirectory= (/etc/mcr): root's, 0644. */
  configPath: string;
}

function idOf(name: string, flag: '-u' | '-g'): number {
  const r = spawnSync('id', [flag, name], { encoding: 'utf8' });
  assert.equal(r.status, 0, `id ${flag} ${name}: ${r.stderr}`);
  return Number(r.stdout.trim());
}

/** Makes the unit's directories for its User=, with `config` copied in as the config file. */
export function serviceDirectories(unit: UnitFile, config: string): ServicePlaces {
  const user = unit.get('Service', 'User')!;
  const owner = { uid: idOf(user, '-u'), gid: idOf(user, '-g') };
  const base = mkdtempSync(join(tmpdir(), 'mcr-unit-'));
  chmodSync(base, 0o755);
  const runtime = join(base, 'run');
  mkdirSync(runtime, { mode: 0o755 });
  chownSync(runtime, owner.uid, owner.gid);
  const stateDir = join(base, 'state');
  mkdirSync(stateDir, { mode: 0o750 });
  chownSync(stateDir, owner.uid, owner.gid);
  const configPath = join(base, 'mcr.json5');
  copyFileSync(config, configPath);
  chmodSync(configPath, 0o644);
  chownSync(configPath, 0, 0);
  return { base, runtime, socketPath: join(runtime, 'mcrd.sock'), stateDir, configPath };
}

/**
 * The command prefix that gives a process the unit's RLIMIT_NICE (LimitNICE=, through prlimit),
 * account, capabilities and no_new_privs (through setpriv).
 */
export function asTheUnit(unit: UnitFile): string[] {
  return [...(canApplyLimitNice(unit) ? limitNicePrefix(unit) : []), ...setprivAsTheUnit(unit)];
}

/**
 * Whether this host lets the test give a process the unit's LimitNICE= as systemd would. Raising
 * a hard limit takes CAP_SYS_RESOURCE, which systemd (PID 1) has and a container's root may not:
 * there the unit's process keeps the limit it inherits (0), as under a systemd that could not set it.
 */
export function canApplyLimitNice(unit: UnitFile): boolean {
  const prefix = limitNicePrefix(unit);
  return prefix.length > 0 && spawnSync(prefix[0]!, [...prefix.slice(1), 'true']).status === 0;
}

function limitNicePrefix(unit: UnitFile): string[] {
  const limitNice = unit.get('Service', 'LimitNICE');
  return limitNice === undefined ? [] : ['prlimit', `--nice=${niceLimit(limitNice)}`, '--'];
}

/** LimitNICE= as systemd reads it: a nice level with its sign (-10), or RLIMIT_NICE itself (0-40). */
function niceLimit(value: string): number {
  const limit = /^[-+]/.test(value) ? 20 - Number(value) : Number(value);
  assert.ok(Number.isInteger(limit) && limit >= 0 && limit <= 40, `LimitNICE=${value} is not a nice limit`);
  return limit;
}

function setprivAsTheUnit(unit: UnitFile): string[] {
  const ambient = unit.capabilities('AmbientCapabilities');
  const bounding = unit.capabilities('CapabilityBoundingSet');
  const caps = (list: string[]): string => list.map((c) => `+${setprivCapability(c)}`).join(',');
  return [
    'setpriv',
    `--reuid=${unit.get('Service', 'User')}`,
    `--regid=${unit.get('Service', 'Group')}`,
    '--init-groups',
    `--inh-caps=-all,${caps(ambient)}`,
    `--ambient-caps=-all,${caps(ambient)}`,
    `--bounding-set=-all,${caps(bounding)}`,
    ...(unit.get('Service', 'NoNewPrivileges') === 'yes' ? ['--no-new-privs'] : []),
  ];
}

/** A command of the unit (ExecStart=, ExecReload=) with the checkout's program and `places`. */
export function unitCommand(
  unit: UnitFile,
  key: 'ExecStart' | 'ExecReload',
  places: ServicePlaces,
): string[] {
  const paths: Record<string, string> = {
    '/etc/mcr/mcr.json5': places.configPath,
    '/var/lib/mcr': places.stateDir,
    '/run/mcr/mcrd.sock': places.socketPath,
  };
  const [program, ...args] = unit.command(key);
  const tool = /\/bin\/(mcrd|mcrctl)$/.exec(program!)?.[1] as 'mcrd' | 'mcrctl' | undefined;
  assert.ok(tool, `${key}= runs mcrd or mcrctl: ${program}`);
  return [BIN(tool), ...args.map((a) => paths[a] ?? a)];
}

/** What a test host offers to start mcrd in one of its namespaces. */
export interface NamespaceHost {
  start(ns: string, command: string, args: string[]): RunningProcess;
}

/**
 * Starts mcrd in `ns` as the unit would (through `tracer`, e.g. strace, when given) and waits
 * until its control socket answers. Returns the process started and mcrd's own pid (which differs
 * when a tracer runs it).
 */
export async function startAsTheUnit(
  host: NamespaceHost,
  ns: string,
  unit: UnitFile,
  places: ServicePlaces,
  tracer: string[] = [],
): Promise<{ process: RunningProcess; pid: number }> {
  const umask = unit.get('Service', 'UMask') ?? '0022';
  const command = [...tracer, ...asTheUnit(unit), ...unitCommand(unit, 'ExecStart', places)];
  // sh sets the unit's umask, then becomes the rest: setpriv becomes mcrd.
  const started = host.start(ns, 'sh', ['-c', `umask ${umask} && exec "$@"`, 'sh', ...command]);
  const deadline = Date.now() + 30000;
  for (;;) {
    const ping = spawnSync(BIN('mcrctl'), ['--socket', places.socketPath, '--json', 'ping'], {
      encoding: 'utf8',
    });
    if (ping.status === 0) return { process: started, pid: (JSON.parse(ping.stdout) as { pid: number }).pid };
    if (started.child.exitCode !== null) throw new Error(`mcrd exited at start:\n${started.stderr}`);
    if (Date.now() > deadline) throw new Error(`mcrd did not answer within 30 s:\n${started.stderr}`);
    await sleep(100);
  }
}
