import JSON5 from 'json5';
import { ipv4ToString } from '../packet/ipv4-address.js';
import {
  DEFAULT_MULTICAST_TTL,
  DEFAULT_UNICAST_TTL,
  type Output,
  type Rule,
  type RuleRequest,
} from '../rules/rule.js';

// Rules written back as a config document (mcrctl config show / save, the state file), in the
// file's own keys, so that reading it again gives the same rules, names and ids.

/** "eth0 239.1.1.1:5000", as a request names it (before validation). */
export function describeRuleRequest(r: RuleRequest): string {
  const vlan = r.inputVlan === undefined ? '' : ` vlan ${r.inputVlan}`;
  const source = r.inputSource === undefined ? '' : ` from ${r.inputSource}`;
  return `${r.inputInterface}${vlan} ${r.inputGroup}:${r.inputPort}${source}`;
}

export interface DocumentOutput {
  group: string;
  port: number;
  interface?: string;
  ttl?: number;
  fixed_ttl?: number;
  dscp?: number;
  mode?: string;
}

export interface DocumentRuleOut {
  name?: string;
  input: {
    interface: string;
    group: string;
    port: number;
    vlan?: number;
    source?: string;
    unicast?: boolean;
  };
  outputs: DocumentOutput[];
  rtp?: boolean;
}

/** A rule in the document's shape; options only where they differ from the defaults. */
export function ruleToDocument(rule: Rule): DocumentRuleOut {
  return {
    ...(rule.name !== undefined ? { name: rule.name } : {}),
    input: {
      interface: rule.inputInterface,
      group: ipv4ToString(rule.inputGroup),
      port: rule.inputPort,
      ...(rule.inputVlan !== 0 ? { vlan: rule.inputVlan } : {}),
      ...(rule.inputSource !== 0 ? { source: ipv4ToString(rule.inputSource) } : {}),
      ...(rule.unicastInput ? { unicast: true } : {}),
    },
    outputs: rule.outputs.map(outputToDocument),
    ...(rule.rtp ? { rtp: true } : {}),
  };
}

function outputToDocument(o: Output): DocumentOutput {
  const defaultTtl = o.multicast ? DEFAULT_MULTICAST_TTL : DEFAULT_UNICAST_TTL;
  return {
    group: ipv4ToString(o.group),
    port: o.port,
    ...(o.interface !== undefined ? { interface: o.interface } : {}),
    ...(o.ttlFixed ? { fixed_ttl: o.ttl } : o.ttl !== defaultTtl ? { ttl: o.ttl } : {}),
    ...(o.dscp !== undefined ? { dscp: o.dscp } : {}),
    ...(o.mode !== 'auto' ? { mode: o.mode } : {}),
  };
}

/** A config document holding `rules`, with a comment saying where it came from. */
export function renderRules(rules: readonly Rule[], comment: string): string {
  const body = JSON5.stringify({ rules: rules.map(ruleToDocument) }, null, 2);
  const header = comment
    .split('\n')
    .map((line) => `// ${line}`.trimEnd())
    .join('\n');
  return `${header}\n${body}\n`;
}
