import type { Socket } from 'node:net';
import { peerCredentials, type PeerCredentials } from '../sys/peer-credentials.js';

/**
 * The process at the other end of a control connection (SO_PEERCRED), so that events can say
 * which client made a change. Node exposes a Unix socket's descriptor only on its handle; a
 * socket without one (a test's stand-in) has no known peer.
 */
export function controlPeer(socket: Socket): PeerCredentials | null {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? peerCredentials(fd) : null;
}
