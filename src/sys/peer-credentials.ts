import { SOL_SOCKET } from './constants.js';
import { getOption } from './socket.js';

/** getsockopt(SO_PEERCRED): the credentials the peer had when it connected (struct ucred). */
const SO_PEERCRED = 17;
const UCRED_BYTES = 12;

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/**
 * Who is at the other end of a connected Unix socket, as the kernel recorded it at connect():
 * the process, its user and group, in mcrd's own namespaces. Null when the kernel cannot say
 * (not a Unix socket, or the descriptor is gone).
 */
export function peerCredentials(fd: number): PeerCredentials | null {
  let buf: Uint8Array;
  try {
    buf = getOption(fd, SOL_SOCKET, SO_PEERCRED, UCRED_BYTES, 'SO_PEERCRED');
  } catch {
    return null;
  }
  if (buf.length < UCRED_BYTES) return null;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const pid = view.getInt32(0, true);
  // A peer the kernel did not record (a socketpair end before connect) has pid 0.
  if (pid <= 0) return null;
  return { pid, uid: view.getUint32(4, true), gid: view.getUint32(8, true) };
}
