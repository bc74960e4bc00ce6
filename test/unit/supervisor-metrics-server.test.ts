import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { connect } from 'node:net';
import { test } from 'node:test';
import pino from 'pino';
import type { StatsView } from '../../src/protocol/control-api.js';
import { MetricsExposition } from '../../src/supervisor/metrics-exposition.js';
import { METRICS_LIMITS, MetricsServer } from '../../src/supervisor/metrics-server.js';

const log = pino({ level: 'silent' });
const EMPTY: StatsView = {
  time: new Date(0).toISOString(),
  rateInterval: 0,
  rules: [],
  workers: [],
  interfaces: [],
};

async function serve(stats: () => Promise<StatsView> = async () => EMPTY): Promise<MetricsServer> {
  const exposition = new MetricsExposition({ stats, version: '0.1.0', processMetrics: false });
  return MetricsServer.listen({ host: '127.0.0.1', port: 0, text: '127.0.0.1:0' }, exposition, log);
}

/** One raw HTTP exchange: what the server wrote until it closed or `ms` passed. */
function exchange(port: number, request: string, ms = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8').on('data', (d: string) => (answer += d));
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
    socket.write(request);
    setTimeout(() => socket.destroy(), ms).unref();
  });
}

test('GET /metrics is the exposition, / a page linking to it, anything else 404', async () => {
  const server = await serve();
  try {
    const base = `http://127.0.0.1:${server.port}`;
    const metrics = await fetch(`${base}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.match(await metrics.text(), /^# HELP mcr_build_info/m);
    const withQuery = await fetch(`${base}/metrics?name[]=x`);
    assert.equal(withQuery.status, 200);
    await withQuery.text();
    const index = await fetch(`${base}/`);
    assert.equal(index.status, 200);
    assert.match(await index.text(), /<a href="\/metrics">/);
    for (const path of ['/metric', '/metrics/', '/metricsx', '/favicon.ico']) {
      const r = await fetch(`${base}${path}`);
      assert.equal(r.status, 404, path);
      await r.text();
    }
  } finally {
    await server.close();
  }
});

test('only GET and HEAD, never a body, and headers are bounded', async () => {
  const server = await serve();
  try {
    const base = `http://127.0.0.1:${server.port}`;
    const post = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    await post.text();
    const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    const withBody = await exchange(
      server.port,
      'GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello',
    );
    assert.match(withBody, /^HTTP\/1\.1 413 /);
    assert.match(withBody, /Connection: close/i);
    const chunked = await exchange(
      server.port,
      'GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    );
    assert.match(chunked, /^HTTP\/1\.1 413 /);
    const huge = await exchange(
      server.port,
      `GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`,
    );
    assert.match(huge, /^HTTP\/1\.1 431 /);
    const garbage = await exchange(server.port, 'NOT HTTP AT ALL\r\n\r\n');
    assert.match(garbage, /^HTTP\/1\.1 400 /);
  } finally {
    await server.close();
  }
});

test('a collection that fails is a 503 saying why, and the endpoint keeps serving', async () => {
  let fail = true;
  const server = await serve(async () => {
    if (fail) throw new Error('mcrd is still starting');
    return EMPTY;
  });
  try {
    const r = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    assert.equal(r.status, 503);
    assert.match(await r.text(), /could not collect its counters: mcrd is still starting/);
    fail = false;
    const again = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    assert.equal(again.status, 200);
    await again.text();
  } finally {
    await server.close();
  }
});

test('an address in use is E_METRICS_LISTEN, naming the address and what to change', async () => {
  const holder: Server = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const port = (holder.address() as { port: number }).port;
  try {
    const exposition = new MetricsExposition({
      stats: async () => EMPTY,
      version: '0.1.0',
      processMetrics: false,
    });
    await assert.rejects(
      MetricsServer.listen({ host: '127.0.0.1', port, text: `127.0.0.1:${port}` }, exposition, log),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_METRICS_LISTEN');
        assert.match(
          err.message,
          new RegExp(`^cannot serve metrics at 127\\.0\\.0\\.1:${port}: the address is in use`),
        );
        assert.match(err.message, /--metrics-listen or metrics\.listen/);
        return true;
      },
    );
  } finally {
    holder.close();
  }
});

/** Resolves with how long the connection stayed open (ms), and what it was sent. */
function openConnection(
  port: number,
  send = '',
): { closed: Promise<{ ms: number; answer: string }>; end(): void } {
  const started = Date.now();
  const socket = connect(port, '127.0.0.1');
  let answer = '';
  socket.setEncoding('utf8').on('data', (d: string) => (answer += d));
  socket.on('error', () => undefined);
  if (send) socket.write(send);
  return {
    closed: new Promise((resolve) => socket.on('close', () => resolve({ ms: Date.now() - started, answer }))),
    end: () => socket.destroy(),
  };
}

test('connections beyond the limit are closed at once; the endpoint serves again when they go', async () => {
  const exposition = new MetricsExposition({
    stats: async () => EMPTY,
    version: '0.1.0',
    processMetrics: false,
  });
  const server = await MetricsServer.listen(
    { host: '127.0.0.1', port: 0, text: '127.0.0.1:0' },
    exposition,
    log,
    {
      ...METRICS_LIMITS,
      maxConnections: 2,
    },
  );
  try {
    const held = [openConnection(server.port), openConnection(server.port)];
    await new Promise((resolve) => setTimeout(resolve, 200));
    const extra = openConnection(server.port);
    const { ms, answer } = await extra.closed;
    assert.ok(ms < 1000, `closed after ${ms} ms`);
    assert.equal(answer, '');
    for (const h of held) h.end();
    await Promise.all(held.map((h) => h.closed));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const r = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    assert.equal(r.status, 200);
    await r.text();
  } finally {
    await server.close();
  }
});

test('a client that sends nothing, or never finishes its request, is closed when its time is up', async () => {
  const exposition = new MetricsExposition({
    stats: async () => EMPTY,
    version: '0.1.0',
    processMetrics: false,
  });
  const server = await MetricsServer.listen(
    { host: '127.0.0.1', port: 0, text: '127.0.0.1:0' },
    exposition,
    log,
    {
      ...METRICS_LIMITS,
      headersTimeoutMs: 300,
      requestTimeoutMs: 600,
      keepAliveTimeoutMs: 300,
      checkIntervalMs: 100,
    },
  );
  try {
    const silent = openConnection(server.port);
    const slow = openConnection(server.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n');
    for (const { ms } of await Promise.all([silent.closed, slow.closed]))
      assert.ok(ms < 3000, `closed after ${ms} ms`);
    assert.match((await slow.closed).answer, /^HTTP\/1\.1 408 /);
  } finally {
    await server.close();
  }
});
