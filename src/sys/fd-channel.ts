import {
  AF_UNIX,
  EAGAIN,
  EINTR,
  MSG_CMSG_CLOEXEC,
  MSG_CTRUNC,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  MSG_TRUNC,
  SCM_RIGHTS,
  SOCK_CLOEXEC,
  SOCK_SEQPACKET,
  SOL_SOCKET,
} from './constants.js';
import { SysError } from './errors.js';

/** fcntl(2): duplicate to the lowest free number, close-on-exec (not in constants.ts: only used here). */
const F_DUPFD_CLOEXEC = 1030;
/** ioctl(2) SIOCOUTQ (= TIOCOUTQ): on a Unix socket, the bytes sent that the peer has not read yet. */
const SIOCOUTQ = 0x5411;
import { allocateNative, lastErrno, libc, type NativeMemory } from './libc.js';
import { setBufferSize } from './socket.js';

/** The largest message a channel carries; senders split bigger payloads. */
export const MAX_CHANNEL_MESSAGE = 256 * 1024;
/** The most descriptors one message carries. */
export const MAX_CHANNEL_FDS = 64;

/**
 * A pair of connected SOCK_SEQPACKET sockets: message boundaries are kept by the kernel and file
 * descriptors travel with a message as SCM_RIGHTS. Both ends are close-on-exec; a child gets its
 * end by being spawned with it in its stdio list.
 */
export function createChannelPair(): [number, number] {
  const sv = new Int32Array(2);
  if ((libc.socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) as number) < 0) {
    throw new SysError('socketpair(worker channel)', lastErrno());
  }
  for (const fd of sv) {
    try {
      setBufferSize(fd, 'send', 4 * MAX_CHANNEL_MESSAGE, true);
    } catch {
      // Unprivileged callers keep the default buffer: messages still fit (one at a time).
      setBufferSize(fd, 'send', 4 * MAX_CHANNEL_MESSAGE, false);
    }
  }
  return [sv[0]!, sv[1]!];
}

export interface ChannelMessage {
  data: Uint8Array;
  fds: number[];
}

// struct msghdr offsets (64-bit) and the cmsghdr header size.
const MSGHDR_SIZE = 56;
const CMSG_HEADER = 16;

/**
 * One end of a channel: sends and receives whole messages with optional descriptors, using native
 * buffers allocated once. Not for the packet path; for commands, rule syncs and stats.
 */
export class FdChannel {
  private closed = false;
  readonly fd: number;
  private readonly memory: NativeMemory;
  private readonly view: DataView;
  private readonly dataOffset: number;
  private readonly controlOffset: number;
  private readonly controlCapacity: number;

  constructor(fd: number) {
    this.fd = fd;
    this.controlCapacity = CMSG_HEADER + MAX_CHANNEL_FDS * 4;
    this.controlOffset = MSGHDR_SIZE + 16;
    this.dataOffset = this.controlOffset + this.controlCapacity;
    this.memory = allocateNative(this.dataOffset + MAX_CHANNEL_MESSAGE);
    this.view = new DataView(
      this.memory.bytes.buffer,
      this.memory.bytes.byteOffset,
      this.memory.bytes.byteLength,
    );
  }

  /**
   * Sends one message. Throws a SysError if the peer is gone, or (with `wait` false) EAGAIN when
   * the peer's queue is full: a supervisor must not hang on a stopped worker.
   */
  send(data: Uint8Array, fds: readonly number[] = [], wait = true): void {
    if (data.byteLength > MAX_CHANNEL_MESSAGE) {
      throw new RangeError(`channel message of ${data.byteLength} bytes exceeds ${MAX_CHANNEL_MESSAGE}`);
    }
    if (fds.length > MAX_CHANNEL_FDS)
      throw new RangeError(`${fds.length} descriptors exceed ${MAX_CHANNEL_FDS}`);
    this.memory.bytes.set(data, this.dataOffset);
    const controlLength = fds.length > 0 ? CMSG_HEADER + align8(fds.length * 4) : 0;
    if (fds.length > 0) {
      const c = this.controlOffset;
      this.view.setBigUint64(c, BigInt(CMSG_HEADER + fds.length * 4), true);
      this.view.setInt32(c + 8, SOL_SOCKET, true);
      this.view.setInt32(c + 12, SCM_RIGHTS, true);
      fds.forEach((fd, i) => this.view.setInt32(c + CMSG_HEADER + i * 4, fd, true));
    }
    this.prepareHeader(data.byteLength, controlLength);
    for (;;) {
      const n = libc.sendmsg(
        this.fd,
        this.memory.address,
        MSG_NOSIGNAL | (wait ? 0 : MSG_DONTWAIT),
      ) as number;
      if (n >= 0) return;
      const errno = lastErrno();
      if (errno !== EINTR) throw new SysError('sendmsg(worker channel)', errno);
    }
  }

  /**
   * Sends one message without blocking: false when the peer's queue is full (EAGAIN), so the
   * caller can keep it and try again once the channel is writable. Throws a SysError for any
   * other failure (EPIPE or ECONNRESET: the peer is gone).
   */
  trySend(data: Uint8Array, fds: readonly number[] = []): boolean {
    try {
      this.send(data, fds, false);
      return true;
    } catch (err) {
      if (err instanceof SysError && err.errno === EAGAIN) return false;
      throw err;
    }
  }

  /**
   * Bytes this end has sent that the peer has not read yet (kernel accounting: each waiting
   * message counts with its overhead). Falling means the peer reads.
   */
  unread(): number {
    const amount = new Int32Array(1);
    if ((libc.ioctl(this.fd, SIOCOUTQ, amount) as number) < 0) {
      throw new SysError('ioctl(SIOCOUTQ, worker channel)', lastErrno());
    }
    return amount[0]!;
  }

  /**
   * Receives one message without blocking. Returns undefined when none is waiting, null when the
   * peer closed its end. Descriptors arrive close-on-exec and belong to the caller.
   */
  receive(): ChannelMessage | null | undefined {
    this.prepareHeader(MAX_CHANNEL_MESSAGE, this.controlCapacity);
    let n: number;
    for (;;) {
      n = libc.recvmsg(this.fd, this.memory.address, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) as number;
      if (n >= 0) break;
      const errno = lastErrno();
      if (errno === EAGAIN) return undefined;
      if (errno !== EINTR) throw new SysError('recvmsg(worker channel)', errno);
    }
    if (n === 0) return null;
    const flags = this.view.getInt32(48, true);
    const fds = this.readDescriptors();
    if (flags & (MSG_TRUNC | MSG_CTRUNC)) {
      for (const fd of fds) libc.close(fd);
      throw new RangeError('worker channel message was truncated (larger than the receive buffer)');
    }
    return { data: this.memory.bytes.slice(this.dataOffset, this.dataOffset + n), fds };
  }

  /** Closes the descriptor once: a second close could hit an unrelated descriptor that reused the number. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
    this.memory.free();
  }

  private prepareHeader(dataLength: number, controlLength: number): void {
    const base = this.memory.address;
    const v = this.view;
    const iov = MSGHDR_SIZE;
    v.setBigUint64(0, 0n, true); // msg_name
    v.setUint32(8, 0, true);
    v.setBigUint64(16, BigInt(base + iov), true); // msg_iov
    v.setBigUint64(24, 1n, true); // msg_iovlen
    v.setBigUint64(32, controlLength > 0 ? BigInt(base + this.controlOffset) : 0n, true);
    v.setBigUint64(40, BigInt(controlLength), true);
    v.setInt32(48, 0, true);
    v.setBigUint64(iov, BigInt(base + this.dataOffset), true);
    v.setBigUint64(iov + 8, BigInt(dataLength), true);
  }

  private readDescriptors(): number[] {
    const fds: number[] = [];
    const controlLength = Number(this.view.getBigUint64(40, true));
    let c = 0;
    while (c + CMSG_HEADER <= controlLength) {
      const at = this.controlOffset + c;
      const length = Number(this.view.getBigUint64(at, true));
      if (length < CMSG_HEADER) break;
      const level = this.view.getInt32(at + 8, true);
      const type = this.view.getInt32(at + 12, true);
      if (level === SOL_SOCKET && type === SCM_RIGHTS) {
        for (let i = 0; i < (length - CMSG_HEADER) / 4; i++)
          fds.push(this.view.getInt32(at + CMSG_HEADER + i * 4, true));
      }
      c += CMSG_HEADER + align8(length - CMSG_HEADER);
    }
    return fds;
  }
}

/**
 * A second descriptor for the same open file, close-on-exec. A message that waits for room on a
 * channel holds copies of its descriptors: their owner may close its own meanwhile, and the
 * number could be reused for something else by the time the message goes.
 */
export function duplicateDescriptor(fd: number): number {
  const copy = libc.fcntl(fd, F_DUPFD_CLOEXEC, 0) as number;
  if (copy < 0) throw new SysError(`fcntl(F_DUPFD_CLOEXEC, descriptor ${fd})`, lastErrno());
  return copy;
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
