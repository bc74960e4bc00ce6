import type { EventRule } from '../protocol/control-api.js';
import type { EventBus } from './event-bus.js';
import { label } from './rule-events.js';

/** How often the supervisor looks at every rule's input counter. */
export const FLOW_SAMPLE_MS = 1000;
/**
 * A flow is stopped after this long without a new input packet. Workers report their counters
 * every second, so a flowing rule's counter can look still for one sample; three seconds is
 * quick enough for a person and never fooled by that.
 */
export const FLOW_STOPPED_AFTER_MS = 3000;

/** An interval timer may fire a little early by the monotonic clock (libuv rounds to whole ms). */
const TIMER_SLACK_MS = 50;

interface FlowState {
  total: number;
  flowing: boolean;
  /** When the counter last moved (monotonic ms); undefined before the first packet. */
  movedAt: number | undefined;
}

/**
 * Tells when a stream starts or stops flowing on a rule, from the rule's input packet counter
 * sampled every FLOW_SAMPLE_MS on a monotonic clock: flow.started when it moves after standing
 * still (or for the first time), flow.stopped when it has not moved for FLOW_STOPPED_AFTER_MS.
 */
export class FlowWatch {
  private readonly bus: EventBus;
  private readonly now: () => number;
  private readonly stoppedAfterMs: number;
  private readonly flows = new Map<string, FlowState>();

  constructor(
    bus: EventBus,
    now: () => number = () => performance.now(),
    stoppedAfterMs = FLOW_STOPPED_AFTER_MS,
  ) {
    this.bus = bus;
    this.now = now;
    this.stoppedAfterMs = stoppedAfterMs;
  }

  /**
   * One look at every rule (`ids`); `packetsIn`: each rule's input packets so far (never going
   * back); `describe`: a rule for its event (only called for one).
   */
  sample(
    ids: readonly string[],
    packetsIn: (id: string) => number,
    describe: (id: string) => EventRule | undefined,
  ): void {
    const at = this.now();
    const present = new Set(ids);
    for (const id of ids) {
      const total = packetsIn(id);
      // A new rule's counter starts at zero: packets it already has are a flow starting.
      const flow = this.flows.get(id) ?? { total: 0, flowing: false, movedAt: undefined };
      this.flows.set(id, flow);
      if (total > flow.total) {
        const rule = flow.flowing ? undefined : describe(id);
        if (rule) {
          const idleSeconds = flow.movedAt === undefined ? null : seconds(at - flow.movedAt);
          this.bus.publish({
            type: 'flow.started',
            rule,
            flow: { packets: total - flow.total, idleSeconds },
            message: `${label(rule)}: packets arriving on ${rule.input} (${total - flow.total} since the last look${idleSeconds === null ? '' : `, after ${idleSeconds} s without`})`,
          });
        }
        flow.flowing = true;
        flow.total = total;
        flow.movedAt = at;
      } else if (flow.flowing && at - flow.movedAt! >= this.stoppedAfterMs - TIMER_SLACK_MS) {
        flow.flowing = false;
        const idleSeconds = seconds(at - flow.movedAt!);
        const rule = describe(id);
        if (rule)
          this.bus.publish({
            type: 'flow.stopped',
            rule,
            flow: { packets: total, idleSeconds },
            message: `${label(rule)}: no packet on ${rule.input} for ${idleSeconds} s (${total} in all)`,
          });
      }
    }
    // A rule that is gone says so itself (rule.removed).
    for (const id of this.flows.keys()) if (!present.has(id)) this.flows.delete(id);
  }
}

/**
 * Each rule's input packets summed over the workers, never going back: a worker's counters that
 * start again from zero (a new process) add what they count from there.
 */
export class InputPacketTotals {
  /** Per rule: its total, and the counter last seen from each worker (by worker id). */
  private readonly rules = new Map<string, { total: number; seen: number[] }>();

  add(worker: number, rules: Readonly<Record<string, { packetsIn: number }>>): void {
    // for…in and one map lookup per rule: this runs for every rule of every worker each second.
    for (const id in rules) {
      const now = rules[id]!.packetsIn;
      let entry = this.rules.get(id);
      if (entry === undefined) this.rules.set(id, (entry = { total: 0, seen: [] }));
      const before = entry.seen[worker] ?? 0;
      entry.seen[worker] = now;
      entry.total += now >= before ? now - before : now;
    }
  }

  get(id: string): number {
    return this.rules.get(id)?.total ?? 0;
  }

  /** A removed rule's count goes; one added again for the same input starts from zero. */
  keepOnly(ids: ReadonlySet<string>): void {
    for (const id of this.rules.keys()) if (!ids.has(id)) this.rules.delete(id);
  }
}

/** Whole seconds: the samples are a second apart, finer would be noise. */
function seconds(ms: number): number {
  return Math.round(ms / 1000);
}
