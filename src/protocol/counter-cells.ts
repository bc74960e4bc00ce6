import type { OutputCounters, RtpCounters, RuleCounters, WorkerCounters } from './control-api.js';
import {
  ERRNO_PAIRS,
  OUTPUT_BYTES,
  OUTPUT_ERRNOS,
  OUTPUT_OTHER_ERRORS,
  OUTPUT_PACKETS,
  OUTPUT_RAW,
  OUTPUT_TTL_EXPIRED,
  RULE_BYTES_IN,
  RULE_EGRESS_FAILED,
  RULE_LAST_PACKET_AT,
  RULE_NO_OUTPUT,
  RULE_OWN_SOURCE,
  RULE_PACKETS_IN,
  RULE_RTP,
  RULE_TTL_EXPIRED,
  RTP_DUPLICATES,
  RTP_GAPS,
  RTP_LOST,
  RTP_NOT_RTP,
  RTP_PACKETS,
  RTP_REORDERED,
  RTP_RESYNCS,
  RTP_SSRC_CHANGES,
  WORKER_EGRESS_ERRORS,
  WORKER_OUTCOMES,
  WORKER_RING_DROPS,
} from './counter-layout.js';

// Counter cells (counter-layout.ts) in the operator's words: the one decoding, used by the
// supervisor on what it read from a worker's region and by the worker's own tests.

/** An outcome code's stable name and the WorkerCounters bucket it belongs to. */
export interface OutcomeName {
  readonly name: string;
  readonly bucket: Exclude<
    keyof WorkerCounters,
    'framesSeen' | 'dropsByReason' | 'egressErrors' | 'ringDrops'
  >;
}

/** The name of the errno refused copies were counted under, e.g. ENOBUFS. */
export type ErrnoNamer = (errno: number) => string;

/**
 * A rule's counters from its cells at `at` (the first cell of its slot); outputs from theirs.
 * `rtp`: the rule has the rtp option (its RTP cells are read), else its `rtp` is null.
 */
export function ruleCountersAt(
  cells: Float64Array,
  at: number,
  outputs: readonly OutputCounters[],
  rtp = false,
): RuleCounters {
  const drops: Record<string, number> = {};
  const named: readonly [string, number][] = [
    ['own_source', RULE_OWN_SOURCE],
    ['ttl_expired', RULE_TTL_EXPIRED],
    ['no_output', RULE_NO_OUTPUT],
    ['egress_failed', RULE_EGRESS_FAILED],
  ];
  for (const [name, cell] of named) if (cells[at + cell]! > 0) drops[name] = cells[at + cell]!;
  const last = cells[at + RULE_LAST_PACKET_AT]!;
  return {
    packetsIn: cells[at + RULE_PACKETS_IN]!,
    bytesIn: cells[at + RULE_BYTES_IN]!,
    drops,
    outputs: [...outputs],
    lastPacketAt: last > 0 ? new Date(last).toISOString() : null,
    rtp: rtp ? rtpCountersAt(cells, at + RULE_RTP) : null,
  };
}

/** RTP stream health counters from their cells at `at`. */
export function rtpCountersAt(cells: Float64Array, at: number): RtpCounters {
  return {
    packets: cells[at + RTP_PACKETS]!,
    notRtp: cells[at + RTP_NOT_RTP]!,
    lost: cells[at + RTP_LOST]!,
    gaps: cells[at + RTP_GAPS]!,
    duplicates: cells[at + RTP_DUPLICATES]!,
    reordered: cells[at + RTP_REORDERED]!,
    ssrcChanges: cells[at + RTP_SSRC_CHANGES]!,
    resyncs: cells[at + RTP_RESYNCS]!,
  };
}

/** An output's counters from its cells at `at`. */
export function outputCountersAt(cells: Float64Array, at: number, errnoName: ErrnoNamer): OutputCounters {
  const errors: Record<string, number> = {};
  for (let pair = 0; pair < ERRNO_PAIRS; pair++) {
    const errno = cells[at + OUTPUT_ERRNOS + 2 * pair]!;
    const count = cells[at + OUTPUT_ERRNOS + 2 * pair + 1]!;
    if (errno > 0 && count > 0) {
      const name = errnoName(errno);
      errors[name] = (errors[name] ?? 0) + count;
    }
  }
  const other = cells[at + OUTPUT_OTHER_ERRORS]!;
  if (other > 0) errors.other = (errors.other ?? 0) + other;
  return {
    packets: cells[at + OUTPUT_PACKETS]!,
    bytes: cells[at + OUTPUT_BYTES]!,
    raw: cells[at + OUTPUT_RAW]!,
    xdp: 0,
    errors,
    ttlExpired: cells[at + OUTPUT_TTL_EXPIRED]!,
  };
}

/**
 * The worker's own counters from the region's header: every outcome summed into its one bucket,
 * so framesSeen, the sum of all outcomes, equals the sum of the buckets by construction.
 * `outcomes[code]`: the name and bucket of outcome code `code`; code 0 is forwarded.
 */
export function workerCountersAt(cells: Float64Array, outcomes: readonly OutcomeName[]): WorkerCounters {
  const counters: WorkerCounters = {
    framesSeen: 0,
    forwarded: 0,
    noRule: 0,
    notIpv4Udp: 0,
    malformed: 0,
    fragments: 0,
    filtered: 0,
    unsent: 0,
    workerRestart: 0,
    dropsByReason: {},
    egressErrors: cells[WORKER_EGRESS_ERRORS]!,
    ringDrops: cells[WORKER_RING_DROPS]!,
  };
  outcomes.forEach(({ name, bucket }, code) => {
    const n = cells[WORKER_OUTCOMES + code]!;
    counters.framesSeen += n;
    counters[bucket] += n;
    if (code !== 0 && n > 0) counters.dropsByReason[name] = n;
  });
  return counters;
}
