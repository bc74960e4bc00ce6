import type { WorkerCounters } from '../protocol/control-api.js';
import { workerCountersAt } from '../protocol/counter-cells.js';
import {
  MAX_OUTCOMES,
  OUTPUT_CELLS,
  OUTPUT_TAG,
  RULE_CELLS,
  RULE_TAG,
  WORKER_CELLS,
  WORKER_EGRESS_ERRORS,
  WORKER_OUTCOMES,
  WORKER_RING_DROPS,
  outputCell,
  ruleCell,
  type CounterSlot,
} from '../protocol/counter-layout.js';
import { FORWARDED, OUTCOME_COUNT, OUTCOMES } from '../packet/frame-outcomes.js';

if (OUTCOME_COUNT > MAX_OUTCOMES)
  throw new Error(`${OUTCOME_COUNT} outcomes, the counter header has room for ${MAX_OUTCOMES}`);

/**
 * The worker's own counters, in the header of the region it shares with the supervisor (or in
 * private memory, for tests). Every frame taken from a ring lands in exactly one outcome: a count
 * in a typed array indexed by code, so counting allocates nothing.
 */
export class WorkerCounterSet {
  /** Index: an outcome code (FORWARDED, a DropReason code, OVERSIZE, NO_RULE, …). */
  readonly outcomes: Float64Array;
  private readonly cells: Float64Array;

  /** `cells`: the region's header (WORKER_CELLS cells). */
  constructor(cells: Float64Array = new Float64Array(WORKER_CELLS)) {
    this.cells = cells;
    this.outcomes = cells.subarray(WORKER_OUTCOMES, WORKER_OUTCOMES + OUTCOME_COUNT);
  }

  /** Output copies the kernel refused, all outputs together. */
  get egressErrors(): number {
    return this.cells[WORKER_EGRESS_ERRORS]!;
  }

  set egressErrors(n: number) {
    this.cells[WORKER_EGRESS_ERRORS] = n;
  }

  /** Frames the kernel dropped because a ring was full. */
  get ringDrops(): number {
    return this.cells[WORKER_RING_DROPS]!;
  }

  set ringDrops(n: number) {
    this.cells[WORKER_RING_DROPS] = n;
  }

  get forwarded(): number {
    return this.outcomes[FORWARDED]!;
  }

  get framesSeen(): number {
    let n = 0;
    for (let code = 0; code < OUTCOME_COUNT; code++) n += this.outcomes[code]!;
    return n;
  }

  /** What this worker has counted, in the operator's words (the supervisor's decoding). */
  snapshot(): WorkerCounters {
    return workerCountersAt(this.cells, OUTCOMES);
  }
}

/**
 * The region a worker counts in: its header, and the rule and output slots the supervisor gives
 * out. Taking a slot whose tag is not the one given zeroes it first (a slot freed by another rule,
 * or never used); one that carries it already (this worker's predecessor counted there, or the
 * rule comes again after a resync) is counted on.
 */
export class CounterRegion {
  readonly worker: WorkerCounterSet;
  private readonly cells: Float64Array;

  constructor(cells: Float64Array) {
    this.cells = cells;
    this.worker = new WorkerCounterSet(cells.subarray(0, WORKER_CELLS));
  }

  /** The cells of a rule's slot, taken for it. */
  takeRule(slot: CounterSlot): Float64Array {
    return this.take(ruleCell(slot.slot), RULE_CELLS, RULE_TAG, slot.tag);
  }

  /** The cells of an output's slot, taken for it. */
  takeOutput(slot: CounterSlot): Float64Array {
    return this.take(outputCell(slot.slot), OUTPUT_CELLS, OUTPUT_TAG, slot.tag);
  }

  private take(at: number, size: number, tagCell: number, tag: number): Float64Array {
    if (at < 0 || at + size > this.cells.length)
      throw new RangeError(`counter slot at cell ${at} is outside the region`);
    const cells = this.cells.subarray(at, at + size);
    if (cells[tagCell] !== tag) {
      // The counts first, then the tag: the supervisor reads a slot as this rule's only by its tag.
      cells.fill(0);
      cells[tagCell] = tag;
    }
    return cells;
  }
}
