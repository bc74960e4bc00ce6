/**
 * The counters a worker keeps in memory it shares with the supervisor (one region per worker id,
 * created by the supervisor and handed to each process that holds that id in turn). The worker
 * only adds to them; the supervisor reads them whenever it likes, so counters survive a worker
 * that is killed (its last increments are there), a restart (the successor counts on in the same
 * cells) and a reload, and reading them costs the worker nothing. Every cell is a float64 (exact
 * to 2^53), written by one process only: an aligned 8-byte store, which the reader never sees torn.
 *
 * Layout, in cells: a header of WORKER_CELLS (the worker's own counters), then RULE_SLOTS rule
 * slots of RULE_CELLS, then OUTPUT_SLOTS output slots of OUTPUT_CELLS. The supervisor gives each
 * rule and each output a slot and a tag (a number it never reuses); the worker takes a slot by
 * writing the tag into its TAG cell after zeroing the rest when the tag differs. A slot counts
 * for a rule only while it carries that rule's tag, so a slot freed and given to a new rule never
 * shows the old rule's counts under the new name.
 */

/** The worker's own counters: outcome codes (frame-outcomes.ts) from cell WORKER_OUTCOMES on. */
export const WORKER_CELLS = 64;
/** Cell 0 holds this, written by the supervisor: a region of another layout is refused. */
export const LAYOUT_MAGIC = 0x6d6372_0002; // "mcr", layout 2 (rules got their RTP cells)
export const WORKER_OUTCOMES = 8;
/** Outcome codes the header has room for (cells 8 to 55). */
export const MAX_OUTCOMES = 48;
export const WORKER_EGRESS_ERRORS = 56;
export const WORKER_RING_DROPS = 57;

/**
 * A rule's cells, relative to its slot (two 64-byte cache lines): its own counters, then its RTP
 * stream health (written only for a rule with the rtp option).
 */
export const RULE_CELLS = 16;
export const RULE_TAG = 0;
export const RULE_PACKETS_IN = 1;
export const RULE_BYTES_IN = 2;
/** Milliseconds since the epoch when the last matched frame was taken; 0: none yet. */
export const RULE_LAST_PACKET_AT = 3;
export const RULE_OWN_SOURCE = 4;
export const RULE_TTL_EXPIRED = 5;
export const RULE_NO_OUTPUT = 6;
export const RULE_EGRESS_FAILED = 7;
/** The first of a rule's RTP_CELLS RTP counters (RTP_* cells, relative to it). */
export const RULE_RTP = 8;

/** RTP stream health counters (control-api.ts RtpCounters), relative to RULE_RTP. */
export const RTP_CELLS = 8;
export const RTP_PACKETS = 0;
export const RTP_NOT_RTP = 1;
export const RTP_LOST = 2;
export const RTP_GAPS = 3;
export const RTP_DUPLICATES = 4;
export const RTP_REORDERED = 5;
export const RTP_SSRC_CHANGES = 6;
export const RTP_RESYNCS = 7;

/** An output's cells, relative to its slot (two cache lines). */
export const OUTPUT_CELLS = 16;
export const OUTPUT_TAG = 0;
export const OUTPUT_PACKETS = 1;
export const OUTPUT_BYTES = 2;
export const OUTPUT_RAW = 3;
export const OUTPUT_TTL_EXPIRED = 4;
/** Refused copies by errno: ERRNO_PAIRS pairs of (errno, count), in the order errnos first occur. */
export const OUTPUT_ERRNOS = 5;
export const ERRNO_PAIRS = 5;
/** Refusals with an errno the pairs had no room for. */
export const OUTPUT_OTHER_ERRORS = 15;

/** Rules and outputs one mcrd can count (memory is used only for the slots in use). */
export const RULE_SLOTS = 16_384;
export const OUTPUT_SLOTS = 65_536;

export const RULE_BASE = WORKER_CELLS;
export const OUTPUT_BASE = RULE_BASE + RULE_SLOTS * RULE_CELLS;
export const REGION_CELLS = OUTPUT_BASE + OUTPUT_SLOTS * OUTPUT_CELLS;
/** 10 MiB of address space per worker; pages are used only where counters are written. */
export const REGION_BYTES = REGION_CELLS * 8;

/** Where a rule's or an output's counters live, and the tag that says the slot is theirs. */
export interface CounterSlot {
  slot: number;
  tag: number;
}

/** The first cell of rule slot `slot`. */
export function ruleCell(slot: number): number {
  return RULE_BASE + slot * RULE_CELLS;
}

/** The first cell of output slot `slot`. */
export function outputCell(slot: number): number {
  return OUTPUT_BASE + slot * OUTPUT_CELLS;
}
