import koffi from 'koffi';

// The one place that binds libc. Pointer arguments on hot paths are declared uintptr_t so callers
// pass plain numbers (addresses inside koffi.alloc or mmap memory): no pointer marshalling per call,
// and pointer arithmetic is ordinary addition.
const lib = koffi.load('libc.so.6');

export const libc = {
  socket: lib.func('int socket(int domain, int type, int protocol)'),
  socketpair: lib.func('int socketpair(int domain, int type, int protocol, _Out_ int *sv)'),
  close: lib.func('int close(int fd)'),
  bind: lib.func('int bind(int fd, void *addr, uint32_t len)'),
  connect: lib.func('int connect(int fd, void *addr, uint32_t len)'),
  setsockopt: lib.func('int setsockopt(int fd, int level, int name, void *value, uint32_t len)'),
  getsockopt: lib.func('int getsockopt(int fd, int level, int name, void *value, void *len)'),
  getsockname: lib.func('int getsockname(int fd, void *addr, void *len)'),
  ioctl: lib.func('int ioctl(int fd, unsigned long request, void *arg)'),
  fcntl: lib.func('int fcntl(int fd, int cmd, int arg)'),
  mmap: lib.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t offset)'),
  munmap: lib.func('int munmap(void *addr, size_t len)'),
  memfdCreate: lib.func('int memfd_create(const char *name, unsigned int flags)'),
  ftruncate: lib.func('int ftruncate(int fd, int64_t length)'),
  sendmmsg: lib.func('int sendmmsg(int fd, uintptr_t msgvec, unsigned int vlen, int flags)'),
  recvmmsg: lib.func(
    'int recvmmsg(int fd, uintptr_t msgvec, unsigned int vlen, int flags, uintptr_t timeout)',
  ),
  sendmsg: lib.func('intptr_t sendmsg(int fd, uintptr_t msg, int flags)'),
  recvmsg: lib.func('intptr_t recvmsg(int fd, uintptr_t msg, int flags)'),
  send: lib.func('intptr_t send(int fd, void *buf, size_t len, int flags)'),
  sendto: lib.func('intptr_t sendto(int fd, void *buf, size_t len, int flags, void *addr, uint32_t addrlen)'),
  epollCreate1: lib.func('int epoll_create1(int flags)'),
  epollCtl: lib.func('int epoll_ctl(int epfd, int op, int fd, uintptr_t event)'),
  epollWait: lib.func('int epoll_wait(int epfd, uintptr_t events, int maxevents, int timeout)'),
  clockGettime: lib.func('int clock_gettime(int clock, uintptr_t timespec)'),
  usleep: lib.func('int usleep(unsigned int usec)'),
  prctl: lib.func(
    'int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)',
  ),
  capset: lib.func('int capset(void *header, void *data)'),
  /** For calls the C library has no wrapper for (seccomp); arguments are given as type, value pairs. */
  syscall: lib.func('long syscall(long number, ...)'),
  schedGetAffinity: lib.func('int sched_getaffinity(int pid, size_t size, _Out_ void *mask)'),
  schedSetAffinity: lib.func('int sched_setaffinity(int pid, size_t size, void *mask)'),
  getpwnam: lib.func('void *getpwnam(const char *name)'),
  getgrnam: lib.func('void *getgrnam(const char *name)'),
  ifNameToIndex: lib.func('unsigned int if_nametoindex(const char *name)'),
  ifIndexToName: lib.func('char *if_indextoname(unsigned int index, _Out_ char *name)'),
};

/** errno of the last failed call; read it right after the call, before any other FFI call. */
export function lastErrno(): number {
  return koffi.errno();
}

/**
 * A native address in the two forms the hot path needs without allocating. V8 keeps a Number
 * above 2^31 as a heap double, and every time such a value is passed to a function that is not
 * inlined (any FFI call among them) it allocates a fresh one: at a few per packet that was most
 * of a worker's garbage. So per-packet code passes a Region and a small offset, and FFI calls
 * take the BigInt, which is passed by reference.
 */
export class Region {
  /** Low and high 32 bits, for writing base + offset into a native pointer field. */
  readonly low: number;
  readonly high: number;
  /** The address as a BigInt, for uintptr_t arguments. */
  readonly pointer: bigint;

  constructor(address: number) {
    this.low = address % 4294967296;
    this.high = Math.floor(address / 4294967296);
    this.pointer = BigInt(address);
  }

  /** Writes (this + offset) into words[at] (low half) and words[at + 1] (high half). */
  writeAddress(words: Uint32Array, at: number, offset: number): void {
    const low = this.low + offset;
    if (low < 4294967296) {
      words[at] = low;
      words[at + 1] = this.high;
    } else {
      words[at] = low - 4294967296;
      words[at + 1] = this.high + 1;
    }
  }
}

/** Native memory that neither moves nor is collected until freed. */
export interface NativeMemory {
  /** The address as a Number (user-space addresses fit exactly); for set-up, not per packet. */
  readonly address: number;
  readonly region: Region;
  readonly bytes: Uint8Array;
  free(): void;
}

export function allocateNative(size: number): NativeMemory {
  const pointer: unknown = koffi.alloc('uint8_t', size);
  const address = Number(koffi.address(pointer));
  const bytes = new Uint8Array(koffi.view(pointer, size));
  bytes.fill(0);
  let freed = false;
  return {
    address,
    region: new Region(address),
    bytes,
    free() {
      if (!freed) {
        freed = true;
        koffi.free(pointer);
      }
    },
  };
}

/**
 * Maps `size` bytes of `fd` shared and read-write, locked in memory when `lock` (a packet ring)
 * and the limits allow.
 */
export function mapShared(
  fd: number,
  size: number,
  lock = true,
): { pointer: unknown; address: number; buffer: ArrayBuffer } | number {
  const PROT_READ = 1;
  const PROT_WRITE = 2;
  const MAP_SHARED = 1;
  const MAP_LOCKED = 0x2000;
  const MAP_FAILED = 0xffffffffffffffffn;
  let pointer: unknown = libc.mmap(
    null,
    size,
    PROT_READ | PROT_WRITE,
    MAP_SHARED | (lock ? MAP_LOCKED : 0),
    fd,
    0,
  );
  if (lock && koffi.address(pointer) === MAP_FAILED) {
    // MAP_LOCKED can fail under RLIMIT_MEMLOCK for an unprivileged worker; the ring still works unlocked.
    pointer = libc.mmap(null, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  if (koffi.address(pointer) === MAP_FAILED) return koffi.errno();
  return { pointer, address: Number(koffi.address(pointer)), buffer: koffi.view(pointer, size) };
}

export function unmap(pointer: unknown, size: number): void {
  libc.munmap(pointer, size);
}

export interface ReadableWatch {
  stop(): void;
}

/** A watch that can also say when its descriptor can take a write (a full socket has room again). */
export interface ChannelWatch extends ReadableWatch {
  /**
   * Calls `onWritable` once the descriptor is writable, and keeps calling it while it stays so
   * (level-triggered) until it is replaced by null. Readability is watched throughout.
   */
  whenWritable(onWritable: (() => void) | null): void;
}

/** An exception thrown by a watch's callback, caught where the callback runs. */
export interface WatchFault {
  fd: number;
  /** 'readable' or 'writable': which callback threw. */
  event: 'readable' | 'writable';
  error: unknown;
  /** Exceptions in a row from this watch, this one included. */
  inARow: number;
  /** True when the watch was stopped for good because its callback kept throwing. */
  stopped: boolean;
}

export interface WatchOptions {
  /**
   * Told of every exception a callback throws. Without it, the exception is thrown again from
   * its own event-loop turn (an uncaught exception, with its own stack), never from an unrelated
   * later FFI call.
   */
  onFault?: (fault: WatchFault) => void;
}

/** Exceptions in a row after which a watch is stopped: a callback that throws before it reads would spin. */
export const WATCH_FAULTS_BEFORE_STOP = 10;

/**
 * Calls `onReadable` from the Node event loop whenever `fd` is readable (level-triggered). The
 * handle is kept referenced here: koffi closes a collected handle, which would end the process.
 *
 * A socket error (POLLERR, e.g. ENETDOWN when a packet socket's interface goes down) makes libuv
 * stop the handle; the error is read off the socket (which clears it) and watching resumes, so
 * the socket works again when its interface comes back.
 *
 * Callbacks run inside koffi's poll callback, which has no JavaScript caller to throw to: an
 * exception left there stays pending in the engine and is thrown by whichever FFI call comes next
 * (a send to another worker, say). So every exception is caught here and handed to
 * `options.onFault`; a callback that keeps throwing is stopped rather than spun.
 */
export function watchReadable(fd: number, onReadable: () => void, options: WatchOptions = {}): ChannelWatch {
  const report = options.onFault ?? rethrowLater;
  let stopped = false;
  let recentErrors = 0;
  let faultsInARow = 0;
  let onWritable: (() => void) | null = null;
  const events = (): { readable: boolean; writable: boolean } => ({
    readable: true,
    writable: onWritable !== null,
  });
  const run = (event: 'readable' | 'writable', callback: () => void): boolean => {
    try {
      callback();
      faultsInARow = 0;
      return true;
    } catch (error) {
      faultsInARow++;
      const giveUp = faultsInARow >= WATCH_FAULTS_BEFORE_STOP;
      if (giveUp) watch.stop();
      report({ fd, event, error, inARow: faultsInARow, stopped: giveUp });
      return false;
    }
  };
  const callback = (status: number, ev: { readable: boolean; writable: boolean }): void => {
    if (status >= 0) {
      recentErrors = 0;
      if (ev.writable && onWritable !== null && !run('writable', onWritable)) return;
      if (!stopped && (ev.readable || !ev.writable)) run('readable', onReadable);
      return;
    }
    takeSocketError(fd);
    // An error that keeps coming back (not a socket error we can clear) must not spin the loop.
    const delay = ++recentErrors > 10 ? 100 : 0;
    setTimeout(() => {
      if (!stopped) handle.start(events(), callback as unknown as PollCallback);
    }, delay);
  };
  const handle = koffi.node.poll(fd, events(), callback as unknown as PollCallback);
  live.add(handle);
  const watch: ChannelWatch = {
    stop() {
      stopped = true;
      if (live.delete(handle)) handle.close();
    },
    whenWritable(next) {
      if (stopped || (next === null) === (onWritable === null)) {
        onWritable = next;
        return;
      }
      onWritable = next;
      handle.start(events(), callback as unknown as PollCallback);
    },
  };
  return watch;
}
// koffi calls back with (status, events); its typings name only the events.
type PollCallback = (ev: { readable: boolean; writable: boolean; disconnect: boolean }) => void;
const live = new Set<ReturnType<typeof koffi.node.poll>>();

/** The default fault report: the exception surfaces on its own, as an uncaught one, with its stack. */
function rethrowLater(fault: WatchFault): void {
  setImmediate(() => {
    throw fault.error;
  });
}

/** Reads (and so clears) a socket's pending error; returns the errno, 0 if none. */
export function takeSocketError(fd: number): number {
  const SOL_SOCKET = 1;
  const SO_ERROR = 4;
  const value = new Int32Array(1);
  const length = new Uint32Array([4]);
  return (libc.getsockopt(fd, SOL_SOCKET, SO_ERROR, value, length) as number) < 0 ? 0 : value[0]!;
}
