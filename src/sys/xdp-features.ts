import { AF_INET, SOCK_DGRAM } from './constants.js';
import { findAttribute, GenericNetlink, genlRequest, u32Attribute } from './generic-netlink.js';
import { allocateNative, libc } from './libc.js';
import { closeFd, openSocket } from './socket.js';

// The XDP features a device's driver advertises now, as the kernel's "netdev" generic netlink
// family reports them (Linux 6.3+; `ynl --family netdev --do dev-get`). The kernel itself skips
// a broadcast's copy to a device without NDO_XMIT, so this is what decides whether an output can
// take redirected frames: a veth has it only while its peer has NAPI (an XDP program, or GRO).

export const NETDEV_FAMILY = 'netdev';
const NETDEV_CMD_DEV_GET = 1;
export const NETDEV_A_DEV_IFINDEX = 1;
const NETDEV_A_DEV_XDP_FEATURES = 3;

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

/**
 * Asks the kernel for the XDP features of each ifindex; a device the family does not know (gone,
 * or a kernel without the family) is left out. One socket for all the questions, closed after.
 */
export function readXdpFeatures(ifindexes: readonly number[]): Map<number, XdpFeatures> {
  const result = new Map<number, XdpFeatures>();
  const genl = GenericNetlink.open();
  try {
    const family = genl.family(NETDEV_FAMILY);
    if (family === undefined) return result;
    for (const ifindex of ifindexes) {
      const reply = genl.ask(
        genlRequest(family.id, NETDEV_CMD_DEV_GET, u32Attribute(NETDEV_A_DEV_IFINDEX, ifindex)),
      );
      const at = reply && findAttribute(reply.attributes, NETDEV_A_DEV_XDP_FEATURES);
      if (at === undefined || reply === undefined) continue;
      const bits = reply.attributes.getBigUint64(at, true);
      result.set(ifindex, {
        native: (bits & XDP_ACT_BASIC) !== 0n,
        ndoXmit: (bits & XDP_ACT_NDO_XMIT) !== 0n,
      });
    }
    return result;
  } finally {
    genl.close();
  }
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
