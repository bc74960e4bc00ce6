/**
 * The maps the ingress and egress programs share with mcrd, and the byte layout of their keys
 * and values. Pure: what the programs read and write is laid out here once, and both the
 * program generators and XdpInput use these offsets.
 *
 *   rules          HASH           RuleKey → RuleValue      which (group, port, VLAN) is offloaded
 *   output_sets    ARRAY_OF_MAPS  output set → DEVMAP      each rule's outputs, one devmap each
 *   outputs        HASH           OutputKey → OutputValue  each output's header fields
 *   link_copies    PERCPU_HASH    ifindex → LinkCopies     which copy of a frame a link is at
 *   rule_counts    PERCPU_ARRAY   rule slot → RuleCounts
 *   output_counts  PERCPU_ARRAY   output slot → OutputCounts
 *   sent_log       PERCPU_ARRAY   0 → SentLog              the copies of the bulk being sent
 *   host_addresses HASH           IPv4 address → u32       frames from these are loops (own_source)
 *
 * A rule's outputs are an output set: a devmap (one entry per output, each its link and the
 * egress program) and the outputs' fields keyed by (set, link, copy). Copy c on a link is the
 * c-th entry of the devmap with that link: the broadcast clones in key order, and the egress
 * program counts the clones of one frame per link (link_copies). The ingress program tells it
 * which frame and set a clone belongs to in 8 bytes of XDP metadata (FrameMeta). A rule update
 * builds a new set and switches the rule to it in one map update.
 *
 * Numbers are in host byte order unless they are copied from the packet as they are (the group
 * and port of a key, in network order, so the program stores them without swapping).
 */

/** Offloaded rules one input interface can hold. */
export const MAX_RULES = 1024;
/** Output sets: a rule's current one, and a new one while an update switches over. */
export const MAX_OUTPUT_SETS = 2 * MAX_RULES;
/** Output links (interfaces) over all rules of one input interface. */
export const MAX_LINKS = 256;
/** Outputs over all rules of one input interface. */
export const MAX_OUTPUTS = 4096;
/** Outputs per rule (rules.ts MAX_OUTPUTS_PER_RULE), the most slots a rule's devmap has. */
export const RULE_DEVMAP_SLOTS = 64;
export const MAX_HOST_ADDRESSES = 256;

/** Rule key: group (4, network order), UDP port (2, network order), VLAN id (2, host order). */
export const RULE_KEY_SIZE = 8;
export const RULE_KEY_GROUP = 0;
export const RULE_KEY_PORT = 4;
export const RULE_KEY_VLAN = 6;

/**
 * Rule value: its slot (u32), its output count (u16), the lowest input TTL relayed (u8), its
 * output set (u32).
 */
export const RULE_VALUE_SIZE = 12;
export const RULE_VALUE_SLOT = 0;
export const RULE_VALUE_OUTPUTS = 4;
export const RULE_VALUE_MIN_TTL = 6;
export const RULE_VALUE_OUTPUT_SET = 8;

/** XDP metadata in front of a relayed frame: its output set and a per-CPU frame number. */
export const FRAME_META_SIZE = 8;
export const FRAME_META_OUTPUT_SET = 0;
export const FRAME_META_FRAME = 4;

/** Output key: output set, link ifindex, copy on that link (u32 each). */
export const OUTPUT_KEY_SIZE = 12;

/** Link copies (per CPU): the output set and frame of the last clone seen, and its copy number. */
export const LINK_COPIES_SIZE = 12;
export const LINK_COPIES_OUTPUT_SET = 0;
export const LINK_COPIES_FRAME = 4;
export const LINK_COPIES_COPY = 8;

/** Per-CPU rule counters, u64 each; the worker path's names (counter-layout.ts RULE_*). */
export const RULE_COUNTS_SIZE = 40;
export const RULE_COUNT_PACKETS = 0;
export const RULE_COUNT_BYTES = 8;
export const RULE_COUNT_OWN_SOURCE = 16;
export const RULE_COUNT_TTL_EXPIRED = 24;
export const RULE_COUNT_NO_OUTPUT = 32;

/** Per-CPU output counters, u64 each (counter-layout.ts OUTPUT_*). */
export const OUTPUT_COUNTS_SIZE = 40;
export const OUTPUT_COUNT_PACKETS = 0;
export const OUTPUT_COUNT_BYTES = 8;
export const OUTPUT_COUNT_TTL_EXPIRED = 16;
export const OUTPUT_COUNT_REFUSED = 24;
export const OUTPUT_COUNT_REFUSED_BYTES = 32;

/**
 * The sent log (per CPU): the copies the egress program passed since the last bulk was handed to
 * a driver, in order (u32 count, then a u32 per copy: its counter slot in the low 16 bits, its
 * UDP payload bytes in the high 16; slots are below MAX_OUTPUTS). The kernel sends a
 * device's queued frames at most DEV_MAP_BULK_SIZE (16) at a time, running the egress program
 * on each just before, so the log never holds more than one bulk.
 */
export const SENT_LOG_ENTRIES = 16;
export const SENT_LOG_COUNT = 0;
export const SENT_LOG_SLOTS = 4;
export const SENT_LOG_SIZE = SENT_LOG_SLOTS + 4 * SENT_LOG_ENTRIES;
export const SENT_LOG_BYTES_SHIFT = 16;

/** The input tuple a rule matches: group and port in host numbers, VLAN 0 for untagged. */
export interface RuleKey {
  group: number;
  port: number;
  vlan: number;
}

export interface RuleCounts {
  /** Matched frames and their UDP payload bytes, as the worker path counts packetsIn/bytesIn. */
  packets: number;
  bytes: number;
  ownSource: number;
  ttlExpired: number;
  noOutput: number;
}

export interface OutputCounts {
  /** Copies the egress program handed to the driver, and their UDP payload bytes. */
  packets: number;
  bytes: number;
  ttlExpired: number;
  /** Of the copies in `packets`, those the driver then did not take (its ndo_xdp_xmit), and their bytes. */
  refused: number;
  refusedBytes: number;
}

function checkUint(what: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${what} must be an integer 0..${max}, got ${value}`);
  }
}

export function encodeRuleKey(key: RuleKey): Uint8Array {
  checkUint('group', key.group, 0xffffffff);
  checkUint('port', key.port, 0xffff);
  checkUint('vlan', key.vlan, 0xfff);
  const bytes = new Uint8Array(RULE_KEY_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint32(RULE_KEY_GROUP, key.group, false);
  view.setUint16(RULE_KEY_PORT, key.port, false);
  view.setUint16(RULE_KEY_VLAN, key.vlan, true);
  return bytes;
}

export function decodeRuleKey(bytes: Uint8Array): RuleKey {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    group: view.getUint32(RULE_KEY_GROUP, false),
    port: view.getUint16(RULE_KEY_PORT, false),
    vlan: view.getUint16(RULE_KEY_VLAN, true),
  };
}

/** A text form of a key, for Map keys and messages: "239.1.1.1:5000" or "…:5000 vlan 10". */
export function ruleKeyText(key: RuleKey): string {
  const g = key.group;
  const group = `${g >>> 24}.${(g >>> 16) & 0xff}.${(g >>> 8) & 0xff}.${g & 0xff}`;
  return `${group}:${key.port}${key.vlan === 0 ? '' : ` vlan ${key.vlan}`}`;
}

export interface RuleValue {
  slot: number;
  outputs: number;
  /** Input frames with a lower TTL give no output a copy (ttl_expired at the input). */
  minTtl: number;
  outputSet: number;
}

export function encodeRuleValue(value: RuleValue): Uint8Array {
  checkUint('slot', value.slot, MAX_RULES - 1);
  checkUint('outputs', value.outputs, RULE_DEVMAP_SLOTS);
  checkUint('minTtl', value.minTtl, 0xff);
  checkUint('outputSet', value.outputSet, MAX_OUTPUT_SETS - 1);
  const bytes = new Uint8Array(RULE_VALUE_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint32(RULE_VALUE_SLOT, value.slot, true);
  view.setUint16(RULE_VALUE_OUTPUTS, value.outputs, true);
  view.setUint8(RULE_VALUE_MIN_TTL, value.minTtl);
  view.setUint32(RULE_VALUE_OUTPUT_SET, value.outputSet, true);
  return bytes;
}

export function decodeRuleValue(bytes: Uint8Array): RuleValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    slot: view.getUint32(RULE_VALUE_SLOT, true),
    outputs: view.getUint16(RULE_VALUE_OUTPUTS, true),
    minTtl: view.getUint8(RULE_VALUE_MIN_TTL),
    outputSet: view.getUint32(RULE_VALUE_OUTPUT_SET, true),
  };
}

/** Where one copy of a rule's frames goes: its output set, its link, its number on that link. */
export interface OutputKey {
  outputSet: number;
  ifindex: number;
  copy: number;
}

export function encodeOutputKey(key: OutputKey): Uint8Array {
  checkUint('outputSet', key.outputSet, MAX_OUTPUT_SETS - 1);
  checkUint('ifindex', key.ifindex, 0x7fffffff);
  checkUint('copy', key.copy, RULE_DEVMAP_SLOTS - 1);
  const bytes = new Uint8Array(OUTPUT_KEY_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, key.outputSet, true);
  view.setUint32(4, key.ifindex, true);
  view.setUint32(8, key.copy, true);
  return bytes;
}

/**
 * The copy number of each output of a rule: how many outputs before it in the list leave by the
 * same link (the devmap holds them in list order).
 */
export function copyNumbers(ifindexes: readonly number[]): number[] {
  const seen = new Map<number, number>();
  return ifindexes.map((ifindex) => {
    const copy = seen.get(ifindex) ?? 0;
    seen.set(ifindex, copy + 1);
    return copy;
  });
}

/**
 * The lowest input TTL a rule relays: a copy gets min(TTL − 1, cap) unless its output has a
 * fixed TTL, and a copy whose TTL would be 0 is not sent; so with no fixed-TTL output, frames
 * with TTL 0 or 1 give no copy at all and the ingress program drops them without cloning.
 */
export function minimumInputTtl(outputs: readonly { ttlFixed: boolean }[]): number {
  return outputs.some((o) => o.ttlFixed) ? 0 : 2;
}

/** An IPv4 address as a host-address map key: the 4 bytes in network order. */
export function encodeAddressKey(address: number): Uint8Array {
  checkUint('address', address, 0xffffffff);
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, address, false);
  return bytes;
}

/** Sums a per-CPU value's u64 fields (each CPU's copy) into numbers (exact below 2^53). */
function sumField(perCpu: readonly Uint8Array[], at: number): number {
  let total = 0n;
  for (const value of perCpu) total += new DataView(value.buffer, value.byteOffset).getBigUint64(at, true);
  return Number(total);
}

export function sumRuleCounts(perCpu: readonly Uint8Array[]): RuleCounts {
  return {
    packets: sumField(perCpu, RULE_COUNT_PACKETS),
    bytes: sumField(perCpu, RULE_COUNT_BYTES),
    ownSource: sumField(perCpu, RULE_COUNT_OWN_SOURCE),
    ttlExpired: sumField(perCpu, RULE_COUNT_TTL_EXPIRED),
    noOutput: sumField(perCpu, RULE_COUNT_NO_OUTPUT),
  };
}

export function sumOutputCounts(perCpu: readonly Uint8Array[]): OutputCounts {
  return {
    packets: sumField(perCpu, OUTPUT_COUNT_PACKETS),
    bytes: sumField(perCpu, OUTPUT_COUNT_BYTES),
    ttlExpired: sumField(perCpu, OUTPUT_COUNT_TTL_EXPIRED),
    refused: sumField(perCpu, OUTPUT_COUNT_REFUSED),
    refusedBytes: sumField(perCpu, OUTPUT_COUNT_REFUSED_BYTES),
  };
}
