import { availableParallelism } from 'node:os';
import { SysError } from './errors.js';
import { lastErrno, libc } from './libc.js';

/** Pins the calling process to one CPU (sched_setaffinity on pid 0 = the caller). */
export function pinToCpu(cpu: number): void {
  const mask = new Uint8Array(128); // cpu_set_t: 1024 CPUs
  if (cpu < 0 || cpu >= mask.length * 8) throw new RangeError(`cpu ${cpu} is out of range`);
  mask[cpu >>> 3] = 1 << (cpu & 7);
  if ((libc.schedSetAffinity(0, mask.byteLength, mask) as number) < 0) {
    throw new SysError(`sched_setaffinity(cpu ${cpu})`, lastErrno());
  }
}

/**
 * The CPUs this process may run on, in order (taskset or a cgroup may have narrowed them): worker
 * i is pinned to the i-th of these, so a pinned mcrd keeps its workers where it was put.
 */
export function allowedCpus(): number[] {
  const mask = new Uint8Array(128);
  if ((libc.schedGetAffinity(0, mask.byteLength, mask) as number) < 0) {
    // Without an answer, assume the first N CPUs (N as Node counts them).
    return Array.from({ length: availableParallelism() }, (_, i) => i);
  }
  const cpus: number[] = [];
  for (let cpu = 0; cpu < mask.length * 8; cpu++) if (mask[cpu >>> 3]! & (1 << (cpu & 7))) cpus.push(cpu);
  return cpus;
}
