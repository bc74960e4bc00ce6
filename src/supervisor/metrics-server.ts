import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { ControlError } from '../protocol/json-rpc.js';
import type { MetricsAddress } from './metrics-address.js';
import type { MetricsExposition } from './metrics-exposition.js';

/**
 * Bounds of the metrics endpoint. mcrd runs as root, so what it serves on the network is kept
 * small and short-lived: Prometheus needs one connection per server scraping it, a request has
 * no body, and nothing is held open for long.
 */
export const METRICS_LIMITS = {
  /** Connections open at once; more are closed as soon as they are accepted. */
  maxConnections: 16,
  /** Bytes of request line and headers. */
  maxHeaderBytes: 8192,
  /** Time to receive the headers, and the whole request. */
  headersTimeoutMs: 5000,
  requestTimeoutMs: 10000,
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: 5000,
  /** Requests one connection may make before it is closed (Prometheus reconnects). */
  maxRequestsPerSocket: 1000,
  /** How often the timeouts above are checked (Node's default, 30 s, would let them run long). */
  checkIntervalMs: 1000,
};

export type MetricsLimits = typeof METRICS_LIMITS;

const INDEX_PAGE = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>mcr metrics</title></head>
<body><h1>mcr</h1><p>Prometheus metrics of this multicast relay: <a href="/metrics">/metrics</a>.</p></body></html>
`;

/**
 * The HTTP endpoint Prometheus scrapes: GET /metrics (the exposition), GET / (a page linking to
 * it), 404 for anything else, 405 for methods other than GET and HEAD, 413 for a request with a
 * body. No authentication: bind it to loopback, or to an address a firewall keeps to the
 * Prometheus servers.
 */
export class MetricsServer {
  readonly address: MetricsAddress;
  private readonly server: Server;
  private readonly exposition: MetricsExposition;
  private readonly log: Logger;

  private constructor(
    address: MetricsAddress,
    exposition: MetricsExposition,
    log: Logger,
    limits: MetricsLimits,
  ) {
    this.address = address;
    this.exposition = exposition;
    this.log = log;
    this.server = createServer(
      {
        maxHeaderSize: limits.maxHeaderBytes,
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        keepAliveTimeout: limits.keepAliveTimeoutMs,
        connectionsCheckingInterval: limits.checkIntervalMs,
      },
      (request, response) => this.answer(request, response),
    );
    this.server.maxConnections = limits.maxConnections;
    this.server.maxRequestsPerSocket = limits.maxRequestsPerSocket;
    // Malformed requests, oversize headers, timeouts: answered if the socket can still take it.
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      const status =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? '431 Request Header Fields Too Large'
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? '408 Request Timeout'
            : '400 Bad Request';
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      else socket.destroy();
    });
  }

  /**
   * Listens at `address`; a failure (the address in use, not this host's) is an E_METRICS_LISTEN
   * error naming the address and what to change, raised before mcrd serves anything.
   */
  static async listen(
    address: MetricsAddress,
    exposition: MetricsExposition,
    log: Logger,
    limits: MetricsLimits = METRICS_LIMITS,
  ): Promise<MetricsServer> {
    const metrics = new MetricsServer(address, exposition, log, limits);
    await new Promise<void>((resolve, reject) => {
      const failed = (err: NodeJS.ErrnoException): void => reject(listenError(address, err));
      metrics.server.once('error', failed);
      metrics.server.listen({ host: address.host, port: address.port, exclusive: true }, () => {
        metrics.server.off('error', failed);
        resolve();
      });
    });
    metrics.server.on('error', (err) => log.error({ err, address: address.text }, 'metrics endpoint failed'));
    log.info({ address: address.text }, `metrics served at http://${address.text}/metrics`);
    return metrics;
  }

  /** The TCP port listened on (the address's, or the one the kernel chose for port 0 in tests). */
  get port(): number {
    const bound = this.server.address();
    return typeof bound === 'object' && bound !== null ? bound.port : this.address.port;
  }

  /** Stops accepting, and closes every connection (a scrape in progress is cut). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private answer(request: IncomingMessage, response: ServerResponse): void {
    response.setHeader('Cache-Control', 'no-store');
    response.setHeader('X-Content-Type-Options', 'nosniff');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('Allow', 'GET, HEAD');
      return this.plain(response, 405, 'only GET and HEAD are served here\n', true);
    }
    const length = request.headers['content-length'];
    if (request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) {
      return this.plain(response, 413, 'a request here has no body\n', true);
    }
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/') {
      response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      response.end(request.method === 'HEAD' ? undefined : INDEX_PAGE);
      return;
    }
    if (path !== '/metrics')
      return this.plain(response, 404, 'not found: the metrics are at /metrics\n', false);
    this.exposition.render().then(
      (text) => {
        response.writeHead(200, { 'Content-Type': this.exposition.contentType });
        response.end(request.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        this.log.warn(
          { err: (err as Error).message },
          'a metrics scrape failed: the counters could not be collected',
        );
        this.plain(response, 503, `mcrd could not collect its counters: ${(err as Error).message}\n`, false);
      },
    );
  }

  /** A short text answer; `close` ends the connection (its request may have left a body unread). */
  private plain(response: ServerResponse, status: number, text: string, close: boolean): void {
    if (response.headersSent || response.destroyed) return;
    const headers: Record<string, string> = { 'Content-Type': 'text/plain; charset=utf-8' };
    if (close) headers.Connection = 'close';
    response.writeHead(status, headers);
    response.end(text);
  }
}

function listenError(address: MetricsAddress, err: NodeJS.ErrnoException): ControlError {
  const where = `cannot serve metrics at ${address.text}`;
  const fix = 'choose another with --metrics-listen or metrics.listen in the config file';
  const why: Record<string, string> = {
    EADDRINUSE: `the address is in use by another program (another mcrd, an exporter?): ${fix}`,
    EADDRNOTAVAIL: `${address.host} is not an address of this host: ${fix}, e.g. 127.0.0.1:${address.port}`,
    EACCES: `not allowed to listen on port ${address.port} (ports below 1024 need CAP_NET_BIND_SERVICE): ${fix}`,
  };
  return new ControlError(
    'E_METRICS_LISTEN',
    `${where}: ${why[err.code ?? ''] ?? `${err.code ?? 'error'} ${err.message}: ${fix}`}`,
    { field: 'metrics.listen', value: address.text },
  );
}
