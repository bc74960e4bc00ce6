import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { pino } from 'pino';
import type { MethodName } from '../../src/protocol/control-api.js';
import { ClientError, ControlClient } from '../../src/protocol/control-client.js';
import { MAX_LINE_BYTES } from '../../src/protocol/json-rpc.js';
import * as limits from '../../src/supervisor/control-limits.js';
import { ControlServer, type MethodHandler } from '../../src/supervisor/control-server.js';
import { pingLines, startFlood } from './control-flood.js';

// The control socket against clients that misbehave: half lines that never end, requests piped
// in without reading the replies, over-long lines, more clients than the server takes, floods.
// The real ControlServer on a Unix socket in a temporary directory, with tiny fake handlers and,
// where waiting out the real limits would be slow, shorter ones.

const dir = mkdtempSync(join(tmpdir(), 'mcr-control-server-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const log = pino({ level: 'silent' });
let serial = 0;

/** A request that `release()` lets finish, to hold a connection busy. */
let release: () => void = () => {};
const handlers = new Map<MethodName, MethodHandler>([
  ['ping', () => ({ pong: true })],
  ['version', () => new Promise((resolve) => (release = () => resolve({ version: 'held' })))],
]);

async function serve(limits: Record<string, number> = {}): Promise<{ server: ControlServer; path: string }> {
  const path = join(dir, `c${serial++}.sock`);
  const server = await ControlServer.listen(path, handlers, log, limits);
  return { server, path };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Reply {
  id: number | string | null;
  result?: unknown;
  error?: { code: number; message: string; data: { code: string } };
}

/** A client that speaks raw lines, keeps every line it got and knows when the server hung up. */
class RawClient {
  readonly socket: Socket;
  readonly replies: Reply[] = [];
  readonly closed: Promise<void>;
  isClosed = false;
  private rest = '';
  private taken = 0;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      const lines = (this.rest + chunk).split('\n');
      this.rest = lines.pop() ?? '';
      for (const line of lines) this.replies.push(JSON.parse(line) as Reply);
    });
    // A server that closes with our bytes unread resets the connection: that is a close too.
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        resolve();
      }),
    );
  }

  /** `halfOpen`: the client does not end its side when the server ends its own (a stubborn peer). */
  static open(path: string, halfOpen = false): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ path, allowHalfOpen: halfOpen });
      socket.once('connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  send(text: string): void {
    this.socket.write(text);
  }

  /** The next reply not yet taken, waiting for it if need be. */
  async reply(timeoutMs = 2000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length <= this.taken) {
      if (Date.now() > deadline) throw new Error(`no reply within ${timeoutMs} ms`);
      await sleep(5);
    }
    return this.replies[this.taken++]!;
  }

  close(): void {
    this.socket.destroy();
  }
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    sleep(ms).then(() => {
      throw new Error(`${what}: not within ${ms} ms`);
    }),
  ]);
}

async function ping(path: string): Promise<unknown> {
  const client = await ControlClient.open(path);
  try {
    return await client.call('ping', undefined, 3000);
  } finally {
    client.close();
  }
}

test('a client that sends half a line and stalls is told why and closed after the line deadline; an idle one stays', async () => {
  const { server, path } = await serve({ lineDeadlineMs: 300 });
  const stalled = await RawClient.open(path);
  const idle = await RawClient.open(path);
  try {
    const started = Date.now();
    stalled.send('{"jsonrpc":"2.0","id":1,"meth');
    await within(stalled.closed, 3000, 'the stalled client is closed');
    const waited = Date.now() - started;
    assert.ok(waited >= 280 && waited < 1500, `closed after ${waited} ms`);
    assert.equal(stalled.replies.length, 1);
    assert.equal(stalled.replies[0]!.error?.data.code, 'E_LINE_TIMEOUT');
    assert.match(stalled.replies[0]!.error!.message, /no end of line within 300 ms/);

    await sleep(400);
    assert.equal(idle.isClosed, false, 'a connection with nothing half-sent may stay');
    idle.send('{"jsonrpc":"2.0","id":7,"method":"ping"}\n');
    assert.deepEqual(await idle.reply(), { jsonrpc: '2.0', id: 7, result: { pong: true } });
  } finally {
    stalled.close();
    idle.close();
    await server.close();
  }
});

test('a line that arrives a byte at a time within the deadline is answered', async () => {
  const { server, path } = await serve({ lineDeadlineMs: 1000 });
  const slow = await RawClient.open(path);
  try {
    for (const ch of '{"jsonrpc":"2.0","id":3,"method":"ping"}\n') {
      slow.send(ch);
      await sleep(1);
    }
    assert.deepEqual(await slow.reply(), { jsonrpc: '2.0', id: 3, result: { pong: true } });
  } finally {
    slow.close();
    await server.close();
  }
});

test('a client that sends its requests and shuts down its side still gets every answer, the last line without its newline too', async () => {
  const { server, path } = await serve();
  const client = await RawClient.open(path, true);
  try {
    client.send('{"jsonrpc":"2.0","id":1,"method":"ping"}\n{"jsonrpc":"2.0","id":2,"method":"ping"}');
    client.socket.end();
    await within(client.closed, 2000, 'the server ends the connection once it has answered');
    assert.deepEqual(
      client.replies.map((r) => r.id),
      [1, 2],
    );
  } finally {
    client.close();
    await server.close();
  }
});

test('100 clients stalled mid-line do not lock out mcrctl: the server sheds them for new clients', async () => {
  const { server, path } = await serve({ shedStalledAfterMs: 100 });
  const stalled: RawClient[] = [];
  try {
    for (let i = 0; i < 100; i++) {
      const c = await RawClient.open(path).catch(() => undefined);
      if (c) {
        c.send('{"jsonrpc":"2.0","id":1,"method":"pi');
        stalled.push(c);
      }
    }
    await sleep(200);
    assert.ok(server.usage().clients <= 64, `${server.usage().clients} clients held`);
    // Five operators who stay connected: each takes a stalled client's place.
    const operators: ControlClient[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const started = Date.now();
        const operator = await ControlClient.open(path);
        operators.push(operator);
        assert.deepEqual(await within(operator.call('ping'), 2000, 'ping'), { pong: true });
        assert.ok(Date.now() - started < 500, `answered in ${Date.now() - started} ms`);
      }
    } finally {
      for (const operator of operators) operator.close();
    }
    await sleep(50);
    const shed = stalled.filter((c) => c.isClosed && c.replies[0]?.error?.data.code === 'E_CLIENT_SHED');
    assert.equal(shed.length, 5, 'five stalled clients were told they were shed');
    assert.match(shed[0]!.replies[0]!.error!.message, /stalled mid-request/);
    // The 36 beyond the limit were turned away: 16 of them (MAX_REFUSING) after waiting a second
    // for a whole request to answer by its id, the rest at once. Those are told why too, unless
    // the kernel refused their half line (EPIPE) first: Node then closes before reading.
    const turnedAway = (c: RawClient): boolean =>
      c.replies[0]?.error?.data.code === 'E_TOO_MANY_CLIENTS' || (c.isClosed && c.replies.length === 0);
    const deadline = Date.now() + 2000;
    while (stalled.filter(turnedAway).length < 36 && Date.now() < deadline) await sleep(20);
    const refused = stalled.filter(turnedAway);
    assert.equal(refused.length, 36);
    await sleep(50);
    assert.ok(refused.every((c) => c.isClosed));
    const told = refused.filter((c) => c.replies.length > 0).length;
    assert.ok(told >= 16, `${told} were told they were turned away`);
  } finally {
    for (const c of stalled) c.close();
    await server.close();
  }
});

test('when full and nobody can make room, a new client gets E_TOO_MANY_CLIENTS for its request at once', async () => {
  const { server, path } = await serve({ shedIdleAfterMs: 60_000 });
  const idle: RawClient[] = [];
  try {
    for (let i = 0; i < 64; i++) idle.push(await RawClient.open(path));
    await sleep(50);
    const started = Date.now();
    await assert.rejects(within(ping(path), 3000, 'the 65th client'), (err: unknown) => {
      assert.ok(err instanceof ClientError, String(err));
      assert.equal(err.code, 'E_TOO_MANY_CLIENTS', err.message);
      assert.match(err.message, /too many clients: 64 connected/);
      return true;
    });
    assert.ok(Date.now() - started < 1500, `refused in ${Date.now() - started} ms`);
    // The ones already connected were not disturbed.
    idle[0]!.send('{"jsonrpc":"2.0","id":1,"method":"ping"}\n');
    assert.equal((await idle[0]!.reply()).id, 1);
    assert.equal(
      idle.some((c) => c.isClosed),
      false,
    );
  } finally {
    for (const c of idle) c.close();
    await server.close();
  }
});

test('when full, the client idle longest makes room for a new one, and is told so', async () => {
  const { server, path } = await serve({ maxClients: 4, shedIdleAfterMs: 200 });
  const idle: RawClient[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      idle.push(await RawClient.open(path));
      await sleep(20);
    }
    // The last one was active recently, so it is not the one to go.
    idle[3]!.send('{"jsonrpc":"2.0","id":1,"method":"ping"}\n');
    await idle[3]!.reply();
    await sleep(250);
    assert.deepEqual(await within(ping(path), 2000, 'ping'), { pong: true });
    await within(idle[0]!.closed, 1000, 'the oldest idle client is closed');
    assert.equal(idle[0]!.replies[0]?.error?.data.code, 'E_CLIENT_SHED');
    assert.match(idle[0]!.replies[0]!.error!.message, /idle for \d/);
    assert.deepEqual(
      idle.slice(1).map((c) => c.isClosed),
      [false, false, false],
    );
  } finally {
    for (const c of idle) c.close();
    await server.close();
  }
});

test('a client that pipelines thousands of requests and never reads its replies costs bounded memory', async () => {
  const { server, path } = await serve();
  const greedy = await RawClient.open(path);
  try {
    greedy.socket.pause();
    const count = 50_000;
    greedy.send(pingLines(count));
    let maxReplyBytes = 0;
    let maxQueued = 0;
    for (let i = 0; i < 40; i++) {
      await sleep(25);
      const usage = server.usage();
      maxReplyBytes = Math.max(maxReplyBytes, usage.replyBytes);
      maxQueued = Math.max(maxQueued, usage.queuedRequestBytes + usage.partialBytes);
    }
    // What the server holds for this client: its reply buffer up to the bound (and one reply
    // past it), and what it read before it stopped reading: the queue bound and one read.
    assert.ok(maxReplyBytes <= 64 * 1024 + 100, `${maxReplyBytes} reply bytes held`);
    assert.ok(maxQueued <= 64 * 1024 * 2, `${maxQueued} request bytes held`);
    // Nothing was lost: once it reads, every reply comes, in order.
    greedy.socket.resume();
    const deadline = Date.now() + 10_000;
    while (greedy.replies.length < count && Date.now() < deadline) await sleep(20);
    assert.equal(greedy.replies.length, count);
    assert.ok(greedy.replies.every((r, i) => r.id === i + 1));
  } finally {
    greedy.close();
    await server.close();
  }
});

test('requests queued behind a slow one are bounded: the server stops reading', async () => {
  const { server, path } = await serve();
  const client = await RawClient.open(path);
  try {
    client.send('{"jsonrpc":"2.0","id":0,"method":"version"}\n');
    const line = pingLines(1);
    client.send(pingLines(20_000));
    await sleep(300);
    const usage = server.usage();
    // 32 requests, or what one read (64 KiB) brought in beyond them.
    assert.ok(usage.queuedRequests <= 32 + Math.ceil(65536 / line.length), `${usage.queuedRequests} queued`);
    assert.equal(client.replies.length, 0, 'nothing overtakes the slow request');
    release();
    const deadline = Date.now() + 10_000;
    while (client.replies.length < 20_001 && Date.now() < deadline) await sleep(20);
    assert.equal(client.replies.length, 20_001);
    assert.deepEqual(client.replies[0], { jsonrpc: '2.0', id: 0, result: { version: 'held' } });
  } finally {
    client.close();
    await server.close();
  }
});

test('a client that leaves its replies unread for the stall limit is closed', async () => {
  const { server, path } = await serve({ replyStallMs: 300 });
  const greedy = await RawClient.open(path);
  try {
    greedy.socket.pause();
    greedy.send(pingLines(50_000));
    await within(greedy.closed, 3000, 'the non-reading client is closed');
    await sleep(50);
    assert.equal(server.usage().clients, 0);
  } finally {
    greedy.close();
    await server.close();
  }
});

test('an over-long line gets one error, then the connection closes and nothing more is read', async () => {
  const { server, path } = await serve({ closeLingerMs: 200 });
  const client = await RawClient.open(path, true);
  try {
    client.send('{"jsonrpc":"2.0","id":1,"method":"ping"}\n');
    client.send('x'.repeat(MAX_LINE_BYTES + 1000));
    // A stubborn client goes on sending for a second.
    const chunk = 'y'.repeat(64 * 1024);
    for (let i = 0; i < 200 && !client.isClosed; i++) {
      client.send(chunk);
      await sleep(5);
    }
    await within(client.closed, 2000, 'the connection is closed');
    assert.deepEqual(
      client.replies.map((r) => r.error?.data.code ?? r.id),
      [1, 'E_TOO_LARGE'],
    );
    assert.match(client.replies[1]!.error!.message, /longer than 1048576 bytes/);
    const read = server.usage().bytesRead;
    assert.ok(read <= MAX_LINE_BYTES + 256 * 1024, `the server read ${read} bytes`);
  } finally {
    client.close();
    await server.close();
  }
});

test('a slow request holds up only its own connection', async () => {
  const { server, path } = await serve();
  const a = await RawClient.open(path);
  const b = await RawClient.open(path);
  try {
    a.send('{"jsonrpc":"2.0","id":1,"method":"version"}\n{"jsonrpc":"2.0","id":2,"method":"ping"}\n');
    b.send('{"jsonrpc":"2.0","id":3,"method":"ping"}\n');
    assert.equal((await b.reply()).id, 3);
    assert.equal(a.replies.length, 0);
    release();
    await a.reply();
    await sleep(50);
    assert.deepEqual(
      a.replies.map((r) => r.id),
      [1, 2],
    );
  } finally {
    a.close();
    b.close();
    await server.close();
  }
});

test('200k pipelined requests from one client: the event loop never stalls long, and others are answered meanwhile', async () => {
  const { server, path } = await serve();
  const delay = monitorEventLoopDelay({ resolution: 1 });
  const other = await ControlClient.open(path);
  try {
    delay.enable();
    const flood = startFlood(path, 200_000);
    const rtts: number[] = [];
    while (!flood.done) {
      const started = performance.now();
      await other.call('ping');
      rtts.push(performance.now() - started);
      await sleep(20);
    }
    delay.disable();
    const { code, report: flooded, stderr } = await flood.finished();
    assert.equal(code, 0, stderr);
    const report = flooded!;
    assert.equal(report.replies, 200_000);
    assert.equal(report.errors, 0);
    const stallMs = delay.max / 1e6;
    const worstRtt = Math.max(...rtts);
    console.log(
      `flood of 200k answered in ${report.ms} ms; longest event-loop stall ${stallMs.toFixed(1)} ms; ` +
        `${rtts.length} pings meanwhile, slowest ${worstRtt.toFixed(1)} ms`,
    );
    assert.ok(stallMs < 50, `the event loop stalled for ${stallMs.toFixed(1)} ms`);
    assert.ok(rtts.length >= 3, 'another client was answered during the flood');
    assert.ok(worstRtt < 100, `a ping took ${worstRtt.toFixed(1)} ms during the flood`);
  } finally {
    other.close();
    await server.close();
  }
});

test('every limit is documented in docs/CONTROL-PROTOCOL.md', () => {
  const doc = readFileSync(
    fileURLToPath(new URL('../../../docs/CONTROL-PROTOCOL.md', import.meta.url)),
    'utf8',
  );
  const names = Object.entries(limits)
    .filter(([, value]) => typeof value === 'number')
    .map(([name]) => name);
  assert.ok(names.length >= 10);
  for (const name of names) assert.ok(doc.includes(`\`${name}\``), `${name} is in the limits table`);
});
