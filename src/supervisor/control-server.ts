import { chmodSync, existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { MethodName } from '../protocol/control-api.js';
import { nonSocketAt, notADirectoryOnTheWay, socketPathProblem } from '../protocol/control-client.js';
import { checkParams, isMethodName } from '../protocol/control-schemas.js';
import {
  asRequest,
  ControlError,
  MAX_LINE_BYTES,
  RPC_INTERNAL_ERROR,
  RPC_INVALID_REQUEST,
  RPC_METHOD_NOT_FOUND,
  RPC_PARSE_ERROR,
  type RpcResponse,
} from '../protocol/json-rpc.js';
import { LineSplitter } from '../protocol/line-splitter.js';
import { errnoMessage } from '../sys/errors.js';

export type MethodHandler = (params: unknown) => Promise<unknown> | unknown;

/** How many clients may be connected at once, and how long a request may take. */
const MAX_CLIENTS = 64;
const REQUEST_TIMEOUT_MS = 15000;

/**
 * The control socket: JSON-RPC 2.0, one object per line, persistent connections, many clients.
 * Requests of one connection are answered in order; connections are independent.
 */
export class ControlServer {
  private readonly server: Server;
  private readonly path: string;
  private readonly log: Logger;
  private readonly handlers: Map<MethodName, MethodHandler>;
  private readonly clients = new Set<Socket>();

  private constructor(path: string, handlers: Map<MethodName, MethodHandler>, log: Logger) {
    this.path = path;
    this.handlers = handlers;
    this.log = log;
    this.server = createServer((socket) => this.accept(socket));
    this.server.maxConnections = MAX_CLIENTS;
  }

  /**
   * Listens on `path`. Refuses to start if another mcrd answers there (never steals its socket);
   * a stale socket file left by a crash is removed.
   */
  static async listen(
    path: string,
    handlers: Map<MethodName, MethodHandler>,
    log: Logger,
  ): Promise<ControlServer> {
    await claimSocketPath(path);
    try {
      mkdirSync(dirname(path), { mode: 0o755 });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== 'EEXIST') throw pathError(path, e, `create ${dirname(path)} for the control socket`);
    }
    const server = new ControlServer(path, handlers, log);
    await new Promise<void>((resolve, reject) => {
      const fail = (err: NodeJS.ErrnoException): void => reject(pathError(path, err, `listen on ${path}`));
      server.server.once('error', fail);
      server.server.listen(path, () => {
        server.server.off('error', fail);
        resolve();
      });
    });
    chmodSync(path, 0o660);
    return server;
  }

  async close(): Promise<void> {
    for (const client of this.clients) client.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    try {
      unlinkSync(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  private accept(socket: Socket): void {
    this.clients.add(socket);
    socket.setEncoding('utf8');
    const lines = new LineSplitter(MAX_LINE_BYTES);
    let queue = Promise.resolve();
    socket.on('data', (chunk: string) => {
      const batch = lines.push(chunk);
      if (batch === 'overflow') {
        this.reply(
          socket,
          errorResponse(
            null,
            RPC_INVALID_REQUEST,
            `request line exceeds ${MAX_LINE_BYTES} bytes`,
            'E_TOO_LARGE',
          ),
        );
        // The rest of this connection's stream cannot be framed reliably: answer once and hang up.
        socket.removeAllListeners('data');
        socket.end();
        return;
      }
      for (const line of batch) queue = queue.then(() => this.answer(socket, line));
    });
    socket.on('error', (err) => this.log.debug({ err }, 'control client error'));
    socket.on('close', () => this.clients.delete(socket));
  }

  private async answer(socket: Socket, line: string): Promise<void> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      this.reply(socket, errorResponse(null, RPC_PARSE_ERROR, 'the request is not valid JSON', 'E_PARSE'));
      return;
    }
    const request = asRequest(parsed);
    if (typeof request === 'string') {
      this.reply(socket, errorResponse(null, RPC_INVALID_REQUEST, request, 'E_INVALID_REQUEST'));
      return;
    }
    const id = request.id ?? null;
    const notification = !('id' in request);
    const response = await this.dispatch(id, request.method, request.params);
    if (!notification) this.reply(socket, response);
  }

  private async dispatch(id: string | number | null, method: string, params: unknown): Promise<RpcResponse> {
    const handler = isMethodName(method) ? this.handlers.get(method) : undefined;
    if (!isMethodName(method) || handler === undefined) {
      return errorResponse(
        id,
        RPC_METHOD_NOT_FOUND,
        `unknown method ${method} (see mcrctl --help)`,
        'E_UNKNOWN_METHOD',
      );
    }
    try {
      const checked = checkParams(method, params);
      const result = await withTimeout(Promise.resolve(handler(checked)), REQUEST_TIMEOUT_MS, method);
      return { jsonrpc: '2.0', id, result };
    } catch (err) {
      const error = toControlError(err);
      if (error.rpcCode === RPC_INTERNAL_ERROR) this.log.error({ err, method }, 'control request failed');
      else this.log.info({ method, code: error.data.code }, error.message);
      return { jsonrpc: '2.0', id, error: { code: error.rpcCode, message: error.message, data: error.data } };
    }
  }

  private reply(socket: Socket, response: RpcResponse): void {
    if (!socket.destroyed) socket.write(`${JSON.stringify(response)}\n`);
  }
}

function errorResponse(
  id: string | number | null,
  code: number,
  message: string,
  dataCode: string,
): RpcResponse {
  return { jsonrpc: '2.0', id, error: { code, message, data: { code: dataCode } } };
}

/** Errors that carry a stable code (ControlError, RuleError, SysError) keep it; others are internal. */
function toControlError(err: unknown): ControlError {
  if (err instanceof ControlError) return err;
  const e = err as { code?: unknown; field?: unknown; value?: unknown; message?: unknown };
  if (err instanceof Error && typeof e.code === 'string') {
    const details: Record<string, unknown> = {};
    if (typeof e.field === 'string') details.field = e.field;
    if (e.value !== undefined) details.value = e.value;
    return new ControlError(e.code, err.message, details);
  }
  return new ControlError(
    'E_INTERNAL',
    `internal error: ${String(e?.message ?? err)}`,
    {},
    RPC_INTERNAL_ERROR,
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new ControlError('E_TIMEOUT', `${what} did not finish within ${ms} ms`)),
      ms,
    );
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/**
 * Makes `path` free for mcrd's control socket. Only a socket file nobody answers on is stale (left
 * by a crash) and is removed; a live one belongs to another mcrd, and anything else (a directory,
 * a file, a link) is someone's and is left alone: each of those is an error that says what is
 * there. Checked before any worker or socket exists.
 */
export async function claimSocketPath(path: string): Promise<void> {
  const problem = socketPathProblem(path);
  if (problem) throw new ControlError(problem.code, problem.message);
  try {
    lstatSync(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code !== 'ENOENT') throw pathError(path, e);
    // mcrd creates the socket's own directory (/run/mcr on a fresh /run), nothing above it: a
    // missing directory higher up is more likely a typo than a wish.
    const above = dirname(dirname(path));
    if (!existsSync(dirname(path)) && !existsSync(above)) {
      throw new ControlError(
        'E_SOCKET_PATH',
        `cannot use ${path} as the control socket: ${above} does not exist; mcrd creates only the socket's own directory (${dirname(path)}). Create ${above} or choose another --socket`,
      );
    }
    return;
  }
  const what = nonSocketAt(path, lstatSync);
  if (what !== undefined) {
    throw new ControlError(
      'E_NOT_A_SOCKET',
      `${path} is ${what}, not a socket; mcrd replaces only a socket nobody answers on. Remove it if it is not needed, or choose another --socket`,
    );
  }
  const answer = await new Promise<'live' | 'stale' | 'absent' | NodeJS.ErrnoException>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve('live');
    });
    probe.once('error', (err: NodeJS.ErrnoException) =>
      resolve(err.code === 'ENOENT' ? 'absent' : err.code === 'ECONNREFUSED' ? 'stale' : err),
    );
  });
  if (typeof answer === 'object') throw pathError(path, answer);
  if (answer === 'live') {
    throw new ControlError(
      'E_ALREADY_RUNNING',
      `another mcrd is already serving ${path}; stop it first or choose another --socket`,
    );
  }
  if (answer === 'stale') unlinkSync(path);
}

/** A failed look at, or use of, the socket path, in the operator's terms rather than Node's. */
function pathError(
  path: string,
  err: NodeJS.ErrnoException,
  doing = `use ${path} as the control socket`,
): ControlError {
  const why =
    err.code === 'ENOTDIR'
      ? notADirectoryOnTheWay(path)
      : err.code === 'EACCES'
        ? 'permission denied (mcrd runs as root, or needs write access to the directory)'
        : typeof err.errno === 'number' && err.code !== undefined
          ? `${err.code} (${errnoMessage(-err.errno)})`
          : err.message;
  return new ControlError('E_SOCKET_PATH', `cannot ${doing}: ${why}`);
}
