import { createHash } from 'node:crypto';
import { ipv4ToString } from '../packet/ipv4-address.js';

/** What an operator asks for: strings as typed, before validation. */
export interface RuleRequest {
  name?: string | undefined;
  inputInterface: string;
  inputGroup: string;
  inputPort: number;
  /** Accept a unicast input address (traffic sent to the relay host itself) instead of a group. */
  unicastInput?: boolean | undefined;
  outputs: OutputRequest[];
}

export interface OutputRequest {
  group: string;
  port: number;
  /** Egress interface; required for multicast outputs, optional for unicast (the kernel routes). */
  interface?: string | undefined;
  ttl?: number | undefined;
  /** Egress path: raw (AF_PACKET with a header template), socket (UDP), or auto (raw where it can). */
  mode?: OutputMode | undefined;
}

export const OUTPUT_MODES = ['auto', 'raw', 'socket'] as const;
export type OutputMode = (typeof OUTPUT_MODES)[number];

/** A validated output: where one copy of each packet of a rule goes. */
export interface Output {
  /** Destination address, unsigned 32-bit. */
  group: number;
  port: number;
  interface: string | undefined;
  ttl: number;
  multicast: boolean;
  mode: OutputMode;
}

/** A validated rule: packets to (input interface, group, port) are re-sent to every output. */
export interface Rule {
  /** Stable: derived from the input tuple, the same on every restart and host. */
  id: string;
  name: string | undefined;
  inputInterface: string;
  inputGroup: number;
  inputPort: number;
  unicastInput: boolean;
  outputs: Output[];
}

export const DEFAULT_MULTICAST_TTL = 16;
export const DEFAULT_UNICAST_TTL = 64;
export const MAX_OUTPUTS_PER_RULE = 64;

/** The rule id for an input tuple: "r-" and 12 hex digits of a SHA-256 over the tuple. */
export function ruleIdFor(inputInterface: string, inputGroup: number, inputPort: number): string {
  const tuple = `${inputInterface}|${ipv4ToString(inputGroup)}|${inputPort}`;
  return `r-${createHash('sha256').update(tuple).digest('hex').slice(0, 12)}`;
}

/** "239.2.2.2:6000:eth1" — how outputs are shown to operators (the syntax they type). */
export function describeOutput(output: Output): string {
  const at = output.interface ? `:${output.interface}` : '';
  const mode = output.mode === 'auto' ? '' : `:${output.mode}`;
  return `${ipv4ToString(output.group)}:${output.port}${at}${mode}`;
}

export function describeInput(rule: Rule): string {
  return `${rule.inputInterface} ${ipv4ToString(rule.inputGroup)}:${rule.inputPort}`;
}
