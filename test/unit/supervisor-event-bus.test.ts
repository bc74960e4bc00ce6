import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino, type Logger } from 'pino';
import type { McrEvent, McrEventType } from '../../src/protocol/control-api.js';
import {
  EVENTS_KEPT,
  EventBus,
  MAX_EVENT_SUBSCRIBERS,
  typeFilter,
  type EventStream,
} from '../../src/supervisor/event-bus.js';
import { ControlStream } from '../../src/supervisor/control-stream.js';

// The event bus: every event numbered, logged once (the same object subscribers get), given to
// the subscribers that asked for its type; the last ones kept for a subscriber that asks.

/** A logger whose lines are kept, parsed. */
function capturedLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'info' }, sink), lines };
}

/** A stream that keeps what it is given, like a client that keeps up. */
class FakeStream implements EventStream {
  static nextId = 1;
  readonly id = FakeStream.nextId++;
  readonly got: McrEvent[] = [];
  ended: string | undefined;
  private readonly onEnd: (() => void)[] = [];

  push(item: { event: McrEvent }): boolean {
    if (this.ended !== undefined) return false;
    this.got.push(item.event);
    return true;
  }

  whenEnded(fn: () => void): void {
    this.onEnd.push(fn);
  }

  end(reason: string): void {
    this.ended = reason;
    for (const fn of this.onEnd.splice(0)) fn();
  }
}

const at = new Date('2026-12-01T04:12:33.123Z');

function publish(bus: EventBus, type: McrEventType, n = 0): McrEvent {
  return bus.publish({ type, message: `thing ${n}` });
}

test('an event is numbered, stamped, every section present (null when it does not apply), and logged once with the same object', async () => {
  const { log, lines } = capturedLog();
  const bus = new EventBus(log, () => at);
  const first = bus.publish({
    type: 'worker.exited',
    message: 'worker 0 pid 7 killed by SIGKILL',
    worker: {
      id: 0,
      pid: 7,
      code: null,
      signal: 'SIGKILL',
      reason: null,
      death: 'killed',
      restartInMs: 0,
      downMs: null,
      restarts: 0,
      resync: null,
    },
  });
  const second = publish(bus, 'interface.up');
  assert.deepEqual(
    { ...first, worker: null },
    {
      seq: 1,
      time: '2026-12-01T04:12:33.123Z',
      type: 'worker.exited',
      cause: null,
      rule: null,
      worker: null,
      interface: null,
      flow: null,
      config: null,
      message: 'worker 0 pid 7 killed by SIGKILL',
    },
  );
  assert.equal(second.seq, 2);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(lines.length, 2, 'one log line per event');
  assert.deepEqual(lines[0]!.event, first);
  assert.equal(lines[0]!.msg, 'worker.exited worker 0 pid 7 killed by SIGKILL');
  assert.equal(lines[0]!.level, 50, 'a worker exit is an error');
  assert.equal(lines[1]!.level, 30);
});

test('the log level says how much an event matters', async () => {
  const { log, lines } = capturedLog();
  const bus = new EventBus(log);
  const worker = (resync: 'drift' | 'caught-up') => ({
    id: 0,
    pid: 7,
    code: null,
    signal: null,
    reason: null,
    death: null,
    restartInMs: null,
    downMs: null,
    restarts: 0,
    resync,
  });
  const rule = (state: 'active' | 'down') => ({
    id: 'r-1',
    name: null,
    input: 'in0 239.1.1.1:5000',
    outputs: [],
    origin: 'config' as const,
    rtp: false,
    state,
    reason: null,
    previousState: null,
  });
  bus.publish({ type: 'worker.resynced', worker: worker('drift'), message: '' });
  bus.publish({ type: 'worker.resynced', worker: worker('caught-up'), message: '' });
  bus.publish({ type: 'rule.state', rule: rule('down'), message: '' });
  bus.publish({ type: 'rule.state', rule: rule('active'), message: '' });
  bus.publish({ type: 'interface.down', message: '' });
  bus.publish({ type: 'flow.stopped', message: '' });
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(
    lines.map((l) => l.level),
    [40, 30, 40, 30, 40, 30],
  );
});

test('a subscriber gets only the types it asked for: whole families or single types', () => {
  const bus = new EventBus(pino({ level: 'silent' }));
  const all = new FakeStream();
  const some = new FakeStream();
  bus.subscribe(all, {});
  bus.subscribe(some, { types: ['rule', 'worker.exited'] });
  for (const type of ['rule.added', 'worker.started', 'rule.state', 'worker.exited', 'flow.stopped'] as const)
    publish(bus, type);
  assert.deepEqual(
    all.got.map((e) => e.type),
    ['rule.added', 'worker.started', 'rule.state', 'worker.exited', 'flow.stopped'],
  );
  assert.deepEqual(
    some.got.map((e) => e.type),
    ['rule.added', 'rule.state', 'worker.exited'],
  );
});

test('an unknown type is refused, naming it and the types there are', () => {
  const bus = new EventBus(pino({ level: 'silent' }));
  assert.throws(
    () => bus.subscribe(new FakeStream(), { types: ['rule', 'rules.added'] }),
    (err: Error & { code?: string }) =>
      err.code === 'E_UNKNOWN_EVENT_TYPE' && /rules\.added is not an event type/.test(err.message),
  );
  assert.equal(bus.subscriberCount, 0);
  assert.equal(typeFilter(['flow'])('flow.started'), true);
  assert.equal(typeFilter(['flow'])('rule.added'), false);
});

test('the last events are kept, bounded: a subscriber asking for the last N of its types gets them first, in order', () => {
  const bus = new EventBus(pino({ level: 'silent' }));
  for (let n = 0; n < EVENTS_KEPT + 50; n++) publish(bus, n % 2 === 0 ? 'flow.started' : 'rule.added', n);
  const stream = new FakeStream();
  const reply = bus.subscribe(stream, { types: ['rule'], last: 3 });
  assert.equal(reply.replayed, 3);
  assert.equal(reply.seq, EVENTS_KEPT + 50);
  assert.deepEqual(
    stream.got.map((e) => e.message),
    [`thing ${EVENTS_KEPT + 45}`, `thing ${EVENTS_KEPT + 47}`, `thing ${EVENTS_KEPT + 49}`],
  );
  publish(bus, 'rule.removed', 9999);
  assert.equal(stream.got.at(-1)!.message, 'thing 9999', 'then the new ones');

  // Asking for more than is kept gives what is kept: the oldest are gone.
  const everything = new FakeStream();
  assert.equal(bus.subscribe(everything, { last: 1000 }).replayed, Math.min(1000, EVENTS_KEPT));
  assert.equal(everything.got[0]!.seq, EVENTS_KEPT + 52 - Math.min(1000, EVENTS_KEPT));
  // Without `last`, nothing from before.
  const fresh = new FakeStream();
  assert.equal(bus.subscribe(fresh, {}).replayed, 0);
  assert.deepEqual(fresh.got, []);
});

test('subscribers are bounded; one that ends frees its place; mcrd stopping ends them all, saying so', () => {
  const bus = new EventBus(pino({ level: 'silent' }));
  const streams = Array.from({ length: MAX_EVENT_SUBSCRIBERS }, () => new FakeStream());
  for (const s of streams) bus.subscribe(s, {});
  assert.throws(
    () => bus.subscribe(new FakeStream(), {}),
    (err: Error & { code?: string }) => err.code === 'E_TOO_MANY_SUBSCRIBERS',
  );
  streams[0]!.end('client gone');
  bus.subscribe(new FakeStream(), {});
  publish(bus, 'rule.added');
  assert.equal(streams[0]!.got.length, 0, 'an ended stream gets nothing more');
  assert.equal(streams[1]!.got.length, 1);
  bus.close('mcrd is stopping');
  assert.equal(bus.subscriberCount, 0);
  assert.equal(streams[1]!.ended, 'mcrd is stopping');
});

test('a subscriber that cannot take more loses events, counted by its stream; publishing goes on for the others', () => {
  const bus = new EventBus(pino({ level: 'silent' }));
  const lines: string[] = [];
  let room = true;
  const slow = new ControlStream(1, 'event', {
    canPush: () => room,
    push: (line) => lines.push(line),
    ended: () => undefined,
  });
  slow.release();
  const fast = new FakeStream();
  bus.subscribe(slow, {});
  bus.subscribe(fast, {});
  publish(bus, 'rule.added', 1);
  room = false;
  for (let n = 2; n <= 6; n++) publish(bus, 'rule.added', n);
  room = true;
  publish(bus, 'rule.added', 7);
  assert.equal(fast.got.length, 7);
  const methods = lines.map((l) => JSON.parse(l) as { method: string; params: { lost?: number } });
  assert.deepEqual(
    methods.map((m) => m.method),
    ['event', 'stream.lost', 'event'],
  );
  assert.equal(methods[1]!.params.lost, 5);
});
