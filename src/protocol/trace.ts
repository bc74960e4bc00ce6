/**
 * On-demand tracing (mcrctl trace): what a trace selects, and what a worker reports of each traced
 * frame. Shared by the worker (which records), the supervisor (which checks what workers send and
 * forwards it) and the control API (which shows it to the operator).
 */

/**
 * Which frames a trace takes, all on one input interface: those matched to one rule (by id; the
 * interface is the rule's input), or those of the interface, optionally of one destination group
 * and port. A frame the parser could not read that far (a malformed frame, a fragment without
 * its UDP header) has no group or port: only a selection without them takes it.
 */
export interface TraceSelection {
  interface: string;
  rule: string | null;
  /** Unsigned 32-bit, as the parser reads it (239.1.1.1 is 0xef010101). */
  group: number | null;
  port: number | null;
}

/** What became of one output's copy of a traced frame. */
export interface TraceCopy {
  /** The output's index in its rule (rule order). */
  output: number;
  /**
   * sent: the kernel took it; refused: the kernel refused it (errno); ttl_expired: its TTL would
   * have been 0, so it was not sent; detached: the output had no sockets (its link is missing).
   */
  status: 'sent' | 'refused' | 'ttl_expired' | 'detached';
  /** The egress path it was sent (or refused) on; null when no copy was made. */
  path: 'raw' | 'socket' | null;
  /** The errno name of a refused copy (ENOBUFS, ENETDOWN, …), else null. */
  errno: string | null;
}

/**
 * One traced frame as a worker recorded it. Addresses are unsigned 32-bit numbers; a field the
 * parser could not read (a malformed frame) is null.
 */
export interface TraceRecord {
  /** When the kernel received the frame: microseconds since the epoch (the ring slot's time). */
  timeUs: number;
  /** The 802.1Q VLAN id the frame carried, or null when untagged. */
  vlan: number | null;
  source: number | null;
  sourcePort: number | null;
  /** Destination address (the group) and port. */
  group: number | null;
  port: number | null;
  ttl: number | null;
  /** The frame's length on the wire, and its UDP payload's (null when the parser did not get there). */
  frameLength: number;
  payloadLength: number | null;
  /** The frame's outcome: forwarded, or the drop reason (the worker's outcome names). */
  outcome: string;
  /** The rule it matched, or null (no rule, or dropped before the lookup). */
  rule: string | null;
  /** One entry per output of the matched rule, in rule order; empty without a rule. */
  copies: TraceCopy[];
}

/** The most frames one trace may ask for. */
export const MAX_TRACE_COUNT = 10_000;
/** The longest a trace may run, in seconds. */
export const MAX_TRACE_SECONDS = 3600;
/**
 * Records one worker message may carry: even with 64 outputs each (about 4 KiB of JSON a record)
 * a message stays well below the channel's 256 KiB.
 */
export const MAX_TRACE_RECORDS_PER_MESSAGE = 32;
