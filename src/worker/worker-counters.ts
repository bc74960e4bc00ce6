import type { WorkerCounters } from '../protocol/control-api.js';
import { DROP_REASON_COUNT, DropReason, dropReasonName } from '../packet/frame.js';

/** Worker-level outcomes beyond the parser's reasons. */
export const OVERSIZE = DROP_REASON_COUNT; // the frame did not fit its ring slot (snaplen < len)
export const NO_RULE = DROP_REASON_COUNT + 1;
/** Frames a dead worker left in a ring it shared with us: released unprocessed after a restart. */
export const WORKER_RESTART = DROP_REASON_COUNT + 2;
const OUTCOME_COUNT = DROP_REASON_COUNT + 3;

/**
 * The worker's own counters. Every frame taken from a ring lands in exactly one outcome:
 * forwarded (it matched a rule) or one drop reason. Plain numbers in a typed array: no allocation.
 */
export class WorkerCounterSet {
  framesSeen = 0;
  forwarded = 0;
  egressErrors = 0;
  ringDrops = 0;
  /** Index: a DropReason code, OVERSIZE or NO_RULE. */
  readonly drops = new Float64Array(OUTCOME_COUNT);

  snapshot(): WorkerCounters {
    const dropsByReason: Record<string, number> = {};
    let malformed = 0;
    for (let code = 1; code < OUTCOME_COUNT; code++) {
      const n = this.drops[code]!;
      if (n > 0) dropsByReason[outcomeName(code)] = n;
      if (isMalformed(code)) malformed += n;
    }
    return {
      framesSeen: this.framesSeen,
      forwarded: this.forwarded,
      notIpv4Udp: this.drops[DropReason.NOT_IPV4]! + this.drops[DropReason.NOT_UDP]!,
      malformed,
      fragments: this.drops[DropReason.FRAGMENT]!,
      noRule: this.drops[NO_RULE]!,
      dropsByReason,
      egressErrors: this.egressErrors,
      ringDrops: this.ringDrops,
    };
  }
}

function outcomeName(code: number): string {
  if (code === OVERSIZE) return 'oversize';
  if (code === NO_RULE) return 'no_rule';
  if (code === WORKER_RESTART) return 'worker_restart';
  return dropReasonName(code);
}

function isMalformed(code: number): boolean {
  return (
    code !== DropReason.OK &&
    code !== DropReason.NOT_IPV4 &&
    code !== DropReason.NOT_UDP &&
    code !== DropReason.FRAGMENT &&
    code !== NO_RULE &&
    code !== WORKER_RESTART
  );
}
