import { SysError } from '../../src/sys/errors.js';
import { FdChannel } from '../../src/sys/fd-channel.js';
import { lastErrno, libc } from '../../src/sys/libc.js';
import { closeFd } from '../../src/sys/socket.js';

// x86-64 system call numbers (Linux 5.3 and 5.6).
const SYS_PIDFD_OPEN = 434;
const SYS_PIDFD_GETFD = 438;
/** A worker's end of its channel to mcrd (mcrd-worker.ts). */
const WORKER_CHANNEL_FD = 3;

/**
 * The worker end of a running worker's channel, taken from it with pidfd_getfd (root may): what
 * a compromised worker could write there, a test can write too, without changing the worker.
 * Close it when done.
 */
export function workerChannelOf(pid: number): FdChannel {
  const pidfd = libc.syscall(SYS_PIDFD_OPEN, 'int', pid, 'unsigned int', 0) as number;
  if (pidfd < 0) throw new SysError(`pidfd_open(${pid})`, lastErrno());
  try {
    const fd = libc.syscall(
      SYS_PIDFD_GETFD,
      'int',
      pidfd,
      'int',
      WORKER_CHANNEL_FD,
      'unsigned int',
      0,
    ) as number;
    if (fd < 0) throw new SysError(`pidfd_getfd(${pid}, ${WORKER_CHANNEL_FD})`, lastErrno());
    return new FdChannel(fd);
  } finally {
    closeFd(pidfd);
  }
}

/**
 * Sends `messages` copies of `data` without blocking; stops early when the channel is full or
 * mcrd has closed it (it replaced the worker). Returns how many went.
 */
export function flood(channel: FdChannel, data: Uint8Array, messages: number): number {
  for (let i = 0; i < messages; i++) {
    try {
      if (!channel.trySend(data)) return i;
    } catch (err) {
      if (err instanceof SysError && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) return i;
      throw err;
    }
  }
  return messages;
}
