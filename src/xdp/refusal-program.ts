import { EbpfAssembler, type MapReference } from './ebpf-assembler.js';
import { R0, R1, R2, R6, R7, R8, R9, R10 } from './ebpf-instructions.js';
import {
  OUTPUT_COUNT_REFUSED,
  OUTPUT_COUNT_REFUSED_BYTES,
  SENT_LOG_BYTES_SHIFT,
  SENT_LOG_COUNT,
  SENT_LOG_ENTRIES,
  SENT_LOG_SLOTS,
} from './xdp-maps.js';

/** The tracepoint the kernel fires after each bulk of redirected frames it handed a driver. */
export const DEVMAP_XMIT_TRACEPOINT = 'xdp_devmap_xmit';
/**
 * Its arguments (Linux 5.8 on; XDP links need 5.9): from_dev, to_dev, sent, drops, err, each a
 * u64 slot of the raw tracepoint's context; `sent` is an int in the low half of its slot.
 */
const ARG_SENT = 2 * 8;

const LOG_KEY = -4;
const COUNTER_KEY = -8;
const COPY_BYTES = -12;

/** The maps the refusal program reads and writes (xdp-maps.ts). */
export interface RefusalMaps {
  sentLog: MapReference;
  outputCounts: MapReference;
}

/**
 * The refusal program of one input interface (kind raw_tracepoint, on xdp_devmap_xmit): counts,
 * per output, the copies its egress program passed that the output's driver then did not take,
 * and their payload bytes.
 *
 * Why this finds them: the kernel sends a device's queued frames in bulks of at most 16 on one
 * CPU (kernel/bpf/devmap.c, bq_xmit_all): it runs the egress program on each frame of the bulk,
 * keeps those it passed in order, hands them to the driver's ndo_xdp_xmit, frees the ones past
 * what the driver reports as sent, and fires this tracepoint with that number, all without
 * leaving the CPU. The egress program wrote each passed copy's counter slot to this CPU's sent
 * log, so the refused copies are the log's entries from `sent` on. Each input's program reads
 * only its own log, and empties it: a bulk of another input, or of another program, finds this
 * input's log empty.
 */
export function refusalProgram(maps: RefusalMaps): Uint8Array {
  const a = new EbpfAssembler();
  a.mov64(R6, R1)
    .ldx(4, R7, R6, ARG_SENT)
    .st(4, R10, LOG_KEY, 0)
    .lookup(maps.sentLog, LOG_KEY)
    .jmp('jeq', R0, 0, 'done')
    .mov64(R8, R0)
    .ldx(4, R9, R8, SENT_LOG_COUNT)
    .st(4, R8, SENT_LOG_COUNT, 0);
  // Unrolled: 16 short steps the verifier walks once each.
  for (let i = 0; i < SENT_LOG_ENTRIES; i++) {
    const next = `next_${i}`;
    a.jmp('jle', R9, i, 'done')
      .jmp('jgt', R7, i, next)
      .ldx(4, R1, R8, SENT_LOG_SLOTS + 4 * i)
      .mov64(R2, R1)
      .alu64('rsh', R2, SENT_LOG_BYTES_SHIFT)
      .stx(4, R10, COPY_BYTES, R2)
      .alu64('and', R1, (1 << SENT_LOG_BYTES_SHIFT) - 1)
      .stx(4, R10, COUNTER_KEY, R1)
      .lookup(maps.outputCounts, COUNTER_KEY)
      .jmp('jeq', R0, 0, next)
      .addU64(R0, OUTPUT_COUNT_REFUSED, 1, R1)
      .ldx(4, R2, R10, COPY_BYTES)
      .addU64(R0, OUTPUT_COUNT_REFUSED_BYTES, R2, R1)
      .label(next);
  }
  a.label('done').mov64(R0, 0).exit();
  return a.assemble();
}
