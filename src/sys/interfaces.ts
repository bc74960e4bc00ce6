import {
  AF_INET,
  IFF_RUNNING,
  IFF_UP,
  SIOCGIFADDR,
  SIOCGIFFLAGS,
  SIOCGIFHWADDR,
  SIOCGIFMTU,
  SOCK_DGRAM,
} from './constants.js';
import { SysError } from './errors.js';
import { lastErrno, libc } from './libc.js';
import { closeFd, openSocket } from './socket.js';

/** The kernel's index of an interface, or undefined when no interface has that name here. */
export function interfaceIndex(name: string): number | undefined {
  if (name.length === 0 || name.length > 15) return undefined;
  const index = libc.ifNameToIndex(name) as number;
  return index > 0 ? index : undefined;
}

export interface InterfaceInfo {
  name: string;
  index: number;
  mtu: number;
  up: boolean;
  running: boolean;
  /** Hardware address, 6 bytes for Ethernet; empty for links without one (tunnels). */
  mac: Uint8Array;
  /** The primary IPv4 address, or undefined when the interface has none. */
  ipv4: number | undefined;
}

/** Reads what the relay needs of an interface with SIOCGIF* ioctls. Undefined if it does not exist. */
export function interfaceInfo(name: string): InterfaceInfo | undefined {
  const index = interfaceIndex(name);
  if (index === undefined) return undefined;
  const fd = openSocket(AF_INET, SOCK_DGRAM, 0, 'interface query');
  try {
    const flags = ifreq(fd, name, SIOCGIFFLAGS, 'SIOCGIFFLAGS');
    const mtu = ifreq(fd, name, SIOCGIFMTU, 'SIOCGIFMTU');
    const hw = ifreq(fd, name, SIOCGIFHWADDR, 'SIOCGIFHWADDR');
    const ARPHRD_ETHER = 1;
    const flagWord = flags ? new DataView(flags.buffer).getUint16(16, true) : 0;
    const hwType = hw ? new DataView(hw.buffer).getUint16(16, true) : 0;
    const addr = ifreq(fd, name, SIOCGIFADDR, 'SIOCGIFADDR');
    return {
      name,
      index,
      mtu: mtu ? new DataView(mtu.buffer).getInt32(16, true) : 1500,
      up: (flagWord & IFF_UP) !== 0,
      running: (flagWord & IFF_RUNNING) !== 0,
      mac: hw && hwType === ARPHRD_ETHER ? hw.slice(18, 24) : new Uint8Array(0),
      ipv4: addr ? new DataView(addr.buffer).getUint32(20, false) : undefined,
    };
  } finally {
    closeFd(fd);
  }
}

/** One SIOCGIF* request; undefined when the interface has no such property (EADDRNOTAVAIL, ENODEV). */
function ifreq(fd: number, name: string, request: number, what: string): Uint8Array | undefined {
  const req = new Uint8Array(40);
  req.set(new TextEncoder().encode(name).subarray(0, 15));
  if ((libc.ioctl(fd, request, req) as number) < 0) {
    const errno = lastErrno();
    const EADDRNOTAVAIL = 99;
    const ENODEV = 19;
    if (errno === EADDRNOTAVAIL || errno === ENODEV) return undefined;
    throw new SysError(`ioctl(${what} ${name})`, errno);
  }
  return req;
}
