import {
  AF_PACKET,
  ETH_P_8021AD,
  ETH_P_8021Q,
  ETH_P_ALL,
  ETH_P_IP,
  PACKET_FANOUT,
  PACKET_FANOUT_FLAG_UNIQUEID,
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
import { getIntOption, getOption, openSocket, setIntOption } from './socket.js';
import { type RingGeometry, setUpRxRing } from './rx-ring.js';
import type { FilterInstruction } from './classic-bpf.js';
import { acceptArriving, attachFilter, dropAll } from './socket-filter.js';

/**
 * What an ingress socket sees, by the protocol the kernel gives a frame once it has taken the
 * outer VLAN tag off (it reports that tag beside the frame): IPv4, tagged or not; and frames
 * with more tags than that one (802.1ad QinQ, stacked 802.1Q), whose protocol is then the next
 * tag's type. A socket bound to ETH_P_IP alone would never see the last kind, so they would be
 * in no counter; with this filter the worker counts them (too_many_vlan_tags).
 */
const INGRESS_PROTOCOLS = [ETH_P_IP, ETH_P_8021Q, ETH_P_8021AD] as const;

/**
 * Opens the ingress socket of one input interface: AF_PACKET on that interface only, for the
 * frames INGRESS_PROTOCOLS names. It is created with protocol 0 so it sees nothing until bound
 * (an unbound socket would briefly see every interface), the filter is in place before it is
 * bound, and it ignores the host's own transmissions (the option for a lone socket, the filter
 * once it is in a fanout group) so the relay never captures what it sent.
 * Needs CAP_NET_RAW.
 */
export function openIngressSocket(ifindex: number, interfaceName: string): number {
  const fd = openUnboundIngress(interfaceName, acceptArriving(INGRESS_PROTOCOLS));
  try {
    bindPacketSocket(fd, ifindex, ETH_P_ALL, interfaceName);
    return fd;
  } catch (err) {
    libc.close(fd);
    throw err;
  }
}

/**
 * The ingress sockets of one input interface, one per worker, all or nothing: each as
 * openIngressSocket describes, with its receive ring set up before it is bound and, when there
 * are several, in one new fanout group, joined in worker order.
 *
 * Why the ring comes first: setting up a ring on a socket in a group unhooks it and hooks it
 * again at the end of the group, so rings set up by the workers would order the group by
 * whichever worker came first. Set up here, every group of an interface has its sockets in
 * worker order and the same size, so the kernel sends a flow to the same worker in each (an
 * MTU handover relies on that: worker/ring-handover.ts).
 *
 * They come back refusing every frame (acceptFrames lets them take theirs): while a socket is
 * bound but not yet in the group it gets every frame of the interface on its own, and with a
 * ring those would be read, twice over.
 */
export function openIngressGroup(
  ifindex: number,
  interfaceName: string,
  count: number,
  mode: 'hash' | 'cpu',
  geometry: RingGeometry,
): number[] {
  const fds: number[] = [];
  try {
    let group = 0;
    for (let w = 0; w < count; w++) {
      const fd = openUnboundIngress(interfaceName, dropAll());
      fds.push(fd);
      setUpRxRing(fd, geometry);
      bindPacketSocket(fd, ifindex, ETH_P_ALL, interfaceName);
      if (count === 1) continue;
      if (w === 0) group = createFanoutGroup(fd, mode);
      else joinFanoutGroup(fd, group, mode);
    }
    return fds;
  } catch (err) {
    for (const fd of fds) libc.close(fd);
    throw err;
  }
}

/** An ingress socket takes the frames openIngressSocket describes from now on. */
export function acceptFrames(fd: number, interfaceName: string): void {
  attachFilter(fd, acceptArriving(INGRESS_PROTOCOLS), `ingress ${interfaceName}`);
}

/** An ingress socket takes no more frames; it stays bound (and in its fanout group). */
export function refuseFrames(fd: number, interfaceName: string): void {
  attachFilter(fd, dropAll(), `ingress ${interfaceName} (closing)`);
}

/** An AF_PACKET socket that sees nothing until bound, ignores the host's own frames, and has `filter`. */
function openUnboundIngress(interfaceName: string, filter: FilterInstruction[]): number {
  const fd = openSocket(AF_PACKET, SOCK_RAW, 0, `AF_PACKET ingress ${interfaceName}`);
  try {
    setIntOption(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1, 'PACKET_IGNORE_OUTGOING');
    attachFilter(fd, filter, `ingress ${interfaceName}`);
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
 * Makes a socket the first member of a new fanout group: the kernel spreads the interface's
 * frames over the group's sockets (one per worker). Hash mode keeps each flow on one socket, so
 * its order holds. The kernel picks an id no other group of this network namespace uses
 * (PACKET_FANOUT_FLAG_UNIQUEID), so two relays, or two generations of one input's sockets,
 * never share a group by accident. Must follow bind. Returns the id for joinFanoutGroup.
 */
export function createFanoutGroup(fd: number, mode: 'hash' | 'cpu'): number {
  const type = fanoutType(mode);
  setIntOption(
    fd,
    SOL_PACKET,
    PACKET_FANOUT,
    (type | PACKET_FANOUT_FLAG_UNIQUEID) << 16,
    `PACKET_FANOUT ${mode} new`,
  );
  return getIntOption(fd, SOL_PACKET, PACKET_FANOUT, 'PACKET_FANOUT') & 0xffff;
}

/** Joins a socket to the group createFanoutGroup made; every member uses the same mode. */
export function joinFanoutGroup(fd: number, groupId: number, mode: 'hash' | 'cpu'): void {
  setIntOption(
    fd,
    SOL_PACKET,
    PACKET_FANOUT,
    (groupId & 0xffff) | (fanoutType(mode) << 16),
    `PACKET_FANOUT ${mode} ${groupId}`,
  );
}

function fanoutType(mode: 'hash' | 'cpu'): number {
  return mode === 'hash' ? PACKET_FANOUT_HASH : PACKET_FANOUT_CPU;
}

/**
 * Opens an AF_PACKET socket for sending whole Ethernet frames out of one interface (mcrgen send
 * --raw, and tests that need frames the IP stack would never build). Bound with protocol 0, so
 * it receives nothing and adds no tap to the interface's receive path. `qdiscBypass` hands
 * frames straight to the driver (PACKET_QDISC_BYPASS): a full device queue then refuses a frame
 * (ENOBUFS) where a qdisc would have held it. Needs CAP_NET_RAW.
 */
export function openFrameSender(ifindex: number, interfaceName: string, qdiscBypass = false): number {
  const fd = openSocket(AF_PACKET, SOCK_RAW, 0, `AF_PACKET frame sender ${interfaceName}`);
  try {
    if (qdiscBypass) setIntOption(fd, SOL_PACKET, PACKET_QDISC_BYPASS, 1, 'PACKET_QDISC_BYPASS');
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
