import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { pino } from 'pino';

import type { TraceRecord, TraceSelection } from '../../src/protocol/trace.js';
import type { Rule } from '../../src/rules/rule.js';
import type { ControlCaller } from '../../src/supervisor/control-server.js';
import { ControlStream, type StreamSink } from '../../src/supervisor/control-stream.js';
import { TraceService } from '../../src/supervisor/trace-service.js';
import type { WorkerProcess } from '../../src/supervisor/worker-process.js';

// The supervisor's side of tracing, against fake workers and a fake client: records from every
// worker go to the stream until the count (all workers together), and however the trace ends
// (count, timeout, rule removed, client gone), every worker is told to stop; a trace is listed
// until each worker said it stopped; a restarted worker is asked for what is still missing.

const RULE: Rule = {
  id: 'r-0123456789ab',
  name: 'video',
  inputInterface: 'in0',
  inputVlan: 0,
  inputSource: 0,
  inputGroup: 0xef010101,
  inputPort: 5000,
  unicastInput: false,
  rtp: false,
  outputs: [
    {
      group: 0xef020201,
      port: 6000,
      interface: 'out0',
      ttl: 16,
      ttlFixed: false,
      dscp: undefined,
      multicast: true,
      mode: 'auto',
    },
  ],
};

class FakeWorker extends EventEmitter {
  readonly asked: { trace: number; selection: TraceSelection; count: number; dropsOnly: boolean }[] = [];
  readonly stopped: number[] = [];
  startTrace(trace: number, selection: TraceSelection, count: number, dropsOnly: boolean): boolean {
    this.asked.push({ trace, selection, count, dropsOnly });
    return true;
  }
  stopTrace(trace: number): void {
    this.stopped.push(trace);
  }
  records(trace: number, n: number): void {
    this.emit(
      'traceRecords',
      trace,
      Array.from({ length: n }, () => record()),
      0,
    );
  }
}

function record(): TraceRecord {
  return {
    timeUs: 1_764_563_553_123_456,
    vlan: null,
    source: 0x0a3f0101,
    sourcePort: 40000,
    group: 0xef010101,
    port: 5000,
    ttl: 64,
    frameLength: 142,
    payloadLength: 100,
    outcome: 'forwarded',
    rule: RULE.id,
    copies: [{ output: 0, status: 'sent', path: 'raw', errno: null }],
  };
}

interface Setup {
  service: TraceService;
  workers: FakeWorker[];
  lines: { method: string; params: Record<string, unknown> }[];
  caller: ControlCaller;
  opened: ControlStream[];
  rules: Map<string, Rule>;
  /** The rules the fake supervisor runs on the XDP path. */
  onXdp: Set<Rule>;
}

function setup(): Setup {
  const workers = [new FakeWorker(), new FakeWorker()];
  const rules = new Map([
    [RULE.id, RULE],
    [RULE.name!, RULE],
  ]);
  const onXdp = new Set<Rule>();
  const lines: Setup['lines'] = [];
  const sink: StreamSink = {
    canPush: () => true,
    push: (line) => lines.push(JSON.parse(line) as Setup['lines'][number]),
    ended: () => {},
  };
  const opened: ControlStream[] = [];
  const caller: ControlCaller = {
    client: 7,
    peer: null,
    openStream: (topic) => {
      const stream = new ControlStream(opened.length + 1, topic, sink);
      opened.push(stream);
      return stream;
    },
  };
  const service = new TraceService({
    findRule: (selector) => rules.get(selector),
    isInput: (name) => name === 'in0',
    xdpRules: (name) => [...onXdp].filter((rule) => rule.inputInterface === name),
    workers: () => workers.map((w, id) => ({ id, process: w as unknown as WorkerProcess })),
    log: pino({ level: 'silent' }),
  });
  return { service, workers, lines, caller, opened, rules, onXdp };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const methods = (s: Setup): string[] => s.lines.map((l) => l.method);
const endReason = (s: Setup): unknown => s.lines.find((l) => l.method === 'stream.end')?.params.reason;

test('records from every worker go to the stream until the count, then every worker is told to stop', () => {
  const s = setup();
  const { trace } = s.service.start({ rule: 'video', count: 5 }, s.caller);
  s.opened[0]!.release(); // the reply is written
  for (const w of s.workers) {
    assert.deepEqual(w.asked, [
      {
        trace: trace.id,
        selection: { interface: 'in0', rule: RULE.id, group: null, port: null },
        count: 5,
        dropsOnly: false,
      },
    ]);
  }
  s.workers[0]!.records(trace.id, 3);
  s.workers[1]!.records(trace.id, 4);
  assert.deepEqual(methods(s), ['trace', 'trace', 'trace', 'trace', 'trace', 'stream.end']);
  assert.equal(endReason(s), 'count reached');
  const packet = s.lines[0]!.params.packet as Record<string, unknown>;
  assert.equal(packet.time, '2025-12-01T04:32:33.123456Z');
  assert.equal(packet.source, '10.63.1.1');
  assert.deepEqual(packet.rule, { id: RULE.id, name: 'video' });
  assert.deepEqual(packet.copies, [
    { output: 0, status: 'sent', path: 'raw', errno: null, destination: '239.2.2.1:6000', interface: 'out0' },
  ]);
  assert.deepEqual(
    s.workers.map((w) => w.stopped),
    [[trace.id], [trace.id]],
  );
  assert.deepEqual(
    s.service.list().map((t) => [t.state, t.workersTracing, t.shown]),
    [['stopping', 2, 5]],
  );
  s.workers[0]!.emit('traceEnded', trace.id, 'stopped');
  assert.equal(s.service.list().length, 1, 'listed until every worker stopped');
  s.workers[1]!.emit('exit', null, 'SIGKILL'); // one that dies stops too
  assert.deepEqual(s.service.list(), []);
});

test('the client going away, the rule removed, the timeout: each ends the trace in every worker', async () => {
  const s = setup();
  const gone = s.service.start({ interface: 'in0', group: '239.1.1.9' }, s.caller).trace;
  s.opened[0]!.abandon(); // the connection closed
  assert.deepEqual(
    s.workers.map((w) => w.stopped),
    [[gone.id], [gone.id]],
  );
  assert.deepEqual(s.workers[0]!.asked[0]!.selection, {
    interface: 'in0',
    rule: null,
    group: 0xef010109,
    port: null,
  });

  const removed = s.service.start({ rule: RULE.id }, s.caller).trace;
  s.opened[1]!.release();
  s.rules.clear();
  const timed = s.service.start({ interface: 'in0', timeout: 0.05 }, s.caller).trace;
  s.opened[2]!.release();
  await sleep(400);
  assert.deepEqual(
    s.lines.filter((l) => l.method === 'stream.end').map((l) => [l.params.stream, l.params.reason]),
    [
      [3, 'timeout'],
      [2, 'rule removed'],
    ],
  );
  for (const w of s.workers) assert.deepEqual(w.stopped, [gone.id, timed.id, removed.id]);
});

test('a restarted worker is asked for what is still missing; a fifth trace is refused', () => {
  const s = setup();
  const { trace } = s.service.start({ rule: 'video', count: 10, dropsOnly: true }, s.caller);
  s.opened[0]!.release();
  s.workers[0]!.records(trace.id, 4);
  const successor = new FakeWorker();
  s.service.workerStarted(0, successor as unknown as WorkerProcess);
  assert.deepEqual(
    successor.asked.map((a) => [a.trace, a.count, a.dropsOnly]),
    [[trace.id, 6, true]],
  );
  successor.records(trace.id, 6);
  assert.equal(endReason(s), 'count reached');
  s.workers[0]!.emit('exit', null, 'SIGKILL');
  s.workers[1]!.emit('traceEnded', trace.id, 'stopped');
  assert.equal(s.service.list().length, 1, 'stopping counts towards the limit until the successor stopped');
  successor.emit('traceEnded', trace.id, 'stopped');
  assert.equal(s.service.list().length, 0);

  for (let i = 0; i < 4; i++) s.service.start({ rule: 'video' }, s.caller);
  assert.throws(() => s.service.start({ rule: 'video' }, s.caller), { code: 'E_TRACE_LIMIT' });
  assert.throws(() => s.service.start({ rule: 'nothing' }, s.caller), { code: 'E_RULE_NOT_FOUND' });
  assert.throws(() => s.service.start({ interface: 'in0', group: '239.1' }, s.caller), {
    code: 'E_INVALID_ADDRESS',
  });
  assert.throws(() => s.service.start({ interface: 'in1' }, s.caller), { code: 'E_NOT_AN_INPUT' });
  assert.throws(() => s.service.start({ interface: 'in0:1' }, s.caller), { code: 'E_INVALID_INTERFACE' });
  s.service.close();
});

test('a trace says it cannot show what a rule on the XDP path relays, and only where that applies', () => {
  const s = setup();
  const plain = s.service.start({ rule: 'video' }, s.caller).trace;
  assert.equal(plain.unseen, null);
  s.onXdp.add(RULE);
  const ofRule = s.service.start({ rule: 'video' }, s.caller).trace;
  assert.match(
    ofRule.unseen ?? '',
    new RegExp(`^rule ${RULE.id} \\(video\\) runs on the XDP path: .*not traced`),
  );
  const ofInput = s.service.start({ interface: 'in0', group: '239.9.9.9' }, s.caller).trace;
  assert.match(ofInput.unseen ?? '', new RegExp(`^rule ${RULE.id} \\(video\\) on in0 runs on the XDP path`));
  // The list says it as well, as it stands now: the rule back on the worker path, nothing unseen.
  s.onXdp.clear();
  assert.deepEqual(
    s.service.list().map((t) => t.unseen),
    [null, null, null],
  );
});
