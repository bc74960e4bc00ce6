import type { Logger } from 'pino';
import type { OutputCounters, RuleCounters, WorkerCounters } from '../protocol/control-api.js';
import { outputCountersAt, ruleCountersAt, workerCountersAt } from '../protocol/counter-cells.js';
import {
  LAYOUT_MAGIC,
  OUTPUT_CELLS,
  OUTPUT_SLOTS,
  OUTPUT_TAG,
  REGION_BYTES,
  REGION_CELLS,
  RULE_CELLS,
  RULE_SLOTS,
  RULE_TAG,
  WORKER_CELLS,
  outputCell,
  ruleCell,
  type CounterSlot,
} from '../protocol/counter-layout.js';
import { ControlError } from '../protocol/json-rpc.js';
import type { RuleCounterSlots } from '../protocol/worker-messages.js';
import { OUTCOMES } from '../packet/frame-outcomes.js';
import { errnoName } from '../sys/errors.js';
import { createSharedMemory, type SharedMemory } from '../sys/shared-memory.js';
import { addRuleCounters, emptyRuleCounters } from '../protocol/counters.js';

/**
 * The counters of every worker, in regions the supervisor creates and reads (counter-layout.ts):
 * one per worker id, kept for mcrd's whole life and handed to each process that holds the id, so
 * a worker that is killed, restarted or reloaded never takes its counts with it. Rule and output
 * slots are given out here, each with a tag never used before.
 *
 * A worker writes the regions and is not trusted: every cell is read through a checked copy. A
 * value that is not a whole number from 0 to 2^53, or that is lower than the last one read, is
 * not taken (the last good value stands, and the worker is named in the log once), so a counter
 * shown by mcrd never goes backwards, whatever a worker writes.
 */
export class CounterStore {
  private readonly regions: CheckedRegion[] = [];
  private readonly freeRules: number[] = [];
  private readonly freeOutputs: number[] = [];
  private nextRule = 0;
  private nextOutput = 0;
  private nextTag = 1;

  /** Creates the regions of `workers` worker ids; all or nothing. */
  constructor(workers: number, log: Logger) {
    try {
      for (let id = 0; id < workers; id++) this.regions.push(new CheckedRegion(id, log));
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** The descriptor of worker `id`'s region, to pass to each of its processes. */
  fd(id: number): number {
    return this.region(id).memory.fd;
  }

  /** Slots for a new rule and each of its outputs; all or none (E_TOO_MANY_RULES). */
  allocateRule(outputs: number): RuleCounterSlots {
    const rule = this.allocate(this.freeRules, RULE_SLOTS, 'rules', () => this.nextRule++);
    const taken: CounterSlot[] = [];
    try {
      for (let i = 0; i < outputs; i++) taken.push(this.allocateOutput());
    } catch (err) {
      this.freeRules.push(rule.slot);
      for (const slot of taken) this.freeOutput(slot);
      throw err;
    }
    return { rule, outputs: taken };
  }

  allocateOutput(): CounterSlot {
    return this.allocate(this.freeOutputs, OUTPUT_SLOTS, 'outputs', () => this.nextOutput++);
  }

  freeRule(slots: RuleCounterSlots): void {
    this.freeRules.push(slots.rule.slot);
    for (const slot of slots.outputs) this.freeOutput(slot);
  }

  freeOutput(slot: CounterSlot): void {
    this.freeOutputs.push(slot.slot);
  }

  /** Worker `id`'s own counters (every frame it took, by outcome). */
  worker(id: number): WorkerCounters {
    return this.region(id).worker();
  }

  /**
   * A rule's counters, summed over the workers (each sees part of its traffic); `rtp`: the rule
   * has the rtp option (its RTP counters are read, else null).
   */
  rule(slots: RuleCounterSlots, rtp = false): RuleCounters {
    let total: RuleCounters = emptyRuleCounters(slots.outputs.length, rtp);
    for (const region of this.regions) total = addRuleCounters(total, region.rule(slots, rtp));
    return total;
  }

  get workers(): number {
    return this.regions.length;
  }

  /** Unmaps and closes every region (mcrd stops; the workers are gone). */
  close(): void {
    for (const region of this.regions) region.memory.close();
  }

  private region(id: number): CheckedRegion {
    const region = this.regions[id];
    if (!region) throw new RangeError(`no counter region for worker ${id}`);
    return region;
  }

  private allocate(free: number[], capacity: number, what: string, next: () => number): CounterSlot {
    let slot = free.pop();
    if (slot === undefined) {
      if (this.peek(what) >= capacity)
        throw new ControlError(
          'E_TOO_MANY_RULES',
          `mcrd counts at most ${RULE_SLOTS} rules and ${OUTPUT_SLOTS} outputs at once, and all ${capacity} ${what} slots are taken: remove rules first`,
        );
      slot = next();
    }
    return { slot, tag: this.nextTag++ };
  }

  private peek(what: string): number {
    return what === 'rules' ? this.nextRule : this.nextOutput;
  }
}

/** One worker id's region and the checked copy every read goes through. */
class CheckedRegion {
  readonly memory: SharedMemory;
  private readonly live: Float64Array;
  /** The last good value of each cell read so far. */
  private readonly checked: Float64Array;
  private readonly id: number;
  private readonly log: Logger;
  private complained = false;

  constructor(id: number, log: Logger) {
    this.id = id;
    this.log = log;
    this.memory = createSharedMemory(`mcr-counters-${id}`, REGION_BYTES);
    this.live = new Float64Array(this.memory.buffer);
    this.live[0] = LAYOUT_MAGIC;
    this.checked = new Float64Array(REGION_CELLS);
  }

  worker(): WorkerCounters {
    this.take(1, WORKER_CELLS - 1);
    return workerCountersAt(this.checked, OUTCOMES);
  }

  rule(slots: RuleCounterSlots, rtp: boolean): RuleCounters {
    const at = ruleCell(slots.rule.slot);
    const outputs: OutputCounters[] = slots.outputs.map((slot) => {
      const o = outputCell(slot.slot);
      return this.takeSlot(o, OUTPUT_CELLS, OUTPUT_TAG, slot.tag)
        ? outputCountersAt(this.checked, o, errnoName)
        : emptyRuleCounters(1).outputs[0]!;
    });
    if (!this.takeSlot(at, RULE_CELLS, RULE_TAG, slots.rule.tag)) {
      return { ...emptyRuleCounters(slots.outputs.length, rtp), outputs };
    }
    return ruleCountersAt(this.checked, at, outputs, rtp);
  }

  /**
   * Whether the slot at `at` is the one tagged `tag` (the worker took it); if so, its cells are
   * taken into the checked copy. The first read under a new tag starts the copy from zero: the
   * worker zeroed the slot when it took it.
   */
  private takeSlot(at: number, size: number, tagCell: number, tag: number): boolean {
    if (this.live[at + tagCell] !== tag) return false;
    if (this.checked[at + tagCell] !== tag) {
      this.checked.fill(0, at, at + size);
      this.checked[at + tagCell] = tag;
    }
    this.take(at + tagCell + 1, size - tagCell - 1);
    return true;
  }

  /** Cells [from, from + count) into the checked copy, each only if sound. */
  private take(from: number, count: number): void {
    for (let i = from; i < from + count; i++) {
      const value = this.live[i]!;
      if (Number.isSafeInteger(value) && value >= this.checked[i]!) this.checked[i] = value;
      else if (value !== this.checked[i]) this.refused(i, value);
    }
  }

  private refused(cell: number, value: number): void {
    if (this.complained) return;
    this.complained = true;
    this.log.warn(
      { worker: this.id, cell, value, kept: this.checked[cell], code: 'E_WORKER_COUNTERS' },
      'a worker wrote a counter value that is not a count or went backwards; the last good value is kept (logged once per worker id)',
    );
  }
}
