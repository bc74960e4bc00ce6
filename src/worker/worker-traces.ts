import { MAX_TRACE_RECORDS_PER_MESSAGE, type TraceSelection } from '../protocol/trace.js';
import type { WorkerMessage } from '../protocol/worker-messages.js';
import type { InputPath } from './input-path.js';
import { InputTrace, MAX_WORKER_TRACES, TraceSession } from './input-trace.js';

/**
 * How often the worker sends what its traces recorded. Records wait at most this long; a trace's
 * buffer (TRACE_BUFFER_RECORDS) holds what a busy flow brings in the meantime.
 */
const FLUSH_INTERVAL_MS = 50;
/**
 * Messages per trace per flush at most (of MAX_TRACE_RECORDS_PER_MESSAGE records): up to 10,000
 * records a second, and a trace never fills the channel the heartbeats share (trySend: what does
 * not fit waits for the next flush).
 */
const MESSAGES_PER_FLUSH = 16;

interface Sender {
  /** Sends without waiting; false when the channel is full (tried again at the next flush). */
  trySend(message: WorkerMessage): boolean;
  /** Sends, waiting for room if it must (small, rare messages). */
  send(message: WorkerMessage): void;
}

/**
 * The traces a worker runs (trace.start, trace.stop): each is a session on the input it names,
 * recording into its own bounded buffer from the data path (input-trace.ts); a timer sends the
 * records to the supervisor in trace.records messages and, when a trace has recorded its count
 * or was stopped, says trace.ended. Nothing here runs per packet.
 */
export class WorkerTraces {
  private readonly sessions = new Map<number, TraceSession>();
  /** A message a full channel refused, per trace: sent before any newer records. */
  private readonly unsent = new Map<number, WorkerMessage>();
  private readonly inputs: ReadonlyMap<string, InputPath>;
  private readonly sender: Sender;
  private timer: NodeJS.Timeout | undefined;

  constructor(inputs: ReadonlyMap<string, InputPath>, sender: Sender) {
    this.inputs = inputs;
    this.sender = sender;
  }

  get active(): number {
    return this.sessions.size;
  }

  start(trace: number, selection: TraceSelection, count: number, dropsOnly: boolean): void {
    if (this.sessions.has(trace)) throw new Error(`trace ${trace} is running already`);
    if (this.sessions.size >= MAX_WORKER_TRACES) {
      // Said ended at once, so the supervisor does not wait for this trace to stop here.
      this.sender.send({ type: 'trace.ended', trace, reason: 'stopped' });
      throw Object.assign(new Error(`this worker runs ${MAX_WORKER_TRACES} traces already`), {
        code: 'E_TRACE_LIMIT',
      });
    }
    this.sessions.set(trace, new TraceSession(trace, selection, count, dropsOnly));
    this.follow(selection.interface);
    this.timer ??= setInterval(() => this.flush(), FLUSH_INTERVAL_MS);
  }

  /** Stops a trace at once: what it recorded and did not send yet is dropped. */
  stop(trace: number): void {
    const session = this.sessions.get(trace);
    if (session === undefined) return;
    this.end(session, 'stopped');
  }

  /** An input was attached (or handed over): the traces of its interface take its frames. */
  inputAttached(input: InputPath): void {
    this.follow(input.interfaceName);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const session of [...this.sessions.values()]) this.end(session, 'stopped', false);
  }

  /** Gives the input of `interfaceName`, if the worker has it, the sessions that name it. */
  private follow(interfaceName: string): void {
    const input = this.inputs.get(interfaceName);
    if (input === undefined) return;
    const sessions = [...this.sessions.values()].filter((s) => s.selection.interface === interfaceName);
    if (sessions.length === 0) {
      input.trace = undefined;
      return;
    }
    input.trace ??= new InputTrace(input.batchCapacity);
    input.trace.sessions = sessions;
  }

  private end(session: TraceSession, reason: 'count' | 'stopped', tell = true): void {
    this.sessions.delete(session.id);
    this.unsent.delete(session.id);
    this.follow(session.selection.interface);
    if (tell) this.sender.send({ type: 'trace.ended', trace: session.id, reason });
    if (this.sessions.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Sends each trace's records (a few messages at most), and ends the traces that are done. */
  private flush(): void {
    for (const session of [...this.sessions.values()]) {
      if (!this.sendRecords(session)) continue;
      if (session.done && session.buffer.size === 0) this.end(session, 'count');
    }
  }

  /** False when the channel is full (the rest waits for the next flush). */
  private sendRecords(session: TraceSession): boolean {
    const waiting = this.unsent.get(session.id);
    if (waiting !== undefined) {
      if (!this.sender.trySend(waiting)) return false;
      this.unsent.delete(session.id);
    }
    const buffer = session.buffer;
    for (let n = 0; n < MESSAGES_PER_FLUSH && (buffer.size > 0 || buffer.missed > 0); n++) {
      const message: WorkerMessage = {
        type: 'trace.records',
        trace: session.id,
        records: buffer.take(MAX_TRACE_RECORDS_PER_MESSAGE),
        missed: buffer.missed,
      };
      buffer.missed = 0;
      if (!this.sender.trySend(message)) {
        this.unsent.set(session.id, message);
        return false;
      }
    }
    return true;
  }
}
