import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { parseWorkerMessage } from '../protocol/worker-message-schema.js';
import type { WorkerProcessHealth } from '../protocol/control-api.js';
import type { TraceRecord, TraceSelection } from '../protocol/trace.js';
import type { SupervisorMessage, WorkerMessage } from '../protocol/worker-messages.js';
import { createChannelPair, FdChannel, MAX_CHANNEL_MESSAGE } from '../sys/fd-channel.js';
import { watchReadable, type ChannelWatch, type WatchFault } from '../sys/libc.js';
import type { Account } from '../sys/privileges.js';
import { closeFd } from '../sys/socket.js';
import { HealthJudge } from './health-judge.js';
import {
  SocketTransport,
  WorkerChannel,
  type ChannelTransport,
  type QueueLimits,
  type SendOutcome,
} from './worker-channel.js';
import { WorkerConversation } from './worker-conversation.js';

/** A started worker process, as the supervisor uses it (a ChildProcess is one). */
export interface WorkerChild {
  readonly pid?: number | undefined;
  kill(signal: NodeJS.Signals): boolean;
  once(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  once(event: 'error', listener: (err: Error) => void): this;
}

/** Starts a worker process with `args`, its channel end `channelFd` as its fd 3. */
export type WorkerLauncher = (args: string[], channelFd: number) => WorkerChild;

export interface WorkerProcessOptions {
  id: number;
  /** Path of the worker entry script (run with this Node binary). */
  entry: string;
  /** The CPU the worker pins itself to. */
  cpu: number;
  /** The nice value the worker gives its packet thread before it drops its privileges. */
  nice: number;
  /** The unprivileged account the worker switches to before it handles a packet. */
  account: Account;
  logLevel: string;
  logFormat: 'json' | 'text';
  log: Logger;
  /** The hash of the rules the worker should hold now (compared with what it reports). */
  expectedRulesHash: () => string;
  /** How the process is started; by default this Node binary runs `entry`. */
  launch?: WorkerLauncher;
  /** A monotonic clock in ms; performance.now by default. */
  now?: () => number;
  queueLimits?: QueueLimits;
  /** How the queue reaches the channel; a SocketTransport by default. */
  transport?: (channel: FdChannel, watch: ChannelWatch) => ChannelTransport;
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
/** Silence (see HealthJudge: the supervisor's own stalls not counted) after which a worker is replaced. */
export const HEARTBEAT_TIMEOUT_MS = 1500;
/** A tick this late means the supervisor itself stalled: worth a line in the log. */
const STALL_WORTH_LOGGING_MS = 1000;
/** Rules-hash expectations kept for unanswered heartbeats (older ones are no longer checked). */
const MAX_EXPECTATIONS = 64;

export interface WorkerProcessEvents {
  ready: [];
  /** Its first heartbeat answer: it runs fine. */
  alive: [];
  exit: [code: number | null, signal: NodeJS.Signals | null];
  health: [health: WorkerProcessHealth];
  failure: [message: Extract<WorkerMessage, { type: 'error' }>];
  /** The worker holds other rules than it should. */
  drift: [held: string, expected: string];
  /**
   * It caught up after rule-level messages were coalesced: send rules.reset and every rule now,
   * synchronously (the channel counts them as the re-sync).
   */
  resync: [];
  /** Frames a trace recorded (already checked: shape, and within what the trace asked for). */
  traceRecords: [trace: number, records: TraceRecord[], missed: number];
  /** The worker stopped tracing (it recorded its count, or was told to stop). */
  traceEnded: [trace: number, reason: 'count' | 'stopped'];
  /** It finished handing an input over to a new socket (checked: it was asked to). */
  inputHandedOver: [interfaceName: string];
}

/**
 * One worker process and its channel. Messages go out in order, through a bounded queue when
 * the channel is full (worker-channel.ts); descriptors are duplicated into the worker by the
 * kernel (SCM_RIGHTS), so the supervisor keeps its own copies. Everything the worker says is
 * checked for shape (worker-message-schema.ts) and order (worker-conversation.ts); a worker that
 * breaks either is replaced.
 */
export class WorkerProcess extends EventEmitter<WorkerProcessEvents> {
  readonly id: number;
  readonly cpu: number;
  readonly user: string;
  state: 'starting' | 'running' | 'stopped' = 'starting';
  startedAt: Date | null = null;
  /** Why the worker said it cannot start ('fatal'), if it did; untrusted text, bounded by the schema. */
  startFailure: string | undefined;
  /** It answered a heartbeat: it ran fine (restart-policy.ts). */
  ranFine = false;
  /** Why the supervisor killed it, when it did. */
  replacedFor: string | undefined;
  /** When it was spawned and when its exit was seen, on the supervisor's monotonic clock. */
  readonly spawnedAt: number;
  exitedAt: number | undefined;
  private channelClosed = false;
  private readonly child: WorkerChild;
  private readonly fdChannel: FdChannel;
  private readonly channel: WorkerChannel;
  private readonly watch: ChannelWatch;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly conversation: WorkerConversation;
  private judge: HealthJudge | undefined;
  private readonly expectedRulesHash: () => string;
  /** Heartbeats sent and not yet answered: seq → the rules hash expected then (null: unknown). */
  private readonly expectations = new Map<number, string | null>();
  private writtenAtLastTick = 0;
  private unreadAtLastTick = 0;
  private heartbeatTimer: NodeJS.Timeout | undefined;

  constructor(options: WorkerProcessOptions) {
    super();
    this.id = options.id;
    this.cpu = options.cpu;
    this.user = options.account.name;
    this.expectedRulesHash = options.expectedRulesHash;
    this.log = options.log.child({ worker: options.id });
    this.now = options.now ?? (() => performance.now());
    this.spawnedAt = this.now();
    const [mine, theirs] = createChannelPair();
    this.fdChannel = new FdChannel(mine);
    const args = [
      ...WORKER_V8_FLAGS,
      options.entry,
      ...['--worker-id', String(options.id), '--cpu', String(options.cpu), '--nice', String(options.nice)],
      ...['--user', options.account.name],
      ...['--uid', String(options.account.uid), '--gid', String(options.account.gid)],
      ...['--log-level', options.logLevel, '--log-format', options.logFormat],
    ];
    this.child = (options.launch ?? launchNode)(args, theirs);
    closeFd(theirs);
    this.conversation = new WorkerConversation(this.child.pid ?? null);
    this.watch = watchReadable(mine, () => this.readChannel(), {
      onFault: (fault) => this.onChannelFault(fault),
    });
    const transport =
      options.transport?.(this.fdChannel, this.watch) ??
      new SocketTransport(this.fdChannel, this.watch, (err, fd) =>
        this.log.error({ err, fd }, 'closing a descriptor copy failed'),
      );
    this.channel = new WorkerChannel(
      transport,
      {
        coalesced: (dropped) => this.onCoalesced(dropped),
        resync: () => this.emit('resync'),
        failed: (err, type) => this.log.warn({ err, message: type }, 'worker channel send failed'),
      },
      options.queueLimits,
    );
    this.child.once('exit', (code, signal) => {
      this.exitedAt = this.now();
      // What the worker wrote before exiting (its 'fatal' reason) may not have been read yet.
      if (!this.channelClosed && this.replacedFor === undefined) this.readChannel();
      this.state = 'stopped';
      clearInterval(this.heartbeatTimer);
      this.watch.stop();
      this.channel.close();
      this.emit('exit', code, signal);
    });
    this.child.once('error', (err) => this.log.error({ err }, 'worker could not be started'));
  }

  get pid(): number | null {
    return this.child.pid ?? null;
  }

  /** Messages waiting for room on the channel. */
  get backlog(): number {
    return this.channel.backlog;
  }

  /**
   * Sends a command, or queues it while the channel is full. False when it will not reach the
   * worker: the worker is gone (its restart will sync it), too far behind (it is being
   * replaced), or the message was coalesced (a re-sync will carry it).
   */
  send(message: SupervisorMessage, fds: readonly number[] = []): boolean {
    if (this.state === 'stopped' || this.replacedFor !== undefined) return false;
    const outcome: SendOutcome = this.channel.send(message, fds);
    if (outcome === 'sent' || outcome === 'queued') this.conversation.commanded(message);
    if (outcome === 'overflow') {
      this.replace(
        'E_WORKER_BEHIND',
        `fell too far behind: ${this.channel.backlog} messages wait on its channel even after coalescing`,
      );
    } else if (outcome === 'gone') {
      this.log.debug({ pid: this.pid, message: message.type }, 'worker is gone; message not sent');
    }
    return outcome === 'sent' || outcome === 'queued';
  }

  /** Asks the worker to trace (see trace.start); false when the message will not reach it. */
  startTrace(trace: number, selection: TraceSelection, count: number, dropsOnly: boolean): boolean {
    if (this.state !== 'running' || this.replacedFor !== undefined) return false;
    this.conversation.traceStarted(trace, count);
    return this.send({ type: 'trace.start', trace, selection, count, dropsOnly });
  }

  /** Asks the worker to stop tracing; it answers trace.ended (if it is still running the trace). */
  stopTrace(trace: number): void {
    this.send({ type: 'trace.stop', trace });
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
    this.fdChannel.close();
  }

  /**
   * Kills the worker for a reason of its own making (silent, misbehaving, too far behind): logged
   * once, with a stable code; nothing it says afterwards is read. Its exit restarts it.
   */
  private replace(code: string, reason: string): void {
    if (this.replacedFor !== undefined || this.state === 'stopped') return;
    this.replacedFor = reason;
    this.log.error({ pid: this.pid, code }, `worker ${reason}; replacing it`);
    clearInterval(this.heartbeatTimer);
    this.watch.stop();
    this.child.kill('SIGKILL');
  }

  /**
   * Reads the answers waiting, then judges (see HealthJudge), then asks again with the rules hash
   * expected once the worker has handled every message sent so far (the channel keeps order).
   */
  private heartbeat(): void {
    if (this.state !== 'running' || this.replacedFor !== undefined) return;
    this.readChannel();
    if (this.state !== 'running' || this.replacedFor !== undefined) return;
    // It reads if what waited for it went out, or the channel holds less of what was written.
    const written = this.channel.written;
    const unread = this.channel.unread;
    const progressed = written > this.writtenAtLastTick || unread < this.unreadAtLastTick;
    this.writtenAtLastTick = written;
    this.unreadAtLastTick = unread;
    const judgement = this.judge!.tick(this.now(), progressed);
    if (judgement.lateMs >= STALL_WORTH_LOGGING_MS) {
      this.log.warn(
        { lateMs: Math.round(judgement.lateMs) },
        "the supervisor's heartbeat came late (its event loop was stalled); not counted against the worker",
      );
    }
    if (!judgement.alive) {
      this.replace(
        'E_WORKER_SILENT',
        `stopped answering: ${Math.round(judgement.silentMs)} ms of silence while reading nothing (${unread} bytes unread on its channel, ${this.channel.backlog} messages queued)`,
      );
      return;
    }
    // A heartbeat still waiting in the queue asks the same question.
    if (this.channel.holds('heartbeat')) return;
    const seq = this.conversation.nextHeartbeat();
    this.expectations.set(seq, this.channel.rulesStale ? null : this.expectedRulesHash());
    if (this.expectations.size > MAX_EXPECTATIONS)
      this.expectations.delete(this.expectations.keys().next().value!);
    this.send({ type: 'heartbeat', seq });
  }

  /** Rule messages were dropped: what heartbeats expected no longer holds until the re-sync. */
  private onCoalesced(dropped: number): void {
    for (const seq of this.expectations.keys()) this.expectations.set(seq, null);
    this.log.warn(
      { pid: this.pid, dropped, waiting: this.channel.backlog },
      'worker is behind on its channel; rule updates coalesced into a re-sync once it has caught up',
    );
  }

  private onChannelFault(fault: WatchFault): void {
    this.log.error(
      { err: fault.error, fd: fault.fd, event: fault.event, inARow: fault.inARow, code: 'E_WORKER_CHANNEL' },
      `handling the worker channel's ${fault.event} event threw`,
    );
    if (fault.stopped)
      this.replace('E_WORKER_CHANNEL', 'cannot be listened to (its channel handler kept throwing)');
  }

  private readChannel(): void {
    while (this.replacedFor === undefined) {
      let received;
      try {
        received = this.fdChannel.receive();
      } catch (err) {
        if (err instanceof RangeError) {
          this.misbehaved(`sent a message larger than ${MAX_CHANNEL_MESSAGE} bytes`);
        } else {
          // ECONNRESET and the like: the worker is gone; its exit event follows.
          this.log.debug({ err }, 'worker channel closed');
          this.watch.stop();
        }
        return;
      }
      if (received === undefined) return;
      if (received === null) {
        this.watch.stop();
        return;
      }
      if (received.fds.length > 0) {
        for (const fd of received.fds) closeFd(fd);
        this.misbehaved(`sent ${received.fds.length} descriptors (a worker never sends any)`);
        return;
      }
      const check = parseWorkerMessage(received.data);
      if (!check.ok) return this.misbehaved(check.reason);
      const outOfOrder = this.conversation.accept(check.message);
      if (outOfOrder !== undefined) return this.misbehaved(outOfOrder);
      this.judge?.heard();
      this.handle(check.message);
    }
  }

  private misbehaved(reason: string): void {
    this.replace('E_WORKER_MISBEHAVED', `broke the channel protocol: ${reason}`);
  }

  private handle(message: WorkerMessage): void {
    switch (message.type) {
      case 'ready':
        this.state = 'running';
        this.startedAt = new Date();
        this.judge = new HealthJudge(
          { intervalMs: HEARTBEAT_INTERVAL_MS, timeoutMs: HEARTBEAT_TIMEOUT_MS },
          this.now(),
        );
        this.heartbeatTimer = setInterval(() => this.heartbeat(), HEARTBEAT_INTERVAL_MS);
        // The event worker.started (or worker.restarted) follows its first heartbeat answer.
        this.log.debug({ workerPid: message.pid }, 'worker ready');
        this.emit('ready');
        break;
      case 'heartbeat': {
        const expected = this.expectations.get(message.seq);
        // Older heartbeats still outstanding were overtaken by this answer.
        for (const seq of this.expectations.keys()) if (seq <= message.seq) this.expectations.delete(seq);
        if (!this.ranFine) {
          this.ranFine = true;
          this.emit('alive');
        }
        if (typeof expected === 'string' && expected !== message.rulesHash)
          this.emit('drift', message.rulesHash, expected);
        break;
      }
      case 'health':
        this.emit('health', message.health);
        break;
      case 'error':
        this.log.error({ code: message.code, subject: message.subject }, message.message);
        this.emit('failure', message);
        break;
      case 'fatal':
        this.startFailure = message.message;
        break;
      case 'trace.records':
        this.emit('traceRecords', message.trace, message.records, message.missed);
        break;
      case 'trace.ended':
        this.emit('traceEnded', message.trace, message.reason);
        break;
      case 'input.handedOver':
        this.emit('inputHandedOver', message.interface);
        break;
    }
  }
}

/** Runs the worker entry with this Node binary, its channel end as fd 3. */
function launchNode(args: string[], channelFd: number): WorkerChild {
  return spawn(process.execPath, args, {
    stdio: ['ignore', 'inherit', 'inherit', channelFd],
    env: workerEnvironment(),
  });
}

/**
 * mcrd's environment without what systemd gave mcrd alone: a worker has no business telling
 * systemd the service is ready or reloading (NotifyAccess=main would ignore it; better it cannot).
 */
function workerEnvironment(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of [
    'NOTIFY_SOCKET',
    'WATCHDOG_USEC',
    'WATCHDOG_PID',
    'LISTEN_FDS',
    'LISTEN_PID',
    'LISTEN_FDNAMES',
  ]) {
    delete env[name];
  }
  return env;
}
