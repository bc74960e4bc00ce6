// Applies the worker's seccomp filter to this process, then tries what a compromised worker
// would, and prints what happened as JSON. Run by test/unit/sys-seccomp.test.ts as a child.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { errnoName } from '../../src/sys/errors.js';
import { lastErrno, libc } from '../../src/sys/libc.js';
import { applyWorkerFilter } from '../../src/sys/seccomp.js';
import { bindIpv4, closeFd, openUdpSocket } from '../../src/sys/socket.js';

const PR_SET_NO_NEW_PRIVS = 38;
const SYS_PRLIMIT64 = 302;
const SYS_SETPRIORITY = 141;
const RLIMIT_CPU = 0;
const PRIO_PROCESS = 0;

/** A raw system call's outcome: 'ok', or the errno name. */
function syscallOutcome(result: unknown): string {
  return (result as number) < 0 ? errnoName(lastErrno()) : 'ok';
}

/** Reads (does not change) the CPU-time limit of process `pid`, 0 meaning this one. */
function readCpuLimit(pid: number): string {
  const limit = new BigUint64Array(2);
  return syscallOutcome(
    libc.syscall(SYS_PRLIMIT64, 'int', pid, 'int', RLIMIT_CPU, 'void *', null, 'void *', limit),
  );
}

function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

async function main(): Promise<void> {
  libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  const held = openUdpSocket('held before the filter');
  applyWorkerFilter();
  const results: Record<string, string> = {
    socket: outcome(() => closeFd(openUdpSocket('after the filter'))),
    bind: outcome(() => bindIpv4(held, 0x7f000001, 0)),
    execve: outcome(() => {
      const r = spawnSync('/bin/true');
      if (r.error) throw r.error;
    }),
    killParent: outcome(() => process.kill(process.ppid, 0)),
    killSelf: outcome(() => process.kill(process.pid, 0)),
    prlimitParent: readCpuLimit(process.ppid),
    prlimitSelf: readCpuLimit(0),
    prlimitOwnPid: readCpuLimit(process.pid),
    setpriority: syscallOutcome(libc.syscall(SYS_SETPRIORITY, 'int', PRIO_PROCESS, 'int', 0, 'int', 0)),
    readFile: outcome(() => readFileSync('/proc/self/status', 'utf8')),
    seccompMode: /^Seccomp:\s*(\d)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '?',
  };
  results.thread = await new Promise<string>((resolve) => {
    const worker = new Worker('require("node:worker_threads").parentPort.postMessage("ok")', { eval: true });
    worker.once('message', (m: string) => resolve(m));
    worker.once('error', (err) => resolve(`error ${err.message}`));
  });
  await new Promise((resolve) => setTimeout(resolve, 20)); // timers still run
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
