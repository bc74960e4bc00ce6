import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import {
  decodeMessage,
  encodeMessage,
  type SupervisorMessage,
  type WorkerMessage,
  type WorkerStatsReport,
} from '../protocol/worker-messages.js';
import { EAGAIN } from '../sys/constants.js';
import { SysError } from '../sys/errors.js';
import { createChannelPair, FdChannel } from '../sys/fd-channel.js';
import { watchReadable, type ReadableWatch } from '../sys/libc.js';
import type { Account } from '../sys/privileges.js';
import { closeFd } from '../sys/socket.js';

export interface WorkerProcessOptions {
  id: number;
  /** Path of the worker entry script (run with this Node binary). */
  entry: string;
  /** The CPU the worker pins itself to. */
  cpu: number;
  /** The unprivileged account the worker switches to before it handles a packet. */
  account: Account;
  logLevel: string;
  log: Logger;
  /** The hash of the rules the worker should hold now (compared with what it reports). */
  expectedRulesHash: () => string;
}

/**
 * V8 flags of a worker. Its data path allocates nothing; its garbage comes from the control plane
 * (heartbeats, stats, returns to the event loop).
 * - A 16 MiB young generation from the start collects that every few minutes instead of every
 *   few seconds; a scavenge's cost depends on what survives (little), not on this size.
 * - No memory reducer: V8 takes a process that allocates little for an idle one and, 16 s after
 *   start, runs two full mark-compacts to shrink its heap (7-30 ms each, measured). A worker's
 *   heap is a few MB and steady; those pauses would land on the data path.
 */
const WORKER_V8_FLAGS = ['--min-semi-space-size=16', '--no-memory-reducer'];

/** How often the supervisor asks each worker for a sign of life and its rules hash. */
export const HEARTBEAT_INTERVAL_MS = 250;
/** A worker silent for this long (stopped, wedged) is killed and replaced. */
export const HEARTBEAT_TIMEOUT_MS = 1500;

export interface WorkerProcessEvents {
  ready: [];
  exit: [code: number | null, signal: NodeJS.Signals | null];
  stats: [report: WorkerStatsReport];
  failure: [message: Extract<WorkerMessage, { type: 'error' }>];
  /** The worker holds other rules than it should. */
  drift: [held: string, expected: string];
}

/**
 * One worker process and its channel. Messages go out in order; descriptors are duplicated into
 * the worker by the kernel (SCM_RIGHTS), so the supervisor keeps its own copies.
 */
export class WorkerProcess extends EventEmitter<WorkerProcessEvents> {
  readonly id: number;
  readonly cpu: number;
  readonly user: string;
  state: 'starting' | 'running' | 'stopped' = 'starting';
  startedAt: Date | null = null;
  /** Why the worker said it cannot start ('fatal'), if it did; untrusted text, kept short. */
  startFailure: string | undefined;
  private channelClosed = false;
  private readonly child: ChildProcess;
  private readonly channel: FdChannel;
  private readonly watch: ReadableWatch;
  private readonly log: Logger;
  private nextRequest = 1;
  private readonly statsWaiters = new Map<number, (report: WorkerStatsReport | undefined) => void>();
  private readonly expectedRulesHash: () => string;
  /** Heartbeats sent and not yet answered: seq → the rules hash expected at that point. */
  private readonly heartbeats = new Map<number, string>();
  private heartbeatSeq = 0;
  private lastSignOfLife = Date.now();
  private heartbeatTimer: NodeJS.Timeout | undefined;

  constructor(options: WorkerProcessOptions) {
    super();
    this.id = options.id;
    this.cpu = options.cpu;
    this.user = options.account.name;
    this.expectedRulesHash = options.expectedRulesHash;
    this.log = options.log.child({ worker: options.id });
    const [mine, theirs] = createChannelPair();
    this.channel = new FdChannel(mine);
    this.child = spawn(
      process.execPath,
      [
        ...WORKER_V8_FLAGS,
        options.entry,
        ...['--worker-id', String(options.id), '--cpu', String(options.cpu)],
        ...[
          '--user',
          options.account.name,
          '--uid',
          String(options.account.uid),
          '--gid',
          String(options.account.gid),
        ],
        ...['--log-level', options.logLevel],
      ],
      {
        stdio: ['ignore', 'inherit', 'inherit', theirs],
      },
    );
    closeFd(theirs);
    this.watch = watchReadable(mine, () => this.readChannel());
    this.child.once('exit', (code, signal) => {
      // What the worker wrote before exiting (its 'fatal' reason) may not have been read yet.
      if (!this.channelClosed) this.readChannel();
      this.state = 'stopped';
      clearInterval(this.heartbeatTimer);
      this.watch.stop();
      for (const waiter of this.statsWaiters.values()) waiter(undefined);
      this.statsWaiters.clear();
      this.emit('exit', code, signal);
    });
    this.child.once('error', (err) => this.log.error({ err }, 'worker could not be started'));
  }

  get pid(): number | null {
    return this.child.pid ?? null;
  }

  /** Sends a command; false when the worker is gone (its restart will resync it). */
  send(message: SupervisorMessage, fds: readonly number[] = []): boolean {
    if (this.state === 'stopped') return false;
    try {
      this.channel.send(encodeMessage(message), fds, false);
      return true;
    } catch (err) {
      if (err instanceof SysError && err.errno === EAGAIN) {
        // Its queue is full: it stopped reading. Replace it; the new one gets a full sync.
        this.log.error(
          { pid: this.pid, message: message.type },
          'worker is not reading its channel; killing it',
        );
        this.child.kill('SIGKILL');
      } else if (err instanceof SysError && (err.code === 'EPIPE' || err.code === 'ECONNRESET')) {
        // The worker has exited (at start-up, say) and its exit event has not been handled yet:
        // EPIPE once its end is closed, ECONNRESET when it closed with messages unread.
        this.log.debug({ pid: this.pid, message: message.type }, 'worker is gone; message not sent');
      } else {
        this.log.warn({ err, message: message.type }, 'worker channel send failed');
      }
      return false;
    }
  }

  /** Asks for a fresh counter snapshot; undefined if none arrives within the timeout. */
  requestStats(timeoutMs: number): Promise<WorkerStatsReport | undefined> {
    const requestId = this.nextRequest++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.statsWaiters.delete(requestId);
        resolve(undefined);
      }, timeoutMs);
      this.statsWaiters.set(requestId, (report) => {
        clearTimeout(timer);
        resolve(report);
      });
      if (!this.send({ type: 'stats.request', requestId })) {
        clearTimeout(timer);
        this.statsWaiters.delete(requestId);
        resolve(undefined);
      }
    });
  }

  /** Asks the worker to stop; kills it if it has not exited after `graceMs`. */
  stop(graceMs: number): Promise<void> {
    if (this.state === 'stopped') return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.log.warn('worker did not stop in time; killing it');
        this.child.kill('SIGKILL');
      }, graceMs);
      this.child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      if (!this.send({ type: 'shutdown' })) this.child.kill('SIGTERM');
    });
  }

  closeChannel(): void {
    this.channelClosed = true;
    this.watch.stop();
    this.channel.close();
  }

  /**
   * Asks for a sign of life carrying the rules hash expected once the worker has handled every
   * message sent so far (the channel keeps order); kills a worker that stayed silent too long.
   */
  private heartbeat(): void {
    if (this.state !== 'running') return;
    const silentFor = Date.now() - this.lastSignOfLife;
    if (silentFor > HEARTBEAT_TIMEOUT_MS) {
      this.log.error({ pid: this.pid, silentMs: silentFor }, 'worker stopped answering; killing it');
      clearInterval(this.heartbeatTimer);
      this.child.kill('SIGKILL');
      return;
    }
    const seq = ++this.heartbeatSeq;
    this.heartbeats.set(seq, this.expectedRulesHash());
    if (this.heartbeats.size > 64) this.heartbeats.delete(this.heartbeats.keys().next().value!);
    this.send({ type: 'heartbeat', seq });
  }

  private readChannel(): void {
    for (;;) {
      let message;
      try {
        message = this.channel.receive();
      } catch (err) {
        this.log.error({ err }, 'bad message from worker');
        continue;
      }
      if (message === undefined) return;
      if (message === null) {
        this.watch.stop();
        return;
      }
      for (const fd of message.fds) closeFd(fd); // a worker never sends descriptors
      this.handle(decodeMessage<WorkerMessage>(message.data));
    }
  }

  private handle(message: WorkerMessage): void {
    switch (message.type) {
      case 'ready':
        this.state = 'running';
        this.startedAt = new Date();
        this.lastSignOfLife = Date.now();
        this.heartbeatTimer = setInterval(() => this.heartbeat(), HEARTBEAT_INTERVAL_MS);
        this.log.info({ workerPid: message.pid }, 'worker ready');
        this.emit('ready');
        break;
      case 'heartbeat': {
        this.lastSignOfLife = Date.now();
        const expected = this.heartbeats.get(message.seq);
        // Older heartbeats still outstanding were overtaken by this answer.
        for (const seq of this.heartbeats.keys()) if (seq <= message.seq) this.heartbeats.delete(seq);
        if (expected !== undefined && expected !== message.rulesHash)
          this.emit('drift', message.rulesHash, expected);
        break;
      }
      case 'stats': {
        const waiter = message.requestId === null ? undefined : this.statsWaiters.get(message.requestId);
        if (waiter) {
          this.statsWaiters.delete(message.requestId!);
          waiter(message.report);
        }
        this.emit('stats', message.report);
        break;
      }
      case 'error':
        this.log.error({ code: message.code, subject: message.subject }, message.message);
        this.emit('failure', message);
        break;
      case 'fatal':
        this.startFailure = String(message.message).slice(0, 500);
        break;
    }
  }
}
