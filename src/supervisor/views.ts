import { ipv4ToString } from '../packet/ipv4-address.js';
import type {
  InterfaceStatsView,
  RuleStatsView,
  RuleView,
  StatsView,
  WorkerStatsView,
  WorkerView,
} from '../protocol/control-api.js';
import { emptyRuleCounters } from '../protocol/counters.js';
import type { RuleActivationView } from './rule-state.js';
import type { StoredRule } from './rule-store.js';
import { ruleRates, workerRates, type CounterSample } from './stats-collector.js';
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
    path: activation.path,
    pathReason: activation.pathReason,
    origin: stored.origin,
    createdAt: stored.createdAt.toISOString(),
  };
}

/**
 * Counters and rates: the counters now against the newest sample old enough for a rate (the
 * supervisor samples every second, on a monotonic clock); rules are summed over the workers.
 * `slots[i]` is the worker whose counters are `now.workers[i]`.
 */
export function statsView(
  now: CounterSample,
  base: CounterSample | undefined,
  slots: readonly WorkerSlot[],
  workerView: (slot: WorkerSlot) => WorkerView,
  rules: readonly RuleView[],
  interfaces: InterfaceStatsView[],
): StatsView {
  const seconds = base ? (now.at - base.at) / 1000 : 0;
  const workers: WorkerStatsView[] = slots.map((slot, i) => {
    const sample = now.workers[i]!;
    return {
      ...workerView(slot),
      counters: sample.counters,
      health: slot.health,
      rates: workerRates(sample, base?.workers[i], seconds),
    };
  });
  const ruleStats: RuleStatsView[] = rules.map((view) => {
    const counters = now.rules.get(view.id) ?? emptyRuleCounters(view.outputs.length, view.input.rtp);
    return { ...view, counters, rates: ruleRates(counters, base?.rules.get(view.id), seconds) };
  });
  return { time: new Date().toISOString(), rateInterval: seconds, rules: ruleStats, workers, interfaces };
}
