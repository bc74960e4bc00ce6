import { ipv4ToString } from '../packet/ipv4-address.js';
import type {
  InterfaceStatsView,
  RuleCounters,
  RuleStatsView,
  RuleView,
  StatsView,
  WorkerStatsView,
  WorkerView,
} from '../protocol/control-api.js';
import {
  addRuleCounters,
  emptyRtpCounters,
  emptyRuleCounters,
  emptyWorkerCounters,
} from '../protocol/counters.js';
import type { WorkerStatsReport } from '../protocol/worker-messages.js';
import type { RuleActivationView } from './rule-activation.js';
import type { StoredRule } from './rule-store.js';
import { ruleRates, workerRates } from './stats-collector.js';
import type { WorkerSlot } from './worker-pool.js';

// What the control methods show: rules, workers and their counters, in the operator's words.

export function ruleView(stored: StoredRule, activation: RuleActivationView): RuleView {
  const { rule } = stored;
  return {
    id: rule.id,
    name: rule.name ?? null,
    input: {
      interface: rule.inputInterface,
      vlan: rule.inputVlan === 0 ? null : rule.inputVlan,
      source: rule.inputSource === 0 ? null : ipv4ToString(rule.inputSource),
      group: ipv4ToString(rule.inputGroup),
      port: rule.inputPort,
      unicast: rule.unicastInput,
      rtp: rule.rtp,
    },
    outputs: rule.outputs.map((o, i) => ({
      group: ipv4ToString(o.group),
      port: o.port,
      interface: o.interface ?? null,
      ttl: o.ttl,
      ttlFixed: o.ttlFixed,
      dscp: o.dscp ?? null,
      mode: o.mode,
      ...activation.outputs[i]!,
    })),
    state: activation.state,
    reason: activation.reason,
    origin: stored.origin,
    createdAt: stored.createdAt.toISOString(),
  };
}

type Rates = ReturnType<typeof ruleRates>;

/**
 * Counters and rates: each worker's fresh report (or its last one, if it did not answer in time)
 * against its older sample; rules summed over the workers, which each see part of the traffic.
 */
export function statsView(
  at: number,
  slots: readonly WorkerSlot[],
  reports: readonly (WorkerStatsReport | undefined)[],
  workerView: (slot: WorkerSlot) => WorkerView,
  rules: readonly RuleView[],
  interfaces: InterfaceStatsView[],
): StatsView {
  let rateInterval = 0;
  const ruleNow = new Map<string, RuleCounters>();
  const ruleRate = new Map<string, Rates>();
  const workers: WorkerStatsView[] = slots.map((slot, i) => {
    const report = reports[i] ?? slot.stats.latest()?.report;
    const base = slot.stats.baseline(at);
    const seconds = base ? (at - base.at) / 1000 : 0;
    rateInterval = Math.max(rateInterval, seconds);
    for (const [id, counters] of Object.entries(report?.rules ?? {})) {
      const rates = ruleRates(counters, base?.report.rules[id], seconds);
      ruleNow.set(id, addRuleCounters(ruleNow.get(id), counters));
      const sum = ruleRate.get(id);
      ruleRate.set(id, sum ? addRates(sum, rates) : rates);
    }
    const counters = report?.worker ?? emptyWorkerCounters();
    return {
      ...workerView(slot),
      counters,
      health: report?.health ?? null,
      rates: workerRates(report, base?.report, seconds),
    };
  });
  const ruleStats: RuleStatsView[] = rules.map((view) => ({
    ...view,
    counters: withRtpOption(ruleNow.get(view.id) ?? emptyRuleCounters(view.outputs.length), view.input.rtp),
    rates: ruleRate.get(view.id) ?? {
      packetsIn: 0,
      bytesIn: 0,
      outputs: view.outputs.map(() => 0),
      outputBytes: view.outputs.map(() => 0),
    },
  }));
  return { time: new Date(at).toISOString(), rateInterval, rules: ruleStats, workers, interfaces };
}

/** Every rule's counters summed over the workers' reports (the final counters, at stop). */
export function totalRuleCounters(
  reports: readonly (WorkerStatsReport | undefined)[],
): Record<string, RuleCounters> {
  const total = new Map<string, RuleCounters>();
  for (const report of reports) {
    for (const [id, counters] of Object.entries(report?.rules ?? {}))
      total.set(id, addRuleCounters(total.get(id), counters));
  }
  return Object.fromEntries(total);
}

/** RTP counters as the rule's option says: null without it (a report older than the change may have them). */
function withRtpOption(counters: RuleCounters, rtp: boolean): RuleCounters {
  if (rtp) return counters.rtp === null ? { ...counters, rtp: emptyRtpCounters() } : counters;
  return counters.rtp === null ? counters : { ...counters, rtp: null };
}

function addRates(a: Rates, b: Rates): Rates {
  return {
    packetsIn: a.packetsIn + b.packetsIn,
    bytesIn: a.bytesIn + b.bytesIn,
    outputs: a.outputs.map((r, i) => r + (b.outputs[i] ?? 0)),
    outputBytes: a.outputBytes.map((r, i) => r + (b.outputBytes[i] ?? 0)),
  };
}
