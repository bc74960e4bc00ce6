import { EbpfAssembler, type MapReference } from './ebpf-assembler.js';
import { R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10, type Register } from './ebpf-instructions.js';
import {
  loadedBe16,
  OUTPUT_VALUE_ADDRESSES,
  OUTPUT_VALUE_COUNTER_SLOT,
  OUTPUT_VALUE_DSCP_BITS,
  OUTPUT_VALUE_ETHERNET,
  OUTPUT_VALUE_KEEP_DSCP,
  OUTPUT_VALUE_PORTS,
  OUTPUT_VALUE_TTL,
  OUTPUT_VALUE_TTL_FIXED,
  OUTPUT_VALUE_UDP_ADDED_SUM,
} from './output-header.js';
import {
  XDP_DROP,
  XDP_MD_DATA,
  XDP_MD_DATA_END,
  XDP_MD_DATA_META,
  XDP_MD_EGRESS_IFINDEX,
  XDP_PASS,
} from './xdp-abi.js';
import {
  FRAME_META_FRAME,
  FRAME_META_OUTPUT_SET,
  FRAME_META_SIZE,
  LINK_COPIES_COPY,
  LINK_COPIES_FRAME,
  LINK_COPIES_OUTPUT_SET,
  OUTPUT_COUNT_BYTES,
  OUTPUT_COUNT_PACKETS,
  OUTPUT_COUNT_TTL_EXPIRED,
  SENT_LOG_BYTES_SHIFT,
  SENT_LOG_COUNT,
  SENT_LOG_ENTRIES,
  SENT_LOG_SLOTS,
} from './xdp-maps.js';

export const OUTPUT_HEADER_SIZE = 42; // Ethernet 14 + IPv4 20 + UDP 8
const ETH_P_8021Q = loadedBe16(0x8100);
const ETH_P_8021AD = loadedBe16(0x88a8);
/** IPv4 flags and fragment offset as the raw path writes them: DF, offset 0. */
const DONT_FRAGMENT = loadedBe16(0x4000);

// Stack slots below the frame pointer: what survives the helper calls.
const OUTPUT_KEY = -16; // 12 bytes: output set, ifindex, copy
const LINK_KEY = -20; // u32
const SAVED_TTL = -21; // u8
const SAVED_TOS = -22; // u8
const SAVED_ID = -24; // u16 as loaded (network order)
const SAVED_UDP_LENGTH = -26; // u16 as loaded
const SAVED_UDP_CHECKSUM = -28; // u16 as stored
const COUNTER_KEY = -32; // u32
const VALUE = -40; // the output's map value (a pointer, spilled across calls)
const LOG_KEY = -44; // u32, always 0

/** The maps the egress program reads (xdp-maps.ts). */
export interface EgressMaps {
  outputs: MapReference;
  linkCopies: MapReference;
  outputCounts: MapReference;
  sentLog: MapReference;
}

/**
 * The egress program of one input interface's outputs: the program of every devmap entry
 * (kind xdp_devmap), run on each clone a broadcast made. Why one program and not one per output:
 * the kernel queues a CPU's frames for one device in one bulk queue and runs the program of the
 * first entry queued on all of them (kernel/bpf/devmap.c, bq_enqueue), so two outputs on one link
 * (of one rule or two) would all get the first one's header. So the program finds its output in
 * a map: the output set from the frame's metadata, the link from the context, and the copy
 * number by counting the clones of that frame this CPU has seen on that link (link_copies).
 *
 * It writes the header the raw path writes: Ethernet with the group's MAC and the link's, no
 * VLAN tag; IPv4 without options, DF, the input's id, the copy's TTL and TOS, the link's address
 * and the group; UDP with the output's ports, the input's length and its checksum updated for
 * the new addresses and ports (0 stays 0: no checksum). The new 42-byte header ends where the
 * input's UDP header ended, so the payload never moves: bpf_xdp_adjust_head drops the tag and
 * IP options in front. A trailer after the datagram (padding of a short frame) is cut: the raw
 * path never sends one. Frames reach it only after the ingress program's checks: the bounds
 * checks here are for the verifier, and drop only what cannot happen.
 *
 * Each copy it passes is also written to the sent log (its counter slot), so the refusal program
 * (refusal-program.ts) can tell which outputs' copies a driver then refused.
 *
 * `egressIfindex`: 'context' reads it from xdp_md (devmap programs only); a number stands in
 * for it, for test runs (which this kernel refuses for devmap programs).
 */
export function egressProgram(maps: EgressMaps, egressIfindex: 'context' | number): Uint8Array {
  const a = new EbpfAssembler();
  a.mov64(R6, R1)
    .ldx(4, R2, R6, XDP_MD_DATA_META)
    .ldx(4, R3, R6, XDP_MD_DATA)
    .mov64(R4, R2)
    .alu64('add', R4, FRAME_META_SIZE)
    .jmp('jgt', R4, R3, 'drop')
    .ldx(4, R7, R2, FRAME_META_OUTPUT_SET)
    .ldx(4, R9, R2, FRAME_META_FRAME)
    .stx(4, R10, OUTPUT_KEY, R7);
  if (egressIfindex === 'context') a.ldx(4, R4, R6, XDP_MD_EGRESS_IFINDEX);
  else a.mov64(R4, egressIfindex);
  // Which clone of this frame on this link: the first (copy 0), or one more than the last.
  a.stx(4, R10, OUTPUT_KEY + 4, R4)
    .stx(4, R10, LINK_KEY, R4)
    .lookup(maps.linkCopies, LINK_KEY)
    .jmp('jeq', R0, 0, 'drop')
    .ldx(4, R1, R0, LINK_COPIES_OUTPUT_SET)
    .ldx(4, R2, R0, LINK_COPIES_FRAME)
    .ldx(4, R3, R0, LINK_COPIES_COPY)
    .jmp('jne', R1, R7, 'first_copy')
    .jmp('jne', R2, R9, 'first_copy')
    .alu64('add', R3, 1)
    .ja('copy_known')
    .label('first_copy')
    .mov64(R3, 0)
    .stx(4, R0, LINK_COPIES_OUTPUT_SET, R7)
    .stx(4, R0, LINK_COPIES_FRAME, R9)
    .label('copy_known')
    .stx(4, R0, LINK_COPIES_COPY, R3)
    .stx(4, R10, OUTPUT_KEY + 8, R3)
    .lookup(maps.outputs, OUTPUT_KEY)
    .jmp('jeq', R0, 0, 'drop')
    .stx(8, R10, VALUE, R0)
    .ldx(4, R2, R6, XDP_MD_DATA)
    .ldx(4, R3, R6, XDP_MD_DATA_END)
    // r8: where IPv4 starts, 14 or 18 (one tag at most: the ingress program let no other through).
    .mov64(R8, 14)
    .mov64(R4, R2)
    .alu64('add', R4, 18)
    .jmp('jgt', R4, R3, 'drop')
    .ldx(2, R5, R2, 12)
    .jmp('jeq', R5, ETH_P_8021Q, 'tagged')
    .jmp('jne', R5, ETH_P_8021AD, 'ip')
    .label('tagged')
    .mov64(R8, 18)
    .label('ip')
    .mov64(R7, R2)
    .alu64('add', R7, R8)
    .mov64(R4, R7)
    .alu64('add', R4, 20)
    .jmp('jgt', R4, R3, 'drop')
    // r9: the UDP header (after 20-60 bytes of IPv4 header); r8 becomes its offset in the frame.
    .ldx(1, R4, R7, 0)
    .alu64('and', R4, 0x0f)
    .alu64('lsh', R4, 2)
    .alu64('add', R8, R4)
    .mov64(R9, R7)
    .alu64('add', R9, R4)
    .mov64(R4, R9)
    .alu64('add', R4, 8)
    .jmp('jgt', R4, R3, 'drop')
    // TTL: the fixed one, or min(input TTL − 1, cap); a copy that would leave with 0 is not sent.
    .ldx(8, R5, R10, VALUE)
    .ldx(1, R4, R5, OUTPUT_VALUE_TTL)
    .ldx(1, R1, R5, OUTPUT_VALUE_TTL_FIXED)
    .jmp('jne', R1, 0, 'ttl_set')
    .ldx(1, R1, R7, 8)
    .alu64('sub', R1, 1)
    .jmp('jsle', R1, 0, 'expired')
    .jmp('jge', R1, R4, 'ttl_set')
    .mov64(R4, R1)
    .label('ttl_set')
    .stx(1, R10, SAVED_TTL, R4)
    // TOS: the output's DSCP with the input's ECN, or the input's byte as it is.
    .ldx(1, R4, R7, 1)
    .ldx(1, R1, R5, OUTPUT_VALUE_KEEP_DSCP)
    .jmp('jne', R1, 0, 'tos_set')
    .alu64('and', R4, 0x03)
    .ldx(1, R1, R5, OUTPUT_VALUE_DSCP_BITS)
    .alu64('or', R4, R1)
    .label('tos_set')
    .stx(1, R10, SAVED_TOS, R4)
    .ldx(2, R4, R7, 4)
    .stx(2, R10, SAVED_ID, R4)
    .ldx(2, R4, R9, 4)
    .stx(2, R10, SAVED_UDP_LENGTH, R4)
    // UDP checksum, RFC 1624: HC' = ~(~HC + ~m + m') over the addresses and ports that change.
    // Words are summed as loaded (little-endian): ones'-complement sums commute with byte swaps.
    .ldx(2, R4, R9, 6)
    .jmp('jeq', R4, 0, 'checksum_set')
    .alu32('xor', R4, 0xffff);
  for (const [base, at] of [
    [R7, 12],
    [R7, 16],
    [R9, 0],
  ] as const) {
    a.ldx(4, R1, base, at).alu32('xor', R1, 0xffffffff).alu64('add', R4, R1);
  }
  a.ldx(4, R1, R5, OUTPUT_VALUE_UDP_ADDED_SUM).alu64('add', R4, R1);
  foldSum(a, R4, R1);
  a.alu32('xor', R4, 0xffff)
    .jmp('jne', R4, 0, 'checksum_set')
    .mov64(R4, 0xffff) // a computed 0 is sent as 0xffff: 0 means "no checksum"
    .label('checksum_set')
    .stx(2, R10, SAVED_UDP_CHECKSUM, R4)
    // Drop the tag and any IP options: the new header starts 42 bytes before the payload.
    .alu64('sub', R8, OUTPUT_HEADER_SIZE - 8)
    .jmp('jeq', R8, 0, 'write')
    .mov64(R1, R6)
    .mov64(R2, R8)
    .call('xdp_adjust_head')
    .jmp('jne', R0, 0, 'drop')
    .label('write')
    .ldx(4, R2, R6, XDP_MD_DATA)
    .ldx(4, R3, R6, XDP_MD_DATA_END)
    .mov64(R4, R2)
    .alu64('add', R4, OUTPUT_HEADER_SIZE)
    .jmp('jgt', R4, R3, 'drop')
    .ldx(8, R5, R10, VALUE);
  for (const [from, to, width] of [
    [OUTPUT_VALUE_ETHERNET, 0, 4],
    [OUTPUT_VALUE_ETHERNET + 4, 4, 4],
    [OUTPUT_VALUE_ETHERNET + 8, 8, 4],
    [OUTPUT_VALUE_ETHERNET + 12, 12, 2],
    [OUTPUT_VALUE_ADDRESSES, 26, 4],
    [OUTPUT_VALUE_ADDRESSES + 4, 30, 4],
    [OUTPUT_VALUE_PORTS, 34, 4],
  ] as const) {
    a.ldx(width, R4, R5, from).stx(width, R2, to, R4);
  }
  a.st(1, R2, 14, 0x45)
    .ldx(1, R4, R10, SAVED_TOS)
    .stx(1, R2, 15, R4)
    // Total length: the UDP length + 20, in network order.
    .ldx(2, R9, R10, SAVED_UDP_LENGTH)
    .toBigEndian(R9, 16)
    .mov64(R4, R9)
    .alu64('add', R4, 20)
    .toBigEndian(R4, 16)
    .stx(2, R2, 16, R4)
    .ldx(2, R4, R10, SAVED_ID)
    .stx(2, R2, 18, R4)
    .st(2, R2, 20, DONT_FRAGMENT)
    .ldx(1, R4, R10, SAVED_TTL)
    .stx(1, R2, 22, R4)
    .st(1, R2, 23, 17)
    .st(2, R2, 24, 0)
    .ldx(2, R4, R10, SAVED_UDP_LENGTH)
    .stx(2, R2, 38, R4)
    .ldx(2, R4, R10, SAVED_UDP_CHECKSUM)
    .stx(2, R2, 40, R4)
    // The IPv4 header checksum, over the 20 bytes just written (5 loads and a fold).
    .mov64(R4, 0);
  for (let at = 14; at < 34; at += 4) a.ldx(4, R5, R2, at).alu64('add', R4, R5);
  foldSum(a, R4, R5);
  a.alu32('xor', R4, 0xffff)
    .stx(2, R2, 24, R4)
    // r9: the UDP length (host order). A trailer after the datagram is cut.
    .mov64(R1, R6)
    .call('xdp_get_buff_len')
    .mov64(R2, R9)
    .alu64('add', R2, OUTPUT_HEADER_SIZE - 8)
    .alu64('sub', R2, R0)
    .jmp('jsge', R2, 0, 'count')
    .mov64(R1, R6)
    .call('xdp_adjust_tail')
    .jmp('jne', R0, 0, 'drop')
    .label('count');
  countCopy(a, maps.outputCounts, OUTPUT_COUNT_PACKETS, R9);
  logSentCopy(a, maps.sentLog, R9);
  a.mov64(R0, XDP_PASS).exit().label('expired');
  countCopy(a, maps.outputCounts, OUTPUT_COUNT_TTL_EXPIRED, undefined);
  a.label('drop').mov64(R0, XDP_DROP).exit();
  return a.assemble();
}

/**
 * Adds one to the u64 at `field` of the output's per-CPU counters (its slot is in the output's
 * value), and with `udpLength` (a register kept across calls) its payload bytes to the byte
 * counter. Plain adds: a per-CPU value is only written from its own CPU, in the driver's poll.
 */
function countCopy(
  a: EbpfAssembler,
  outputCounts: MapReference,
  field: number,
  udpLength: Register | undefined,
): void {
  const done = `counted_${field}`;
  a.ldx(8, R1, R10, VALUE)
    .ldx(4, R1, R1, OUTPUT_VALUE_COUNTER_SLOT)
    .stx(4, R10, COUNTER_KEY, R1)
    .lookup(outputCounts, COUNTER_KEY)
    .jmp('jeq', R0, 0, done)
    .addU64(R0, field, 1, R1);
  if (udpLength !== undefined) {
    a.ldx(8, R1, R0, OUTPUT_COUNT_BYTES)
      .alu64('add', R1, udpLength)
      .alu64('sub', R1, 8)
      .stx(8, R0, OUTPUT_COUNT_BYTES, R1);
  }
  a.label(done);
}

/**
 * Appends the copy to this CPU's sent log: its counter slot (COUNTER_KEY, set by countCopy) and
 * its payload bytes (`udpLength` − 8). A full log (it cannot fill: a bulk is at most its size)
 * takes nothing; the copy then stays counted as sent whatever the driver does with it.
 * Cost: one per-CPU lookup and two stores per copy; the relay core's CPU per input packet at 1:5
 * over five links did not move beyond noise (6.09 µs before, 5.92 after, 50k pps, 64 B;
 * bench/forwarding-rate.ts, docs/PERFORMANCE.md).
 */
function logSentCopy(a: EbpfAssembler, sentLog: MapReference, udpLength: Register): void {
  a.st(4, R10, LOG_KEY, 0)
    .lookup(sentLog, LOG_KEY)
    .jmp('jeq', R0, 0, 'logged')
    .ldx(4, R1, R0, SENT_LOG_COUNT)
    .jmp('jge', R1, SENT_LOG_ENTRIES, 'logged')
    .mov64(R2, R1)
    .alu64('lsh', R2, 2)
    .alu64('add', R2, R0)
    .ldx(4, R3, R10, COUNTER_KEY)
    .mov64(R4, udpLength)
    .alu64('sub', R4, 8)
    .alu64('lsh', R4, SENT_LOG_BYTES_SHIFT)
    .alu64('or', R3, R4)
    .stx(4, R2, SENT_LOG_SLOTS, R3)
    .alu64('add', R1, 1)
    .stx(4, R0, SENT_LOG_COUNT, R1)
    .label('logged');
}

/** Folds a sum below 2^36 into 16 bits with end-around carry; `scratch` is clobbered. */
export function foldSum(a: EbpfAssembler, sum: Register, scratch: Register): void {
  for (let i = 0; i < 3; i++) {
    a.mov64(scratch, sum).alu64('rsh', scratch, 16).alu64('and', sum, 0xffff).alu64('add', sum, scratch);
  }
}
