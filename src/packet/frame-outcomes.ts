import { DROP_REASON_COUNT, DropReason, dropReasonName } from './frame.js';

/**
 * What happened to a frame taken from a ring: one outcome code per frame. Code 0 is forwarded;
 * the parser's DropReason codes follow as they are; then the worker's own reasons.
 */
export const FORWARDED = DropReason.OK;
/** The frame did not fit its ring slot (snaplen < len). */
export const OVERSIZE = DROP_REASON_COUNT;
/** No rule for this (VLAN, group, port) on the input. */
export const NO_RULE = DROP_REASON_COUNT + 1;
/** Tagged with a VLAN that no rule of this input names. */
export const OTHER_VLAN = DROP_REASON_COUNT + 2;
/** The rule matched, but none of its outputs has sockets. */
export const NO_OUTPUT = DROP_REASON_COUNT + 3;
/** Sent from one of this host's addresses: a loop (the relay's own copies coming back). */
export const OWN_SOURCE = DROP_REASON_COUNT + 4;
/** No output could send a copy with a TTL of at least 1. */
export const TTL_EXPIRED = DROP_REASON_COUNT + 5;
/** Frames a dead worker left in a ring it shared with us: released unprocessed after a restart. */
export const WORKER_RESTART = DROP_REASON_COUNT + 6;
/** Every copy of a forwarded frame was refused by the kernel: it left the relay nowhere. */
export const EGRESS_FAILED = DROP_REASON_COUNT + 7;
/**
 * Two or more VLAN tags (QinQ), counting the one the kernel stripped. The same code as the
 * parser's (three inline tags), so one name is one reason in one bucket.
 */
export const TOO_MANY_VLAN_TAGS = DropReason.TOO_MANY_VLAN_TAGS;
export const OUTCOME_COUNT = DROP_REASON_COUNT + 8;

/** The buckets of WorkerCounters whose sum is framesSeen. */
export type Bucket =
  'forwarded' | 'noRule' | 'notIpv4Udp' | 'malformed' | 'fragments' | 'filtered' | 'unsent' | 'workerRestart';

/** Every parser reason in exactly one bucket: the type demands each name once, no more. */
const PARSER_BUCKETS: Record<Exclude<keyof typeof DropReason, 'OK'>, Bucket> = {
  NOT_IPV4: 'notIpv4Udp',
  NOT_UDP: 'notIpv4Udp',
  FRAGMENT: 'fragments',
  TRUNCATED_ETHERNET: 'malformed',
  // Policy, not damage: the relay does not take QinQ apart (see TOO_MANY_VLAN_TAGS).
  TOO_MANY_VLAN_TAGS: 'filtered',
  TRUNCATED_IPV4: 'malformed',
  BAD_IPV4_VERSION: 'malformed',
  BAD_IPV4_HEADER_LENGTH: 'malformed',
  BAD_IPV4_TOTAL_LENGTH: 'malformed',
  BAD_IPV4_CHECKSUM: 'malformed',
  TRUNCATED_UDP: 'malformed',
  BAD_UDP_LENGTH: 'malformed',
};

/** The worker's own outcomes: code, stable name (metrics, logs) and bucket. */
const WORKER_OUTCOMES: readonly (readonly [number, string, Bucket])[] = [
  [FORWARDED, 'forwarded', 'forwarded'],
  [OVERSIZE, 'oversize', 'malformed'],
  [NO_RULE, 'no_rule', 'noRule'],
  [OTHER_VLAN, 'other_vlan', 'noRule'],
  [NO_OUTPUT, 'no_output', 'noRule'],
  [OWN_SOURCE, 'own_source', 'filtered'],
  [TTL_EXPIRED, 'ttl_expired', 'filtered'],
  [EGRESS_FAILED, 'egress_failed', 'unsent'],
  [WORKER_RESTART, 'worker_restart', 'workerRestart'],
];

export interface Outcome {
  readonly name: string;
  readonly bucket: Bucket;
}

/**
 * Index: outcome code. Built once from the two lists above and checked at load: every code has
 * exactly one entry, so every counted frame is in exactly one bucket and framesSeen, the sum of
 * all outcomes, equals the sum of the buckets by construction.
 */
export const OUTCOMES: readonly Outcome[] = ((): Outcome[] => {
  const table = new Array<Outcome | undefined>(OUTCOME_COUNT);
  const put = (code: number, outcome: Outcome): void => {
    if (table[code] !== undefined) throw new Error(`outcome ${code} is listed twice`);
    table[code] = outcome;
  };
  for (const [key, bucket] of Object.entries(PARSER_BUCKETS)) {
    const code = DropReason[key as keyof typeof PARSER_BUCKETS];
    put(code, { name: dropReasonName(code), bucket });
  }
  for (const [code, name, bucket] of WORKER_OUTCOMES) put(code, { name, bucket });
  const names = new Set<string>();
  return table.map((outcome, code) => {
    if (outcome === undefined) throw new Error(`outcome ${code} has no bucket`);
    if (names.has(outcome.name)) throw new Error(`outcome name ${outcome.name} is used twice`);
    names.add(outcome.name);
    return outcome;
  });
})();
