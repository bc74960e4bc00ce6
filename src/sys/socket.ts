import { close, readFileSync } from 'node:fs';

import {
  AF_INET,
  F_GETFL,
  F_SETFL,
  IPPROTO_IP,
  IP_ADD_MEMBERSHIP,
  IP_DROP_MEMBERSHIP,
  IP_MULTICAST_ALL,
  MCAST_JOIN_SOURCE_GROUP,
  MCAST_LEAVE_SOURCE_GROUP,
  IP_MULTICAST_IF,
  IP_MULTICAST_LOOP,
  IP_MULTICAST_TTL,
  IP_TOS,
  O_NONBLOCK,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOL_SOCKET,
  SO_BINDTODEVICE,
  SO_REUSEADDR,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_SNDBUF,
  SO_SNDBUFFORCE,
} from './constants.js';
import { SysError } from './errors.js';
import { lastErrno, libc } from './libc.js';

/** Opens a socket or throws a SysError naming `purpose`. */
export function openSocket(domain: number, type: number, protocol: number, purpose: string): number {
  const fd = libc.socket(domain, type | SOCK_CLOEXEC, protocol) as number;
  if (fd < 0) throw new SysError(`socket(${purpose})`, lastErrno());
  return fd;
}

export function closeFd(fd: number): void {
  if (fd >= 0) libc.close(fd);
}

/**
 * Closes a descriptor on libuv's thread pool instead of the calling thread. Closing the last
 * reference to an AF_PACKET socket waits for an RCU grace period in the kernel (synchronize_net
 * in packet_release: about 7 ms measured here): done on the event loop of a worker it stalls the
 * data path, in the supervisor every other client. The number stays taken until the close has
 * run, so nothing can reuse it early. A failure is reported to `onError` (EBADF would be a bug).
 */
export function closeFdInBackground(fd: number, onError: (err: Error) => void = () => undefined): void {
  if (fd < 0) return;
  close(fd, (err) => {
    if (err) onError(err);
  });
}

export function setOption(fd: number, level: number, name: number, value: Uint8Array, what: string): void {
  if ((libc.setsockopt(fd, level, name, value, value.byteLength) as number) < 0) {
    throw new SysError(`setsockopt(${what})`, lastErrno());
  }
}

export function setIntOption(fd: number, level: number, name: number, value: number, what: string): void {
  const buf = new Uint8Array(4);
  new DataView(buf.buffer).setInt32(0, value, true);
  setOption(fd, level, name, buf, what);
}

const intValue = new Int32Array(1);

/**
 * setsockopt with an int value for code that runs while packets flow (a worker adjusting an
 * output socket): no allocation, no exception; returns 0 or the errno.
 */
export function trySetIntOption(fd: number, level: number, name: number, value: number): number {
  intValue[0] = value;
  return (libc.setsockopt(fd, level, name, intValue, 4) as number) < 0 ? lastErrno() : 0;
}

export function getOption(fd: number, level: number, name: number, size: number, what: string): Uint8Array {
  const buf = new Uint8Array(size);
  const len = new Uint32Array([size]);
  if ((libc.getsockopt(fd, level, name, buf, len) as number) < 0) {
    throw new SysError(`getsockopt(${what})`, lastErrno());
  }
  return buf.subarray(0, len[0]);
}

export function getIntOption(fd: number, level: number, name: number, what: string): number {
  const buf = getOption(fd, level, name, 4, what);
  return new DataView(buf.buffer, buf.byteOffset).getInt32(0, true);
}

export function setNonBlocking(fd: number): void {
  const flags = libc.fcntl(fd, F_GETFL, 0) as number;
  if (flags < 0 || (libc.fcntl(fd, F_SETFL, flags | O_NONBLOCK) as number) < 0) {
    throw new SysError('fcntl(O_NONBLOCK)', lastErrno());
  }
}

/** struct sockaddr_in for an IPv4 address held as an unsigned 32-bit number. */
export function sockaddrIn(address: number, port: number): Uint8Array {
  const buf = new Uint8Array(16);
  const view = new DataView(buf.buffer);
  view.setUint16(0, AF_INET, true);
  view.setUint16(2, port, false);
  view.setUint32(4, address >>> 0, false);
  return buf;
}

export function bindIpv4(fd: number, address: number, port: number): void {
  const sa = sockaddrIn(address, port);
  if ((libc.bind(fd, sa, sa.byteLength) as number) < 0) throw new SysError('bind(udp)', lastErrno());
}

export function connectIpv4(fd: number, address: number, port: number): void {
  const sa = sockaddrIn(address, port);
  if ((libc.connect(fd, sa, sa.byteLength) as number) < 0) throw new SysError('connect(udp)', lastErrno());
}

/**
 * Sets a socket buffer size. With `force` the privileged variant lifts the sysctl ceiling
 * (CAP_NET_ADMIN); without it the kernel caps the value at net.core.[rw]mem_max.
 */
export function setBufferSize(
  fd: number,
  direction: 'send' | 'receive',
  bytes: number,
  force: boolean,
): void {
  const name =
    direction === 'send' ? (force ? SO_SNDBUFFORCE : SO_SNDBUF) : force ? SO_RCVBUFFORCE : SO_RCVBUF;
  setIntOption(fd, SOL_SOCKET, name, bytes, `${force ? 'SO_*BUFFORCE' : 'SO_*BUF'} ${direction} ${bytes}`);
}

export function bufferSize(fd: number, direction: 'send' | 'receive'): number {
  return getIntOption(fd, SOL_SOCKET, direction === 'send' ? SO_SNDBUF : SO_RCVBUF, 'SO_*BUF');
}

export function bindToDevice(fd: number, interfaceName: string): void {
  const name = new TextEncoder().encode(`${interfaceName}\0`);
  setOption(fd, SOL_SOCKET, SO_BINDTODEVICE, name, `SO_BINDTODEVICE ${interfaceName}`);
}

export function setReuseAddress(fd: number): void {
  setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, 'SO_REUSEADDR');
}

/** struct ip_mreqn: group, local address (any), interface index. */
function ipMreqn(group: number, ifindex: number): Uint8Array {
  const buf = new Uint8Array(12);
  const view = new DataView(buf.buffer);
  view.setUint32(0, group >>> 0, false);
  view.setUint32(4, 0, false);
  view.setInt32(8, ifindex, true);
  return buf;
}

export function setMulticastInterface(fd: number, ifindex: number): void {
  setOption(fd, IPPROTO_IP, IP_MULTICAST_IF, ipMreqn(0, ifindex), `IP_MULTICAST_IF ${ifindex}`);
}

export function setMulticastTtl(fd: number, ttl: number): void {
  setIntOption(fd, IPPROTO_IP, IP_MULTICAST_TTL, ttl, `IP_MULTICAST_TTL ${ttl}`);
}

export function setMulticastLoop(fd: number, enabled: boolean): void {
  setIntOption(fd, IPPROTO_IP, IP_MULTICAST_LOOP, enabled ? 1 : 0, 'IP_MULTICAST_LOOP');
}

export function setTypeOfService(fd: number, tos: number): void {
  setIntOption(fd, IPPROTO_IP, IP_TOS, tos, `IP_TOS ${tos}`);
}

/** Joins a group on an interface: the kernel sends the IGMP report and opens the NIC's filter. */
export function joinGroup(fd: number, group: number, ifindex: number): void {
  setOption(
    fd,
    IPPROTO_IP,
    IP_ADD_MEMBERSHIP,
    ipMreqn(group, ifindex),
    `IP_ADD_MEMBERSHIP ifindex ${ifindex}`,
  );
}

/**
 * IP_MULTICAST_ALL: on (the kernel's default), a socket bound to the wildcard address receives
 * every group any socket of this namespace joined, for its port; off, only the groups it
 * joined itself.
 */
export function setMulticastAll(fd: number, enabled: boolean): void {
  setIntOption(fd, IPPROTO_IP, IP_MULTICAST_ALL, enabled ? 1 : 0, 'IP_MULTICAST_ALL');
}

/**
 * Groups one socket may join (net.ipv4.igmp_max_memberships of this network namespace; the
 * kernel refuses one more with ENOBUFS). 20, the kernel default, when it cannot be read.
 */
export function maxMembershipsPerSocket(): number {
  try {
    const n = Number(readFileSync('/proc/sys/net/ipv4/igmp_max_memberships', 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : 20;
  } catch {
    return 20;
  }
}

/** An ordinary UDP socket, close-on-exec. */
export function openUdpSocket(purpose: string): number {
  return openSocket(AF_INET, SOCK_DGRAM, 0, purpose);
}

/**
 * struct group_source_req (x86-64): the interface index, then the group and the source, each a
 * sockaddr_storage (128 bytes, 8-aligned) holding a sockaddr_in.
 */
function groupSourceRequest(group: number, source: number, ifindex: number): Uint8Array {
  const buf = new Uint8Array(264);
  const view = new DataView(buf.buffer);
  view.setUint32(0, ifindex, true);
  buf.set(sockaddrIn(group, 0), 8);
  buf.set(sockaddrIn(source, 0), 136);
  return buf;
}

/**
 * Joins a group for one sender only (IGMPv3 source-specific): the kernel reports INCLUDE(source)
 * and the interface passes that sender's traffic. A socket that joined the group for any source
 * cannot also join it for one (EINVAL): source joins live on sockets of their own.
 */
export function joinSourceGroup(fd: number, group: number, source: number, ifindex: number): void {
  setOption(
    fd,
    IPPROTO_IP,
    MCAST_JOIN_SOURCE_GROUP,
    groupSourceRequest(group, source, ifindex),
    `MCAST_JOIN_SOURCE_GROUP ifindex ${ifindex}`,
  );
}

export function leaveSourceGroup(fd: number, group: number, source: number, ifindex: number): void {
  setOption(
    fd,
    IPPROTO_IP,
    MCAST_LEAVE_SOURCE_GROUP,
    groupSourceRequest(group, source, ifindex),
    `MCAST_LEAVE_SOURCE_GROUP ifindex ${ifindex}`,
  );
}

/**
 * Sources one socket may join for one group (net.ipv4.igmp_max_msf of this network namespace;
 * the kernel refuses one more with ENOBUFS). 10, the kernel default, when it cannot be read.
 */
export function maxSourcesPerGroup(): number {
  try {
    const n = Number(readFileSync('/proc/sys/net/ipv4/igmp_max_msf', 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : 10;
  } catch {
    return 10;
  }
}

export function leaveGroup(fd: number, group: number, ifindex: number): void {
  setOption(
    fd,
    IPPROTO_IP,
    IP_DROP_MEMBERSHIP,
    ipMreqn(group, ifindex),
    `IP_DROP_MEMBERSHIP ifindex ${ifindex}`,
  );
}

/** The local port a socket is bound to (after connect, the one the kernel chose). */
export function localPort(fd: number): number {
  const sa = new Uint8Array(16);
  const len = new Uint32Array([16]);
  if ((libc.getsockname(fd, sa, len) as number) < 0) throw new SysError('getsockname', lastErrno());
  return new DataView(sa.buffer).getUint16(2, false);
}
