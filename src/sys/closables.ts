import { libc } from './libc.js';

/** Anything that holds a kernel resource until it is closed: a map, a program, a link, a socket. */
export interface Closable {
  close(): void;
}

/** A file descriptor held until close(), which closes it once (a second call does nothing). */
export class OwnedFd implements Closable {
  readonly fd: number;
  private closed = false;

  constructor(fd: number) {
    this.fd = fd;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
  }
}

/**
 * Opens several resources as one step, all or nothing: `open` registers each resource it opens
 * with `keep`; if it throws, everything kept so far is closed, the last first, and the error goes
 * on. On success the caller owns what `open` returned.
 */
export function openAll<T>(open: (keep: <C extends Closable>(resource: C) => C) => T): T {
  const kept: Closable[] = [];
  try {
    return open((resource) => {
      kept.push(resource);
      return resource;
    });
  } catch (err) {
    for (const resource of kept.reverse()) {
      try {
        resource.close();
      } catch {
        // The first error is the one worth reporting; a close that fails leaks nothing more.
      }
    }
    throw err;
  }
}
