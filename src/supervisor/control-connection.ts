import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { MAX_LINE_BYTES, RPC_INVALID_REQUEST } from '../protocol/json-rpc.js';
import { LineSplitter } from '../protocol/line-splitter.js';
import { duration, type ControlLimits } from './control-limits.js';
import { ControlStream, type StreamSink } from './control-stream.js';
import { controlPeer } from './control-peer.js';
import type { PeerCredentials } from '../sys/peer-credentials.js';

/** The reply to one request line, serialised with its newline; none for a notification. */
export type Reply = string | undefined;

/** What a connection needs from its server. */
export interface ConnectionHost {
  readonly limits: ControlLimits;
  readonly log: Logger;
  /**
   * Answers one request line; never throws nor rejects (a failure is an error reply). A method
   * may open streams on `connection` while it answers.
   */
  answer(line: string, connection: ControlConnection): Reply | Promise<Reply>;
  /** A number for a new stream, unique on this server. */
  nextStreamId(): number;
  /** The connection has a request it can answer now: give it a turn. */
  ready(connection: ControlConnection): void;
  /** The socket is closed. */
  closed(connection: ControlConnection): void;
  /** An error reply that carries no request id, with its newline. */
  notice(code: string, message: string, rpcCode?: number): string;
}

/** What a connection holds, for ControlServer.usage(). */
export interface ConnectionUsage {
  streams: number;
  queuedRequests: number;
  queuedRequestBytes: number;
  partialBytes: number;
  replyBytes: number;
}

/**
 * One client of the control socket. It frames the client's lines, queues its requests and
 * answers them in order, one per turn the server gives it. It stops reading while it has enough
 * queued or while its replies are not drained, so a client that floods or never reads costs a
 * bounded amount. It closes the connection, after an error reply saying why when the client can
 * take one, when a line stalls half-sent or runs over the size limit, or when replies stop draining.
 */
export class ControlConnection {
  readonly socket: Socket;
  /** For the logs. */
  readonly id: number;
  /** The process that connected, as the kernel recorded it (null if it did not say). */
  readonly peer: PeerCredentials | null;
  private readonly host: ConnectionHost;
  private readonly limits: ControlLimits;
  private readonly lines = new LineSplitter(MAX_LINE_BYTES);
  private queue: string[] = [];
  private head = 0;
  private queuedBytes = 0;
  /** A request's method is running (it returned a promise); the next one waits, to keep order. */
  private busy = false;
  /** When the reply buffer reached its limit (no more answers until 'drain'); undefined below it. */
  private blockedSince: number | undefined;
  /** Replies not yet handed to the kernel, and when one last was (or the first of them queued). */
  private unflushed = 0;
  private lastFlushed = 0;
  private paused = false;
  /**
   * open: reading and answering. finishing: reads nothing more, answers what is queued, then
   * closes with `parting`. closing: the last reply is written, the socket ends. closed.
   */
  private state: 'open' | 'finishing' | 'closing' | 'closed' = 'open';
  private parting: string | undefined;
  /** When the client last sent a byte, and last sent or was sent anything. */
  private lastHeard: number;
  private lastActive: number;
  private lineTimer: NodeJS.Timeout | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  /** Streams open on this connection, and those opened by the request being answered. */
  private readonly streams = new Set<ControlStream>();
  private opening: ControlStream[] = [];
  private readonly sink: StreamSink = {
    canPush: () => this.canPush(),
    push: (line) => this.sendLine(line),
    ended: (stream) => this.streamEnded(stream),
  };

  constructor(socket: Socket, id: number, host: ConnectionHost) {
    this.socket = socket;
    this.id = id;
    this.peer = controlPeer(socket);
    this.host = host;
    this.limits = host.limits;
    this.lastHeard = this.lastActive = Date.now();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.received(chunk));
    socket.on('end', () => this.inputEnded());
    socket.on('drain', () => this.drained());
    socket.on('error', (err: NodeJS.ErrnoException) => this.failed(err));
    socket.on('close', () => this.gone());
  }

  get closing(): boolean {
    return this.state === 'closing' || this.state === 'closed';
  }

  /** Being closed after an error reply: it goes within the linger time anyway. */
  get lingering(): boolean {
    return this.state === 'closing' && this.lingerTimer !== undefined;
  }

  /** How long it has been stuck, mid-line with nothing more coming or with replies not drained. */
  stalledFor(now: number): number | undefined {
    if (this.state === 'closed') return undefined;
    if (this.unflushed > 0) return now - this.lastFlushed;
    if (this.closing) return undefined;
    if (this.lines.partialBytes > 0 && !this.paused && !this.busy) return now - this.lastHeard;
    return undefined;
  }

  /** What stalledFor measures, in words for the client it is closed on. */
  get stall(): string {
    return this.unflushed > 0 ? 'left its replies unread' : 'stalled mid-request';
  }

  /** How long it has been idle: nothing half-sent, nothing to answer, no reply pending, no stream. */
  idleFor(now: number): number | undefined {
    const idle =
      this.state === 'open' &&
      this.streams.size === 0 &&
      this.lines.partialBytes === 0 &&
      this.head >= this.queue.length &&
      !this.busy &&
      this.unflushed === 0;
    return idle ? now - this.lastActive : undefined;
  }

  /**
   * Opens a stream of notifications to this client (for the request being answered: its items
   * follow that request's reply). It ends when its source ends it or the connection goes.
   */
  openStream<T extends ControlStream['topic']>(topic: T): ControlStream<T> {
    const stream = new ControlStream(this.host.nextStreamId(), topic, this.sink);
    this.streams.add(stream);
    this.opening.push(stream);
    return stream;
  }

  usage(): ConnectionUsage {
    return {
      streams: this.streams.size,
      queuedRequests: this.queue.length - this.head,
      queuedRequestBytes: this.queuedBytes,
      partialBytes: this.lines.partialBytes,
      replyBytes: this.socket.writableLength,
    };
  }

  /**
   * Answers the next queued request, if it may now. True when it may answer another one at once
   * (the server gives it another turn after the other clients).
   */
  step(): boolean {
    if (!this.canStep()) return false;
    const line = this.queue[this.head]!;
    this.head++;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    }
    this.queuedBytes -= line.length;
    const reply = this.host.answer(line, this);
    if (typeof reply === 'object') {
      this.busy = true;
      void reply.then(
        (r) => {
          this.busy = false;
          this.send(r);
          this.answered();
          if (this.canStep()) this.host.ready(this);
        },
        (err: unknown) => {
          // The server's answer() turns every failure into a reply; this is a bug, but the
          // connection must not hang on it.
          this.host.log.error({ client: this.id, err }, 'a control request failed without a reply');
          this.close(this.host.notice('E_INTERNAL', 'internal error: a request failed without a reply'));
        },
      );
      return false;
    }
    this.send(reply);
    this.answered();
    return this.canStep();
  }

  /** Closes it to make room for a new client, with `why` as its last line. */
  shed(why: string): void {
    if (this.closing) this.destroy();
    else this.close(this.host.notice('E_CLIENT_SHED', why));
  }

  /** Tears it down at once (the server is stopping, or a closing one must make room). */
  destroy(): void {
    this.state = 'closing';
    this.abandonStreams();
    this.socket.destroy();
  }

  private canStep(): boolean {
    return (
      (this.state === 'open' || this.state === 'finishing') &&
      !this.busy &&
      this.blockedSince === undefined &&
      this.head < this.queue.length
    );
  }

  private received(chunk: string): void {
    // A chunk Node had read before the connection stopped reading: the client is being closed.
    if (this.state !== 'open') return;
    this.lastHeard = this.lastActive = Date.now();
    const { lines, overflow } = this.lines.take(chunk);
    for (const line of lines) {
      this.queue.push(line);
      this.queuedBytes += line.length;
    }
    if (overflow) {
      this.host.log.info({ client: this.id }, 'control client sent a line over the limit; closing it');
      // The stream can no longer be framed: what came before is answered, then one error, then close.
      this.finish(
        this.host.notice(
          'E_TOO_LARGE',
          `request line longer than ${MAX_LINE_BYTES} bytes: a request is one JSON object on one line; closing the connection`,
          RPC_INVALID_REQUEST,
        ),
      );
      return;
    }
    // A line ended here, so the one now begun, if any, gets the whole deadline.
    this.flow(chunk.lastIndexOf('\n') !== -1);
    if (this.canStep()) this.host.ready(this);
  }

  /** Reads while it has room for more requests and its replies drain; times the half-sent line. */
  private flow(lineEnded = false): void {
    const read =
      this.state === 'open' &&
      this.blockedSince === undefined &&
      this.queue.length - this.head < this.limits.maxQueuedRequests &&
      this.queuedBytes < this.limits.maxQueuedBytes;
    if (read && this.paused) {
      this.paused = false;
      this.socket.resume();
    } else if (!read && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    // The clock runs only while mcrd reads: a line it has stopped reading is not the client's delay.
    const timing = read && this.lines.partialBytes > 0;
    if (this.lineTimer !== undefined && (!timing || lineEnded)) {
      clearTimeout(this.lineTimer);
      this.lineTimer = undefined;
    }
    if (timing && this.lineTimer === undefined) {
      this.lineTimer = setTimeout(() => this.lineTimedOut(), this.limits.lineDeadlineMs);
    }
  }

  private lineTimedOut(): void {
    this.lineTimer = undefined;
    const ms = this.limits.lineDeadlineMs;
    this.host.log.info(
      { client: this.id, partialBytes: this.lines.partialBytes },
      'control client sent part of a request line and stalled; closing it',
    );
    this.close(
      this.host.notice(
        'E_LINE_TIMEOUT',
        `request incomplete: no end of line within ${duration(ms)} of its first byte; send each request as one JSON object followed by a newline`,
      ),
    );
  }

  private send(reply: Reply): void {
    this.sendLine(reply);
    // The streams this request opened start after its reply (a notification has none).
    for (const stream of this.opening.splice(0)) stream.release();
  }

  private sendLine(reply: Reply): void {
    if (reply === undefined || this.closing) return;
    const now = Date.now();
    this.lastActive = now;
    if (this.unflushed++ === 0) {
      this.lastFlushed = now;
      this.stallTimer ??= setTimeout(() => this.replyStalled(), this.limits.replyStallMs);
    }
    if (!this.socket.write(reply, this.flushed)) this.blockedSince ??= now;
  }

  /** A reply reached the kernel: progress, whatever the client's pace. */
  private readonly flushed = (): void => {
    this.unflushed--;
    this.lastFlushed = Date.now();
  };

  private answered(): void {
    if (this.state === 'finishing' && this.head >= this.queue.length && !this.busy) {
      // A client that closed its side is gone as far as anyone can tell (a peer that shut down
      // writing and one that exited look alike until a write fails): its streams end here.
      for (const stream of [...this.streams]) stream.end('the client closed the connection');
      if (this.parting === undefined) this.end();
      else this.close(this.parting);
    } else this.flow();
  }

  private drained(): void {
    if (this.blockedSince === undefined) return;
    this.blockedSince = undefined;
    this.answered();
    if (this.canStep()) this.host.ready(this);
  }

  /** One more stream line may be buffered: the client takes what it is sent. */
  private canPush(): boolean {
    return (
      (this.state === 'open' || this.state === 'finishing') &&
      this.socket.writableLength < this.limits.streamBufferBytes
    );
  }

  private streamEnded(stream: ControlStream): void {
    this.streams.delete(stream);
    const opening = this.opening.indexOf(stream);
    if (opening >= 0) this.opening.splice(opening, 1);
  }

  /** Nothing more can be sent: every stream is over. */
  private abandonStreams(): void {
    for (const stream of [...this.streams]) stream.abandon();
  }

  private replyStalled(): void {
    this.stallTimer = undefined;
    if (this.state === 'closed' || this.unflushed === 0) return;
    // Checked when the timer fires rather than re-armed at every write: it is the idle case.
    const quiet = Date.now() - this.lastFlushed;
    if (quiet < this.limits.replyStallMs) {
      this.stallTimer = setTimeout(() => this.replyStalled(), this.limits.replyStallMs - quiet);
      return;
    }
    this.host.log.info(
      { client: this.id, replyBytes: this.socket.writableLength },
      `control client left its replies unread for ${duration(this.limits.replyStallMs)}; closing it`,
    );
    // It is not reading, so an error line would not reach it either.
    this.destroy();
  }

  /** The client has sent all it will (it may still read): a last line without its newline counts. */
  private inputEnded(): void {
    if (this.state !== 'open') return;
    const last = this.lines.flush();
    if (last !== undefined) {
      this.queue.push(last);
      this.queuedBytes += last.length;
    }
    this.finish(undefined);
  }

  /** Reads nothing more; answers what is queued, then closes with `parting`. */
  private finish(parting: string | undefined): void {
    if (this.state !== 'open') return;
    this.state = 'finishing';
    this.parting = parting;
    this.answered();
    if (this.canStep()) this.host.ready(this);
  }

  /**
   * Sends `parting`, an error saying why, ends the connection and reads nothing more; what was
   * queued is dropped. The socket is torn down once that is flushed, or after the linger time if
   * the client does not take it.
   */
  private close(parting: string): void {
    if (this.closing) return;
    this.stop();
    this.socket.end(parting, () => this.socket.destroy());
    this.lingerTimer = setTimeout(() => this.socket.destroy(), this.limits.closeLingerMs);
  }

  /**
   * Ends a connection whose client has sent all it will, once every reply is written. A client that
   * stops reading them is still closed by the reply stall timer.
   */
  private end(): void {
    if (this.closing) return;
    this.stop();
    this.socket.end(() => this.socket.destroy());
  }

  private stop(): void {
    this.state = 'closing';
    this.abandonStreams();
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    clearTimeout(this.lineTimer);
    if (!this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private failed(err: NodeJS.ErrnoException): void {
    // A client that went away while spoken to is expected noise; anything else is worth a look.
    const expected = err.code === 'EPIPE' || err.code === 'ECONNRESET';
    this.host.log[expected ? 'debug' : 'warn']({ client: this.id, err }, 'control client socket error');
  }

  private gone(): void {
    this.state = 'closed';
    this.abandonStreams();
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    clearTimeout(this.lineTimer);
    clearTimeout(this.stallTimer);
    clearTimeout(this.lingerTimer);
    this.host.closed(this);
  }
}
