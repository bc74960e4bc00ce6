import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { arch } from 'node:process';
import {
  BPF_JEQ_K,
  BPF_JGE_K,
  BPF_JSET_K,
  FilterBuilder,
  nativeProgram,
  type FilterInstruction,
} from './classic-bpf.js';
import { AF_PACKET, ETH_P_ALL, ETH_P_IP } from './constants.js';
import { SysError } from './errors.js';
import { lastErrno, libc } from './libc.js';
import { bindPacketSocket } from './packet-socket.js';
import { closeFd, openUdpSocket } from './socket.js';

/**
 * The system-call filter of a worker (seccomp). A worker holds raw sockets but must never make
 * new ones, bind or connect the ones it has elsewhere, run programs, trace or signal other
 * processes, or reach kernel interfaces a packet mover has no use for. It is a deny list: Node
 * and V8 make many calls a hand-kept allow list would miss on some version, and a denied call
 * fails with EPERM (never kills), so the worker reports it instead of vanishing.
 */

// struct seccomp_data: nr (int) @0, arch (u32) @4, instruction_pointer @8, args[6] (u64) @16.
const DATA_NR = 0;
const DATA_ARCH = 4;
const DATA_ARG0_LOW = 16;

const AUDIT_ARCH_X86_64 = 0xc000003e;
/** x86-64 system calls made through the x32 ABI have this bit set. */
const X32_SYSCALL_BIT = 0x40000000;

const SECCOMP_RET_KILL_PROCESS = 0x80000000;
const SECCOMP_RET_ERRNO = 0x00050000;
const SECCOMP_RET_ALLOW = 0x7fff0000;
const EPERM = 1;
const ENOSYS = 38;
const CLONE_THREAD = 0x00010000;

const SYS_SECCOMP = 317;
const SECCOMP_SET_MODE_FILTER = 1;
/** Every thread of the process gets the filter, not only the calling one (V8 and libuv have several). */
const SECCOMP_FILTER_FLAG_TSYNC = 1;

/** Denied outright (x86-64 numbers, from asm/unistd_64.h). */
export const DENIED_SYSCALLS: Readonly<Record<string, number>> = Object.freeze({
  // New sockets, and moving the ones it holds.
  socket: 41,
  socketpair: 53,
  bind: 49,
  connect: 42,
  listen: 50,
  accept: 43,
  accept4: 288,
  // Other programs and other processes.
  execve: 59,
  execveat: 322,
  fork: 57,
  vfork: 58,
  ptrace: 101,
  process_vm_readv: 310,
  process_vm_writev: 311,
  process_madvise: 440,
  kcmp: 312,
  tkill: 200,
  // They name their target in the second argument, where 0 is not always the caller; nothing in a
  // worker changes priorities.
  setpriority: 141,
  ioprio_set: 251,
  pidfd_open: 434,
  pidfd_send_signal: 424,
  pidfd_getfd: 438,
  // Namespaces, mounts, the kernel itself.
  setns: 308,
  unshare: 272,
  mount: 165,
  umount2: 166,
  pivot_root: 155,
  chroot: 161,
  open_tree: 428,
  move_mount: 429,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  fspick: 433,
  open_by_handle_at: 304,
  name_to_handle_at: 303,
  mknod: 133,
  mknodat: 259,
  init_module: 175,
  finit_module: 313,
  delete_module: 176,
  kexec_load: 246,
  kexec_file_load: 320,
  reboot: 169,
  swapon: 167,
  swapoff: 168,
  acct: 163,
  quotactl: 179,
  syslog: 103,
  vhangup: 153,
  uselib: 134,
  personality: 135,
  iopl: 172,
  ioperm: 173,
  settimeofday: 164,
  clock_settime: 227,
  adjtimex: 159,
  // Powerful interfaces a packet mover never needs.
  bpf: 321,
  perf_event_open: 298,
  userfaultfd: 323,
  fanotify_init: 300,
  keyctl: 250,
  add_key: 248,
  request_key: 249,
  io_uring_setup: 425,
  io_uring_enter: 426,
  io_uring_register: 427,
  seccomp: 317,
});

/** Allowed only for new threads of the worker itself (flags include CLONE_THREAD). */
const CLONE = 56;
/** Its flags are behind a pointer the filter cannot read: ENOSYS makes the C library use clone. */
const CLONE3 = 435;
/** Signals: allowed only when the first argument (the target process) is the worker itself. */
const SIGNALS_TO_SELF_ONLY = { kill: 62, tgkill: 234, rt_sigqueueinfo: 129, rt_tgsigqueueinfo: 297 };
/**
 * Calls that act on the process named by their first argument, where 0 means the caller: allowed
 * for the worker itself only. On another process of the same account (the other workers) they
 * would be a signal by other means: prlimit64 could set its CPU-time limit to a second (SIGXCPU,
 * then SIGKILL), the scheduler calls could starve it. Node reads its own limits with pid 0.
 */
const SELF_ONLY = {
  prlimit64: 302,
  sched_setaffinity: 203,
  sched_setparam: 142,
  sched_setscheduler: 144,
  sched_setattr: 314,
  migrate_pages: 256,
  move_pages: 279,
};

/** The filter for a worker whose process id is `pid`. */
export function workerFilter(pid: number): FilterInstruction[] {
  const b = new FilterBuilder()
    .load(DATA_ARCH)
    .jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, 0, 'kill')
    .load(DATA_NR)
    .jump(BPF_JGE_K, X32_SYSCALL_BIT, 'deny');
  for (const nr of Object.values(DENIED_SYSCALLS)) b.jump(BPF_JEQ_K, nr, 'deny');
  b.jump(BPF_JEQ_K, CLONE, 'clone');
  b.jump(BPF_JEQ_K, CLONE3, 'enosys');
  for (const nr of Object.values(SIGNALS_TO_SELF_ONLY)) b.jump(BPF_JEQ_K, nr, 'self');
  for (const nr of Object.values(SELF_ONLY)) b.jump(BPF_JEQ_K, nr, 'selfOrZero');
  return b
    .ret(SECCOMP_RET_ALLOW)
    .label('clone')
    .load(DATA_ARG0_LOW)
    .jump(BPF_JSET_K, CLONE_THREAD, 'allow', 'deny')
    .label('selfOrZero')
    .load(DATA_ARG0_LOW)
    .jump(BPF_JEQ_K, 0, 'allow', 'self')
    .label('self')
    .load(DATA_ARG0_LOW)
    .jump(BPF_JEQ_K, pid, 'allow', 'deny')
    .label('allow')
    .ret(SECCOMP_RET_ALLOW)
    .label('deny')
    .ret(SECCOMP_RET_ERRNO | EPERM)
    .label('enosys')
    .ret(SECCOMP_RET_ERRNO | ENOSYS)
    .label('kill')
    .ret(SECCOMP_RET_KILL_PROCESS)
    .assemble();
}

/** Whether workerFilter knows the system call numbers of `machine` (default: this one). */
export function seccompSupported(machine: string = arch): boolean {
  return machine === 'x64';
}

/**
 * Confines this process, every thread of it, for good. Needs no_new_privs (set when privileges
 * are dropped). Throws on machines whose system call numbers the filter does not know.
 */
export function applyWorkerFilter(): void {
  if (!seccompSupported())
    throw new Error(`no seccomp filter for ${arch}: system call numbers are known for x64 only`);
  const fprog = nativeProgram(workerFilter(process.pid));
  try {
    const result = libc.syscall(
      SYS_SECCOMP,
      'int',
      SECCOMP_SET_MODE_FILTER,
      'int',
      SECCOMP_FILTER_FLAG_TSYNC,
      'void *',
      fprog.bytes,
    ) as number;
    if (result < 0) throw new SysError('seccomp(SECCOMP_SET_MODE_FILTER)', lastErrno());
    if (result > 0) throw new Error(`seccomp: thread ${result} could not take the filter`);
  } finally {
    fprog.free();
  }
}

/** Whether a worker is confined, and if not, why. */
export type Confinement = { confined: true } | { confined: false; reason: string };

/**
 * Confines this worker where mcr has a filter for the machine. Elsewhere (no numbers for this
 * architecture yet) the worker runs without one and says why: it still has no privileges, and
 * refusing to run would leave those machines with no relay at all. Where a filter exists, failing
 * to apply it throws: that means the kernel or a sandbox refused seccomp, and a worker on a
 * machine mcr supports runs confined or not at all.
 */
export function confineWorker(machine: string = arch): Confinement {
  if (!seccompSupported(machine)) {
    return {
      confined: false,
      reason: `mcr has no seccomp filter for ${machine} yet (its system call numbers are known for x64 only)`,
    };
  }
  applyWorkerFilter();
  return { confined: true };
}

/** The seccomp fields of /proc/PID/status. */
export interface SeccompStatus {
  /** 0 none, 1 strict, 2 filter. */
  mode: number;
  /** Filters attached (Linux 5.9 and later; undefined before). */
  filters: number | undefined;
}

/** A process's seccomp state; undefined if it is gone or /proc does not say. */
export function seccompStatus(pid: number | 'self' = 'self'): SeccompStatus | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined; // the process exited meanwhile
  }
  const mode = /^Seccomp:\s*(\d+)$/m.exec(status);
  if (!mode) return undefined;
  const filters = /^Seccomp_filters:\s*(\d+)$/m.exec(status);
  return { mode: Number(mode[1]), filters: filters ? Number(filters[1]) : undefined };
}

/**
 * Whether a worker carries a filter of its own, judged by the supervisor from /proc. A worker
 * inherits the supervisor's filters (systemd's SystemCallFilter, a container's), so mode 2 alone
 * proves nothing when the supervisor has filters too: the worker must have more of them. Kernels
 * before 5.9 do not count filters; there mode 2 with an unfiltered supervisor is the proof.
 */
export function hasOwnFilter(worker: SeccompStatus, supervisor: SeccompStatus | undefined): boolean {
  if (worker.mode !== 2) return false;
  if (!supervisor || supervisor.mode !== 2) return true;
  return (
    worker.filters !== undefined && supervisor.filters !== undefined && worker.filters > supervisor.filters
  );
}

/** What a compromised worker would try first; each is denied by the filter. */
export const PROBE_OPERATIONS = ['socket', 'bind', 'bind-egress', 'exec', 'spawn', 'kill'] as const;
export type ProbeOperation = (typeof PROBE_OPERATIONS)[number];

const SYS_EXECVE = 59;
/** The loopback interface's index in every network namespace. */
const LOOPBACK_IFINDEX = 1;
const PROBE_PROGRAM = '/bin/true';

/**
 * Fault injection (mcrd --debug-methods): this process attempts `operation` for real, to prove
 * in a running worker that the filter refuses it. Returns the outcome as an error to report:
 * the refusal (a SysError or Node error whose code is the errno name, EPERM under the filter), or
 * E_NOT_CONFINED when the call went through. The kernel would let an unprivileged process make
 * each of them (all but bind, see there), so EPERM comes from the filter, not from missing
 * capabilities:
 *   socket  a UDP socket;
 *   bind    re-binds one of its ingress AF_PACKET sockets to the loopback interface (another
 *           link to read). Without the filter the kernel refuses that too, but only because the
 *           socket is in a fanout group (EINVAL);
 *   bind-egress  re-binds one of its raw egress sockets to the loopback interface and every
 *           protocol: a sniffer on any link of its network namespace, which the kernel allows;
 *   exec    execve(/bin/true) in place (it would replace the worker, sockets and all);
 *   spawn   runs /bin/true as a child, as Node does (clone, then execve);
 *   kill    signal 0 (a permission check that delivers nothing) to `pid`, e.g. another worker
 *           of the same account.
 */
export function attemptDenied(operation: ProbeOperation, pid: number | null): Error {
  try {
    switch (operation) {
      case 'socket':
        closeFd(openUdpSocket('a probe of the worker filter'));
        break;
      case 'bind':
        bindPacketSocket(packetSocket('ingress'), LOOPBACK_IFINDEX, ETH_P_IP, 'lo');
        break;
      case 'bind-egress':
        bindPacketSocket(packetSocket('egress'), LOOPBACK_IFINDEX, ETH_P_ALL, 'lo');
        break;
      case 'exec': {
        const result = libc.syscall(
          SYS_EXECVE,
          'const char *',
          PROBE_PROGRAM,
          'const char **',
          [PROBE_PROGRAM, null],
          'const char **',
          [null],
        ) as number;
        if (result < 0) throw new SysError(`execve(${PROBE_PROGRAM})`, lastErrno());
        break;
      }
      case 'spawn': {
        const result = spawnSync(PROBE_PROGRAM);
        if (result.error) throw result.error;
        break;
      }
      case 'kill':
        if (pid === null)
          return Object.assign(new Error('kill needs the pid of its target'), { code: 'E_NO_TARGET' });
        process.kill(pid, 0);
        break;
    }
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
  return Object.assign(new Error(`${operation} went through: this process is not confined`), {
    code: 'E_NOT_CONFINED',
  });
}

/**
 * One of this process's AF_PACKET sockets: an input's (bound to a protocol) or a raw egress one
 * (bound with protocol 0, so it receives nothing).
 */
function packetSocket(kind: 'ingress' | 'egress'): number {
  const address = new Uint8Array(32);
  const length = new Uint32Array(1);
  for (const name of readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    length[0] = address.byteLength;
    // Fails with ENOTSOCK for what is not a socket (and EBADF for the directory's own descriptor).
    if ((libc.getsockname(fd, address, length) as number) < 0) continue;
    const view = new DataView(address.buffer);
    if (view.getUint16(0, true) !== AF_PACKET) continue;
    if ((view.getUint16(2, false) !== 0) === (kind === 'ingress')) return fd;
  }
  throw Object.assign(
    new Error(
      `this worker holds no ${kind} packet socket: add a rule whose input and raw output are up first`,
    ),
    { code: 'E_NO_SOCKET' },
  );
}
