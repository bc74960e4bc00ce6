import { chmodSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { MethodName } from '../protocol/control-api.js';
import { checkParams, isMethodName } from '../protocol/control-schemas.js';
import {
  asRequest,
  RPC_APPLICATION_ERROR,
  RPC_INVALID_REQUEST,
  RPC_METHOD_NOT_FOUND,
  RPC_PARSE_ERROR,
  type RpcResponse,
} from '../protocol/json-rpc.js';
import { LineSplitter } from '../protocol/line-splitter.js';
import { ControlConnection, type ConnectionHost, type Reply } from './control-connection.js';
import type { ControlStream } from './control-stream.js';
import { CONTROL_LIMITS, duration, type ControlLimits } from './control-limits.js';
import {
  encodeReply,
  errorResponse,
  failureReply,
  requestId,
  serialise,
  withTimeout,
} from './control-replies.js';
import { claimSocketPath, socketPathError } from './socket-path.js';

export type MethodHandler = (params: unknown, caller: ControlCaller) => Promise<unknown> | unknown;

/** Who sent a request, for the methods that stream to it. */
export interface ControlCaller {
  /** The connection's number, as the logs show it. */
  readonly client: number;
  /** The process that connected (SO_PEERCRED), null if the kernel did not say. */
  readonly peer: { pid: number; uid: number } | null;
  /** Opens a stream of notifications to this client; its items follow the reply. */
  openStream<T extends ControlStream['topic']>(topic: T): ControlStream<T>;
}

/** What the control socket holds now, summed over its clients (for tests and diagnostics). */
export interface ControlUsage {
  clients: number;
  /** Turned-away clients waited on for their first request. */
  refusing: number;
  queuedRequests: number;
  queuedRequestBytes: number;
  /** Lines begun and not ended. */
  partialBytes: number;
  /** Replies buffered in mcrd, not yet taken by the kernel. */
  replyBytes: number;
  /** Streams open (events, traces). */
  streams: number;
  /** Read from every client since the server started. */
  bytesRead: number;
}

/**
 * The control socket: JSON-RPC 2.0, one object per line, persistent connections, many clients.
 * Requests of one connection are answered in order; connections are independent and take turns,
 * in slices of the event loop, so no client can starve another or the rest of mcrd. What each
 * client may cost is bounded by control-limits.ts; when every slot is taken, the client stalled or
 * idle longest makes room, and if none can, the newcomer is told so.
 */
export class ControlServer {
  private readonly limits: ControlLimits;
  private readonly log: Logger;
  /** What its connections call back. */
  private readonly host: ConnectionHost;
  private readonly server: Server;
  private readonly path: string;
  private readonly handlers: Map<MethodName, MethodHandler>;
  private readonly clients = new Set<ControlConnection>();
  /** Clients closed to make room, no longer counted, until their sockets are gone. */
  private readonly leaving = new Set<ControlConnection>();
  private readonly refusing = new Set<Socket>();
  /** Clients with a request they can answer now, in turn order. */
  private readonly turns = new Set<ControlConnection>();
  private pumping = false;
  private nextId = 1;
  private nextStreamId = 1;
  private bytesReadBefore = 0;
  private refusedUnlogged = 0;
  private refusalLoggedAt = -Infinity;
  private stopping = false;

  private constructor(
    path: string,
    handlers: Map<MethodName, MethodHandler>,
    log: Logger,
    limits: ControlLimits,
  ) {
    this.path = path;
    this.handlers = handlers;
    this.log = log;
    this.limits = limits;
    this.host = {
      limits,
      log,
      answer: (line, connection) => this.answer(line, connection),
      nextStreamId: () => this.nextStreamId++,
      ready: (client) => this.ready(client),
      closed: (client) => this.closed(client),
      notice: (code, message, rpcCode) => this.notice(code, message, rpcCode),
    };
    // Half-open: a client that sends its requests and then shuts down its side (printf … | socat)
    // still gets its answers. The high-water mark is where a client's replies stop its reading.
    this.server = createServer({ allowHalfOpen: true, highWaterMark: limits.replyBufferBytes }, (socket) =>
      this.accept(socket),
    );
  }

  /**
   * Listens on `path`. Refuses to start if another mcrd answers there (never steals its socket);
   * a stale socket file left by a crash is removed. `limits` overrides the defaults (for tests).
   */
  static async listen(
    path: string,
    handlers: Map<MethodName, MethodHandler>,
    log: Logger,
    limits: Partial<ControlLimits> = {},
  ): Promise<ControlServer> {
    await claimSocketPath(path);
    try {
      mkdirSync(dirname(path), { mode: 0o755 });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== 'EEXIST')
        throw socketPathError(path, e, `create ${dirname(path)} for the control socket`);
    }
    const server = new ControlServer(path, handlers, log, { ...CONTROL_LIMITS, ...limits });
    await new Promise<void>((resolve, reject) => {
      const fail = (err: NodeJS.ErrnoException): void =>
        reject(socketPathError(path, err, `listen on ${path}`));
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
    this.stopping = true;
    for (const client of [...this.clients, ...this.leaving]) client.destroy();
    for (const socket of this.refusing) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    try {
      unlinkSync(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  usage(): ControlUsage {
    const usage: ControlUsage = {
      clients: this.clients.size,
      refusing: this.refusing.size,
      queuedRequests: 0,
      queuedRequestBytes: 0,
      partialBytes: 0,
      replyBytes: 0,
      streams: 0,
      bytesRead: this.bytesReadBefore,
    };
    for (const client of this.clients) {
      const u = client.usage();
      usage.queuedRequests += u.queuedRequests;
      usage.queuedRequestBytes += u.queuedRequestBytes;
      usage.partialBytes += u.partialBytes;
      usage.replyBytes += u.replyBytes;
      usage.streams += u.streams;
      usage.bytesRead += client.socket.bytesRead;
    }
    for (const client of this.leaving) usage.bytesRead += client.socket.bytesRead;
    return usage;
  }

  private ready(client: ControlConnection): void {
    this.turns.add(client);
    if (!this.pumping) {
      this.pumping = true;
      setImmediate(() => this.pump());
    }
  }

  private closed(client: ControlConnection): void {
    this.bytesReadBefore += client.socket.bytesRead;
    this.clients.delete(client);
    this.leaving.delete(client);
    this.turns.delete(client);
    this.log.debug({ client: client.id, clients: this.clients.size }, 'control client disconnected');
  }

  private notice(code: string, message: string, rpcCode = RPC_APPLICATION_ERROR): string {
    return serialise(errorResponse(null, rpcCode, message, code));
  }

  private answer(line: string, connection: ControlConnection): Reply | Promise<Reply> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return serialise(errorResponse(null, RPC_PARSE_ERROR, 'the request is not valid JSON', 'E_PARSE'));
    }
    const request = asRequest(parsed);
    if (typeof request === 'string') {
      return serialise(errorResponse(null, RPC_INVALID_REQUEST, request, 'E_INVALID_REQUEST'));
    }
    const id = request.id ?? null;
    const notification = !('id' in request);
    const response = this.dispatch(id, request.method, request.params, connection);
    if (response instanceof Promise)
      return response.then((r) => (notification ? undefined : encodeReply(r, this.log)));
    return notification ? undefined : encodeReply(response, this.log);
  }

  /**
   * Answers the clients' requests round robin, one each per turn, for at most a slice of the event
   * loop; then yields (setImmediate, after pending I/O) so heartbeats and interface events get
   * their turn however much is queued.
   */
  private pump(): void {
    const until = performance.now() + this.limits.sliceBudgetMs;
    // A client's replies of one slice leave in one write: a system call and a write request
    // per reply made a flood several times slower, and the garbage longer to collect.
    const corked: Socket[] = [];
    // A Set iterates what is added during the iteration: a client with more goes to the back.
    for (const client of this.turns) {
      this.turns.delete(client);
      if (!client.socket.writableCorked) {
        client.socket.cork();
        corked.push(client.socket);
      }
      if (client.step()) this.turns.add(client);
      if (performance.now() >= until) break;
    }
    for (const socket of corked) socket.uncork();
    if (this.turns.size > 0) setImmediate(() => this.pump());
    else this.pumping = false;
  }

  private accept(socket: Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    if (this.clients.size >= this.limits.maxClients && !this.makeRoom()) {
      this.refuse(socket);
      return;
    }
    const client = new ControlConnection(socket, this.nextId++, this.host);
    this.clients.add(client);
    this.log.debug({ client: client.id, clients: this.clients.size }, 'control client connected');
  }

  /**
   * Closes one client to admit a new one: one already being closed, else the one stalled longest
   * (mid-line, or not reading its replies) if long enough, else the one idle longest if long
   * enough. False if none qualifies.
   */
  private makeRoom(): boolean {
    const now = Date.now();
    let stalled: { client: ControlConnection; ms: number } | undefined;
    let idle: { client: ControlConnection; ms: number } | undefined;
    for (const client of this.clients) {
      if (client.lingering) {
        // Already told why it is being closed; it only waits for the client to take that.
        client.destroy();
        this.clients.delete(client);
        this.leaving.add(client);
        return true;
      }
      const stalledMs = client.stalledFor(now);
      if (stalledMs !== undefined && stalledMs >= this.limits.shedStalledAfterMs) {
        if (!stalled || stalledMs > stalled.ms) stalled = { client, ms: stalledMs };
        continue;
      }
      const idleMs = client.idleFor(now);
      if (idleMs !== undefined && idleMs >= this.limits.shedIdleAfterMs && (!idle || idleMs > idle.ms)) {
        idle = { client, ms: idleMs };
      }
    }
    const victim = stalled ?? idle;
    if (!victim) return false;
    const max = this.limits.maxClients;
    const what = stalled
      ? `${victim.client.stall} for ${duration(victim.ms)}`
      : `was idle for ${duration(victim.ms)}`;
    this.log.info(
      { client: victim.client.id, stalled: stalled !== undefined, ms: victim.ms },
      'control socket full: closing a client to make room for a new one',
    );
    victim.client.shed(
      `closed to make room for a new client: this connection ${what} while mcrd had ${max} clients, its limit; reconnect when needed`,
    );
    // Its slot is free now; the socket goes within the linger time.
    this.clients.delete(victim.client);
    this.leaving.add(victim.client);
    return true;
  }

  /**
   * Turns a client away when no slot can be freed. It gets a moment to send its first request so
   * that the refusal answers it by id (mcrctl then prints the reason, not just a closed connection);
   * past MAX_REFUSING of those at once, the refusal goes out at once without an id.
   */
  private refuse(socket: Socket): void {
    const max = this.limits.maxClients;
    const message = `too many clients: ${max} connected to mcrd (its limit), none idle for ${duration(this.limits.shedIdleAfterMs)} or stalled for ${duration(this.limits.shedStalledAfterMs)} to make room; retry in a moment, and look for scripts that keep connections open (ss -xp shows who holds them)`;
    this.noteRefusal();
    const refusal = (id: string | number | null): string =>
      serialise(errorResponse(id, RPC_APPLICATION_ERROR, message, 'E_TOO_MANY_CLIENTS'));
    socket.on('error', (err: NodeJS.ErrnoException) =>
      this.log.debug({ err }, 'turned-away control client socket error'),
    );
    if (this.refusing.size >= this.limits.maxRefusing) {
      hangUp(socket, refusal(null), this.limits.closeLingerMs);
      return;
    }
    this.refusing.add(socket);
    const lines = new LineSplitter(this.limits.refusalLineBytes);
    let answered = false;
    const done = (id: string | number | null): void => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      this.refusing.delete(socket);
      hangUp(socket, refusal(id), this.limits.closeLingerMs);
    };
    const onData = (chunk: string): void => {
      const { lines: first, overflow } = lines.take(chunk);
      if (first.length > 0) done(requestId(first[0]!));
      else if (overflow) done(null);
    };
    const timer = setTimeout(() => done(null), this.limits.refusalWaitMs);
    socket.setEncoding('utf8');
    socket.on('data', onData);
    socket.on('end', () => done(requestId(lines.flush())));
    socket.once('close', () => {
      answered = true;
      clearTimeout(timer);
      this.refusing.delete(socket);
    });
  }

  /** One warning per interval, with how many were turned away; each one at debug. */
  private noteRefusal(): void {
    this.refusedUnlogged++;
    const now = Date.now();
    this.log.debug({ clients: this.clients.size }, 'control socket full: turning a client away');
    if (now - this.refusalLoggedAt < this.limits.refusalLogIntervalMs) return;
    this.log.warn(
      { clients: this.clients.size, refused: this.refusedUnlogged },
      'control socket full: turning clients away (none idle or stalled to make room)',
    );
    this.refusalLoggedAt = now;
    this.refusedUnlogged = 0;
  }

  private dispatch(
    id: string | number | null,
    method: string,
    params: unknown,
    connection: ControlConnection,
  ): RpcResponse | Promise<RpcResponse> {
    const handler = isMethodName(method) ? this.handlers.get(method) : undefined;
    if (!isMethodName(method) || handler === undefined) {
      return errorResponse(
        id,
        RPC_METHOD_NOT_FOUND,
        `unknown method ${method} (see mcrctl --help)`,
        'E_UNKNOWN_METHOD',
      );
    }
    // Streams a failed request opened never start.
    const opened: ControlStream[] = [];
    const caller: ControlCaller = {
      client: connection.id,
      peer: connection.peer,
      openStream: (topic) => {
        const stream = connection.openStream(topic);
        opened.push(stream);
        return stream;
      },
    };
    const failed = (err: unknown): RpcResponse => {
      for (const stream of opened) stream.abandon();
      return failureReply(id, method, err, this.log);
    };
    let result: unknown;
    try {
      result = handler(checkParams(method, params), caller);
    } catch (err) {
      return failed(err);
    }
    // Most methods answer at once; only those that wait (on workers) cost a promise and a timer.
    if (!(result instanceof Promise)) return { jsonrpc: '2.0', id, result };
    return withTimeout(result, this.limits.requestTimeoutMs, method).then(
      (value): RpcResponse => ({ jsonrpc: '2.0', id, result: value }),
      failed,
    );
  }
}

/** Sends `line`, ends, reads nothing more; torn down once flushed or after `lingerMs`. */
function hangUp(socket: Socket, line: string, lingerMs: number): void {
  socket.pause();
  socket.end(line, () => socket.destroy());
  setTimeout(() => socket.destroy(), lingerMs).unref();
}
