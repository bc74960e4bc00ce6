import type { Logger } from 'pino';
import type { EventClient, ParamsOf, ResultOf } from '../protocol/control-api.js';
import { EventBus } from './event-bus.js';
import type { ControlCaller } from './control-server.js';
import { FlowWatch } from './flow-watch.js';
import { InterfaceEvents } from './interface-events.js';
import type { RuleActivationView } from './rule-state.js';
import { RuleEvents } from './rule-events.js';
import type { StoredRule } from './rule-store.js';
import { WorkerEvents } from './worker-events.js';

export interface SupervisorEventsOptions {
  log: Logger;
  /** Every rule now, and how it stands. */
  rules: () => StoredRule[];
  view: (id: string) => RuleActivationView;
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

  constructor(options: SupervisorEventsOptions) {
    this.bus = new EventBus(options.log);
    this.rules = new RuleEvents({ bus: this.bus, rules: options.rules, view: options.view });
    this.workers = new WorkerEvents(this.bus);
    this.interfaces = new InterfaceEvents(this.bus);
    this.flows = new FlowWatch(this.bus);
  }

  /** mcrd is up: interface changes are news from now on. */
  start(): void {
    this.interfaces.follow();
  }

  /**
   * The supervisor sampled the counters (every FLOW_SAMPLE_MS): each rule's input packets, kept
   * across worker restarts, tell whether its stream flows.
   */
  sampled(rules: ReadonlyMap<string, { packetsIn: number }>): void {
    this.flows.sample(
      this.rules.ids(),
      (id) => rules.get(id)?.packetsIn ?? 0,
      (id) => this.rules.describe(id),
    );
  }

  /** events.subscribe: a stream of events to the caller. */
  subscribe(params: ParamsOf<'events.subscribe'>, caller: ControlCaller): ResultOf<'events.subscribe'> {
    const stream = caller.openStream('event');
    return this.bus.subscribe(stream, params);
  }

  stop(): void {
    this.bus.close('mcrd is stopping');
  }
}

/** The control client that made a request, for the cause of what it changes. */
export function clientOf(caller: ControlCaller): EventClient {
  return { id: caller.client, pid: caller.peer?.pid ?? null, uid: caller.peer?.uid ?? null };
}
