import type { RuleCounters, WorkerCounters } from './control-api.js';

/** Counter arithmetic shared by whoever aggregates reports from several workers. */

export function emptyWorkerCounters(): WorkerCounters {
  return {
    framesSeen: 0,
    forwarded: 0,
    notIpv4Udp: 0,
    malformed: 0,
    fragments: 0,
    noRule: 0,
    dropsByReason: {},
    egressErrors: 0,
    ringDrops: 0,
  };
}

/** a + b, as a new object. */
export function addWorkerCounters(a: WorkerCounters, b: WorkerCounters): WorkerCounters {
  const dropsByReason = { ...a.dropsByReason };
  for (const [reason, n] of Object.entries(b.dropsByReason))
    dropsByReason[reason] = (dropsByReason[reason] ?? 0) + n;
  return {
    framesSeen: a.framesSeen + b.framesSeen,
    forwarded: a.forwarded + b.forwarded,
    notIpv4Udp: a.notIpv4Udp + b.notIpv4Udp,
    malformed: a.malformed + b.malformed,
    fragments: a.fragments + b.fragments,
    noRule: a.noRule + b.noRule,
    dropsByReason,
    egressErrors: a.egressErrors + b.egressErrors,
    ringDrops: a.ringDrops + b.ringDrops,
  };
}

export function emptyRuleCounters(outputs: number): RuleCounters {
  return {
    packetsIn: 0,
    bytesIn: 0,
    outputs: Array.from({ length: outputs }, () => ({ packets: 0, raw: 0, errors: {} })),
  };
}

/** a + b, as a new object (a missing a counts as zero). */
export function addRuleCounters(a: RuleCounters | undefined, b: RuleCounters): RuleCounters {
  const base = a ?? emptyRuleCounters(b.outputs.length);
  return {
    packetsIn: base.packetsIn + b.packetsIn,
    bytesIn: base.bytesIn + b.bytesIn,
    outputs: base.outputs.map((o, i) => {
      const other = b.outputs[i];
      const errors = { ...o.errors };
      for (const [name, n] of Object.entries(other?.errors ?? {})) errors[name] = (errors[name] ?? 0) + n;
      return { packets: o.packets + (other?.packets ?? 0), raw: o.raw + (other?.raw ?? 0), errors };
    }),
  };
}
