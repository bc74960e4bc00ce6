import { ipv4ToString } from '../packet/ipv4-address.js';
import type { Output, Rule } from './rule.js';

// What of a rule, as written, keeps it off the XDP path: facts of the rule alone, the same on
// every host. The host's part (drivers, programs, privileges) is decided in the supervisor.

/** Whether the rule asks for XDP: one of its outputs has mode xdp (the whole rule goes, or none). */
export function forcesXdp(rule: Rule): boolean {
  return rule.outputs.some((o) => o.mode === 'xdp');
}

/** Why output `index` cannot be relayed by the XDP programs, in words; null when it can. */
export function xdpOutputProblem(output: Output, index: number): string | null {
  const name = `outputs[${index}] ${ipv4ToString(output.group)}:${output.port}`;
  if (!output.multicast) return `${name}: unicast outputs stay on the worker path`;
  if (output.interface === undefined)
    return `${name}: an output without an interface stays on the worker path`;
  if (output.mode === 'raw' || output.mode === 'socket') return `${name} asks for the ${output.mode} path`;
  return null;
}

/**
 * Why the rule, as written, cannot go to XDP; null when nothing in it keeps it off. The
 * ingress program replicates to all of a rule's outputs, so one output that cannot go keeps the
 * whole rule on the worker path. Features that need a worker to see each packet keep it too.
 */
export function xdpRuleProblem(rule: Rule): string | null {
  if (rule.rtp) return 'rtp: stream health needs a worker to read each packet';
  if (rule.unicastInput) return 'a unicast input stays on the worker path';
  if (rule.inputSource !== 0)
    return 'a source-specific (S,G) input is filtered by the workers, not by the XDP program';
  for (const [i, output] of rule.outputs.entries()) {
    const problem = xdpOutputProblem(output, i);
    if (problem !== null) return problem;
  }
  return null;
}
