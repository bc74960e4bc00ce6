import {
  EINTR,
  EPOLLERR,
  EPOLLHUP,
  EPOLLIN,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
} from './constants.js';
import { SysError } from './errors.js';
import { allocateNative, lastErrno, libc, type NativeMemory } from './libc.js';

// struct epoll_event is packed on x86-64 (u32 events, u64 data: 12 bytes) and naturally aligned
// elsewhere (16 bytes, data at 8). Either way every field sits on a 4-byte boundary, so the
// event array is read as 32-bit words with no DataView and no allocation.
const PACKED = process.arch === 'x64';
const EVENT_SIZE = PACKED ? 12 : 16;
const STRIDE_WORDS = EVENT_SIZE / 4;
const DATA_WORD = PACKED ? 1 : 2;

/** Readiness flags of one event, as epoll reports them. */
export const READABLE = EPOLLIN;
export const BROKEN = EPOLLERR | EPOLLHUP;

/**
 * An epoll set of descriptors watched for readability (level-triggered). `wait` blocks in the
 * kernel, then `fdAt(i)` / `flagsAt(i)` read the i-th ready descriptor out of a fixed native
 * array: nothing is allocated per wait.
 */
export class EpollSet {
  /** The epoll descriptor: itself readable while any member is ready, so it can be nested. */
  readonly fd: number;
  private readonly capacity: number;
  private readonly events: NativeMemory;
  private readonly words: Uint32Array;
  /** One event for epoll_ctl, kept so adding a member allocates nothing native. */
  private readonly request: NativeMemory;
  private readonly requestWords: Uint32Array;

  constructor(capacity: number) {
    const fd = libc.epollCreate1(EPOLL_CLOEXEC) as number;
    if (fd < 0) throw new SysError('epoll_create1', lastErrno());
    this.fd = fd;
    this.capacity = capacity;
    this.events = allocateNative(capacity * EVENT_SIZE);
    this.words = new Uint32Array(
      this.events.bytes.buffer,
      this.events.bytes.byteOffset,
      capacity * STRIDE_WORDS,
    );
    this.request = allocateNative(EVENT_SIZE);
    this.requestWords = new Uint32Array(
      this.request.bytes.buffer,
      this.request.bytes.byteOffset,
      STRIDE_WORDS,
    );
  }

  /** Watches `fd` for readability; errors and hang-ups are always reported with it. */
  add(fd: number): void {
    this.requestWords[0] = EPOLLIN;
    this.requestWords[DATA_WORD] = fd;
    this.requestWords[DATA_WORD + 1] = 0;
    if ((libc.epollCtl(this.fd, EPOLL_CTL_ADD, fd, this.request.region.pointer) as number) < 0) {
      throw new SysError(`epoll_ctl(add fd ${fd})`, lastErrno());
    }
  }

  /** Stops watching `fd`. Closing a descriptor removes it too; this is for one that stays open. */
  remove(fd: number): void {
    libc.epollCtl(this.fd, EPOLL_CTL_DEL, fd, this.request.region.pointer);
  }

  /**
   * Blocks until a member is ready or `timeoutMs` passes (0: just look). Returns how many are
   * ready; an interrupting signal counts as none. Costs one syscall and one FFI call (~20 ns).
   */
  wait(timeoutMs: number): number {
    const ready = libc.epollWait(this.fd, this.events.region.pointer, this.capacity, timeoutMs) as number;
    if (ready >= 0) return ready;
    const errno = lastErrno();
    if (errno === EINTR) return 0;
    throw new SysError('epoll_wait', errno);
  }

  fdAt(index: number): number {
    return this.words[index * STRIDE_WORDS + DATA_WORD]!;
  }

  flagsAt(index: number): number {
    return this.words[index * STRIDE_WORDS]!;
  }

  close(): void {
    libc.close(this.fd);
    this.events.free();
    this.request.free();
  }
}
