import type { ErrorCode } from './error-codes.js';
import { statSync, type Stats } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { MethodName, ParamsOf, ResultOf, StreamNotifications } from './control-api.js';
import { MAX_LINE_BYTES, type RpcErrorObject, type RpcResponse } from './json-rpc.js';
import { LineSplitter } from './line-splitter.js';

/** An error the daemon answered with, or a failure to reach it; `code` is stable. */
export class ClientError extends Error {
  readonly code: string;
  readonly field: string | undefined;
  readonly rpcCode: number | undefined;

  constructor(code: string, message: string, field?: string, rpcCode?: number) {
    super(message);
    this.name = 'ClientError';
    this.code = code;
    this.field = field;
    this.rpcCode = rpcCode;
  }

  static fromRpc(error: RpcErrorObject): ClientError {
    return new ClientError(
      error.data?.code ?? `RPC_${error.code}`,
      error.message,
      error.data?.field,
      error.code,
    );
  }
}

/** A persistent JSON-RPC connection to mcrd's control socket. */
export class ControlClient {
  private readonly socket: Socket;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly lines = new LineSplitter(MAX_LINE_BYTES);
  /**
   * An error mcrd sent about the connection itself (no request id: it is closing it, e.g. a
   * request line too slow or too long, or the client shed to make room): the reason a pending
   * request fails, instead of a bare "closed".
   */
  private notice: ClientError | undefined;
  /** Who gets the notifications of the streams this client opened (events, traces). */
  private notified: NotificationHandler | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () =>
      this.failAll(this.notice ?? new ClientError('E_DISCONNECTED', 'mcrd closed the connection')),
    );
    socket.on('error', (err) =>
      this.failAll(this.notice ?? new ClientError('E_DISCONNECTED', `control socket error: ${err.message}`)),
    );
  }

  static open(path: string, timeoutMs = 5000): Promise<ControlClient> {
    const problem = socketPathProblem(path);
    if (problem) return Promise.reject(new ClientError(problem.code, problem.message));
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ClientError('E_TIMEOUT', `no answer from mcrd at ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new ControlClient(socket));
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(connectError(path, err));
      });
    });
  }

  call<M extends MethodName>(method: M, params?: ParamsOf<M>, timeoutMs = 10000): Promise<ResultOf<M>> {
    const id = this.nextId++;
    return new Promise<ResultOf<M>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ClientError('E_TIMEOUT', `mcrd did not answer ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as ResultOf<M>);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.socket.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params: params ?? {} })}\n`);
    });
  }

  close(): void {
    this.socket.end();
  }

  /**
   * Where notifications go: items of the streams this client's requests opened, then each
   * stream's end. Set it before the request that opens one: items may follow its reply at once.
   */
  onNotification(handler: NotificationHandler): void {
    this.notified = handler;
  }

  /** Resolves when mcrd closes the connection (or it fails). */
  closed(): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.socket.once('close', () => resolve()));
  }

  private onData(chunk: string): void {
    const lines = this.lines.push(chunk);
    if (lines === 'overflow') {
      this.failAll(new ClientError('E_PROTOCOL', 'mcrd sent a line longer than the protocol allows'));
      this.socket.destroy();
      return;
    }
    for (const line of lines) {
      let response: RpcResponse;
      try {
        response = JSON.parse(line) as RpcResponse;
      } catch {
        this.failAll(new ClientError('E_PROTOCOL', 'mcrd sent a line that is not JSON'));
        return;
      }
      if (isNotification(response)) {
        this.notified?.(response);
        continue;
      }
      if (response.id === null && 'error' in response) this.notice = ClientError.fromRpc(response.error);
      const waiter = typeof response.id === 'number' ? this.pending.get(response.id) : undefined;
      if (!waiter) continue;
      this.pending.delete(response.id as number);
      if ('error' in response) waiter.reject(ClientError.fromRpc(response.error));
      else waiter.resolve(response.result);
    }
  }

  private failAll(error: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }
}

/** A line from mcrd without an id and with a method: a stream's notification. */
function isNotification(line: unknown): line is StreamNotification {
  return typeof line === 'object' && line !== null && 'method' in line && !('id' in line);
}

export type StreamNotification = {
  [T in keyof StreamNotifications]: { jsonrpc: '2.0'; method: T; params: StreamNotifications[T] };
}[keyof StreamNotifications];

export type NotificationHandler = (notification: StreamNotification) => void;

function connectError(path: string, err: NodeJS.ErrnoException): ClientError {
  switch (err.code) {
    case 'ENOENT':
      return new ClientError(
        'E_NOT_RUNNING',
        `mcrd is not running: no control socket at ${path} (start mcrd, or pass --socket)`,
      );
    case 'ECONNREFUSED': {
      // connect() refuses a directory or a regular file just as it refuses a dead socket.
      const what = nonSocketAt(path, statSync);
      if (what !== undefined) {
        return new ClientError(
          'E_NOT_A_SOCKET',
          `${path} is ${what}, not mcrd's control socket; pass --socket (or set $MCR_SOCKET) to the path mcrd serves`,
        );
      }
      return new ClientError(
        'E_NOT_RUNNING',
        `mcrd is not running: ${path} exists but nobody answers (a stale socket)`,
      );
    }
    case 'ENOTDIR':
      return new ClientError('E_SOCKET_PATH', `cannot reach ${path}: ${notADirectoryOnTheWay(path)}`);
    case 'EACCES':
      return new ClientError(
        'E_PERMISSION',
        `no permission to open ${path}: run as root or as a member of its group`,
      );
    default:
      return new ClientError('E_CONNECT', `cannot connect to mcrd at ${path}: ${err.message}`);
  }
}

/** sun_path holds 108 bytes, the last of them the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

/**
 * Why `path` cannot name a Unix socket at all, or undefined. Node would take an empty path for a
 * TCP port, and binds or connects to a path longer than the address holds cut short, silently.
 */
export function socketPathProblem(path: string): { code: ErrorCode; message: string } | undefined {
  if (path === '') return { code: 'E_SOCKET_PATH', message: 'the control socket path is empty' };
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    return {
      code: 'E_SOCKET_PATH_TOO_LONG',
      message: `the control socket path ${path} is ${bytes} bytes long; a Unix socket address holds at most ${MAX_SOCKET_PATH_BYTES}: choose a shorter path`,
    };
  }
  return undefined;
}

/**
 * What is at `path` in words ("a directory") when it exists and is not a socket; undefined when
 * it is a socket or cannot be examined. `look` is lstatSync (the entry itself) or statSync (what a
 * link points to).
 */
export function nonSocketAt(path: string, look: (path: string) => Stats): string | undefined {
  let stats: Stats;
  try {
    stats = look(path);
  } catch {
    return undefined;
  }
  if (stats.isSocket()) return undefined;
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFile()) return 'a regular file';
  if (stats.isSymbolicLink()) return 'a symbolic link';
  if (stats.isFIFO()) return 'a named pipe (FIFO)';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  return 'not a socket';
}

/**
 * For ENOTDIR: names the component of `path` that is not a directory. Links are followed, as the
 * kernel does on the way (/var/run is a link to the directory /run).
 */
export function notADirectoryOnTheWay(path: string): string {
  for (let dir = dirname(path); dir !== dirname(dir); dir = dirname(dir)) {
    const what = nonSocketAt(dir, statSync);
    if (what !== undefined && what !== 'a directory') return `${dir} is ${what}, not a directory`;
  }
  return 'a component of the path is not a directory';
}
