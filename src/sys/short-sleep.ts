import { SysError } from './errors.js';
import { lastErrno, libc } from './libc.js';

const PR_SET_TIMERSLACK = 29;

/**
 * Sleeps about `microseconds` in the kernel, whatever the descriptors are doing (usleep; an
 * interrupting signal ends it early, which only shortens the pause). One FFI call, no allocation.
 */
export function sleepMicroseconds(microseconds: number): void {
  libc.usleep(microseconds);
}

/**
 * How late the kernel may end this thread's sleeps, in nanoseconds (PR_SET_TIMERSLACK). The
 * default 50 µs would stretch a 50-µs pause to 100 µs.
 */
export function setTimerSlack(nanoseconds: number): void {
  if ((libc.prctl(PR_SET_TIMERSLACK, nanoseconds, 0, 0, 0) as number) < 0)
    throw new SysError('prctl(PR_SET_TIMERSLACK)', lastErrno());
}
