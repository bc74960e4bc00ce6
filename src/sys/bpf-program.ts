import {
  BPF_CAPABILITIES_ADVICE,
  BPF_OBJ_GET_INFO_BY_FD,
  BPF_PROG_LOAD,
  BPF_PROG_TEST_RUN,
  bpfCommand,
  isPermissionDenied,
  newAttr,
  OBJ_INFO,
  PROG_INFO,
  PROG_LOAD,
  setPointer,
  TEST_RUN,
  writeObjectName,
} from './bpf-syscall.js';
import { BpfError } from './errors.js';
import { allocateNative, libc, type NativeMemory } from './libc.js';

/**
 * What a program is for: `xdp` runs on an interface's receive path (attached with a bpf_link);
 * `xdp_devmap` runs on each frame a devmap entry sends (struct bpf_devmap_val's program), and may
 * read the egress interface from its context; `raw_tracepoint` runs where a kernel tracepoint
 * fires, on the tracepoint's arguments (u64 each), attached with openRawTracepoint.
 */
export type ProgramKind = 'xdp' | 'xdp_devmap' | 'raw_tracepoint';

/** enum bpf_prog_type. */
const PROGRAM_TYPES: Record<ProgramKind, number> = { xdp: 6, xdp_devmap: 6, raw_tracepoint: 17 };
/** enum bpf_attach_type, told to the verifier at load time (0 where the type has none). */
export const BPF_XDP_DEVMAP = 33;
export const BPF_XDP = 37;
const EXPECTED_ATTACH_TYPES: Record<ProgramKind, number> = {
  xdp: BPF_XDP,
  xdp_devmap: BPF_XDP_DEVMAP,
  raw_tracepoint: 0,
};
/** A raw tracepoint's context: at most MAX_BPF_FUNC_ARGS (12) arguments of 8 bytes. */
const RAW_TRACEPOINT_CONTEXT_MAX = 12 * 8;

/**
 * mcr is MIT-licensed; the kernel lets only GPL-compatible programs call GPL-only helpers, and it
 * counts "Dual MIT/GPL" as one (include/linux/license.h).
 */
export const DEFAULT_LICENSE = 'Dual MIT/GPL';

/** The verifier's log is asked for only after a load failed; this much of it is kept (its end). */
const VERIFIER_LOG_BUFFER = 1 << 20;
export const VERIFIER_LOG_TAIL = 4096;

/** XDP frames a test run starts with this much room in front (XDP_PACKET_HEADROOM). */
const XDP_HEADROOM = 256;
/** struct xdp_md, passed as a test run's context: data, data_end, data_meta, three ifindex/queue fields. */
const XDP_MD_SIZE = 24;

export interface ProgramSpec {
  /** Up to 15 letters, digits, '_' or '.'; `ip link` and bpftool show it. */
  name: string;
  kind: ProgramKind;
  /** Encoded instructions (EbpfAssembler.assemble()). */
  instructions: Uint8Array;
  license?: string;
}

export interface TestRunResult {
  /** r0 at exit: for XDP, the action (XDP_PASS, XDP_DROP …). */
  retval: number;
  /** The frame as the program left it. */
  output: Uint8Array;
  /** Mean nanoseconds per run, as the kernel measured them. */
  durationNs: number;
}

/**
 * Loads a program. When the kernel refuses it, the load is repeated with the verifier's log on,
 * and the error (E_BPF_VERIFIER) carries the log's tail, where the reason is; the first attempt
 * goes without a log because a log buffer that fills up fails even a good program (ENOSPC).
 */
export function loadProgram(spec: ProgramSpec): BpfProgram {
  const call = `bpf(BPF_PROG_LOAD ${spec.name})`;
  const first = load(spec, undefined);
  if (first >= 0) return new BpfProgram(first, spec);
  if (isPermissionDenied(-first))
    throw new BpfError('E_BPF_PERMISSION', call, -first, BPF_CAPABILITIES_ADVICE);
  const log = allocateNative(VERIFIER_LOG_BUFFER);
  try {
    const second = load(spec, log);
    if (second >= 0) return new BpfProgram(second, spec);
    const text = logTail(log.bytes);
    if (text.length > 0) {
      throw new BpfError(
        'E_BPF_VERIFIER',
        call,
        -second,
        'the kernel verifier rejected the program (a bug in the program mcr generated, or a kernel that lacks what it uses)',
        text,
      );
    }
    throw new BpfError('E_BPF_PROGRAM', call, -second, 'the kernel refused the program before verifying it');
  } finally {
    log.free();
  }
}

/** One BPF_PROG_LOAD: the attr, the instructions and the license in one native block. */
function load(spec: ProgramSpec, log: NativeMemory | undefined): number {
  const license = new TextEncoder().encode(`${spec.license ?? DEFAULT_LICENSE}\0`);
  const insnsAt = PROG_LOAD.size;
  const licenseAt = insnsAt + spec.instructions.byteLength;
  if (spec.instructions.byteLength === 0 || spec.instructions.byteLength % 8 !== 0) {
    throw new RangeError(
      `program ${spec.name}: ${spec.instructions.byteLength} bytes is not whole instructions`,
    );
  }
  const { memory, view } = newAttr(licenseAt + license.byteLength);
  try {
    memory.bytes.set(spec.instructions, insnsAt);
    memory.bytes.set(license, licenseAt);
    view.setUint32(PROG_LOAD.progType, PROGRAM_TYPES[spec.kind], true);
    view.setUint32(PROG_LOAD.insnCnt, spec.instructions.byteLength / 8, true);
    setPointer(view, PROG_LOAD.insns, memory.address + insnsAt);
    setPointer(view, PROG_LOAD.license, memory.address + licenseAt);
    if (log) {
      view.setUint32(PROG_LOAD.logLevel, 1, true);
      view.setUint32(PROG_LOAD.logSize, log.bytes.byteLength, true);
      setPointer(view, PROG_LOAD.logBuf, log.address);
    }
    writeObjectName(memory.bytes, PROG_LOAD.progName, spec.name);
    view.setUint32(PROG_LOAD.expectedAttachType, EXPECTED_ATTACH_TYPES[spec.kind], true);
    return bpfCommand(BPF_PROG_LOAD, memory, PROG_LOAD.size);
  } finally {
    memory.free();
  }
}

/** The last VERIFIER_LOG_TAIL characters of a NUL-terminated log, from a line start. */
function logTail(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  const text = new TextDecoder().decode(bytes.subarray(0, end < 0 ? bytes.byteLength : end)).trimEnd();
  if (text.length <= VERIFIER_LOG_TAIL) return text;
  const cut = text.slice(-VERIFIER_LOG_TAIL);
  const line = cut.indexOf('\n');
  return `…\n${line < 0 ? cut : cut.slice(line + 1)}`;
}

/** A loaded program held by its fd; it stays loaded while the fd, a link or a map entry holds it. */
export class BpfProgram {
  readonly fd: number;
  readonly name: string;
  readonly kind: ProgramKind;
  /** Instruction slots as loaded. */
  readonly length: number;
  private closed = false;

  constructor(fd: number, spec: ProgramSpec) {
    this.fd = fd;
    this.name = spec.name;
    this.kind = spec.kind;
    this.length = spec.instructions.byteLength / 8;
  }

  /** The kernel's id of the program (what `ip link` and bpftool show as prog/xdp id N). */
  id(): number {
    const { memory, view } = newAttr(OBJ_INFO.size + PROG_INFO.size);
    try {
      view.setUint32(OBJ_INFO.bpfFd, this.liveFd(), true);
      view.setUint32(OBJ_INFO.infoLen, PROG_INFO.size, true);
      setPointer(view, OBJ_INFO.info, memory.address + OBJ_INFO.size);
      const result = bpfCommand(BPF_OBJ_GET_INFO_BY_FD, memory, OBJ_INFO.size);
      if (result < 0) {
        throw new BpfError(
          'E_BPF_PROGRAM',
          `bpf(BPF_OBJ_GET_INFO_BY_FD ${this.name})`,
          -result,
          'see the errno',
        );
      }
      return view.getUint32(OBJ_INFO.size + PROG_INFO.id, true);
    } finally {
      memory.free();
    }
  }

  /**
   * Runs the program on `frame` without an interface (BPF_PROG_TEST_RUN), `repeat` times; maps
   * it uses see the runs as real ones. `metadata` (a multiple of 4 bytes, at most 32) goes in
   * front of the frame as XDP metadata (data_meta), as a program before it would have left it;
   * the output is the frame without it. Needs the same privileges as loading.
   */
  testRun(frame: Uint8Array, repeat = 1, metadata?: Uint8Array): TestRunResult {
    const meta = metadata ?? new Uint8Array(0);
    const ctxAt = TEST_RUN.size;
    const inAt = ctxAt + XDP_MD_SIZE;
    const size = meta.byteLength + frame.byteLength;
    const outAt = inAt + size;
    const outSize = size + XDP_HEADROOM;
    const { memory, view } = newAttr(outAt + outSize);
    try {
      memory.bytes.set(meta, inAt);
      memory.bytes.set(frame, inAt + meta.byteLength);
      view.setUint32(TEST_RUN.progFd, this.liveFd(), true);
      view.setUint32(TEST_RUN.dataSizeIn, size, true);
      view.setUint32(TEST_RUN.dataSizeOut, outSize, true);
      setPointer(view, TEST_RUN.dataIn, memory.address + inAt);
      setPointer(view, TEST_RUN.dataOut, memory.address + outAt);
      view.setUint32(TEST_RUN.repeat, repeat, true);
      if (metadata !== undefined) {
        // struct xdp_md in: data = where the frame starts after the metadata, data_end = its end.
        view.setUint32(ctxAt, meta.byteLength, true);
        view.setUint32(ctxAt + 4, size, true);
        view.setUint32(TEST_RUN.ctxSizeIn, XDP_MD_SIZE, true);
        setPointer(view, TEST_RUN.ctxIn, memory.address + ctxAt);
      }
      const result = bpfCommand(BPF_PROG_TEST_RUN, memory, TEST_RUN.size);
      const call = `bpf(BPF_PROG_TEST_RUN ${this.name})`;
      checkTestRun(result, call);
      const written = Math.min(view.getUint32(TEST_RUN.dataSizeOut, true), outSize);
      // The output starts at the metadata, which the program may have moved with the frame.
      const metaOut = metadata === undefined ? 0 : meta.byteLength;
      return {
        retval: view.getUint32(TEST_RUN.retval, true),
        output: memory.bytes.slice(outAt + metaOut, outAt + written),
        durationNs: view.getUint32(TEST_RUN.duration, true),
      };
    } finally {
      memory.free();
    }
  }

  /**
   * Runs a raw_tracepoint program once on `args` (the tracepoint's arguments, each a u64, as the
   * kernel would pass them) and returns r0. Maps it uses see the run as a real one.
   */
  testRunArguments(args: readonly bigint[]): number {
    if (this.kind !== 'raw_tracepoint')
      throw new Error(`program ${this.name} is not a raw_tracepoint program`);
    if (args.length * 8 > RAW_TRACEPOINT_CONTEXT_MAX) throw new RangeError('at most 12 tracepoint arguments');
    const ctxAt = TEST_RUN.size;
    const { memory, view } = newAttr(ctxAt + Math.max(8, args.length * 8));
    try {
      args.forEach((value, i) => view.setBigUint64(ctxAt + 8 * i, BigInt.asUintN(64, value), true));
      view.setUint32(TEST_RUN.progFd, this.liveFd(), true);
      view.setUint32(TEST_RUN.ctxSizeIn, args.length * 8, true);
      setPointer(view, TEST_RUN.ctxIn, memory.address + ctxAt);
      checkTestRun(
        bpfCommand(BPF_PROG_TEST_RUN, memory, TEST_RUN.size),
        `bpf(BPF_PROG_TEST_RUN ${this.name})`,
      );
      return view.getUint32(TEST_RUN.retval, true);
    } finally {
      memory.free();
    }
  }

  /** Closes this fd; the program stays loaded while a link or a devmap entry holds it. Safe twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
  }

  private liveFd(): number {
    if (this.closed) throw new Error(`program ${this.name} is closed`);
    return this.fd;
  }
}

function checkTestRun(result: number, call: string): void {
  if (result < 0 && isPermissionDenied(-result)) {
    throw new BpfError('E_BPF_PERMISSION', call, -result, BPF_CAPABILITIES_ADVICE);
  }
  if (result < 0) throw new BpfError('E_BPF_PROGRAM', call, -result, 'the test run was refused');
}
