import type { BpfProgram } from './bpf-program.js';
import {
  BPF_CAPABILITIES_ADVICE,
  BPF_RAW_TRACEPOINT_OPEN,
  bpfCommand,
  isPermissionDenied,
  newAttr,
  RAW_TRACEPOINT_OPEN,
  setPointer,
} from './bpf-syscall.js';
import { BpfError } from './errors.js';
import { OwnedFd } from './closables.js';

const ENOENT = 2;

/**
 * Runs a raw_tracepoint program where the kernel tracepoint `tracepoint` (its name without the
 * subsystem, e.g. "xdp_devmap_xmit") fires, until the returned handle is closed; like a bpf_link,
 * the attachment belongs to its fd, so a dead mcrd leaves nothing running. Needs CAP_BPF and
 * CAP_PERFMON; no tracefs.
 */
export function openRawTracepoint(program: BpfProgram, tracepoint: string): RawTracepoint {
  const name = new TextEncoder().encode(`${tracepoint}\0`);
  const nameAt = RAW_TRACEPOINT_OPEN.size;
  const { memory, view } = newAttr(nameAt + name.byteLength);
  let fd: number;
  try {
    memory.bytes.set(name, nameAt);
    setPointer(view, RAW_TRACEPOINT_OPEN.name, memory.address + nameAt);
    view.setUint32(RAW_TRACEPOINT_OPEN.progFd, program.fd, true);
    fd = bpfCommand(BPF_RAW_TRACEPOINT_OPEN, memory, RAW_TRACEPOINT_OPEN.size);
  } finally {
    memory.free();
  }
  if (fd < 0) {
    const call = `bpf(BPF_RAW_TRACEPOINT_OPEN ${tracepoint} ${program.name})`;
    if (isPermissionDenied(-fd)) {
      throw new BpfError('E_BPF_PERMISSION', call, -fd, `${BPF_CAPABILITIES_ADVICE}, and CAP_PERFMON`);
    }
    const advice =
      -fd === ENOENT
        ? `this kernel has no tracepoint ${tracepoint}`
        : `the program could not be attached to the tracepoint ${tracepoint}`;
    throw new BpfError('E_BPF_ATTACH', call, -fd, advice);
  }
  return new RawTracepoint(fd, tracepoint, program.name);
}

/** A program attached to a raw tracepoint; close() detaches it. */
export class RawTracepoint extends OwnedFd {
  readonly tracepoint: string;
  readonly programName: string;

  constructor(fd: number, tracepoint: string, programName: string) {
    super(fd);
    this.tracepoint = tracepoint;
    this.programName = programName;
  }
}
