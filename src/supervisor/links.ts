import { ipv4ToString } from '../packet/ipv4-address.js';
import type { Output, Rule } from '../rules/rule.js';

// What a rule needs of the host's links, and what keeps it from having it: the readiness rules
// rule activation applies on every change of a link.

/** What activation needs to know of an interface (the InterfaceMonitor's state, or a fake's). */
export interface LinkState {
  name: string;
  ifindex: number;
  up: boolean;
  running: boolean;
  mtu: number;
  /** IPv4 addresses, unsigned 32-bit. */
  addresses: ReadonlySet<number>;
}

export interface Links {
  get(name: string): LinkState | undefined;
  /** Every IPv4 address of this host (its network namespace). */
  hostAddresses(): number[];
}

/** Why an output cannot send now; `detach`: its sockets must go (no link, or no address to send from). */
export interface OutputProblem {
  reason: string;
  detach: boolean;
}

/** What keeps a rule's input from being used, in words; null when nothing does. */
export function inputProblem(links: Links, rule: Rule, active: boolean): string | null {
  const link = links.get(rule.inputInterface);
  if (!link) return `waiting for ${rule.inputInterface}`;
  // An ingress socket bound while its interface was down did not receive once it came up
  // (measured on this kernel); one bound while up keeps working across later down/up.
  if (!active && !link.up) return `waiting for ${rule.inputInterface} to come up`;
  if (rule.unicastInput && !links.hostAddresses().includes(rule.inputGroup)) {
    return `waiting for ${ipv4ToString(rule.inputGroup)} to be an address of this host`;
  }
  return null;
}

/**
 * What keeps an output from sending. Without its link or an IPv4 address on it, its sockets
 * must go: copies would leave from an address the host no longer has. A link that is down
 * keeps them (its copies fail and are counted until it is back).
 */
export function outputProblem(links: Links, output: Output): OutputProblem | null {
  if (output.interface === undefined) return null;
  const link = links.get(output.interface);
  if (!link) return { reason: `waiting for ${output.interface}`, detach: true };
  if (link.addresses.size === 0) return { reason: `${output.interface} has no IPv4 address`, detach: true };
  if (!link.up) return { reason: `${output.interface} is down`, detach: false };
  if (!link.running) return { reason: `${output.interface} is down (no carrier)`, detach: false };
  return null;
}
