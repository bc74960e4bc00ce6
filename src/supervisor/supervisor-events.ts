import type { Logger } from 'pino';
import type { EventClient, ParamsOf, ResultOf } from '../protocol/control-api.js';
import { EventBus } from './event-bus.js';
import type { ControlCaller } from './control-server.js';
import { FLOW_SAMPLE_MS, FlowWatch, InputPacketTotals } from './flow-watch.js';
import { InterfaceEvents } from './interface-events.js';
import type { RuleActivationView } from './rule-activation.js';
import { RuleEvents } from './rule-events.js';
import type { StoredRule } from './rule-store.js';
import { WorkerEvents } from './worker-events.js';

export interface SupervisorEventsOptions {
  log: Logger;
  /** Every rule now, and how it stands. */
  rules: () => StoredRule[];
  view: (id: string) => RuleActivationView;
  /** Each worker's latest per-rule counters (its last report), by worker id. */
  ruleCounters: () => Iterable<{ worker: number; rules: Record<string, { packetsIn: number }> }>;
}

/**
 * mcrd's events, wired to its parts: one bus, and what turns each part's changes into events
 * (rules, workers, interfaces, flows). The parts call these; nothing here changes anything.
 */
export class SupervisorEvents {
  readonly bus: EventBus;
  readonly rules: RuleEvents;
  readonly workers: WorkerEvents;
  readonly interfaces: InterfaceEvents;
  private readonly flows: FlowWatch;
  private readonly totals = new InputPacketTotals();
  private readonly ruleCounters: SupervisorEventsOptions['ruleCounters'];
  private timer: NodeJS.Timeout | undefined;

  constructor(options: SupervisorEventsOptions) {
    this.bus = new EventBus(options.log);
    this.rules = new RuleEvents({ bus: this.bus, rules: options.rules, view: options.view });
    this.workers = new WorkerEvents(this.bus);
    this.interfaces = new InterfaceEvents(this.bus);
    this.flows = new FlowWatch(this.bus);
    this.ruleCounters = options.ruleCounters;
  }

  /** mcrd is up: interface changes are news from now on, and flows are watched. */
  start(): void {
    this.interfaces.follow();
    this.timer = setInterval(() => this.sampleFlows(), FLOW_SAMPLE_MS);
    this.timer.unref();
  }

  /** events.subscribe: a stream of events to the caller. */
  subscribe(params: ParamsOf<'events.subscribe'>, caller: ControlCaller): ResultOf<'events.subscribe'> {
    const stream = caller.openStream('event');
    return this.bus.subscribe(stream, params);
  }

  stop(): void {
    clearInterval(this.timer);
    this.bus.close('mcrd is stopping');
  }

  private sampleFlows(): void {
    for (const { worker, rules } of this.ruleCounters()) this.totals.add(worker, rules);
    const ids = this.rules.ids();
    this.totals.keepOnly(new Set(ids));
    this.flows.sample(
      ids,
      (id) => this.totals.get(id),
      (id) => this.rules.describe(id),
    );
  }
}

/** The control client that made a request, for the cause of what it changes. */
export function clientOf(caller: ControlCaller): EventClient {
  return { id: caller.client, pid: caller.peer?.pid ?? null, uid: caller.peer?.uid ?? null };
}
