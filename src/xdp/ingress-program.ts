import { EbpfAssembler, type MapReference } from './ebpf-assembler.js';
import { R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 } from './ebpf-instructions.js';
import { foldSum } from './egress-program.js';
import { loadedBe16 } from './output-header.js';
import {
  BPF_F_BROADCAST,
  BPF_F_EXCLUDE_INGRESS,
  XDP_DROP,
  XDP_MD_DATA,
  XDP_MD_DATA_END,
  XDP_MD_DATA_META,
  XDP_PASS,
} from './xdp-abi.js';
import {
  FRAME_META_FRAME,
  FRAME_META_OUTPUT_SET,
  FRAME_META_SIZE,
  RULE_COUNT_BYTES,
  RULE_COUNT_NO_OUTPUT,
  RULE_COUNT_OWN_SOURCE,
  RULE_COUNT_PACKETS,
  RULE_COUNT_TTL_EXPIRED,
  RULE_KEY_GROUP,
  RULE_KEY_PORT,
  RULE_KEY_SIZE,
  RULE_KEY_VLAN,
  RULE_VALUE_MIN_TTL,
  RULE_VALUE_OUTPUT_SET,
  RULE_VALUE_OUTPUTS,
  RULE_VALUE_SLOT,
} from './xdp-maps.js';

/** The maps the ingress program reads and counts in (xdp-maps.ts). */
export interface IngressMaps {
  rules: MapReference;
  outputSets: MapReference;
  ruleCounts: MapReference;
  hostAddresses: MapReference;
}

const ETH_P_IPV4 = loadedBe16(0x0800);
const ETH_P_8021Q = loadedBe16(0x8100);
const ETH_P_8021AD = loadedBe16(0x88a8);
/** MF and the fragment offset, as a little-endian load sees bytes 6-7 of the IPv4 header. */
const FRAGMENT_BITS = loadedBe16(0x3fff);
/** Larger IPv4 total lengths are passed on; it keeps packet arithmetic bounded for the verifier. */
const MAX_TOTAL_LENGTH = 0x3fff;
/** IPv4 options are at most 40 bytes: 10 words, each summed after its own bounds check. */
const MAX_OPTION_WORDS = 10;

// Stack slots below the frame pointer.
const KEY = -RULE_KEY_SIZE; // the rule key, 8 bytes
const SLOT = -12; // u32: the rule's slot
const SOURCE = -16; // u32: the input's source address as it sits in the packet
const PAYLOAD = -24; // u64: UDP payload bytes
const TTL = -28; // u32: the input's TTL
const OUTPUT_SET = -32; // u32: the rule's output set

/**
 * The ingress program of one input interface (kind xdp). Per frame: Ethernet with at most one
 * 802.1Q/802.1ad tag, IPv4 with a valid header (version 4, length ≥ 20, total length within the
 * frame, header checksum), not a fragment, UDP with a length that fits; then (group, port, VLAN)
 * in `rules`. A match is counted for its rule and, unless it is from one of this host's
 * addresses (a loop: own_source), its rule has no outputs (no_output) or its TTL gives no output
 * a copy (ttl_expired), broadcast to the rule's devmap, every entry but the input interface.
 * Everything else is XDP_PASS: the kernel and the workers see it exactly as without XDP.
 * The checks are the worker parser's, in an order that spends least on frames that are not
 * relayed: the header checksum is summed only for frames that matched a rule.
 */
export function ingressProgram(maps: IngressMaps): Uint8Array {
  const a = new EbpfAssembler();
  a.mov64(R6, R1)
    .ldx(4, R2, R6, XDP_MD_DATA)
    .ldx(4, R3, R6, XDP_MD_DATA_END)
    .mov64(R4, R2)
    .alu64('add', R4, 14)
    .jmp('jgt', R4, R3, 'pass')
    // r9: the VLAN id (0 untagged); r7: the IPv4 header; r5: the EtherType after the tag.
    .mov64(R9, 0)
    .mov64(R7, R4)
    .ldx(2, R5, R2, 12)
    .jmp('jeq', R5, ETH_P_8021Q, 'tagged')
    .jmp('jne', R5, ETH_P_8021AD, 'untagged')
    .label('tagged')
    .mov64(R7, R2)
    .alu64('add', R7, 18)
    .jmp('jgt', R7, R3, 'pass')
    .ldx(2, R9, R2, 14)
    .toBigEndian(R9, 16)
    .alu64('and', R9, 0x0fff)
    .ldx(2, R5, R2, 16)
    .label('untagged')
    .jmp('jne', R5, ETH_P_IPV4, 'pass') // a second tag is not IPv4 either: passed on
    .mov64(R4, R7)
    .alu64('add', R4, 20)
    .jmp('jgt', R4, R3, 'pass')
    // r8: the IPv4 header length; version 4 only.
    .ldx(1, R8, R7, 0)
    .mov64(R4, R8)
    .alu64('rsh', R4, 4)
    .jmp('jne', R4, 4, 'pass')
    .alu64('and', R8, 0x0f)
    .alu64('lsh', R8, 2)
    .jmp('jlt', R8, 20, 'pass')
    .ldx(1, R4, R7, 9)
    .jmp('jne', R4, 17, 'pass')
    .ldx(2, R4, R7, 6)
    .alu64('and', R4, FRAGMENT_BITS)
    .jmp('jne', R4, 0, 'pass')
    // The total length: at least the header, at most what the frame holds.
    .ldx(2, R4, R7, 2)
    .toBigEndian(R4, 16)
    .jmp('jlt', R4, R8, 'pass')
    .jmp('jgt', R4, MAX_TOTAL_LENGTH, 'pass')
    .mov64(R5, R7)
    .alu64('add', R5, R4)
    .jmp('jgt', R5, R3, 'pass')
    // r5: the UDP header; its length at least 8 and within the IPv4 payload.
    .alu64('sub', R4, R8)
    .mov64(R5, R7)
    .alu64('add', R5, R8)
    .mov64(R0, R5)
    .alu64('add', R0, 8)
    .jmp('jgt', R0, R3, 'pass')
    .ldx(2, R0, R5, 4)
    .toBigEndian(R0, 16)
    .jmp('jlt', R0, 8, 'pass')
    .jmp('jgt', R0, R4, 'pass')
    .alu64('sub', R0, 8)
    .stx(8, R10, PAYLOAD, R0)
    // The key, with group and port as they are in the packet.
    .ldx(4, R0, R7, 16)
    .stx(4, R10, KEY + RULE_KEY_GROUP, R0)
    .ldx(2, R0, R5, 2)
    .stx(2, R10, KEY + RULE_KEY_PORT, R0)
    .stx(2, R10, KEY + RULE_KEY_VLAN, R9)
    .ldx(4, R0, R7, 12)
    .stx(4, R10, SOURCE, R0)
    .ldx(1, R0, R7, 8)
    .stx(4, R10, TTL, R0)
    .mov64(R9, R8) // the header length, kept across the call
    .lookup(maps.rules, KEY)
    .jmp('jeq', R0, 0, 'pass')
    .mov64(R8, R0);
  // The header checksum (a bad one is the kernel's and the worker's to count): 20 bytes, then
  // each option word the header length includes. r3 is reloaded: the call clobbered it.
  a.ldx(4, R3, R6, XDP_MD_DATA_END).mov64(R1, 0);
  for (let at = 0; at < 20; at += 4) a.ldx(4, R2, R7, at).alu64('add', R1, R2);
  for (let word = 0; word < MAX_OPTION_WORDS; word++) {
    const at = 20 + 4 * word;
    a.jmp('jle', R9, at, 'header_summed')
      .mov64(R2, R7)
      .alu64('add', R2, at + 4)
      .jmp('jgt', R2, R3, 'pass')
      .ldx(4, R2, R7, at)
      .alu64('add', R1, R2);
  }
  a.label('header_summed');
  foldSum(a, R1, R2);
  a.jmp('jne', R1, 0xffff, 'pass')
    // A match: count it for its rule (r7: the rule's per-CPU counters from here on).
    .ldx(4, R1, R8, RULE_VALUE_SLOT)
    .stx(4, R10, SLOT, R1)
    .lookup(maps.ruleCounts, SLOT)
    .jmp('jeq', R0, 0, 'pass')
    .mov64(R7, R0)
    .addU64(R7, RULE_COUNT_PACKETS, 1, R1)
    .ldx(8, R2, R10, PAYLOAD)
    .addU64(R7, RULE_COUNT_BYTES, R2, R1)
    // A frame from one of this host's addresses is a loop: never relayed, whatever its TTL.
    .lookup(maps.hostAddresses, SOURCE)
    .mov64(R1, RULE_COUNT_OWN_SOURCE)
    .jmp('jne', R0, 0, 'refuse')
    .mov64(R1, RULE_COUNT_NO_OUTPUT)
    .ldx(2, R2, R8, RULE_VALUE_OUTPUTS)
    .jmp('jeq', R2, 0, 'refuse')
    .mov64(R1, RULE_COUNT_TTL_EXPIRED)
    .ldx(1, R2, R8, RULE_VALUE_MIN_TTL)
    .ldx(4, R3, R10, TTL)
    .jmp('jlt', R3, R2, 'refuse')
    // Replicate: the rule's devmap (its output set's), every entry but the input interface.
    .ldx(4, R1, R8, RULE_VALUE_OUTPUT_SET)
    .stx(4, R10, OUTPUT_SET, R1)
    .lookup(maps.outputSets, OUTPUT_SET)
    .mov64(R1, RULE_COUNT_NO_OUTPUT)
    .jmp('jeq', R0, 0, 'refuse')
    .mov64(R8, R0)
    // The metadata the egress program finds its output by: the output set, and the frame's
    // number (this CPU's count of the rule's frames: consecutive frames differ).
    .mov64(R1, R6)
    .mov64(R2, -FRAME_META_SIZE)
    .call('xdp_adjust_meta')
    .mov64(R1, RULE_COUNT_NO_OUTPUT)
    .jmp('jne', R0, 0, 'refuse')
    .ldx(4, R2, R6, XDP_MD_DATA_META)
    .ldx(4, R3, R6, XDP_MD_DATA)
    .mov64(R4, R2)
    .alu64('add', R4, FRAME_META_SIZE)
    .jmp('jgt', R4, R3, 'refuse')
    .ldx(4, R4, R10, OUTPUT_SET)
    .stx(4, R2, FRAME_META_OUTPUT_SET, R4)
    .ldx(8, R4, R7, RULE_COUNT_PACKETS)
    .stx(4, R2, FRAME_META_FRAME, R4)
    .mov64(R1, R8)
    .mov64(R2, 0)
    .mov64(R3, BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS)
    .call('redirect_map')
    .exit()
    // Not relayed, for the reason whose counter offset is in r1.
    .label('refuse')
    .mov64(R2, R7)
    .alu64('add', R2, R1)
    .ldx(8, R1, R2, 0)
    .alu64('add', R1, 1)
    .stx(8, R2, 0, R1)
    .mov64(R0, XDP_DROP)
    .exit()
    .label('pass')
    .mov64(R0, XDP_PASS)
    .exit();
  return a.assemble();
}
