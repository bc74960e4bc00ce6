import type { SupervisorMessage, WorkerMessage } from '../protocol/worker-messages.js';

/**
 * What one worker process may say, and when: the order of the conversation, on top of the shape
 * of each message (worker-message-schema.ts). A worker says `ready` once, first, with its own pid;
 * `fatal` only before that; it answers only heartbeats that were sent to it,
 * each once, in the order they were sent (the channel keeps order and the worker answers each as
 * it reads it). A message that breaks this is refused with the reason, and the supervisor
 * replaces the worker: it is broken or compromised either way.
 *
 * Traces: a worker sends records only for a trace it was asked to run, no more in all than the
 * count it was asked for, and nothing after it said the trace ended.
 *
 * Inputs: a worker says it handed an input over only as often as it was given a new socket for
 * an input it already had (input.attach again, before input.detach).
 *
 * Numbers are counted, not remembered one by one, so a worker cannot make this grow (the traces
 * remembered are those the supervisor started, at most MAX_TRACES_REMEMBERED; the inputs, those
 * the supervisor gave).
 */
/** Traces remembered per worker: far more than run at once (an honest worker ends each one). */
const MAX_TRACES_REMEMBERED = 64;

export class WorkerConversation {
  private readonly pid: number | null;
  private ready = false;
  private heartbeatsSent = 0;
  private heartbeatsAnswered = 0;
  /** Traces this worker was asked to run and has not said ended: records it may still send. */
  private readonly traces = new Map<number, number>();
  /** Inputs this worker was given, and the handovers of each it has not reported yet. */
  private readonly inputs = new Map<string, number>();

  /** `pid`: the process id the worker must report (null if the spawn gave none). */
  constructor(pid: number | null) {
    this.pid = pid;
  }

  get isReady(): boolean {
    return this.ready;
  }

  /** The next heartbeat's sequence number, counted as asked. */
  nextHeartbeat(): number {
    return ++this.heartbeatsSent;
  }

  /** The worker is asked to run trace `id` and record at most `count` frames. */
  traceStarted(id: number, count: number): void {
    this.traces.set(id, count);
    if (this.traces.size > MAX_TRACES_REMEMBERED) this.traces.delete(this.traces.keys().next().value!);
  }

  /** What the supervisor commands that the worker answers later (its inputs, for input.handedOver). */
  commanded(message: SupervisorMessage): void {
    if (message.type === 'input.attach') {
      const handovers = this.inputs.get(message.interface);
      this.inputs.set(message.interface, handovers === undefined ? 0 : handovers + 1);
    } else if (message.type === 'input.detach') this.inputs.delete(message.interface);
  }

  /** Undefined when the message is in order (and takes it into account), else why it is not. */
  accept(message: WorkerMessage): string | undefined {
    if (message.type === 'ready') {
      if (this.ready) return 'said ready a second time';
      if (this.pid !== null && message.pid !== this.pid)
        return `said ready with pid ${message.pid}, but its pid is ${this.pid}`;
      this.ready = true;
      return undefined;
    }
    if (message.type === 'fatal') return this.ready ? 'sent fatal after it said ready' : undefined;
    if (!this.ready) return `sent ${message.type} before it said ready`;
    switch (message.type) {
      case 'heartbeat':
        if (message.seq <= this.heartbeatsAnswered || message.seq > this.heartbeatsSent) {
          return `answered heartbeat ${message.seq}, but the heartbeats waiting for an answer are ${range(this.heartbeatsAnswered, this.heartbeatsSent)}`;
        }
        this.heartbeatsAnswered = message.seq;
        return undefined;
      case 'health': // on the worker's own timer
      case 'error':
        return undefined;
      case 'trace.records': {
        const left = this.traces.get(message.trace);
        if (left === undefined) return `sent records for trace ${message.trace}, which it is not running`;
        if (message.records.length > left)
          return `sent ${message.records.length} records for trace ${message.trace}, but only ${left} more were asked for`;
        this.traces.set(message.trace, left - message.records.length);
        return undefined;
      }
      case 'trace.ended':
        if (!this.traces.delete(message.trace))
          return `said trace ${message.trace} ended, which it is not running`;
        return undefined;
      case 'input.handedOver': {
        const handovers = this.inputs.get(message.interface);
        if (!handovers) return `said it handed input ${message.interface} over, which it was not asked to`;
        this.inputs.set(message.interface, handovers - 1);
        return undefined;
      }
    }
  }
}

function range(answered: number, sent: number): string {
  if (sent === answered) return 'none';
  return sent === answered + 1 ? String(sent) : `${answered + 1}-${sent}`;
}
