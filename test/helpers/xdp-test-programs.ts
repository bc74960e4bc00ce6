// Small XDP programs for the tests of the assembler and the loader: enough of what the real
// ingress program does (bounds-checked Ethernet/IPv4/UDP parsing, a map lookup, a per-CPU
// counter) to show each piece works against the kernel's verifier and on real frames.
import { EbpfAssembler, type MapReference } from '../../src/xdp/ebpf-assembler.js';
import { R0, R1, R2, R3, R4, R5, R6, R7, R8, R10 } from '../../src/xdp/ebpf-instructions.js';
import { XDP_MD_DATA, XDP_MD_DATA_END, XDP_PASS } from '../../src/xdp/xdp-abi.js';

/** Counter keys of portMatchProgram. */
export const OTHER_FRAMES = 0;
export const MATCHED_FRAMES = 1;

/** Ethernet (14) + IPv4 without options (20) + UDP (8). */
const HEADERS = 42;

/**
 * Counts every frame in `counters` (a per-CPU array of u64, 2 entries): IPv4/UDP frames to
 * `port` under MATCHED_FRAMES, where they get `onMatch`; everything else under OTHER_FRAMES,
 * passed on. Frames too short for the headers, IPv4 with options, other protocols: other.
 */
export function portMatchProgram(counters: MapReference, port: number, onMatch: number): Uint8Array {
  return new EbpfAssembler()
    .mov64(R6, R1) // the context; r1 goes to the helper call
    .mov64(R7, XDP_PASS) // the action
    .mov64(R8, OTHER_FRAMES) // the counter's key
    .ldx(4, R2, R6, XDP_MD_DATA)
    .ldx(4, R3, R6, XDP_MD_DATA_END)
    .mov64(R4, R2)
    .alu64('add', R4, HEADERS)
    .jmp('jgt', R4, R3, 'count') // the verifier allows reads below data + 42 after this
    .ldx(2, R5, R2, 12) // EtherType
    .toBigEndian(R5, 16)
    .jmp('jne', R5, 0x0800, 'count')
    .ldx(1, R5, R2, 14) // version and header length
    .jmp32('jne', R5, 0x45, 'count')
    .ldx(1, R5, R2, 23) // protocol
    .jmp('jne', R5, 17, 'count')
    .ldx(2, R5, R2, 36) // UDP destination port
    .toBigEndian(R5, 16)
    .jmp('jne', R5, port, 'count')
    .mov64(R7, onMatch)
    .mov64(R8, MATCHED_FRAMES)
    .label('count')
    .stx(4, R10, -4, R8)
    .mov64(R2, R10)
    .alu64('add', R2, -4)
    .ldMapFd(R1, counters)
    .call('map_lookup_elem')
    .jmp('jeq', R0, 0, 'out')
    .ldx(8, R1, R0, 0)
    .alu64('add', R1, 1)
    .stx(8, R0, 0, R1)
    .label('out')
    .mov64(R0, R7)
    .exit()
    .assemble();
}

/** Reads the first packet byte without comparing against data_end: the verifier must refuse it. */
export function unboundedReadProgram(): Uint8Array {
  return new EbpfAssembler().ldx(4, R2, R1, XDP_MD_DATA).ldx(1, R0, R2, 0).exit().assemble();
}

/** Returns `action` and does nothing else. */
export function constantProgram(action: number): Uint8Array {
  return new EbpfAssembler().mov64(R0, action).exit().assemble();
}

/** The sum of a u64 counter over every CPU's copy. */
export function sumCounters(values: readonly Uint8Array[] | undefined): bigint {
  let total = 0n;
  for (const value of values ?? [])
    total += new DataView(value.buffer, value.byteOffset).getBigUint64(0, true);
  return total;
}
