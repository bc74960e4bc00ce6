import { AF_UNIX, SOCK_CLOEXEC, SOCK_DGRAM } from './constants.js';
import { SysError } from './errors.js';
import { lastErrno, libc } from './libc.js';

/**
 * Tells systemd how the service is doing (sd_notify): "READY=1" once mcrd serves, "RELOADING=1"
 * while it applies its config again, "STOPPING=1" when it stops, "STATUS=…" in words. The
 * message is one datagram to the Unix socket systemd names in $NOTIFY_SOCKET (a path, or an
 * abstract name when it starts with '@'); without that variable mcrd is not run by systemd with
 * Type=notify and this does nothing.
 */
export function notifySystemd(state: string, socketPath = process.env.NOTIFY_SOCKET): boolean {
  if (!socketPath) return false;
  const address = sockaddrUn(socketPath);
  const fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0) as number;
  if (fd < 0) throw new SysError('socket(AF_UNIX notify)', lastErrno());
  try {
    const message = Buffer.from(state);
    const sent = libc.sendto(fd, message, message.byteLength, 0, address, address.byteLength) as number;
    if (sent < 0) throw new SysError(`sendto(${socketPath})`, lastErrno());
    return true;
  } finally {
    libc.close(fd);
  }
}

/** struct sockaddr_un: family, then the path (NUL-terminated), or '\0' + name for an abstract one. */
function sockaddrUn(path: string): Uint8Array {
  const name = Buffer.from(path.startsWith('@') ? `\0${path.slice(1)}` : path);
  if (name.byteLength > 107)
    throw new Error(`NOTIFY_SOCKET ${path} is longer than a Unix socket address holds`);
  const address = new Uint8Array(2 + name.byteLength + (path.startsWith('@') ? 0 : 1));
  new DataView(address.buffer).setUint16(0, AF_UNIX, true);
  address.set(name, 2);
  return address;
}
