import type { CounterSlot } from '../protocol/counter-layout.js';
import type { RuleCounterSlots, WorkerRule } from '../protocol/worker-messages.js';
import { describeOutput, type Output, type Rule } from '../rules/rule.js';
import { inputProblem, outputProblem, type Links } from './links.js';
import type { OutputSockets } from './output-sockets.js';

// What activation keeps of each rule, and what is read from it: how the rule and its outputs
// stand (the views mcrctl list shows), its counter slots, and the rule as the workers hold it.

/** An output of an active rule: its sockets, or why it has none. */
export interface OutputState {
  /** Where it counts, for the rule's whole life (a reload that keeps the output keeps it). */
  counters: CounterSlot;
  sockets: OutputSockets | null;
  /** Why opening its sockets failed, when it did (cleared by the next attempt). */
  failure: string | null;
}

export interface RuleState {
  rule: Rule;
  /** Where the rule counts, for its whole life: active or not, across worker restarts. */
  counters: CounterSlot;
  /** Its input sockets are taken and the workers hold it. */
  active: boolean;
  outputs: OutputState[];
  /** Why the last activation failed, when it did. */
  failure: string | null;
  /** The data path of the rule while active: the workers, or XDP (xdp-activation.ts). */
  path: 'worker' | 'xdp';
  /** Why the rule is not on the XDP path (auto's reason, or a forced rule's refusal). */
  pathReason: string | null;
}

export type RuleStateName = 'active' | 'degraded' | 'down' | 'waiting';
export type OutputStateName = 'active' | 'down' | 'waiting';

export interface OutputActivationView {
  /** The egress path in use: raw, socket or xdp; null while the output has no sockets. */
  path: 'raw' | 'socket' | 'xdp' | null;
  state: OutputStateName;
  reason: string | null;
}

export interface RuleActivationView {
  state: RuleStateName;
  reason: string | null;
  /** The data path: worker or xdp (null while waiting), and why not xdp when it is not. */
  path: 'worker' | 'xdp' | null;
  pathReason: string | null;
  outputs: OutputActivationView[];
}

/** How a rule stands: active, degraded (some outputs cannot send), down (its input link is), waiting. */
export function ruleStateView(state: RuleState, links: Links): RuleActivationView {
  const { rule } = state;
  const path = { path: state.active ? state.path : null, pathReason: state.pathReason };
  if (!state.active) {
    return {
      ...path,
      state: 'waiting',
      reason:
        inputProblem(links, rule, false) ?? state.failure ?? 'its sockets could not be opened (see the log)',
      outputs: rule.outputs.map((o) => ({
        path: null,
        state: 'waiting',
        reason: outputProblem(links, o)?.reason ?? null,
      })),
    };
  }
  const outputs = rule.outputs.map((o, i) => outputStateView(o, state.outputs[i]!, state.path, links));
  const problems = [...new Set(outputs.flatMap((o) => (o.reason ? [o.reason] : [])))];
  const input = links.get(rule.inputInterface);
  if (input && !input.running) {
    return { ...path, state: 'down', reason: `${rule.inputInterface} is down`, outputs };
  }
  if (!outputs.some((o) => o.path !== null)) {
    return { ...path, state: 'waiting', reason: problems.join('; ') || 'no output is ready', outputs };
  }
  if (problems.length > 0) return { ...path, state: 'degraded', reason: problems.join('; '), outputs };
  return { ...path, state: 'active', reason: null, outputs };
}

function outputStateView(
  output: Output,
  state: OutputState,
  rulePath: 'worker' | 'xdp',
  links: Links,
): OutputActivationView {
  const problem = outputProblem(links, output);
  if (!state.sockets) {
    return { path: null, state: 'waiting', reason: problem?.reason ?? state.failure ?? 'not ready' };
  }
  const path = rulePath === 'xdp' ? 'xdp' : state.sockets.raw ? 'raw' : 'socket';
  return problem ? { path, state: 'down', reason: problem.reason } : { path, state: 'active', reason: null };
}

export function slotsOf(state: RuleState): RuleCounterSlots {
  return { rule: state.counters, outputs: state.outputs.map((o) => o.counters) };
}

/** The rule as its workers hold it. */
export function workerRule(state: RuleState): WorkerRule {
  const { rule } = state;
  return {
    id: rule.id,
    inputInterface: rule.inputInterface,
    inputVlan: rule.inputVlan,
    inputSource: rule.inputSource,
    inputGroup: rule.inputGroup,
    inputPort: rule.inputPort,
    rtp: rule.rtp,
    outputs: rule.outputs.map((o, i) => {
      const sockets = state.outputs[i]!.sockets;
      return {
        label: describeOutput(o),
        ttl: o.ttl,
        ttlFixed: o.ttlFixed,
        dscp: o.dscp ?? null,
        attached: sockets !== null,
        egress: sockets?.raw?.spec ?? null,
      };
    }),
  };
}
