import { close as closeInBackground } from 'node:fs';
import { encodeMessage, type SupervisorMessage } from '../protocol/worker-messages.js';
import { duplicateDescriptor, type FdChannel } from '../sys/fd-channel.js';
import type { ChannelWatch } from '../sys/libc.js';

/**
 * The supervisor's end of a worker channel with a queue in front of it: backpressure instead of
 * a verdict. A full channel (EAGAIN) says only that the worker has not read yet, not that it
 * never will: rule churn at a few thousand operations a second fills it while the worker is busy
 * forwarding, and killing it then threw away a healthy worker and its traffic. So a message that
 * does not fit waits here, with copies of its descriptors (their owner may close its own
 * meanwhile), and goes out in order once the channel has room. Whether the worker still reads at
 * all is judged by heartbeats (health-judge.ts), not here.
 *
 * The queue is bounded. Past the coalescing mark, rule-level messages (rule.add, rule.update,
 * rule.remove, output.attach, output.detach, rules.reset, debug.forget) are dropped, those waiting and those
 * that come while the worker is behind: the worker's rules are stale, and once it has caught up
 * (everything queued is written and the channel has room) `resync` is called to send rules.reset
 * and the current rules, which say in a few messages what the dropped ones said in many. Other
 * messages keep their order and are never dropped: input.attach and input.detach carry ring
 * handovers, configure comes first, heartbeats are answered. Only the latest
 * host.addresses matters, so a newer one replaces one still waiting. Past the hard limit the worker
 * cannot be kept in step at all (`overflow`: its owner replaces it).
 */

/** The channel as the queue uses it. */
export interface ChannelTransport {
  /** Sends one message now; false when the peer's queue is full. Throws when the peer is gone. */
  trySend(data: Uint8Array, fds: readonly number[]): boolean;
  /** A copy of a descriptor, valid after the caller closes its own. */
  duplicate(fd: number): number;
  close(fd: number): void;
  /** Calls `callback` when the channel has room again, while set; null stops watching. */
  whenWritable(callback: (() => void) | null): void;
  /** Bytes written to the channel that the worker has not read yet (kernel accounting). */
  unread(): number;
}

export interface QueueLimits {
  /** Rule-level messages waiting (not counting a re-sync's) past which they are coalesced. */
  coalesceMessages: number;
  /** Bytes or descriptors waiting past which rule-level messages are coalesced. */
  coalesceBytes: number;
  coalesceFds: number;
  /** Past any of these, even after coalescing, the worker is given up (replaced). */
  maxMessages: number;
  maxBytes: number;
  maxFds: number;
}

/**
 * Rule churn of ~1,000 operations a second to a worker that is briefly busy fits below the
 * coalescing marks; a worker that falls further behind gets one re-sync instead of the backlog.
 * The hard limits bound the supervisor's memory and descriptors (every waiting descriptor is a
 * copy) per worker, with room for the initial sync or a re-sync of a few thousand rules.
 */
export const DEFAULT_QUEUE_LIMITS: QueueLimits = {
  coalesceMessages: 512,
  coalesceBytes: 4 * 1024 * 1024,
  coalesceFds: 1024,
  maxMessages: 65_536,
  maxBytes: 32 * 1024 * 1024,
  maxFds: 4096,
};

export interface QueueOwner {
  /** The worker is behind and its rules are stale: rule-level messages were dropped. */
  coalesced(dropped: number): void;
  /** It has caught up after coalescing: send rules.reset and every current rule now (through send). */
  resync(): void;
  /** A send failed for another reason than a full channel or a gone peer; the message is lost. */
  failed(error: unknown, message: SupervisorMessage['type']): void;
}

/**
 * sent: written to the channel. queued: waits for room. coalesced: dropped, a re-sync will say
 * it. overflow: the worker is too far behind to be kept (its owner replaces it). gone: the worker's
 * end is closed. failed: refused for another reason (told to the owner).
 */
export type SendOutcome = 'sent' | 'queued' | 'coalesced' | 'overflow' | 'gone' | 'failed';

interface Waiting {
  type: SupervisorMessage['type'];
  data: Uint8Array;
  /** Copies, owned by the queue. */
  fds: number[];
  ruleLevel: boolean;
  /** Part of a re-sync: does not count towards coalescing (it is what coalescing asked for). */
  resync: boolean;
}

const RULE_LEVEL = new Set<SupervisorMessage['type']>([
  'rule.add',
  'rule.update',
  'rule.remove',
  'output.attach',
  'output.detach',
  'rules.reset',
  'debug.forget',
]);

export class WorkerChannel {
  private readonly transport: ChannelTransport;
  private readonly owner: QueueOwner;
  private readonly limits: QueueLimits;
  private readonly waiting: Waiting[] = [];
  private waitingBytes = 0;
  private waitingFds = 0;
  /** Rule-level messages waiting that are not part of a re-sync. */
  private waitingRuleMessages = 0;
  private stale = false;
  private resyncing = false;
  private gone = false;
  private watching = false;
  /** Messages written from the queue since the start: the worker reads while this grows. */
  private flushed = 0;
  private readonly onRoom = (): void => this.flush();

  constructor(transport: ChannelTransport, owner: QueueOwner, limits: QueueLimits = DEFAULT_QUEUE_LIMITS) {
    this.transport = transport;
    this.owner = owner;
    this.limits = limits;
  }

  /** Messages waiting for room. */
  get backlog(): number {
    return this.waiting.length;
  }

  /** Messages that waited and have since been written: grows while the worker reads. */
  get written(): number {
    return this.flushed;
  }

  /** Bytes in the channel the worker has not read yet; 0 once it is gone. */
  get unread(): number {
    return this.gone ? 0 : this.transport.unread();
  }

  /** True from a coalescing until the re-sync after it has been handed to the queue. */
  get rulesStale(): boolean {
    return this.stale;
  }

  /** Whether a message of this type is waiting (a second heartbeat behind the first says nothing new). */
  holds(type: SupervisorMessage['type']): boolean {
    return this.waiting.some((w) => w.type === type);
  }

  /** Sends, queues or coalesces one message. The caller keeps its descriptors either way. */
  send(message: SupervisorMessage, fds: readonly number[] = []): SendOutcome {
    if (this.gone) return 'gone';
    const ruleLevel = RULE_LEVEL.has(message.type);
    if (ruleLevel && this.stale && !this.resyncing) return 'coalesced';
    const data = encodeMessage(message);
    if (this.waiting.length === 0) {
      const outcome = this.write(message.type, data, fds);
      if (outcome !== 'full') return outcome;
    }
    return this.enqueue(message.type, data, fds, ruleLevel);
  }

  /** Drops everything waiting and closes the copies (the worker is gone or being replaced). */
  close(): void {
    this.gone = true;
    this.stopWatching();
    for (const w of this.waiting.splice(0)) this.release(w);
    this.waitingBytes = this.waitingFds = this.waitingRuleMessages = 0;
  }

  private enqueue(
    type: SupervisorMessage['type'],
    data: Uint8Array,
    fds: readonly number[],
    ruleLevel: boolean,
  ): SendOutcome {
    if (type === 'host.addresses') this.dropWaiting((w) => w.type === 'host.addresses');
    const copies: number[] = [];
    try {
      for (const fd of fds) copies.push(this.transport.duplicate(fd));
    } catch (err) {
      // Out of descriptors: the message cannot wait. Losing a rule-level one is what
      // coalescing does anyway; anything else means this worker cannot be kept in step.
      for (const fd of copies) this.transport.close(fd);
      if (ruleLevel && !this.resyncing) {
        this.coalesce();
        return 'coalesced';
      }
      this.owner.failed(err, type);
      return 'overflow';
    }
    this.waiting.push({ type, data, fds: copies, ruleLevel, resync: this.resyncing });
    this.waitingBytes += data.byteLength;
    this.waitingFds += copies.length;
    if (ruleLevel && !this.resyncing) this.waitingRuleMessages++;
    this.startWatching();
    const l = this.limits;
    if (
      !this.resyncing &&
      (this.waitingRuleMessages > l.coalesceMessages ||
        this.waitingBytes > l.coalesceBytes ||
        this.waitingFds > l.coalesceFds) &&
      this.waiting.some((w) => w.ruleLevel)
    ) {
      this.coalesce();
      if (ruleLevel) return 'coalesced';
    }
    if (this.waiting.length > l.maxMessages || this.waitingBytes > l.maxBytes || this.waitingFds > l.maxFds)
      return 'overflow';
    return 'queued';
  }

  /** Drops every rule-level message waiting; the rules go again in one re-sync once caught up. */
  private coalesce(): void {
    const dropped = this.dropWaiting((w) => w.ruleLevel);
    this.stale = true;
    this.startWatching();
    this.owner.coalesced(dropped);
  }

  private dropWaiting(which: (w: Waiting) => boolean): number {
    let dropped = 0;
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const w = this.waiting[i]!;
      if (!which(w)) continue;
      this.waiting.splice(i, 1);
      this.release(w);
      dropped++;
    }
    return dropped;
  }

  private release(w: Waiting): void {
    this.waitingBytes -= w.data.byteLength;
    this.waitingFds -= w.fds.length;
    if (w.ruleLevel && !w.resync) this.waitingRuleMessages--;
    for (const fd of w.fds) this.transport.close(fd);
  }

  /** Writes what waits, in order, until the channel is full again; re-syncs once caught up. */
  private flush(): void {
    while (this.waiting.length > 0) {
      const w = this.waiting[0]!;
      const outcome = this.write(w.type, w.data, w.fds);
      if (outcome === 'full') {
        // Refused again, perhaps for another reason than last time: wait for room anew.
        this.arm();
        return;
      }
      // Gone: close() has released everything, this message included.
      if (outcome === 'gone') return;
      this.waiting.shift();
      this.release(w);
      this.flushed++;
    }
    this.stopWatching();
    if (this.stale && !this.gone) {
      this.stale = false;
      this.resyncing = true;
      try {
        this.owner.resync();
      } finally {
        this.resyncing = false;
      }
    }
  }

  private write(
    type: SupervisorMessage['type'],
    data: Uint8Array,
    fds: readonly number[],
  ): SendOutcome | 'full' {
    try {
      return this.transport.trySend(data, fds) ? 'sent' : 'full';
    } catch (err) {
      if (isGone(err)) {
        this.close();
        return 'gone';
      }
      this.owner.failed(err, type);
      return 'failed';
    }
  }

  private startWatching(): void {
    if (!this.watching) this.arm();
  }

  private arm(): void {
    if (this.gone) return;
    this.watching = true;
    this.transport.whenWritable(this.onRoom);
  }

  private stopWatching(): void {
    if (!this.watching) return;
    this.watching = false;
    this.transport.whenWritable(null);
  }
}

/**
 * Bytes (kernel accounting, about 1 KiB per rule message) a worker may have unread before more
 * messages wait in the supervisor's queue: about a dozen rule messages.
 *
 * Why not the kernel's own limit: a worker reads everything waiting in one go, and a rule.remove
 * closes the rule's AF_PACKET egress socket, which waits for an RCU grace period (about 7 ms
 * measured under churn). The channel's 2 MiB send buffer holds ~1,600 rule messages: seconds of
 * work during which the worker's rings overflow. A dozen is tens of ms, within what a ring holds;
 * the rest waits here, where coalescing can turn it into one re-sync.
 */
export const UNREAD_BUDGET_BYTES = 16 * 1024;
/** How soon a channel held back by the budget is looked at again (the kernel says nothing then). */
const RECHECK_MS = 2;

/**
 * The production transport: an FdChannel and its watch. A send is refused while the worker has
 * more than `budget` bytes unread, or when the kernel refuses it (EAGAIN); room is noticed by
 * the kernel's writability in the second case and by a short recheck in the first.
 */
export class SocketTransport implements ChannelTransport {
  private readonly channel: FdChannel;
  private readonly watch: ChannelWatch;
  private readonly budget: number;
  private readonly closeFailed: (err: Error, fd: number) => void;
  /** Why the last send was refused: the budget, or the kernel. */
  private refusedBy: 'budget' | 'kernel' = 'budget';
  private recheck: NodeJS.Timeout | undefined;

  constructor(
    channel: FdChannel,
    watch: ChannelWatch,
    closeFailed: (err: Error, fd: number) => void,
    budget = UNREAD_BUDGET_BYTES,
  ) {
    this.channel = channel;
    this.watch = watch;
    this.closeFailed = closeFailed;
    this.budget = budget;
  }

  trySend(data: Uint8Array, fds: readonly number[]): boolean {
    if (this.channel.unread() > this.budget) {
      this.refusedBy = 'budget';
      return false;
    }
    if (this.channel.trySend(data, fds)) return true;
    this.refusedBy = 'kernel';
    return false;
  }

  duplicate(fd: number): number {
    return duplicateDescriptor(fd);
  }

  /**
   * Closes a copy on libuv's thread pool: when the copy is the last reference to an AF_PACKET
   * socket (its rule was removed meanwhile), close(2) waits for an RCU grace period, and hundreds
   * of those on the event loop stalled the supervisor for seconds.
   */
  close(fd: number): void {
    closeInBackground(fd, (err) => {
      if (err) this.closeFailed(err, fd);
    });
  }

  whenWritable(callback: (() => void) | null): void {
    clearInterval(this.recheck);
    this.recheck = undefined;
    this.watch.whenWritable(null);
    if (callback === null) return;
    if (this.refusedBy === 'kernel') this.watch.whenWritable(callback);
    else
      this.recheck = setInterval(() => {
        if (this.channel.unread() <= this.budget) callback();
      }, RECHECK_MS);
  }

  unread(): number {
    return this.channel.unread();
  }
}

/**
 * EPIPE once the worker's end is closed, ECONNRESET when it closed with messages unread: the
 * worker has exited and its exit event has not been handled yet.
 */
function isGone(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'EPIPE' || code === 'ECONNRESET';
}
