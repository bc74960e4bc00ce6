import {
  AF_PACKET,
  ETH_P_IP,
  PACKET_FANOUT,
  PACKET_FANOUT_CPU,
  PACKET_FANOUT_HASH,
  PACKET_IGNORE_OUTGOING,
  PACKET_QDISC_BYPASS,
  PACKET_VNET_HDR,
  PACKET_STATISTICS,
  SOCK_RAW,
  SOL_PACKET,
} from './constants.js';
import { SysError } from './errors.js';
import { lastErrno, libc } from './libc.js';
import { getOption, openSocket, setIntOption } from './socket.js';

/**
 * Opens the ingress socket of one input interface: AF_PACKET bound to IPv4 frames of that
 * interface only. It is created with protocol 0 so it sees nothing until bound (an unbound
 * ETH_P_IP socket would briefly see every interface), and it ignores the host's own
 * transmissions so the relay never captures what it sent. Needs CAP_NET_RAW.
 */
export function openIngressSocket(ifindex: number, interfaceName: string): number {
  const fd = openSocket(AF_PACKET, SOCK_RAW, 0, `AF_PACKET ingress ${interfaceName}`);
  try {
    setIntOption(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1, 'PACKET_IGNORE_OUTGOING');
    bindPacketSocket(fd, ifindex, ETH_P_IP, interfaceName);
    return fd;
  } catch (err) {
    libc.close(fd);
    throw err;
  }
}

/** struct sockaddr_ll with family, protocol (network order) and interface index. */
function sockaddrLl(ifindex: number, protocol: number): Uint8Array {
  const buf = new Uint8Array(20);
  const view = new DataView(buf.buffer);
  view.setUint16(0, AF_PACKET, true);
  view.setUint16(2, protocol, false);
  view.setInt32(4, ifindex, true);
  return buf;
}

export function bindPacketSocket(fd: number, ifindex: number, protocol: number, interfaceName: string): void {
  const sa = sockaddrLl(ifindex, protocol);
  if ((libc.bind(fd, sa, sa.byteLength) as number) < 0) {
    throw new SysError(`bind(AF_PACKET ${interfaceName})`, lastErrno());
  }
}

export interface PacketStatistics {
  /** Frames the socket accepted since the last read. */
  packets: number;
  /** Frames the kernel dropped since the last read because the ring or buffer was full. */
  drops: number;
}

/** Reads and resets the kernel's counters for this socket (PACKET_STATISTICS resets on read). */
export function readPacketStatistics(fd: number): PacketStatistics {
  const buf = getOption(fd, SOL_PACKET, PACKET_STATISTICS, 8, 'PACKET_STATISTICS');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return { packets: view.getUint32(0, true), drops: view.getUint32(4, true) };
}

/**
 * Joins a socket to a fanout group: the kernel spreads the interface's frames over the group's
 * sockets (one per worker). Hash mode keeps each flow on one socket, so its order holds. Must
 * follow bind; every member uses the same id and mode.
 */
export function joinFanoutGroup(fd: number, groupId: number, mode: 'hash' | 'cpu'): void {
  const type = mode === 'hash' ? PACKET_FANOUT_HASH : PACKET_FANOUT_CPU;
  setIntOption(
    fd,
    SOL_PACKET,
    PACKET_FANOUT,
    (groupId & 0xffff) | (type << 16),
    `PACKET_FANOUT ${mode} ${groupId}`,
  );
}

/**
 * Opens an AF_PACKET socket for sending whole Ethernet frames out of one interface (tools and
 * tests that need frames the IP stack would never build). Needs CAP_NET_RAW.
 */
export function openFrameSender(ifindex: number, interfaceName: string): number {
  const fd = openSocket(AF_PACKET, SOCK_RAW, 0, `AF_PACKET frame sender ${interfaceName}`);
  try {
    bindPacketSocket(fd, ifindex, 0, interfaceName);
    return fd;
  } catch (err) {
    libc.close(fd);
    throw err;
  }
}

/** Sends one complete frame as is. */
export function sendFrame(fd: number, frame: Uint8Array): void {
  if ((libc.send(fd, frame, frame.byteLength, 0) as number) < 0) {
    throw new SysError('send(AF_PACKET frame)', lastErrno());
  }
}

/**
 * Opens the raw egress socket of one output interface: whole frames written by the caller go out
 * as they are. Bound with protocol 0, so it receives nothing. Every frame starts with a
 * virtio_net_hdr (PACKET_VNET_HDR) that asks the device, or the kernel if the device cannot, to
 * fill in the UDP checksum. `qdiscBypass` skips the queueing discipline (PACKET_QDISC_BYPASS):
 * no traffic shaping, and no queue to absorb bursts. Needs CAP_NET_RAW.
 */
export function openRawEgressSocket(ifindex: number, interfaceName: string, qdiscBypass: boolean): number {
  const fd = openSocket(AF_PACKET, SOCK_RAW, 0, `AF_PACKET egress ${interfaceName}`);
  try {
    setIntOption(fd, SOL_PACKET, PACKET_VNET_HDR, 1, 'PACKET_VNET_HDR');
    if (qdiscBypass) setIntOption(fd, SOL_PACKET, PACKET_QDISC_BYPASS, 1, 'PACKET_QDISC_BYPASS');
    bindPacketSocket(fd, ifindex, 0, interfaceName);
    return fd;
  } catch (err) {
    libc.close(fd);
    throw err;
  }
}
