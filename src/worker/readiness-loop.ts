import { BROKEN, EpollSet, READABLE } from '../sys/epoll.js';
import { takeSocketError, watchReadable, type ReadableWatch } from '../sys/libc.js';
import { Stopwatch } from '../sys/stopwatch.js';

/** Where a data-path descriptor gets its readiness from. */
export interface ReadinessSource {
  watch(fd: number, onReadable: () => void): ReadableWatch;
}

interface Member {
  readonly onReadable: () => void;
  /** Error events in a row; one that cannot be cleared must not spin the loop. */
  recentErrors: number;
}

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
 */
export class ReadinessLoop implements ReadinessSource {
  private readonly set = new EpollSet(MAX_EVENTS);
  private readonly members = new Map<number, Member>();
  private readonly budgetMs: number;
  private readonly stopwatch = new Stopwatch();
  private readonly outer: ReadableWatch;
  private stopped = false;

  constructor(budgetMs: number) {
    this.budgetMs = budgetMs;
    this.outer = watchReadable(this.set.fd, () => this.run());
  }

  watch(fd: number, onReadable: () => void): ReadableWatch {
    this.set.add(fd);
    const member: Member = { onReadable, recentErrors: 0 };
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
      for (let i = 0; i < ready && !this.stopped; i++) this.dispatch(this.set.fdAt(i), this.set.flagsAt(i));
      timeoutMs = this.budgetMs - this.stopwatch.elapsedMs();
      if (timeoutMs <= 0) return;
    }
  }

  private dispatch(fd: number, flags: number): void {
    const member = this.members.get(fd);
    if (member === undefined) return; // stopped by an earlier handler in this round
    if ((flags & BROKEN) === 0) {
      member.recentErrors = 0;
      member.onReadable();
      return;
    }
    // ENETDOWN on a packet socket when its link goes down: reading SO_ERROR clears it, and the
    // socket works again when the link comes back. Frames already in the ring are still taken.
    takeSocketError(fd);
    if ((flags & READABLE) !== 0) member.onReadable();
    if (++member.recentErrors > ERRORS_BEFORE_BACKOFF && this.members.get(fd) === member) {
      this.set.remove(fd);
      setTimeout(() => {
        if (this.stopped || this.members.get(fd) !== member) return;
        member.recentErrors = 0;
        this.set.add(fd);
      }, ERROR_BACKOFF_MS);
    }
  }

  stop(): void {
    this.stopped = true;
    this.outer.stop();
    this.members.clear();
    this.set.close();
  }
}
