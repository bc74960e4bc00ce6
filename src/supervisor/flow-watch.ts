import type { EventRule } from '../protocol/control-api.js';
import type { EventBus } from './event-bus.js';
import { label } from './rule-events.js';

/**
 * A flow is stopped after this long without a new input packet. The supervisor samples the
 * counters once a second (its timer may fire a little early or late), so three seconds is quick
 * enough for a person and never fooled by a sample that comes just before a packet.
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
 * (kept by the supervisor across worker restarts) at each counter sample, on a monotonic clock: flow.started when it moves after standing
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

/** Whole seconds: the samples are a second apart, finer would be noise. */
function seconds(ms: number): number {
  return Math.round(ms / 1000);
}
