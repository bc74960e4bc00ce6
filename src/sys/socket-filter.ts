import { BPF_JEQ_K, FilterBuilder, nativeProgram, type FilterInstruction } from './classic-bpf.js';
import { SOL_SOCKET, SO_ATTACH_FILTER } from './constants.js';
import { SysError } from './errors.js';
import { lastErrno, libc } from './libc.js';

/**
 * Socket filters (SO_ATTACH_FILTER): a few classic BPF instructions the kernel runs on every
 * packet before it is queued on a socket. A program returns how many bytes of the packet to
 * keep; 0 drops it.
 */

/** Ancillary data: loads of SKF_AD_OFF + n read a field of the skb instead of packet bytes. */
const SKF_AD_OFF = -0x1000;
const SKF_AD_PROTOCOL = 0;
const SKF_AD_PKTTYPE = 4;
/** sll_pkttype of a frame this host transmits, as a packet tap sees it. */
const PACKET_OUTGOING = 4;
/** Keep the whole packet. */
const KEEP_ALL = 0x40000;

/**
 * Accepts frames that arrived on the interface (not the host's own transmissions) whose
 * protocol, as the kernel sees it after taking off the outer VLAN tag, is one of `protocols`
 * (EtherTypes); drops the rest. An AF_PACKET socket bound to every protocol and given this
 * program sees IPv4 frames, tagged or not, and frames with more tags than the kernel takes off
 * (their protocol is then the inner tag's type), and nothing else.
 *
 * The socket option PACKET_IGNORE_OUTGOING alone is not enough: once a socket is in a fanout
 * group, the group's hook takes the interface's frames in its place and ignores the option
 * (the group's own flag for it needs Linux 6.1). The filter runs on the socket a frame lands
 * on, in a group or not, on every kernel.
 */
export function acceptArriving(protocols: readonly number[]): FilterInstruction[] {
  const program = new FilterBuilder()
    .load(SKF_AD_OFF + SKF_AD_PKTTYPE)
    .jump(BPF_JEQ_K, PACKET_OUTGOING, 'drop')
    .load(SKF_AD_OFF + SKF_AD_PROTOCOL);
  for (const protocol of protocols) program.jump(BPF_JEQ_K, protocol, 'accept');
  return program.label('drop').ret(0).label('accept').ret(KEEP_ALL).assemble();
}

/** Drops everything queued on a socket (one that only holds a port, for instance). */
export function dropAll(): FilterInstruction[] {
  return new FilterBuilder().ret(0).assemble();
}

/** Attaches a classic BPF program to a socket; the kernel copies it, so nothing needs to outlive the call. */
export function attachFilter(fd: number, program: readonly FilterInstruction[], what: string): void {
  const fprog = nativeProgram(program);
  try {
    const header = fprog.bytes.subarray(0, 16);
    if ((libc.setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, header, header.byteLength) as number) < 0) {
      throw new SysError(`setsockopt(SO_ATTACH_FILTER ${what})`, lastErrno());
    }
  } finally {
    fprog.free();
  }
}
