import { createHash } from 'node:crypto';
import { ipv4ToString } from '../packet/ipv4-address.js';

/** What an operator asks for: strings as typed, before validation. */
export interface RuleRequest {
  name?: string | undefined;
  inputInterface: string;
  inputGroup: string;
  inputPort: number;
  /**
   * 802.1Q VLAN id (1-4094) the input frames carry on the input interface; absent: untagged
   * frames only (and priority-tagged ones, VLAN id 0).
   */
  inputVlan?: number | undefined;
  /**
   * Source-specific input (S,G): only packets from this sender (a unicast address) match, and the
   * join is for this source only (IGMPv3). Absent: any source.
   */
  inputSource?: string | undefined;
  /** Accept a unicast input address (traffic sent to the relay host itself) instead of a group. */
  unicastInput?: boolean | undefined;
  /** Read the input payload as RTP and count its stream health (gaps, duplicates, reordering). */
  rtp?: boolean | undefined;
  outputs: OutputRequest[];
}

export interface OutputRequest {
  group: string;
  port: number;
  /** Egress interface; required for multicast outputs, optional for unicast (the kernel routes). */
  interface?: string | undefined;
  /**
   * The most hops a copy may travel: it leaves with the lower of this and the input's TTL minus
   * one, and is not sent when that would be 0 (as a router does; it keeps loops finite).
   */
  ttl?: number | undefined;
  /**
   * Instead of ttl: every copy leaves with exactly this TTL, whatever the input's (for sources
   * that send with TTL 1 on purpose). This output then no longer shortens a loop's life.
   */
  fixedTtl?: number | undefined;
  /**
   * DSCP of the copies: 0-63 or a name (ef, af11..af43, cs0..cs7, le); absent: each copy keeps
   * the input's DSCP. The input's ECN bits are kept either way.
   */
  dscp?: number | string | undefined;
  /**
   * Path: raw (a worker's AF_PACKET with a header template), socket (a worker's UDP socket), xdp
   * (in the driver: the whole rule goes there, or it is refused), or auto (XDP where it is sure to
   * work, else raw where it can, else socket).
   */
  mode?: OutputMode | undefined;
}

export const OUTPUT_MODES = ['auto', 'raw', 'socket', 'xdp'] as const;
export type OutputMode = (typeof OUTPUT_MODES)[number];

/** A validated output: where one copy of each packet of a rule goes. */
export interface Output {
  /** Destination address, unsigned 32-bit. */
  group: number;
  port: number;
  interface: string | undefined;
  /** The TTL cap (ttlFixed false) or the TTL every copy gets (ttlFixed true). */
  ttl: number;
  ttlFixed: boolean;
  /** The DSCP copies get, or undefined to keep the input's. */
  dscp: number | undefined;
  multicast: boolean;
  mode: OutputMode;
}

/** A validated rule: packets to (input interface, group, port) are re-sent to every output. */
export interface Rule {
  /** Stable: derived from the input tuple, the same on every restart and host. */
  id: string;
  name: string | undefined;
  inputInterface: string;
  /** 802.1Q VLAN id of the input frames, 0 for untagged. */
  inputVlan: number;
  /** The sender of a source-specific input, or 0 for any. */
  inputSource: number;
  inputGroup: number;
  inputPort: number;
  unicastInput: boolean;
  /** The input payload is RTP: its sequence is checked and counted (RtpCounters). */
  rtp: boolean;
  outputs: Output[];
}

export const DEFAULT_MULTICAST_TTL = 16;
export const DEFAULT_UNICAST_TTL = 64;
export const MAX_OUTPUTS_PER_RULE = 64;

/**
 * The rule id for an input tuple: "r-" and 12 hex digits of a SHA-256 over the tuple. The VLAN
 * and the source are only part of it when the rule names them, so ids of untagged any-source
 * rules stay as they always were.
 */
export function ruleIdFor(
  inputInterface: string,
  inputGroup: number,
  inputPort: number,
  inputVlan = 0,
  inputSource = 0,
): string {
  const vlan = inputVlan === 0 ? '' : `|vlan ${inputVlan}`;
  const source = inputSource === 0 ? '' : `|source ${ipv4ToString(inputSource)}`;
  const tuple = `${inputInterface}|${ipv4ToString(inputGroup)}|${inputPort}${vlan}${source}`;
  return `r-${createHash('sha256').update(tuple).digest('hex').slice(0, 12)}`;
}

/**
 * "239.2.2.2:6000:eth1", "239.2.2.2:6000:eth1:raw:fixed-ttl=4:dscp=46" — how outputs are shown
 * to operators, in the syntax they type; options appear only when they differ from the default.
 */
export function describeOutput(output: Output): string {
  const at = output.interface ? `:${output.interface}` : output.mode !== 'auto' ? ':' : '';
  const mode = output.mode === 'auto' ? '' : `:${output.mode}`;
  const defaultTtl = output.multicast ? DEFAULT_MULTICAST_TTL : DEFAULT_UNICAST_TTL;
  const ttl = output.ttlFixed
    ? `:fixed-ttl=${output.ttl}`
    : output.ttl !== defaultTtl
      ? `:ttl=${output.ttl}`
      : '';
  const dscp = output.dscp === undefined ? '' : `:dscp=${output.dscp}`;
  return `${ipv4ToString(output.group)}:${output.port}${at}${mode}${ttl}${dscp}`;
}

/** "eth0 239.1.1.1:5000", "eth0 vlan 100 239.1.1.1:5000 from 10.1.1.7". */
export function describeInput(rule: Rule): string {
  const vlan = rule.inputVlan === 0 ? '' : ` vlan ${rule.inputVlan}`;
  const source = rule.inputSource === 0 ? '' : ` from ${ipv4ToString(rule.inputSource)}`;
  return `${rule.inputInterface}${vlan} ${ipv4ToString(rule.inputGroup)}:${rule.inputPort}${source}`;
}
