import { arch } from 'node:process';
import { allocateNative, lastErrno, libc, type NativeMemory } from './libc.js';

/**
 * bpf(2): one system call, a command number and a `union bpf_attr` whose layout depends on the
 * command. Each layout mcr uses is written here once, with its byte offsets (include/uapi/linux/bpf.h;
 * __aligned_u64 fields sit on 8-byte boundaries). The kernel zero-fills whatever part of the union
 * a caller does not pass, so each command passes only the size of its own struct.
 */

/** The bpf system call's number; glibc has no wrapper for it. */
const SYS_BPF: Partial<Record<NodeJS.Architecture, number>> = { x64: 321, arm64: 280 };

// enum bpf_cmd
export const BPF_MAP_CREATE = 0;
export const BPF_MAP_LOOKUP_ELEM = 1;
export const BPF_MAP_UPDATE_ELEM = 2;
export const BPF_MAP_DELETE_ELEM = 3;
export const BPF_MAP_GET_NEXT_KEY = 4;
export const BPF_PROG_LOAD = 5;
export const BPF_PROG_TEST_RUN = 10;
export const BPF_PROG_GET_NEXT_ID = 11;
export const BPF_PROG_GET_FD_BY_ID = 13;
export const BPF_OBJ_GET_INFO_BY_FD = 15;
export const BPF_RAW_TRACEPOINT_OPEN = 17;
export const BPF_LINK_CREATE = 28;
export const BPF_ENABLE_STATS = 32;

/** BPF_MAP_CREATE: the first fields of the map-creation struct. */
export const MAP_CREATE = {
  mapType: 0, // u32
  keySize: 4, // u32
  valueSize: 8, // u32
  maxEntries: 12, // u32
  mapFlags: 16, // u32
  innerMapFd: 20, // u32
  numaNode: 24, // u32
  mapName: 28, // char[16]
  mapIfindex: 44, // u32
  size: 48,
} as const;

/** BPF_MAP_*_ELEM and BPF_MAP_GET_NEXT_KEY. */
export const MAP_ELEM = {
  mapFd: 0, // u32 (4 bytes of padding follow)
  key: 8, // u64 pointer
  value: 16, // u64 pointer; next_key for BPF_MAP_GET_NEXT_KEY
  flags: 24, // u64: BPF_ANY, BPF_NOEXIST, BPF_EXIST
  size: 32,
} as const;

/** BPF_PROG_LOAD, up to expected_attach_type (the BTF fields after it stay zero). */
export const PROG_LOAD = {
  progType: 0, // u32
  insnCnt: 4, // u32: instructions, 8 bytes each
  insns: 8, // u64 pointer
  license: 16, // u64 pointer to a NUL-terminated string
  logLevel: 24, // u32
  logSize: 28, // u32
  logBuf: 32, // u64 pointer
  kernVersion: 40, // u32, unused
  progFlags: 44, // u32
  progName: 48, // char[16]
  progIfindex: 64, // u32: offload only
  expectedAttachType: 68, // u32
  size: 72,
} as const;

/** BPF_PROG_TEST_RUN (BPF_PROG_RUN). */
export const TEST_RUN = {
  progFd: 0, // u32
  retval: 4, // u32, out
  dataSizeIn: 8, // u32
  dataSizeOut: 12, // u32, in: buffer size, out: bytes written
  dataIn: 16, // u64 pointer
  dataOut: 24, // u64 pointer
  repeat: 32, // u32
  duration: 36, // u32, out: mean ns per run
  ctxSizeIn: 40, // u32
  ctxSizeOut: 44, // u32
  ctxIn: 48, // u64 pointer
  ctxOut: 56, // u64 pointer
  flags: 64, // u32
  cpu: 68, // u32
  batchSize: 72, // u32
  size: 80,
} as const;

/** BPF_LINK_CREATE, the part every link type shares. */
export const LINK_CREATE = {
  progFd: 0, // u32
  targetIfindex: 4, // u32 (target_fd for other link types)
  attachType: 8, // u32
  flags: 12, // u32: for XDP, XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE
  size: 16,
} as const;

/** BPF_RAW_TRACEPOINT_OPEN: a tracepoint by name and the program to run on it (cookie stays 0). */
export const RAW_TRACEPOINT_OPEN = {
  name: 0, // u64 pointer to a NUL-terminated tracepoint name
  progFd: 8, // u32
  size: 16,
} as const;

/** BPF_OBJ_GET_INFO_BY_FD. */
export const OBJ_INFO = {
  bpfFd: 0, // u32
  infoLen: 4, // u32, in: buffer size, out: bytes written
  info: 8, // u64 pointer
  size: 16,
} as const;

/**
 * struct bpf_prog_info, as far as mcr reads it (the kernel fills only the length it is given).
 * run_time_ns and run_cnt grow only while run-time statistics are on (BPF_ENABLE_STATS).
 */
export const PROG_INFO = {
  id: 4, // u32
  name: 64, // char[16]
  runTimeNs: 192, // u64
  runCount: 200, // u64
  size: 208,
} as const;

/** BPF_PROG_GET_NEXT_ID (start_id in, next_id out) and BPF_PROG_GET_FD_BY_ID (prog_id in). */
export const GET_ID = {
  id: 0, // u32: start_id or prog_id
  nextId: 4, // u32, out
  openFlags: 8, // u32
  size: 12,
} as const;

/** BPF_ENABLE_STATS: which statistics; they stay on while the returned fd is open. */
export const ENABLE_STATS = {
  type: 0, // u32: BPF_STATS_RUN_TIME (0)
  size: 4,
} as const;

/**
 * Capabilities mcrd needs for bpf(2), for error messages. Measured on 6.18: CAP_BPF alone creates
 * array and hash maps; XDP programs and devmaps also need CAP_NET_ADMIN.
 */
export const BPF_CAPABILITIES_ADVICE =
  'mcrd needs CAP_BPF and CAP_NET_ADMIN to create maps and to load and attach XDP programs; run it as root or grant both';

const EPERM = 1;

/** True for the errno a missing capability gives. */
export function isPermissionDenied(errno: number): boolean {
  return errno === EPERM;
}

/** Runs one bpf command; returns its result (often a new fd), or -errno. */
export function bpfCommand(command: number, attr: NativeMemory, size: number): number {
  const number = SYS_BPF[arch];
  if (number === undefined) return -38; // ENOSYS: no known system call number here
  const result = libc.syscall(
    number,
    'int',
    command,
    'uintptr_t',
    attr.region.pointer,
    'unsigned int',
    size,
  ) as number;
  return result < 0 ? -lastErrno() : result;
}

/** A zeroed attr of `size` bytes with a DataView, freed by the caller. */
export function newAttr(size: number): { memory: NativeMemory; view: DataView } {
  const memory = allocateNative(size);
  return { memory, view: new DataView(memory.bytes.buffer, memory.bytes.byteOffset, size) };
}

/** Writes a native address into a u64 pointer field. */
export function setPointer(view: DataView, at: number, address: number): void {
  view.setBigUint64(at, BigInt(address), true);
}

/** The longest name a map or program can have (BPF_OBJ_NAME_LEN is 16, with the NUL). */
export const OBJECT_NAME_MAX = 15;

/**
 * Writes a map's or program's name (what bpftool and `ip link` show). The kernel refuses names
 * with characters other than letters, digits, '_' and '.' (EINVAL), so this says so first.
 */
export function writeObjectName(bytes: Uint8Array, at: number, name: string): void {
  if (!/^[A-Za-z0-9_.]*$/.test(name) || name.length > OBJECT_NAME_MAX) {
    throw new RangeError(`bpf object name "${name}": at most ${OBJECT_NAME_MAX} letters, digits, '_' or '.'`);
  }
  bytes.set(new TextEncoder().encode(name), at);
}
