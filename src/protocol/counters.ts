import type { RtpCounters, RuleCounters, WorkerCounters } from './control-api.js';

/** Counter arithmetic shared by whoever aggregates reports from several workers. */

export function emptyWorkerCounters(): WorkerCounters {
  return {
    framesSeen: 0,
    forwarded: 0,
    notIpv4Udp: 0,
    malformed: 0,
    fragments: 0,
    noRule: 0,
    filtered: 0,
    unsent: 0,
    workerRestart: 0,
    dropsByReason: {},
    egressErrors: 0,
    ringDrops: 0,
  };
}

/** a + b, as a new object. */
export function addWorkerCounters(a: WorkerCounters, b: WorkerCounters): WorkerCounters {
  const dropsByReason = addByName(a.dropsByReason, b.dropsByReason);
  return {
    framesSeen: a.framesSeen + b.framesSeen,
    forwarded: a.forwarded + b.forwarded,
    notIpv4Udp: a.notIpv4Udp + b.notIpv4Udp,
    malformed: a.malformed + b.malformed,
    fragments: a.fragments + b.fragments,
    noRule: a.noRule + b.noRule,
    filtered: a.filtered + b.filtered,
    unsent: a.unsent + b.unsent,
    workerRestart: a.workerRestart + b.workerRestart,
    dropsByReason,
    egressErrors: a.egressErrors + b.egressErrors,
    ringDrops: a.ringDrops + b.ringDrops,
  };
}

/** `rtp`: whether the rule counts RTP stream health (its counters start at zero), else null. */
export function emptyRuleCounters(outputs: number, rtp = false): RuleCounters {
  return {
    packetsIn: 0,
    bytesIn: 0,
    drops: {},
    outputs: Array.from({ length: outputs }, () => ({
      packets: 0,
      bytes: 0,
      raw: 0,
      xdp: 0,
      errors: {},
      ttlExpired: 0,
    })),
    lastPacketAt: null,
    rtp: rtp ? emptyRtpCounters() : null,
  };
}

export function emptyRtpCounters(): RtpCounters {
  return {
    packets: 0,
    notRtp: 0,
    lost: 0,
    gaps: 0,
    duplicates: 0,
    reordered: 0,
    ssrcChanges: 0,
    resyncs: 0,
  };
}

/**
 * a + b (null: the worker did not count RTP for the rule). Each worker judges the flows it is
 * given (PACKET_FANOUT keeps a flow on one worker), so their counts add up.
 */
export function addRtpCounters(a: RtpCounters | null, b: RtpCounters | null): RtpCounters | null {
  if (a === null) return b === null ? null : { ...b };
  if (b === null) return { ...a };
  return {
    packets: a.packets + b.packets,
    notRtp: a.notRtp + b.notRtp,
    lost: a.lost + b.lost,
    gaps: a.gaps + b.gaps,
    duplicates: a.duplicates + b.duplicates,
    reordered: a.reordered + b.reordered,
    ssrcChanges: a.ssrcChanges + b.ssrcChanges,
    resyncs: a.resyncs + b.resyncs,
  };
}

/** a + b, as a new object (a missing a counts as zero). */
export function addRuleCounters(a: RuleCounters | undefined, b: RuleCounters): RuleCounters {
  const base = a ?? emptyRuleCounters(b.outputs.length);
  return {
    packetsIn: base.packetsIn + b.packetsIn,
    bytesIn: base.bytesIn + b.bytesIn,
    drops: addByName(base.drops, b.drops),
    outputs: base.outputs.map((o, i) => {
      const other = b.outputs[i];
      return {
        packets: o.packets + (other?.packets ?? 0),
        bytes: o.bytes + (other?.bytes ?? 0),
        raw: o.raw + (other?.raw ?? 0),
        xdp: o.xdp + (other?.xdp ?? 0),
        errors: addByName(o.errors, other?.errors ?? {}),
        ttlExpired: o.ttlExpired + (other?.ttlExpired ?? 0),
      };
    }),
    lastPacketAt: later(base.lastPacketAt, b.lastPacketAt),
    rtp: addRtpCounters(base.rtp, b.rtp),
  };
}

/** Two name → count maps added into a new one. */
function addByName(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const sum = { ...a };
  for (const [name, n] of Object.entries(b)) sum[name] = (sum[name] ?? 0) + n;
  return sum;
}

/** The later of two ISO 8601 times (null: none). */
function later(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return a >= b ? a : b;
}
