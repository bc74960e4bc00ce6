import { SOL_SOCKET, SO_ATTACH_FILTER } from './constants.js';
import { SysError } from './errors.js';
import { allocateNative, lastErrno, libc } from './libc.js';

/**
 * Classic BPF socket filters (SO_ATTACH_FILTER): a few instructions the kernel runs on every
 * packet before it is queued on a socket. A program returns how many bytes of the packet to
 * keep; 0 drops it.
 */

/** struct sock_filter: code (u16), jt (u8), jf (u8), k (u32). */
export interface FilterInstruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

const INSTRUCTION_SIZE = 8;
// Opcodes (linux/filter.h): class | size | mode, and jumps and returns.
const BPF_LD_W_ABS = 0x20; // A = 32-bit word at k (or an ancillary value for k in SKF_AD_OFF + …)
const BPF_JMP_JEQ_K = 0x15; // pc += (A == k) ? jt : jf
const BPF_RET_K = 0x06; // return k
/** Ancillary data: loads of SKF_AD_OFF + n read a field of the skb instead of packet bytes. */
const SKF_AD_OFF = -0x1000;
const SKF_AD_PROTOCOL = 0;
/** Keep the whole packet. */
const KEEP_ALL = 0x40000;

/**
 * Accepts packets whose protocol, as the kernel sees it after taking off the outer VLAN tag, is
 * one of `protocols` (EtherTypes); drops the rest. An AF_PACKET socket bound to every protocol
 * and given this program sees IPv4 frames, tagged or not, and frames with more tags than the
 * kernel takes off (their protocol is then the inner tag's type), and nothing else.
 */
export function acceptProtocols(protocols: readonly number[]): FilterInstruction[] {
  const program: FilterInstruction[] = [
    { code: BPF_LD_W_ABS, jt: 0, jf: 0, k: (SKF_AD_OFF + SKF_AD_PROTOCOL) >>> 0 },
  ];
  protocols.forEach((protocol, i) => {
    // On a match jump to the accepting return at the end; otherwise fall through to the next test.
    const toAccept = protocols.length - i;
    program.push({ code: BPF_JMP_JEQ_K, jt: toAccept, jf: 0, k: protocol });
  });
  program.push({ code: BPF_RET_K, jt: 0, jf: 0, k: 0 });
  program.push({ code: BPF_RET_K, jt: 0, jf: 0, k: KEEP_ALL });
  return program;
}

/** Drops everything queued on a socket (one that only holds a port, for instance). */
export function dropAll(): FilterInstruction[] {
  return [{ code: BPF_RET_K, jt: 0, jf: 0, k: 0 }];
}

/** The program in the kernel's layout (little-endian on every architecture mcr runs on). */
export function encodeFilter(program: readonly FilterInstruction[]): Uint8Array {
  const bytes = new Uint8Array(program.length * INSTRUCTION_SIZE);
  const view = new DataView(bytes.buffer);
  program.forEach((ins, i) => {
    const at = i * INSTRUCTION_SIZE;
    view.setUint16(at, ins.code, true);
    view.setUint8(at + 2, ins.jt);
    view.setUint8(at + 3, ins.jf);
    view.setUint32(at + 4, ins.k >>> 0, true);
  });
  return bytes;
}

/** Attaches a classic BPF program to a socket; the kernel copies it, so nothing needs to outlive the call. */
export function attachFilter(fd: number, program: readonly FilterInstruction[], what: string): void {
  const code = encodeFilter(program);
  const instructions = allocateNative(Math.max(1, code.byteLength));
  try {
    instructions.bytes.set(code);
    // struct sock_fprog { unsigned short len; struct sock_filter *filter; } (16 bytes on x86-64).
    const fprog = new Uint8Array(16);
    const view = new DataView(fprog.buffer);
    view.setUint16(0, program.length, true);
    view.setBigUint64(8, BigInt(instructions.address), true);
    if ((libc.setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, fprog, fprog.byteLength) as number) < 0) {
      throw new SysError(`setsockopt(SO_ATTACH_FILTER ${what})`, lastErrno());
    }
  } finally {
    instructions.free();
  }
}
