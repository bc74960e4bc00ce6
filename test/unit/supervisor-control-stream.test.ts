import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import type { McrEvent, MethodName } from '../../src/protocol/control-api.js';
import { ControlClient, type StreamNotification } from '../../src/protocol/control-client.js';
import { ControlServer, type MethodHandler } from '../../src/supervisor/control-server.js';
import type { ControlStream } from '../../src/supervisor/control-stream.js';

// Streams of notifications from mcrd to one client (events, traces), on the real ControlServer
// over a Unix socket: their items follow the reply that opened them, in order; a client that
// does not keep up is told how many it missed rather than making mcrd hold more; a stream ends
// with its source, with the connection, or never starts when its request fails.

const dir = mkdtempSync(join(tmpdir(), 'mcr-control-stream-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const log = pino({ level: 'silent' });
let serial = 0;

function event(n: number): McrEvent {
  return {
    seq: n,
    time: new Date(0).toISOString(),
    type: 'rule.added',
    cause: null,
    rule: {
      id: `r-${n}`,
      name: null,
      input: 'in0 239.1.1.1:5000',
      outputs: [],
      origin: 'runtime',
      rtp: false,
      state: 'active',
      reason: null,
      previousState: null,
    },
    worker: null,
    interface: null,
    flow: null,
    config: null,
    message: `event ${n} ${'x'.repeat(200)}`,
  };
}

/** The streams the handlers opened, for the tests to drive. */
const opened: ControlStream<'event'>[] = [];

async function serve(
  handler: MethodHandler,
  limits: Record<string, number> = {},
): Promise<{ server: ControlServer; path: string }> {
  const path = join(dir, `s${serial++}.sock`);
  const handlers = new Map<MethodName, MethodHandler>([
    ['ping', () => ({ pong: true })],
    ['rules.list', handler],
  ]);
  return { server: await ControlServer.listen(path, handlers, log, limits), path };
}

/** Opens a stream, and pushes `first` items before the reply is even written. */
const subscribe =
  (first: number): MethodHandler =>
  (_params, caller) => {
    const stream = caller.openStream('event');
    opened.push(stream);
    for (let n = 0; n < first; n++) stream.push({ event: event(n) });
    return { stream: stream.id };
  };

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

test('items follow the reply that opened the stream, in order, and stream.end comes last', async () => {
  const { server, path } = await serve(subscribe(3));
  const client = await ControlClient.open(path);
  const got: StreamNotification[] = [];
  client.onNotification((n) => got.push(n));
  const reply = (await client.call('rules.list')) as unknown as { stream: number };
  const stream = opened.at(-1)!;
  assert.equal(reply.stream, stream.id);
  stream.push({ event: event(3) });
  let endedBySource = false;
  stream.whenEnded(() => (endedBySource = true));
  stream.end('finished');
  await until('the end of the stream', () => got.some((n) => n.method === 'stream.end'));
  assert.deepEqual(
    got.map((n) => (n.method === 'event' ? n.params.event.rule!.id : n.method)),
    ['r-0', 'r-1', 'r-2', 'r-3', 'stream.end'],
  );
  assert.deepEqual(got.at(-1)!.params, { stream: stream.id, reason: 'finished', lost: 0 });
  assert.ok(endedBySource);
  assert.equal(stream.push({ event: event(4) }), false, 'nothing after the end');
  assert.equal(server.usage().streams, 0);
  client.close();
  await server.close();
});

test('a client that does not read loses items, counted, and is told how many before the next one; mcrd holds a bounded amount', async () => {
  const streamBufferBytes = 16 * 1024;
  const { server, path } = await serve(subscribe(0), { streamBufferBytes, replyStallMs: 60_000 });
  const socket: Socket = connect(path);
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write('{"jsonrpc":"2.0","id":1,"method":"rules.list","params":{}}\n');
  await until('the stream', () => opened.length > 0 && server.usage().streams === 1);
  const stream = opened.at(-1)!;
  socket.pause(); // the client stops reading
  let sent = 0;
  let lost = 0;
  for (let n = 0; n < 20_000; n++) {
    if (stream.push({ event: event(n) })) sent++;
    else lost++;
    if (n % 500 === 0) await sleep(1); // let the kernel's buffer fill
  }
  assert.ok(lost > 0, 'items were counted as lost');
  assert.ok(
    server.usage().replyBytes <= streamBufferBytes + 1024,
    `mcrd holds ${server.usage().replyBytes} B`,
  );

  // Reading again: everything sent arrives, then stream.lost with the count, then the next item.
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.resume();
  await until('what was buffered', () => text.split('\n').length - 2 >= sent);
  assert.equal(stream.push({ event: event(99_999) }), true);
  await until('the next item', () => text.includes('r-99999'));
  const lines = text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { method?: string; params?: { lost?: number } });
  // The kernel took some while the loop slept, so losses come in runs: each run's count comes
  // just before the next item that got through, and together they are every item lost.
  const notices = lines.filter((l) => l.method === 'stream.lost');
  assert.equal(
    notices.reduce((n, l) => n + l.params!.lost!, 0),
    lost,
  );
  lines.forEach((l, i) => {
    if (l.method === 'stream.lost') assert.equal(lines[i + 1]!.method, 'event');
  });
  assert.equal(lines.filter((l) => l.method === 'event').length, sent + 1);
  socket.destroy();
  await until('the stream abandoned', () => !stream.open);
  await server.close();
});

test('the stream ends with the connection, and its source is told', async () => {
  const { server, path } = await serve(subscribe(0));
  const socket = connect(path);
  socket.on('error', () => {});
  socket.write('{"jsonrpc":"2.0","id":1,"method":"rules.list","params":{}}\n');
  await until('the stream', () => server.usage().streams === 1);
  const stream = opened.at(-1)!;
  let ended = false;
  stream.whenEnded(() => (ended = true));
  socket.destroy();
  await until('the source told', () => ended);
  assert.equal(stream.open, false);
  await until('no stream left', () => server.usage().streams === 0);
  await server.close();
});

test('a request that fails after opening a stream gets its error, and the stream never starts', async () => {
  const { server, path } = await serve((_params, caller) => {
    const stream = caller.openStream('event');
    opened.push(stream);
    stream.push({ event: event(0) });
    throw Object.assign(new Error('no such rule'), { code: 'E_NOT_FOUND' });
  });
  const client = await ControlClient.open(path);
  const got: StreamNotification[] = [];
  client.onNotification((n) => got.push(n));
  await assert.rejects(client.call('rules.list'), /no such rule/);
  await client.call('ping');
  assert.deepEqual(got, []);
  assert.equal(opened.at(-1)!.open, false);
  assert.equal(server.usage().streams, 0);
  client.close();
  await server.close();
});

test('a client that closes its side gets its reply, what was pushed, and the end of the stream', async () => {
  const { server, path } = await serve(subscribe(2));
  const socket = connect({ path, allowHalfOpen: true });
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (text += chunk));
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.end('{"jsonrpc":"2.0","id":1,"method":"rules.list","params":{}}\n');
  await closed;
  const stream = opened.at(-1)!;
  assert.equal(stream.open, false);
  const methods = text
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { method?: string }).method ?? 'reply');
  assert.deepEqual(methods, ['reply', 'event', 'event', 'stream.end']);
  assert.equal(server.usage().streams, 0);
  await server.close();
});

test('when the server is full, a subscribed client is not taken for idle and shed', async () => {
  const { server, path } = await serve(subscribe(0), { maxClients: 2, shedIdleAfterMs: 10 });
  const subscriber = await ControlClient.open(path);
  await subscriber.call('rules.list');
  const idle = await ControlClient.open(path);
  await idle.call('ping');
  await sleep(30);
  const newcomer = await ControlClient.open(path);
  await newcomer.call('ping');
  await until('the idle client shed', () => server.usage().clients === 2);
  assert.equal(opened.at(-1)!.open, true, 'the subscriber keeps its stream');
  for (const c of [subscriber, newcomer]) c.close();
  await server.close();
});
