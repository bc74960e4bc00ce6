// Socket options both mcrgen directions want but can live without when not privileged.

import { SysError } from '../sys/errors.js';
import { bindToDevice, bufferSize, setBufferSize } from '../sys/socket.js';

/**
 * SO_BINDTODEVICE pins the socket to the interface even when routes would pick another one. It
 * needs CAP_NET_RAW on older kernels; without it (EPERM) the multicast interface option or the
 * bind address still steer the traffic, so the run goes on. Returns whether it was applied.
 */
export function bindToDeviceIfPermitted(fd: number, interfaceName: string): boolean {
  try {
    bindToDevice(fd, interfaceName);
    return true;
  } catch (err) {
    if (err instanceof SysError && err.code === 'EPERM') return false;
    throw err;
  }
}

/**
 * Asks for a socket buffer of `bytes`: the *FORCE variant first, which lifts the
 * net.core.[rw]mem_max ceiling but needs CAP_NET_ADMIN, then the ordinary one. Returns the size
 * the kernel actually granted (it doubles the request for its own bookkeeping).
 */
export function enlargeBuffer(fd: number, direction: 'send' | 'receive', bytes: number): number {
  try {
    setBufferSize(fd, direction, bytes, true);
  } catch (err) {
    if (!(err instanceof SysError && err.code === 'EPERM')) throw err;
    setBufferSize(fd, direction, bytes, false);
  }
  return bufferSize(fd, direction);
}

/**
 * Runs one socket step; a SysError from it is raised again as `call` failing, so the message
 * names the address, port or group involved, which errno and the bare call do not.
 */
export function naming<T>(call: string, step: () => T): T {
  try {
    return step();
  } catch (err) {
    if (err instanceof SysError) throw new SysError(call, err.errno);
    throw err;
  }
}
