import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import type { EventRule, McrEvent } from '../../src/protocol/control-api.js';
import { EventBus } from '../../src/supervisor/event-bus.js';
import { FLOW_STOPPED_AFTER_MS, FlowWatch } from '../../src/supervisor/flow-watch.js';

/** The supervisor samples the counters once a second. */
const FLOW_SAMPLE_MS = 1000;

// A stream starting and stopping on a rule, told from its input counter sampled every second
// on a monotonic clock (a fake one here): started when the counter moves, stopped after
// FLOW_STOPPED_AFTER_MS without a move, started again when it moves again.

function rule(id: string): EventRule {
  return {
    id,
    name: id === 'r-1' ? 'cam1' : null,
    input: 'in0 239.1.1.1:5000',
    outputs: ['239.2.2.2:6000:out0'],
    origin: 'runtime',
    rtp: false,
    state: 'active',
    reason: null,
    previousState: null,
  };
}

/** A watch on a fake clock, the events it published, and a step: set counters, advance, sample. */
function setup() {
  let now = 5_000_000; // a monotonic clock starts anywhere
  const bus = new EventBus(pino({ level: 'silent' }));
  const events: McrEvent[] = [];
  const stream = {
    id: 1,
    push: ({ event }: { event: McrEvent }) => events.push(event) > 0,
    whenEnded: () => undefined,
    end: () => undefined,
  };
  bus.subscribe(stream, {});
  const watch = new FlowWatch(bus, () => now);
  const counters = new Map<string, number>();
  let rules = [rule('r-1')];
  const step = (values: Record<string, number>, ms = FLOW_SAMPLE_MS): void => {
    for (const [id, n] of Object.entries(values)) counters.set(id, n);
    now += ms;
    watch.sample(
      rules.map((r) => r.id),
      (id) => counters.get(id) ?? 0,
      (id) => rules.find((r) => r.id === id),
    );
  };
  return {
    events,
    step,
    setRules: (ids: string[]) => (rules = ids.map(rule)),
  };
}

test('no packet, no event; the first packets start a flow; a flow that keeps moving says nothing more', () => {
  const { events, step } = setup();
  step({ 'r-1': 0 });
  step({ 'r-1': 0 });
  assert.equal(events.length, 0);
  step({ 'r-1': 120 });
  assert.equal(events.length, 1);
  assert.equal(events[0]!.type, 'flow.started');
  assert.deepEqual(events[0]!.flow, { packets: 120, idleSeconds: null });
  assert.deepEqual(events[0]!.rule, rule('r-1'));
  assert.equal(
    events[0]!.message,
    'r-1 (cam1): packets arriving on in0 239.1.1.1:5000 (120 since the last look)',
  );
  for (let n = 2; n <= 10; n++) step({ 'r-1': 120 * n });
  assert.equal(events.length, 1);
});

test('stopped only after FLOW_STOPPED_AFTER_MS without a new packet (a still sample or two is not a stop), then started again', () => {
  const { events, step } = setup();
  step({ 'r-1': 100 });
  step({ 'r-1': 200 });
  // Workers report once a second: one sample may show no move while packets flow.
  step({ 'r-1': 200 });
  step({ 'r-1': 300 });
  assert.deepEqual(
    events.map((e) => e.type),
    ['flow.started'],
  );
  // Now it stops: samples at +1 s, +2 s say nothing, +3 s declares it.
  const still = FLOW_STOPPED_AFTER_MS / FLOW_SAMPLE_MS;
  for (let n = 1; n < still; n++) step({ 'r-1': 300 });
  assert.equal(events.length, 1);
  step({ 'r-1': 300 });
  assert.equal(events.length, 2);
  assert.equal(events[1]!.type, 'flow.stopped');
  assert.deepEqual(events[1]!.flow, { packets: 300, idleSeconds: FLOW_STOPPED_AFTER_MS / 1000 });
  assert.equal(events[1]!.message, 'r-1 (cam1): no packet on in0 239.1.1.1:5000 for 3 s (300 in all)');
  // Still stopped: nothing more however long.
  for (let n = 0; n < 10; n++) step({ 'r-1': 300 });
  assert.equal(events.length, 2);
  // Packets again, 13 s after the last ones.
  step({ 'r-1': 350 });
  assert.equal(events[2]!.type, 'flow.started');
  assert.deepEqual(events[2]!.flow, { packets: 50, idleSeconds: 14 });
});

test('the stop is measured on the clock, not counted in samples: a late sample after a stalled loop declares it at once', () => {
  const { events, step } = setup();
  step({ 'r-1': 10 });
  step({ 'r-1': 10 }, FLOW_STOPPED_AFTER_MS + 500);
  assert.deepEqual(
    events.map((e) => [e.type, e.flow?.idleSeconds]),
    [
      ['flow.started', null],
      ['flow.stopped', 4],
    ],
  );
});

test('an interval timer firing a few ms early does not put the stop off by a whole sample', () => {
  const { events, step } = setup();
  step({ 'r-1': 10 });
  for (let n = 0; n < 3; n++) step({ 'r-1': 10 }, FLOW_SAMPLE_MS - 3);
  assert.deepEqual(
    events.map((e) => [e.type, e.flow?.idleSeconds]),
    [
      ['flow.started', null],
      ['flow.stopped', 3],
    ],
  );
});

test('rules are watched each on its own; a removed rule is forgotten without a flow event, and added again starts afresh', () => {
  const { events, step, setRules } = setup();
  setRules(['r-1', 'r-2']);
  step({ 'r-1': 10, 'r-2': 0 });
  step({ 'r-1': 20, 'r-2': 5 });
  assert.deepEqual(
    events.map((e) => [e.type, e.rule?.id]),
    [
      ['flow.started', 'r-1'],
      ['flow.started', 'r-2'],
    ],
  );
  setRules(['r-2']);
  for (let n = 0; n < 5; n++) step({ 'r-2': 5 + n });
  assert.equal(events.length, 2, 'r-1 gone: no flow.stopped for it');
  setRules(['r-1', 'r-2']);
  step({ 'r-1': 3, 'r-2': 11 });
  assert.deepEqual(events.at(-1)!.flow, { packets: 3, idleSeconds: null });
});
