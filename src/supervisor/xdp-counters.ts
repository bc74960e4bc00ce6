import type { RuleCounters } from '../protocol/control-api.js';
import type { OutputCounts, RuleCounts } from '../xdp/xdp-maps.js';

// The XDP path's counts of a rule, kept so they never go backwards: what the maps hold now plus
// what earlier programs and output sets counted (a rule that left XDP, an input re-opened).

/** A rule's XDP counts: its own, and each output's by the output's stable id. */
export interface XdpRuleTotals {
  counts: RuleCounts;
  outputs: Map<string, OutputCounts>;
  /** When mcrd last saw the rule's packet count grow (XDP keeps no time per frame). */
  lastPacketAt: Date | null;
}

export function emptyXdpTotals(): XdpRuleTotals {
  return {
    counts: { packets: 0, bytes: 0, ownSource: 0, ttlExpired: 0, noOutput: 0 },
    outputs: new Map(),
    lastPacketAt: null,
  };
}

/** a + b, outputs matched by id. */
export function addXdpTotals(
  a: XdpRuleTotals,
  b: { counts: RuleCounts; outputs: readonly { id: string; counts: OutputCounts }[] },
): XdpRuleTotals {
  const outputs = new Map(a.outputs);
  for (const { id, counts } of b.outputs) {
    const before = outputs.get(id) ?? { packets: 0, bytes: 0, ttlExpired: 0, refused: 0, refusedBytes: 0 };
    outputs.set(id, {
      packets: before.packets + counts.packets,
      bytes: before.bytes + counts.bytes,
      ttlExpired: before.ttlExpired + counts.ttlExpired,
      refused: before.refused + counts.refused,
      refusedBytes: before.refusedBytes + counts.refusedBytes,
    });
  }
  const c = a.counts;
  const d = b.counts;
  return {
    counts: {
      packets: c.packets + d.packets,
      bytes: c.bytes + d.bytes,
      ownSource: c.ownSource + d.ownSource,
      ttlExpired: c.ttlExpired + d.ttlExpired,
      noOutput: c.noOutput + d.noOutput,
    },
    outputs,
    lastPacketAt: a.lastPacketAt,
  };
}

/** The error name of copies an output's driver refused on the XDP path (no errno is given). */
export const XDP_REFUSED = 'xdp_refused';

/**
 * A rule's counters with its XDP counts added: packets and bytes in, the drop reasons the worker
 * path names the same way (own_source, ttl_expired; no_output, which a worker counts as its own
 * frame's outcome, appears only once it happened), and per output (`ids[i]`: output i's id) the
 * copies the driver took, also in `xdp`, and those it refused as the error xdp_refused.
 */
export function mergeXdpCounters(
  worker: RuleCounters,
  xdp: XdpRuleTotals,
  ids: readonly string[],
): RuleCounters {
  const drops = { ...worker.drops };
  const add = (name: string, n: number): void => {
    if (n > 0 || name in drops) drops[name] = (drops[name] ?? 0) + n;
  };
  add('own_source', xdp.counts.ownSource);
  add('ttl_expired', xdp.counts.ttlExpired);
  add('no_output', xdp.counts.noOutput);
  const last = [worker.lastPacketAt ? Date.parse(worker.lastPacketAt) : 0, xdp.lastPacketAt?.getTime() ?? 0];
  const newest = Math.max(...last);
  return {
    ...worker,
    packetsIn: worker.packetsIn + xdp.counts.packets,
    bytesIn: worker.bytesIn + xdp.counts.bytes,
    drops,
    outputs: worker.outputs.map((o, i) => {
      const x = xdp.outputs.get(ids[i]!);
      if (x === undefined) return o;
      const sent = x.packets - x.refused;
      const errors = { ...o.errors };
      if (x.refused > 0) errors[XDP_REFUSED] = (errors[XDP_REFUSED] ?? 0) + x.refused;
      return {
        ...o,
        packets: o.packets + sent,
        bytes: o.bytes + x.bytes - x.refusedBytes,
        xdp: o.xdp + sent,
        errors,
        ttlExpired: o.ttlExpired + x.ttlExpired,
      };
    }),
    lastPacketAt: newest > 0 ? new Date(newest).toISOString() : null,
  };
}
