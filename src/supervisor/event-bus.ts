import type { Logger } from 'pino';
import type { McrEvent, McrEventType } from '../protocol/control-api.js';
import { ControlError } from '../protocol/json-rpc.js';
import type { ControlStream } from './control-stream.js';

/** Events kept for `events.subscribe {last: N}`: what just happened, for whoever looks now. */
export const EVENTS_KEPT = 1000;
/** Clients following the events at once; each costs a bounded buffer in mcrd (control-stream.ts). */
export const MAX_EVENT_SUBSCRIBERS = 16;

/** Every type, for filters and the docs. */
export const EVENT_TYPES: readonly McrEventType[] = [
  'rule.added',
  'rule.removed',
  'rule.updated',
  'rule.state',
  'config.applied',
  'worker.started',
  'worker.exited',
  'worker.restarted',
  'worker.resynced',
  'interface.appeared',
  'interface.vanished',
  'interface.up',
  'interface.down',
  'interface.address',
  'interface.mtu',
  'flow.started',
  'flow.stopped',
];

/** An event before the bus numbers and stamps it; sections that do not apply may be left out. */
export type EventDraft = Pick<McrEvent, 'type' | 'message'> &
  Partial<Pick<McrEvent, 'cause' | 'rule' | 'worker' | 'interface' | 'flow' | 'config'>>;

type Level = 'info' | 'warn' | 'error';

/** Where a subscriber's events go: a control stream (or a test's stand-in). */
export type EventStream = Pick<ControlStream<'event'>, 'id' | 'push' | 'whenEnded' | 'end'>;

interface Subscriber {
  stream: EventStream;
  accepts: (type: McrEventType) => boolean;
}

/**
 * mcrd's events: each is numbered, stamped, logged once (the log line's `event` field is the
 * object subscribers get) and pushed to every subscriber that asked for its type. A subscriber
 * that does not keep up loses events, counted by its stream (stream.lost): publishing never
 * waits. The last EVENTS_KEPT are kept, for a subscriber that asks what just happened.
 */
export class EventBus {
  private readonly log: Logger;
  private readonly clock: () => Date;
  private readonly subscribers = new Set<Subscriber>();
  private readonly kept: McrEvent[] = [];
  private seq = 0;

  constructor(log: Logger, clock: () => Date = () => new Date()) {
    this.log = log;
    this.clock = clock;
  }

  publish(draft: EventDraft): McrEvent {
    const event: McrEvent = {
      seq: ++this.seq,
      time: this.clock().toISOString(),
      type: draft.type,
      cause: draft.cause ?? null,
      rule: draft.rule ?? null,
      worker: draft.worker ?? null,
      interface: draft.interface ?? null,
      flow: draft.flow ?? null,
      config: draft.config ?? null,
      message: draft.message,
    };
    this.kept.push(event);
    if (this.kept.length > EVENTS_KEPT) this.kept.shift();
    // The line reads as mcrctl events prints it; its `event` field is the object itself.
    this.log[levelOf(event)]({ event }, `${event.type} ${event.message}`);
    for (const subscriber of this.subscribers) {
      if (subscriber.accepts(event.type)) subscriber.stream.push({ event });
    }
    return event;
  }

  /**
   * A client follows the events of `types` (a type, or a family such as `rule`; all when none
   * is given) on `stream`, after the last `last` kept ones of those types.
   */
  subscribe(
    stream: EventStream,
    params: { types?: string[]; last?: number },
  ): { stream: number; replayed: number; seq: number } {
    if (this.subscribers.size >= MAX_EVENT_SUBSCRIBERS) {
      throw new ControlError(
        'E_TOO_MANY_SUBSCRIBERS',
        `${MAX_EVENT_SUBSCRIBERS} clients already follow mcrd's events, its limit; end one (each is an mcrctl events), or read the same events from mcrd's log`,
      );
    }
    const accepts = typeFilter(params.types ?? []);
    const replay = params.last ? this.kept.filter((e) => accepts(e.type)).slice(-params.last) : [];
    for (const event of replay) stream.push({ event });
    const subscriber: Subscriber = { stream, accepts };
    this.subscribers.add(subscriber);
    stream.whenEnded(() => this.subscribers.delete(subscriber));
    return { stream: stream.id, replayed: replay.length, seq: this.seq };
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** mcrd is stopping: every stream ends, saying so. */
  close(reason: string): void {
    for (const subscriber of [...this.subscribers]) subscriber.stream.end(reason);
    this.subscribers.clear();
  }
}

/** Which types a list of names selects: exact types, or families (`rule` for every rule.*). */
export function typeFilter(names: readonly string[]): (type: McrEventType) => boolean {
  if (names.length === 0) return () => true;
  const families = new Set(EVENT_TYPES.map((t) => t.split('.')[0]!));
  for (const name of names) {
    if (!EVENT_TYPES.includes(name as McrEventType) && !families.has(name)) {
      throw new ControlError(
        'E_UNKNOWN_EVENT_TYPE',
        `${name} is not an event type: use one of ${[...families].join(', ')} (a whole family) or ${EVENT_TYPES.join(', ')}`,
        { field: 'types', value: name },
      );
    }
  }
  const wanted = new Set(names);
  return (type) => wanted.has(type) || wanted.has(type.split('.')[0]!);
}

/** What deserves a second look in the log: something stopped working. */
function levelOf(event: McrEvent): Level {
  switch (event.type) {
    case 'worker.exited':
      return 'error';
    case 'interface.down':
    case 'interface.vanished':
      return 'warn';
    case 'worker.resynced':
      // Drift is a fault; catching up after a burst of rule changes is the design working.
      return event.worker?.resync === 'drift' ? 'warn' : 'info';
    case 'rule.state':
      return event.rule?.state === 'active' ? 'info' : 'warn';
    default:
      return 'info';
  }
}
