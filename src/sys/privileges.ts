import koffi from 'koffi';
import { readFileSync } from 'node:fs';
import { SysError } from './errors.js';
import { lastErrno, libc } from './libc.js';

export interface Account {
  name: string;
  uid: number;
  gid: number;
}

/** An account as the system's user database describes it. */
export interface AccountEntry extends Account {
  home: string;
  /** The login shell; nologin or false for an account nobody logs in as. */
  shell: string;
}

/** struct passwd (pwd.h). */
const Passwd = koffi.struct('mcr_passwd', {
  pw_name: 'const char *',
  pw_passwd: 'const char *',
  pw_uid: 'uint32_t',
  pw_gid: 'uint32_t',
  pw_gecos: 'const char *',
  pw_dir: 'const char *',
  pw_shell: 'const char *',
});

interface PasswdFields {
  pw_uid: number;
  pw_gid: number;
  pw_dir: string | null;
  pw_shell: string | null;
}

/** struct group (grp.h): name, password, gid, members. */
const Group = koffi.struct('mcr_group', {
  gr_name: 'const char *',
  gr_passwd: 'const char *',
  gr_gid: 'uint32_t',
});

/** A group's id through the C library (NSS sources count), or undefined when there is none. */
export function lookupGroup(name: string): number | undefined {
  const entry: unknown = libc.getgrnam(name);
  if (entry === null) return undefined;
  return (koffi.decode(entry, Group) as { gr_gid: number }).gr_gid;
}

/** Looks a user up through the C library (so NSS sources count, not only /etc/passwd). */
export function lookupAccount(name: string): AccountEntry | undefined {
  const entry: unknown = libc.getpwnam(name);
  if (entry === null) return undefined;
  const fields = koffi.decode(entry, Passwd) as PasswdFields;
  return {
    name,
    uid: fields.pw_uid,
    gid: fields.pw_gid,
    home: fields.pw_dir ?? '',
    shell: fields.pw_shell ?? '',
  };
}

/**
 * The uid the kernel shows for ids it cannot map (/proc/sys/kernel/overflowuid): nobody's on
 * nearly every distribution.
 */
export function overflowUid(): number {
  try {
    return Number(readFileSync('/proc/sys/kernel/overflowuid', 'utf8').trim());
  } catch {
    return 65534; // the kernel's default, when /proc is not there to say
  }
}

/**
 * Why an account is wrong or doubtful for workers, which must be alone in it: the kernel lets
 * any process whose uid matches a worker's send it signals, so whoever else runs as that account
 * can stop the relay.
 *   root        uid or gid 0: workers handle traffic from the network.
 *   supervisor  mcrd's own account (a service account holding capabilities): its workers could
 *               signal the supervisor.
 *   overflow    nobody, or the overflow uid: the account of every service that drops privileges
 *               without one of its own.
 *   login       it has a login shell: a person logs in as it, with everything they run.
 * The first two are never right; the others can be, on a host the operator knows.
 */
export type AccountSharing = 'root' | 'supervisor' | 'overflow' | 'login';

/** A shell that lets nobody log in (nologin, false), as system accounts have. */
const NO_LOGIN_SHELL = /(^|\/)(nologin|false)$/;

export function accountSharing(
  account: AccountEntry,
  supervisorUids: readonly number[],
  overflow: number = overflowUid(),
): AccountSharing | undefined {
  if (account.uid === 0 || account.gid === 0) return 'root';
  if (supervisorUids.includes(account.uid)) return 'supervisor';
  if (account.name === 'nobody' || account.uid === overflow) return 'overflow';
  // An empty shell means /bin/sh (passwd(5)).
  if (!NO_LOGIN_SHELL.test(account.shell)) return 'login';
  return undefined;
}

const PR_SET_NO_NEW_PRIVS = 38;
const PR_CAP_AMBIENT = 47;
const PR_CAP_AMBIENT_CLEAR_ALL = 4;
const LINUX_CAPABILITY_VERSION_3 = 0x20080522;

/**
 * Turns this process into an unprivileged one for good: no_new_privs (nothing it executes can
 * gain privileges), no supplementary groups, the account's gid and uid, and every capability set
 * empty (permitted, effective, inheritable, ambient). Verified from /proc afterwards: a worker
 * that could not shed its privileges must not run.
 */
export function dropPrivileges(account: Account): void {
  if ((libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) as number) < 0)
    throw new SysError('prctl(PR_SET_NO_NEW_PRIVS)', lastErrno());
  if ((libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) as number) < 0) {
    throw new SysError('prctl(PR_CAP_AMBIENT_CLEAR_ALL)', lastErrno());
  }
  // These exist on every POSIX platform; mcr runs on Linux only.
  process.setgroups!([]);
  process.setgid!(account.gid);
  // Leaving uid 0 clears the permitted and effective sets; the inheritable set needs capset.
  process.setuid!(account.uid);
  const header = new Uint32Array([LINUX_CAPABILITY_VERSION_3, 0]);
  const data = new Uint32Array(6); // two {effective, permitted, inheritable} words, all zero
  if ((libc.capset(header, data) as number) < 0) throw new SysError('capset(clear all)', lastErrno());
  const left = capabilitySets();
  const held = Object.entries(left).filter(([, value]) => value !== 0n);
  if (held.length > 0 || process.getuid?.() !== account.uid) {
    throw new Error(`privileges still held after dropping them: ${held.map(([k]) => k).join(', ') || 'uid'}`);
  }
}

/** CapInh, CapPrm, CapEff and CapAmb of a process (default: this one), from /proc. */
export function capabilitySets(
  pid: number | 'self' = 'self',
): Record<'CapInh' | 'CapPrm' | 'CapEff' | 'CapAmb', bigint> {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const read = (key: string): bigint => {
    const match = new RegExp(`^${key}:\\s*([0-9a-f]+)$`, 'm').exec(status);
    if (!match) throw new Error(`/proc/${pid}/status has no ${key}`);
    return BigInt(`0x${match[1]}`);
  };
  return { CapInh: read('CapInh'), CapPrm: read('CapPrm'), CapEff: read('CapEff'), CapAmb: read('CapAmb') };
}

/** Bit numbers (linux/capability.h) of the capabilities mcr checks for by name. */
const CAPABILITY_BITS = {
  CAP_CHOWN: 0,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
} as const;
export type CapabilityName = keyof typeof CAPABILITY_BITS;

/**
 * Those of `needed` missing from this process's effective set (CapEff), which is what the kernel
 * checks when a socket is created. Root normally holds them all; a service account may hold
 * them as ambient capabilities; a container or `setpriv` may have taken some away from root.
 */
export function missingCapabilities(needed: readonly CapabilityName[]): CapabilityName[] {
  const effective = capabilitySets().CapEff;
  return needed.filter((name) => (effective & (1n << BigInt(CAPABILITY_BITS[name]))) === 0n);
}
