import { EAGAIN, EINTR, MSG_DONTWAIT, MSG_TRUNC, SOCK_NONBLOCK, SOCK_RAW } from './constants.js';
import { SysError } from './errors.js';
import { allocateNative, lastErrno, libc } from './libc.js';
import {
  AF_NETLINK,
  DumpSequencer,
  NETLINK_ROUTE,
  RTMGRP_IPV4_IFADDR,
  RTMGRP_LINK,
  parseNetlinkDatagram,
  type InterfaceEvent,
  type NetlinkReply,
} from './netlink-messages.js';
import { closeFd, openSocket, setBufferSize } from './socket.js';

export {
  parseNetlinkDatagram,
  type AddressEvent,
  type DumpDoneEvent,
  type InterfaceEvent,
  type LinkEvent,
  type OverflowEvent,
} from './netlink-messages.js';

const ENOBUFS = 105;

/** Larger than any datagram the kernel builds for a dump (it caps them at 32 KiB) or a notification. */
const RECEIVE_SIZE = 64 * 1024;
/** Room for a burst of a few thousand link/address notifications before the kernel drops any. */
const DEFAULT_RECEIVE_BUFFER = 4 * 1024 * 1024;

// struct msghdr (64-bit) followed by one struct iovec, then the datagram buffer.
const MSGHDR_SIZE = 56;
const IOVEC_SIZE = 16;
const DATA_OFFSET = MSGHDR_SIZE + IOVEC_SIZE;

export interface InterfaceEventSource {
  /** The netlink socket, to watch for readability (watchReadable); read() when it is readable. */
  readonly fd: number;
  /**
   * Asks the kernel for every link and every IPv4 address. They arrive through read() as ordinary
   * events, followed by `dump-done`. Asking while a dump runs makes it run again once it ends.
   */
  requestDump(): void;
  /** Every event available now, without blocking; [] when none (or after close). */
  read(): InterfaceEvent[];
  close(): void;
}

export interface InterfaceEventOptions {
  /** Socket receive buffer; events beyond it are lost and reported as `overflow`. */
  receiveBufferBytes?: number;
}

/**
 * Opens an rtnetlink socket subscribed to link changes and IPv4 address changes. Setting a buffer
 * above net.core.rmem_max needs CAP_NET_ADMIN; without it the socket gets what the sysctl allows.
 */
export function openInterfaceEvents(options: InterfaceEventOptions = {}): InterfaceEventSource {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    // Netlink headers are in host order and the parser reads them as little-endian.
    throw new Error('rtnetlink parsing assumes a little-endian host');
  }
  const fd = openSocket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK, NETLINK_ROUTE, 'rtnetlink');
  try {
    const bufferBytes = options.receiveBufferBytes ?? DEFAULT_RECEIVE_BUFFER;
    try {
      setBufferSize(fd, 'receive', bufferBytes, true);
    } catch {
      setBufferSize(fd, 'receive', bufferBytes, false);
    }
    // struct sockaddr_nl: family u16, pad u16, pid u32 (0: the kernel picks one), groups u32.
    const address = new Uint8Array(12);
    const view = new DataView(address.buffer);
    view.setUint16(0, AF_NETLINK, true);
    view.setUint32(8, RTMGRP_LINK | RTMGRP_IPV4_IFADDR, true);
    if ((libc.bind(fd, address, address.byteLength) as number) < 0) {
      throw new SysError('bind(rtnetlink)', lastErrno());
    }
  } catch (err) {
    closeFd(fd);
    throw err;
  }
  return new NetlinkInterfaceEvents(fd);
}

class NetlinkInterfaceEvents implements InterfaceEventSource {
  readonly fd: number;
  private readonly memory = allocateNative(DATA_OFFSET + RECEIVE_SIZE);
  private readonly header: DataView;
  private readonly dumps = new DumpSequencer();
  private readonly replies: NetlinkReply[] = [];
  private closed = false;

  constructor(fd: number) {
    this.fd = fd;
    const { bytes } = this.memory;
    this.header = new DataView(bytes.buffer, bytes.byteOffset, DATA_OFFSET);
  }

  requestDump(): void {
    if (this.closed) throw new Error('rtnetlink socket is closed');
    const request = this.dumps.start();
    if (request === undefined) return;
    try {
      this.send(request);
    } catch (err) {
      this.dumps.abandon();
      throw err;
    }
  }

  read(): InterfaceEvent[] {
    const events: InterfaceEvent[] = [];
    if (this.closed) return events;
    for (;;) {
      this.prepareHeader();
      const n = libc.recvmsg(this.fd, this.memory.address, MSG_DONTWAIT) as number;
      if (n < 0) {
        const errno = lastErrno();
        if (errno === EAGAIN) break;
        if (errno === EINTR) continue;
        // The kernel dropped notifications for us; the queue still holds what came before and after.
        if (errno === ENOBUFS) {
          events.push({ kind: 'overflow' });
          continue;
        }
        throw new SysError('recvmsg(rtnetlink)', errno);
      }
      if (n === 0) break;
      if (this.header.getInt32(48, true) & MSG_TRUNC) {
        // The rest of the datagram is gone; whatever it said is lost like an overrun.
        events.push({ kind: 'overflow' });
      }
      const length = Math.min(n, RECEIVE_SIZE);
      parseNetlinkDatagram(
        this.memory.bytes.subarray(DATA_OFFSET, DATA_OFFSET + length),
        events,
        this.replies,
      );
      this.handleReplies(events);
    }
    return events;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeFd(this.fd);
    this.memory.free();
  }

  /** Moves the dump along: the end of the link dump starts the address dump, and so on. */
  private handleReplies(events: InterfaceEvent[]): void {
    for (const reply of this.replies) {
      const next = this.dumps.handle(reply, events);
      if (next === undefined) continue;
      try {
        this.send(next);
      } catch {
        // The dump cannot go on; the caller's view is incomplete, which `overflow` asks it to repair.
        this.dumps.abandon();
        events.push({ kind: 'overflow' });
      }
    }
    this.replies.length = 0;
  }

  private send(request: Uint8Array): void {
    for (;;) {
      // Unaddressed: an unconnected netlink socket sends to the kernel.
      if ((libc.send(this.fd, request, request.byteLength, 0) as number) >= 0) return;
      const errno = lastErrno();
      if (errno !== EINTR) throw new SysError('send(rtnetlink dump request)', errno);
    }
  }

  private prepareHeader(): void {
    const base = this.memory.address;
    const v = this.header;
    v.setBigUint64(0, 0n, true); // msg_name: the sender is always the kernel
    v.setUint32(8, 0, true);
    v.setBigUint64(16, BigInt(base + MSGHDR_SIZE), true); // msg_iov
    v.setBigUint64(24, 1n, true); // msg_iovlen
    v.setBigUint64(32, 0n, true); // msg_control
    v.setBigUint64(40, 0n, true);
    v.setInt32(48, 0, true); // msg_flags
    v.setBigUint64(MSGHDR_SIZE, BigInt(base + DATA_OFFSET), true);
    v.setBigUint64(MSGHDR_SIZE + 8, BigInt(RECEIVE_SIZE), true);
  }
}
