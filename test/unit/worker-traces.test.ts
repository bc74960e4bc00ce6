import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { WorkerMessage } from '../../src/protocol/worker-messages.js';
import type { InputPath } from '../../src/worker/input-path.js';
import { NO_RULE } from '../../src/packet/frame-outcomes.js';
import { WorkerTraces } from '../../src/worker/worker-traces.js';

// The worker's traces: a trace.start gives the input it names a trace (now, or when the input is
// attached later), a timer sends the records in bounded messages without ever waiting on the
// channel (what a full channel refuses goes first next time), and a trace that recorded its
// count, was stopped, or could not start says trace.ended.

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function setup(): {
  traces: WorkerTraces;
  inputs: Map<string, InputPath>;
  sent: WorkerMessage[];
  channelFull: { value: boolean };
} {
  const inputs = new Map<string, InputPath>();
  const sent: WorkerMessage[] = [];
  const channelFull = { value: false };
  const traces = new WorkerTraces(inputs, {
    trySend: (m) => {
      if (channelFull.value) return false;
      sent.push(m);
      return true;
    },
    send: (m) => sent.push(m),
  });
  return { traces, inputs, sent, channelFull };
}

/** Stands in for an InputPath: tracing uses its name, batch size and trace. */
function input(name: string): InputPath {
  return { interfaceName: name, batchCapacity: 64, trace: undefined } as unknown as InputPath;
}

/** Records `n` frames into the input's one trace, as the data path would. */
function record(path: InputPath, n: number): void {
  const session = path.trace!.sessions[0]!;
  for (let i = 0; i < n; i++) {
    session.buffer.begin(i, NO_RULE, 60, -1, -1, -1, -1, -1, -1, -1);
    session.recorded++;
  }
}

const selection = { interface: 'in0', rule: null, group: null, port: null };

test('records go out in messages of at most 32, a full channel holds them back, the count ends it', async () => {
  const { traces, inputs, sent, channelFull } = setup();
  const in0 = input('in0');
  inputs.set('in0', in0);
  traces.start(1, selection, 100, false);
  assert.ok(in0.trace, 'the input traces now');
  record(in0, 40);
  channelFull.value = true;
  await sleep(80);
  assert.equal(sent.length, 0, 'nothing fits: nothing lost either');
  channelFull.value = false;
  await until('the records', () => sent.length >= 2);
  await sleep(60);
  assert.deepEqual(
    sent.map((m) => (m.type === 'trace.records' ? m.records.length : m.type)),
    [32, 8],
  );
  assert.deepEqual(
    sent.flatMap((m) => (m.type === 'trace.records' ? m.records.map((r) => r.timeUs) : [])),
    [...Array.from({ length: 32 }, (_, i) => i), ...Array.from({ length: 8 }, (_, i) => 32 + i)],
    'in order',
  );
  record(in0, 60);
  await until('the end', () => sent.at(-1)?.type === 'trace.ended');
  assert.deepEqual(sent.at(-1), { type: 'trace.ended', trace: 1, reason: 'count' });
  assert.equal(in0.trace, undefined, 'done: the data path no longer looks');
  assert.equal(traces.active, 0);
  traces.close();
});

test('a trace waits for its input, stops when told, and a fifth is refused with trace.ended', () => {
  const { traces, inputs, sent } = setup();
  traces.start(1, { ...selection, interface: 'in1' }, 10, false);
  const in1 = input('in1');
  inputs.set('in1', in1);
  traces.inputAttached(in1);
  assert.ok(in1.trace);
  traces.stop(1);
  assert.equal(in1.trace, undefined);
  assert.deepEqual(sent, [{ type: 'trace.ended', trace: 1, reason: 'stopped' }]);
  traces.stop(1); // already gone: nothing more
  for (let id = 2; id < 6; id++) traces.start(id, selection, 10, false);
  assert.throws(() => traces.start(6, selection, 10, false), { code: 'E_TRACE_LIMIT' });
  assert.deepEqual(sent.at(-1), { type: 'trace.ended', trace: 6, reason: 'stopped' });
  traces.close();
  assert.equal(traces.active, 0);
});
