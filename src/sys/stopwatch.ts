import { SysError } from './errors.js';
import { allocateNative, lastErrno, libc } from './libc.js';

const CLOCK_MONOTONIC = 1;

/**
 * Elapsed time on CLOCK_MONOTONIC, in whole milliseconds, read without allocating:
 * performance.now() returns a heap-allocated double on every call that is not optimised away,
 * which in a loop that runs per wakeup is steady garbage. One FFI call (vDSO, ~40 ns) per read.
 */
export class Stopwatch {
  private readonly timespec = allocateNative(16);
  /** struct timespec: tv_sec (int64, the low half suffices for differences), tv_nsec at byte 8. */
  private readonly words = new Int32Array(this.timespec.bytes.buffer, this.timespec.bytes.byteOffset, 4);
  private startSeconds = 0;
  private startNanos = 0;

  start(): void {
    this.read();
    this.startSeconds = this.words[0]!;
    this.startNanos = this.words[2]!;
  }

  elapsedMs(): number {
    this.read();
    const seconds = (this.words[0]! - this.startSeconds) | 0;
    return seconds * 1000 + (((this.words[2]! - this.startNanos) / 1_000_000) | 0);
  }

  private read(): void {
    if ((libc.clockGettime(CLOCK_MONOTONIC, this.timespec.region.pointer) as number) < 0) {
      throw new SysError('clock_gettime(CLOCK_MONOTONIC)', lastErrno());
    }
  }
}
