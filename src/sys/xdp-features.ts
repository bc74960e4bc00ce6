import { AF_INET, EINTR, SOCK_DGRAM, SOCK_RAW } from './constants.js';
import { SysError } from './errors.js';
import { allocateNative, lastErrno, libc } from './libc.js';
import { AF_NETLINK, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_REQUEST } from './netlink-messages.js';
import { closeFd, openSocket } from './socket.js';

// The XDP features a device's driver advertises now, as the kernel's "netdev" generic netlink
// family reports them (Linux 6.3+; `ynl --family netdev --do dev-get`). The kernel itself skips
// a broadcast's copy to a device without NDO_XMIT, so this is what decides whether an output can
// take redirected frames: a veth has it only while its peer has NAPI (an XDP program, or GRO).

const NETLINK_GENERIC = 16;
const GENL_ID_CTRL = 0x10;
const CTRL_CMD_GETFAMILY = 3;
const CTRL_ATTR_FAMILY_ID = 1;
const CTRL_ATTR_FAMILY_NAME = 2;
const NETDEV_CMD_DEV_GET = 1;
const NETDEV_A_DEV_IFINDEX = 1;
const NETDEV_A_DEV_XDP_FEATURES = 3;
const GENL_HDRLEN = 4;

/** NETDEV_XDP_ACT_* (include/uapi/linux/netdev.h). */
export const XDP_ACT_BASIC = 1n;
export const XDP_ACT_REDIRECT = 2n;
export const XDP_ACT_NDO_XMIT = 4n;

export interface XdpFeatures {
  /** The driver runs XDP programs natively (NETDEV_XDP_ACT_BASIC). */
  native: boolean;
  /** The device takes redirected frames now (NETDEV_XDP_ACT_NDO_XMIT). */
  ndoXmit: boolean;
}

const RECEIVE_SIZE = 8192;
const MSGHDR_SIZE = 56;
const IOVEC_SIZE = 16;
const DATA_OFFSET = MSGHDR_SIZE + IOVEC_SIZE;

/**
 * Asks the kernel for the XDP features of each ifindex; a device the family does not know (gone,
 * or a kernel without the family) is left out. One socket for all the questions, closed after.
 */
export function readXdpFeatures(ifindexes: readonly number[]): Map<number, XdpFeatures> {
  const result = new Map<number, XdpFeatures>();
  const fd = openSocket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC, 'generic netlink');
  const memory = allocateNative(DATA_OFFSET + RECEIVE_SIZE);
  try {
    const ask = (message: Uint8Array): DataView | undefined => {
      send(fd, message);
      return receive(fd, memory);
    };
    const family = ask(
      request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, stringAttribute(CTRL_ATTR_FAMILY_NAME, 'netdev')),
    );
    const id = family && findAttribute(family, CTRL_ATTR_FAMILY_ID);
    if (id === undefined || family === undefined) return result;
    const familyId = family.getUint16(id, true);
    for (const ifindex of ifindexes) {
      const reply = ask(request(familyId, NETDEV_CMD_DEV_GET, u32Attribute(NETDEV_A_DEV_IFINDEX, ifindex)));
      const at = reply && findAttribute(reply, NETDEV_A_DEV_XDP_FEATURES);
      if (at === undefined || reply === undefined) continue;
      const bits = reply.getBigUint64(at, true);
      result.set(ifindex, {
        native: (bits & XDP_ACT_BASIC) !== 0n,
        ndoXmit: (bits & XDP_ACT_NDO_XMIT) !== 0n,
      });
    }
    return result;
  } finally {
    memory.free();
    closeFd(fd);
  }
}

function request(type: number, command: number, attribute: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(NLMSG_HDRLEN + GENL_HDRLEN + attribute.byteLength);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, bytes.byteLength, true);
  view.setUint16(4, type, true);
  view.setUint16(6, NLM_F_REQUEST, true);
  view.setUint32(8, 1, true);
  bytes[NLMSG_HDRLEN] = command;
  bytes[NLMSG_HDRLEN + 1] = 1; // version
  bytes.set(attribute, NLMSG_HDRLEN + GENL_HDRLEN);
  return bytes;
}

function stringAttribute(type: number, value: string): Uint8Array {
  const text = Buffer.from(`${value}\0`);
  const bytes = new Uint8Array(4 + ((text.byteLength + 3) & ~3));
  new DataView(bytes.buffer).setUint16(0, 4 + text.byteLength, true);
  new DataView(bytes.buffer).setUint16(2, type, true);
  bytes.set(text, 4);
  return bytes;
}

function u32Attribute(type: number, value: number): Uint8Array {
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, 8, true);
  view.setUint16(2, type, true);
  view.setUint32(4, value >>> 0, true);
  return bytes;
}

function send(fd: number, message: Uint8Array): void {
  for (;;) {
    if ((libc.send(fd, message, message.byteLength, 0) as number) >= 0) return;
    const errno = lastErrno();
    if (errno !== EINTR) throw new SysError('send(generic netlink)', errno);
  }
}

/** The reply's generic netlink attributes as a view, or undefined when the kernel answered an error. */
function receive(fd: number, memory: ReturnType<typeof allocateNative>): DataView | undefined {
  const base = memory.address;
  const header = new DataView(memory.bytes.buffer, memory.bytes.byteOffset, DATA_OFFSET);
  header.setBigUint64(0, 0n, true);
  header.setUint32(8, 0, true);
  header.setBigUint64(16, BigInt(base + MSGHDR_SIZE), true);
  header.setBigUint64(24, 1n, true);
  header.setBigUint64(32, 0n, true);
  header.setBigUint64(40, 0n, true);
  header.setInt32(48, 0, true);
  header.setBigUint64(MSGHDR_SIZE, BigInt(base + DATA_OFFSET), true);
  header.setBigUint64(MSGHDR_SIZE + 8, BigInt(RECEIVE_SIZE), true);
  let n: number;
  for (;;) {
    n = libc.recvmsg(fd, base, 0) as number;
    if (n >= 0) break;
    const errno = lastErrno();
    if (errno !== EINTR) throw new SysError('recvmsg(generic netlink)', errno);
  }
  const bytes = memory.bytes.subarray(DATA_OFFSET, DATA_OFFSET + Math.min(n, RECEIVE_SIZE));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < NLMSG_HDRLEN + GENL_HDRLEN) return undefined;
  const length = Math.min(view.getUint32(0, true), bytes.byteLength);
  const type = view.getUint16(4, true);
  if (type === NLMSG_ERROR || type === NLMSG_DONE || length < NLMSG_HDRLEN + GENL_HDRLEN) return undefined;
  return new DataView(
    bytes.buffer,
    bytes.byteOffset + NLMSG_HDRLEN + GENL_HDRLEN,
    length - NLMSG_HDRLEN - GENL_HDRLEN,
  );
}

/** The offset of attribute `type`'s payload in `view`, if it has one of at least 2 bytes. */
function findAttribute(view: DataView, type: number): number | undefined {
  let at = 0;
  while (at + 4 <= view.byteLength) {
    const length = view.getUint16(at, true);
    if (length < 4 || at + length > view.byteLength) return undefined;
    if ((view.getUint16(at + 2, true) & 0x3fff) === type && length >= 6) return at + 4;
    at += (length + 3) & ~3;
  }
  return undefined;
}

const SIOCETHTOOL = 0x8946;
const ETHTOOL_GDRVINFO = 3;
const DRVINFO_SIZE = 196;

/**
 * The driver's name of an interface ("veth", "mlx5_core", …: ETHTOOL_GDRVINFO), or undefined when
 * the interface is gone or its driver does not answer.
 */
export function interfaceDriver(name: string): string | undefined {
  if (name.length === 0 || name.length > 15) return undefined;
  const fd = openSocket(AF_INET, SOCK_DGRAM, 0, 'ethtool query');
  const info = allocateNative(DRVINFO_SIZE);
  try {
    new DataView(info.bytes.buffer, info.bytes.byteOffset).setUint32(0, ETHTOOL_GDRVINFO, true);
    const request = new Uint8Array(40);
    request.set(new TextEncoder().encode(name));
    new DataView(request.buffer).setBigUint64(16, BigInt(info.address), true);
    if ((libc.ioctl(fd, SIOCETHTOOL, request) as number) < 0) return undefined;
    const driver = info.bytes.subarray(4, 36);
    const end = driver.indexOf(0);
    return new TextDecoder().decode(driver.subarray(0, end < 0 ? driver.byteLength : end));
  } finally {
    info.free();
    closeFd(fd);
  }
}
