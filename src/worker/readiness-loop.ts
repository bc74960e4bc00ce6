import { BROKEN, EpollSet, READABLE } from '../sys/epoll.js';
import {
  takeSocketError,
  watchReadable,
  WATCH_FAULTS_BEFORE_STOP,
  type ReadableWatch,
  type WatchFault,
} from '../sys/libc.js';
import { sleepMicroseconds } from '../sys/short-sleep.js';
import { Stopwatch } from '../sys/stopwatch.js';

/**
 * Called when a descriptor is readable. A ring's handler returns true when it took packets and
 * left the ring empty: only then may the loop pause (coalescing).
 */
export type ReadableHandler = () => boolean | void;

/** Where a data-path descriptor gets its readiness from. */
export interface ReadinessSource {
  watch(fd: number, onReadable: ReadableHandler): ReadableWatch;
}

interface Member {
  readonly onReadable: ReadableHandler;
  /** Error events in a row; one that cannot be cleared must not spin the loop. */
  recentErrors: number;
  /** Exceptions its handler threw in a row. */
  faults: number;
}

/** Told of an exception a handler threw (caught by the loop), or one of the loop itself. */
export type LoopFaultReport = (fault: WatchFault) => void;

/** Errors in a row after which a descriptor is set aside for ERROR_BACKOFF_MS. */
const ERRORS_BEFORE_BACKOFF = 10;
const ERROR_BACKOFF_MS = 100;
const MAX_EVENTS = 64;

/**
 * The worker's loop. Its descriptors (rings, channel) sit in one epoll set; libuv watches only the
 * set. Once woken, the loop stays in a synchronous `epoll_wait` → handler cycle for up to
 * `budgetMs`, then returns to libuv so timers, signals and the GC observer run.
 *
 * Why: each libuv wakeup costs a koffi callback that allocates an event object, which at tens of
 * thousands of wakeups a second was 85 % of the worker's allocation and so of its scavenges. Here
 * libuv wakes the worker at most ~1000/budgetMs times a second; in between, a wait costs one
 * syscall and one FFI call and allocates nothing.
 *
 * Coalescing (`setCoalescing`, like a NIC's rx-usecs): after a round in which a ring was emptied,
 * the loop sleeps that long before it looks again. Meanwhile the kernel fills the ring without waking
 * anyone, so at tens of thousands of packets a second the worker takes several per wakeup instead
 * of trading the core with the receive thread packet by packet. Only a packet that arrives within
 * the pause of the one before waits (at most the pause); the first after a quiet spell does not.
 * A ring left non-empty (its handler stopped at its budget) means the worker is behind: no pause.
 */
export class ReadinessLoop implements ReadinessSource {
  private readonly set = new EpollSet(MAX_EVENTS);
  private readonly members = new Map<number, Member>();
  private readonly budgetMs: number;
  private readonly stopwatch = new Stopwatch();
  private readonly outer: ReadableWatch;
  private readonly pause: (microseconds: number) => void;
  private readonly report: LoopFaultReport | undefined;
  private coalesceUs = 0;
  private stopped = false;

  /**
   * `pause` is replaceable for tests. `report` is told of every exception a handler throws: the
   * loop catches it where the handler runs, so one descriptor's fault neither ends the round for
   * the others nor escapes into koffi (where it would surface from an unrelated FFI call). A
   * handler that throws WATCH_FAULTS_BEFORE_STOP times in a row is removed from the set, and the
   * report says so. Without `report`, faults are thrown again from their own event-loop turn.
   */
  constructor(
    budgetMs: number,
    pause: (microseconds: number) => void = sleepMicroseconds,
    report?: LoopFaultReport,
  ) {
    this.budgetMs = budgetMs;
    this.pause = pause;
    this.report = report;
    this.outer = watchReadable(this.set.fd, () => this.run(), report ? { onFault: report } : {});
  }

  /** Microseconds to sleep after a round that emptied a ring; 0 turns coalescing off. */
  setCoalescing(microseconds: number): void {
    this.coalesceUs = microseconds;
  }

  watch(fd: number, onReadable: ReadableHandler): ReadableWatch {
    this.set.add(fd);
    const member: Member = { onReadable, recentErrors: 0, faults: 0 };
    this.members.set(fd, member);
    return {
      stop: () => {
        if (this.members.get(fd) !== member) return;
        this.members.delete(fd);
        this.set.remove(fd);
      },
    };
  }

  /** Handles ready descriptors until the budget is spent; blocks in the kernel while none is. */
  private run(): void {
    this.stopwatch.start();
    let timeoutMs = 0;
    while (!this.stopped) {
      const ready = this.set.wait(timeoutMs);
      let caughtUp = false;
      for (let i = 0; i < ready && !this.stopped; i++) {
        if (this.dispatch(this.set.fdAt(i), this.set.flagsAt(i))) caughtUp = true;
      }
      if (caughtUp && this.coalesceUs > 0 && !this.stopped) this.pause(this.coalesceUs);
      timeoutMs = this.budgetMs - this.stopwatch.elapsedMs();
      if (timeoutMs <= 0) return;
    }
  }

  /** Runs the descriptor's handler; true when it was a ring's and it left the ring empty. */
  private dispatch(fd: number, flags: number): boolean {
    const member = this.members.get(fd);
    if (member === undefined) return false; // stopped by an earlier handler in this round
    if ((flags & BROKEN) === 0) {
      member.recentErrors = 0;
      return this.call(fd, member);
    }
    // ENETDOWN on a packet socket when its link goes down: reading SO_ERROR clears it, and the
    // socket works again when the link comes back. Frames already in the ring are still taken.
    takeSocketError(fd);
    const caughtUp = (flags & READABLE) !== 0 && this.call(fd, member);
    if (++member.recentErrors > ERRORS_BEFORE_BACKOFF && this.members.get(fd) === member) {
      this.set.remove(fd);
      setTimeout(() => {
        if (this.stopped || this.members.get(fd) !== member) return;
        member.recentErrors = 0;
        this.set.add(fd);
      }, ERROR_BACKOFF_MS);
    }
    return caughtUp;
  }

  /** Runs a handler, containing what it throws; true when it left its ring empty. */
  private call(fd: number, member: Member): boolean {
    try {
      const caughtUp = member.onReadable() === true;
      member.faults = 0;
      return caughtUp;
    } catch (error) {
      const inARow = ++member.faults;
      const stopped = inARow >= WATCH_FAULTS_BEFORE_STOP;
      if (stopped && this.members.get(fd) === member) {
        this.members.delete(fd);
        this.set.remove(fd);
      }
      const fault: WatchFault = { fd, event: 'readable', error, inARow, stopped };
      if (this.report) this.report(fault);
      else
        setImmediate(() => {
          throw error;
        });
      return false;
    }
  }

  stop(): void {
    this.stopped = true;
    this.outer.stop();
    this.members.clear();
    this.set.close();
  }
}
