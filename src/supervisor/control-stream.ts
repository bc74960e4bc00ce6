import type { StreamNotifications } from '../protocol/control-api.js';

/** What a stream needs of the connection it runs on. */
export interface StreamSink {
  /** Whether one more line may be buffered now (the client keeps up). */
  canPush(): boolean;
  /** Writes one notification line. */
  push(line: string): void;
  /** The stream has ended: the connection stops counting it. */
  ended(stream: ControlStream): void;
}

/** Items a stream holds until the reply that opened it is written, before they count as lost. */
const MAX_HELD_ITEMS = 1024;

type Topic = Exclude<keyof StreamNotifications, 'stream.lost' | 'stream.end'>;
type ItemOf<T extends Topic> = Omit<StreamNotifications[T], 'stream'>;

/**
 * Notifications from mcrd to one client after a request opened them (events, a trace): each is a
 * JSON-RPC notification `{"method": TOPIC, "params": {"stream": ID, …}}`. A stream never holds
 * mcrd back: when the client does not keep up, items are counted as lost instead of buffered,
 * and the client is told how many (`stream.lost`) before the next one it gets. It ends with
 * `stream.end` (its reason), or with the connection.
 */
export class ControlStream<T extends Topic = Topic> {
  readonly id: number;
  readonly topic: T;
  private readonly sink: StreamSink;
  /** Until the opening request's reply is written, items wait here so they follow it. */
  private held: string[] | undefined = [];
  private lost = 0;
  private done = false;
  private readonly onEnd: (() => void)[] = [];

  constructor(id: number, topic: T, sink: StreamSink) {
    this.id = id;
    this.topic = topic;
    this.sink = sink;
  }

  get open(): boolean {
    return !this.done;
  }

  /** Sends one item; false when it was counted as lost (the client is behind) or the stream is over. */
  push(item: ItemOf<T>): boolean {
    if (this.done) return false;
    const line = notification(this.topic, { stream: this.id, ...item });
    if (this.held !== undefined) {
      if (this.held.length >= MAX_HELD_ITEMS) {
        this.lost++;
        return false;
      }
      this.held.push(line);
      return true;
    }
    if (!this.sink.canPush()) {
      this.lost++;
      return false;
    }
    this.reportLost();
    this.sink.push(line);
    return true;
  }

  /** Ends the stream, telling the client why; `fn`s registered with whenEnded run. */
  end(reason: string): void {
    if (this.done) return;
    this.release();
    this.done = true;
    this.sink.push(notification('stream.end', { stream: this.id, reason, lost: this.lost }));
    this.finish();
  }

  /** Runs `fn` once when the stream ends, whoever ends it (the source, the client going away). */
  whenEnded(fn: () => void): void {
    if (this.done) fn();
    else this.onEnd.push(fn);
  }

  /** The reply that opened it is written: what was held follows it. */
  release(): void {
    const held = this.held;
    if (held === undefined) return;
    this.held = undefined;
    for (const line of held) this.sink.push(line);
  }

  /** The connection is gone or the opening request failed: nothing more is sent. */
  abandon(): void {
    if (this.done) return;
    this.done = true;
    this.held = undefined;
    this.finish();
  }

  private reportLost(): void {
    if (this.lost === 0) return;
    this.sink.push(notification('stream.lost', { stream: this.id, lost: this.lost }));
    this.lost = 0;
  }

  private finish(): void {
    this.sink.ended(this);
    for (const fn of this.onEnd.splice(0)) fn();
  }
}

function notification(method: string, params: object): string {
  return `${JSON.stringify({ jsonrpc: '2.0', method, params })}\n`;
}
