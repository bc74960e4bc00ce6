import { describeInput, type Rule } from '../rules/rule.js';
import { forcesXdp, xdpRuleProblem } from '../rules/xdp-eligibility.js';
import type { LinkState } from './links.js';

// Which data path a rule takes: a pure function of the rule and what mcrd knows of the host, so
// the choice and its reason can be tested without root.

/** What the choice needs of one link beyond its LinkState. */
export interface XdpLinkFacts {
  /** The driver's name (ETHTOOL_GDRVINFO), undefined when unknown. */
  driver: string | undefined;
  /** The XDP features the driver advertises now (netdev family), undefined when unknown. */
  features: { native: boolean; ndoXmit: boolean } | undefined;
}

export interface XdpHostFacts {
  /** Why mcrd cannot load programs at all (a capability it lacks), or null when it can. */
  privilege: string | null;
  link(name: string): (LinkState & XdpLinkFacts) | undefined;
  /** Why attaching to this input failed last (another program there, the driver), if it did. */
  attachFailure(input: string): string | undefined;
}

export interface PathChoice {
  path: 'xdp' | 'worker';
  /** An output asks for xdp: the rule goes there or is refused (waits), never to the worker path. */
  forced: boolean;
  /** Why the rule is not on the XDP path; null when it is (or takes it). */
  reason: string | null;
}

/**
 * The path of a rule. `auto` takes XDP only where it is sure to work: native XDP on the input's
 * driver, every output a multicast output on a link whose driver takes redirected frames now
 * (NDO_XMIT) and is not a veth, whose MTU holds the input's frames, and nothing in the rule that
 * needs a worker to see its packets. A veth advertises NDO_XMIT only while its peer has NAPI, and
 * the peer's owner can turn that off without mcrd hearing of it (the change is not a link event):
 * auto leaves veth outputs on the worker path, `xdp` forces them. A forced rule takes XDP unless
 * something known keeps it off; then it is refused (or waits) with that reason.
 */
export function choosePath(rule: Rule, host: XdpHostFacts): PathChoice {
  const forced = forcesXdp(rule);
  const no = (reason: string): PathChoice => ({ path: 'worker', forced, reason });
  const written = xdpRuleProblem(rule);
  if (written !== null) return no(written);
  if (host.privilege !== null) return no(host.privilege);
  const input = host.link(rule.inputInterface);
  if (input === undefined) return no(`waiting for ${rule.inputInterface}`);
  if (input.features === undefined && !forced) {
    return no(`${input.name}: the kernel does not say whether its driver runs native XDP`);
  }
  if (input.features !== undefined && !input.features.native) {
    return no(`${input.name}: driver ${input.driver ?? '(unknown)'} has no native XDP`);
  }
  const failure = host.attachFailure(rule.inputInterface);
  if (failure !== undefined) return no(failure);
  for (const [i, output] of rule.outputs.entries()) {
    const name = output.interface!;
    const link = host.link(name);
    const at = `outputs[${i}] on ${name}`;
    if (link === undefined) {
      if (forced) continue; // it waits for its link, as on the worker path
      return no(`${at}: waiting for ${name}`);
    }
    if (link.features !== undefined && !link.features.ndoXmit) {
      return no(
        link.driver === 'veth'
          ? `${at}: the veth's peer has no NAPI (no XDP program, GRO off), so redirected frames would be lost`
          : `${at}: driver ${link.driver ?? '(unknown)'} does not take redirected frames`,
      );
    }
    if (forced) continue;
    if (link.features === undefined)
      return no(`${at}: the kernel does not say whether it takes redirected frames`);
    if (link.driver === 'veth') {
      return no(
        `${at}: auto keeps veth outputs on the worker path (its peer's NAPI can go unseen); use xdp to force`,
      );
    }
    if (link.mtu < input.mtu) return no(`${at}: MTU ${link.mtu} is below ${input.name}'s ${input.mtu}`);
  }
  return { path: 'xdp', forced, reason: null };
}

/** A forced rule's refusal, as mcrctl shows it. */
export function refusal(rule: Rule, choice: PathChoice): string {
  return `${describeInput(rule)}: xdp cannot apply: ${choice.reason ?? 'unknown'}`;
}
