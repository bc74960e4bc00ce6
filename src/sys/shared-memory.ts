import { lastErrno, libc, mapShared, unmap } from './libc.js';
import { SysError } from './errors.js';
import { closeFd } from './socket.js';

const MFD_CLOEXEC = 0x1;
const MFD_ALLOW_SEALING = 0x2;
const F_ADD_SEALS = 1033;
const F_SEAL_SEAL = 0x1;
const F_SEAL_SHRINK = 0x2;
const F_SEAL_GROW = 0x4;

/** Memory shared between processes through a descriptor: the supervisor creates it, a worker maps it. */
export interface SharedMemory {
  /** The memory file, to pass to another process (-1 in a mapping made from someone else's). */
  readonly fd: number;
  readonly size: number;
  readonly buffer: ArrayBuffer;
  /** Unmaps it and closes the descriptor (if this side holds one). Idempotent. */
  close(): void;
}

/**
 * A new shared memory file of `size` bytes (zeros, backed by pages only where written), mapped
 * here. Its size is sealed: whoever else maps it cannot shrink it under this process, whose
 * reads past the end would otherwise kill it with SIGBUS.
 */
export function createSharedMemory(name: string, size: number): SharedMemory {
  const fd = libc.memfdCreate(name, MFD_CLOEXEC | MFD_ALLOW_SEALING) as number;
  if (fd < 0) throw new SysError('memfd_create', lastErrno());
  try {
    if ((libc.ftruncate(fd, size) as number) < 0) throw new SysError('ftruncate(memfd)', lastErrno());
    const seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
    if ((libc.fcntl(fd, F_ADD_SEALS, seals) as number) < 0)
      throw new SysError('fcntl(F_ADD_SEALS)', lastErrno());
    return mapped(fd, size, true);
  } catch (err) {
    closeFd(fd);
    throw err;
  }
}

/**
 * Maps shared memory another process created and passed as `fd`. The caller closes `fd` (the
 * mapping keeps the memory alive without it).
 */
export function mapSharedMemory(fd: number, size: number): SharedMemory {
  return mapped(fd, size, false);
}

function mapped(fd: number, size: number, keepFd: boolean): SharedMemory {
  const map = mapShared(fd, size, false);
  if (typeof map === 'number') throw new SysError(`mmap(shared memory, ${size} bytes)`, map);
  let open = true;
  return {
    fd: keepFd ? fd : -1,
    size,
    buffer: map.buffer,
    close() {
      if (!open) return;
      open = false;
      unmap(map.pointer, size);
      if (keepFd) closeFd(fd);
    },
  };
}
