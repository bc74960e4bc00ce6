import {
  BPF_CAPABILITIES_ADVICE,
  BPF_ENABLE_STATS,
  BPF_OBJ_GET_INFO_BY_FD,
  BPF_PROG_GET_FD_BY_ID,
  BPF_PROG_GET_NEXT_ID,
  bpfCommand,
  ENABLE_STATS,
  GET_ID,
  isPermissionDenied,
  newAttr,
  OBJ_INFO,
  PROG_INFO,
  setPointer,
} from './bpf-syscall.js';
import { OwnedFd } from './closables.js';
import { BpfError } from './errors.js';
import { libc } from './libc.js';

/**
 * What the kernel measures of each program it runs, host-wide, while run-time statistics are on:
 * how often it ran and for how long in all. The time is the program's own (sched_clock read
 * around each run); what the kernel does around it (a redirect's queueing, a driver's
 * transmission) is not in it. Used by the benchmarks to cost mcr's XDP programs on live frames.
 */
export interface ProgramRunStats {
  id: number;
  name: string;
  runs: number;
  runTimeNs: number;
}

const BPF_STATS_RUN_TIME = 0;
const ENOENT = 2;

/**
 * Turns on the kernel's run-time statistics for every program until the returned fd is closed
 * (several holders may keep them on; kernel.bpf_stats_enabled is the same switch). Each run then
 * costs two clock reads more, so a benchmark keeps them off while it measures anything else.
 */
export function enableProgramRunStats(): OwnedFd {
  const { memory, view } = newAttr(ENABLE_STATS.size);
  let fd: number;
  try {
    view.setUint32(ENABLE_STATS.type, BPF_STATS_RUN_TIME, true);
    fd = bpfCommand(BPF_ENABLE_STATS, memory, ENABLE_STATS.size);
  } finally {
    memory.free();
  }
  if (fd < 0) {
    const advice = isPermissionDenied(-fd)
      ? 'needs CAP_SYS_ADMIN (run as root)'
      : 'this kernel has no run-time statistics';
    throw new BpfError('E_BPF_PROGRAM', 'bpf(BPF_ENABLE_STATS run time)', -fd, advice);
  }
  return new OwnedFd(fd);
}

/** Every program loaded on the host whose name starts with `prefix`, with its statistics. */
export function programRunStats(prefix: string): ProgramRunStats[] {
  const found: ProgramRunStats[] = [];
  for (let id = nextProgramId(0); id !== 0; id = nextProgramId(id)) {
    const stats = statsOf(id);
    if (stats && stats.name.startsWith(prefix)) found.push(stats);
  }
  return found;
}

/** The id after `id` among loaded programs, or 0 after the last. Needs CAP_SYS_ADMIN. */
function nextProgramId(id: number): number {
  const { memory, view } = newAttr(GET_ID.size);
  try {
    view.setUint32(GET_ID.id, id, true);
    const result = bpfCommand(BPF_PROG_GET_NEXT_ID, memory, GET_ID.size);
    if (result === -ENOENT) return 0;
    if (result < 0) throw queryError('BPF_PROG_GET_NEXT_ID', -result);
    return view.getUint32(GET_ID.nextId, true);
  } finally {
    memory.free();
  }
}

/** One program's name and statistics, or undefined if it was unloaded since its id was listed. */
function statsOf(id: number): ProgramRunStats | undefined {
  const fd = openProgram(id);
  if (fd === undefined) return undefined;
  const { memory, view } = newAttr(OBJ_INFO.size + PROG_INFO.size);
  try {
    const infoAt = OBJ_INFO.size;
    view.setUint32(OBJ_INFO.bpfFd, fd, true);
    view.setUint32(OBJ_INFO.infoLen, PROG_INFO.size, true);
    setPointer(view, OBJ_INFO.info, memory.address + infoAt);
    const result = bpfCommand(BPF_OBJ_GET_INFO_BY_FD, memory, OBJ_INFO.size);
    if (result < 0) throw queryError(`BPF_OBJ_GET_INFO_BY_FD prog ${id}`, -result);
    const nameBytes = memory.bytes.subarray(infoAt + PROG_INFO.name, infoAt + PROG_INFO.name + 16);
    const end = nameBytes.indexOf(0);
    return {
      id,
      name: new TextDecoder().decode(end < 0 ? nameBytes : nameBytes.subarray(0, end)),
      runs: Number(view.getBigUint64(infoAt + PROG_INFO.runCount, true)),
      runTimeNs: Number(view.getBigUint64(infoAt + PROG_INFO.runTimeNs, true)),
    };
  } finally {
    memory.free();
    libc.close(fd);
  }
}

/** A new fd for program `id`, or undefined if it is gone. */
function openProgram(id: number): number | undefined {
  const { memory, view } = newAttr(GET_ID.size);
  try {
    view.setUint32(GET_ID.id, id, true);
    const fd = bpfCommand(BPF_PROG_GET_FD_BY_ID, memory, GET_ID.size);
    if (fd === -ENOENT) return undefined;
    if (fd < 0) throw queryError(`BPF_PROG_GET_FD_BY_ID ${id}`, -fd);
    return fd;
  } finally {
    memory.free();
  }
}

function queryError(call: string, errno: number): BpfError {
  const advice = isPermissionDenied(errno)
    ? `listing programs needs CAP_SYS_ADMIN; ${BPF_CAPABILITIES_ADVICE}`
    : 'see the errno';
  return new BpfError('E_BPF_PROGRAM', `bpf(${call})`, errno, advice);
}
