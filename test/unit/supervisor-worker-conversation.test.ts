import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { WorkerMessage } from '../../src/protocol/worker-messages.js';
import { WorkerConversation } from '../../src/supervisor/worker-conversation.js';

// The order of a worker's conversation: well-formed messages at the wrong moment are refused.

const heartbeat = (seq: number): WorkerMessage => ({ type: 'heartbeat', seq, rulesHash: '0123456789abcdef' });
// The shape is the schema's business, not the order's.
const health = { type: 'health', health: {} } as WorkerMessage;
const error: WorkerMessage = { type: 'error', code: 'E_WORKER', message: 'x', subject: 'rule.add' };

function ready(pid = 100): WorkerConversation {
  const c = new WorkerConversation(pid);
  assert.equal(c.accept({ type: 'ready', pid }), undefined);
  return c;
}

test('ready comes once, first, with the worker’s own pid', () => {
  const c = new WorkerConversation(100);
  assert.match(c.accept({ type: 'ready', pid: 101 })!, /said ready with pid 101, but its pid is 100/);
  assert.equal(c.isReady, false);
  assert.equal(c.accept({ type: 'ready', pid: 100 }), undefined);
  assert.equal(c.isReady, true);
  assert.match(c.accept({ type: 'ready', pid: 100 })!, /said ready a second time/);
  // Forged ready messages leave nothing behind: the second and every later one is refused.
  for (let i = 0; i < 1000; i++) assert.ok(c.accept({ type: 'ready', pid: 100 }));
});

test('before ready only ready and fatal are in order; fatal after ready is not', () => {
  for (const message of [heartbeat(1), health, error]) {
    const c = new WorkerConversation(100);
    c.nextHeartbeat();
    assert.match(c.accept(message)!, new RegExp(`sent ${message.type} before it said ready`));
  }
  const fatal: WorkerMessage = { type: 'fatal', code: 'E_WORKER_START', message: 'no' };
  assert.equal(new WorkerConversation(100).accept(fatal), undefined);
  assert.match(ready().accept(fatal)!, /sent fatal after it said ready/);
});

test('a heartbeat answer must answer one that was sent and not yet answered, in order', () => {
  const c = ready();
  assert.match(
    c.accept(heartbeat(1))!,
    /answered heartbeat 1, but the heartbeats waiting for an answer are none/,
  );
  for (let i = 0; i < 3; i++) c.nextHeartbeat();
  assert.match(c.accept(heartbeat(4))!, /are 1-3/);
  assert.equal(c.accept(heartbeat(1)), undefined);
  assert.match(c.accept(heartbeat(1))!, /answered heartbeat 1, but .* are 2-3/, 'answered twice');
  assert.equal(c.accept(heartbeat(3)), undefined, 'an answer may overtake older ones');
  assert.match(c.accept(heartbeat(2))!, /are none/, 'but not go back');
});

test('health reports come on the worker’s own timer: always in order after ready', () => {
  const c = ready();
  for (let i = 0; i < 3; i++) assert.equal(c.accept(health), undefined);
  assert.equal(c.accept(error), undefined);
});

test('input.handedOver answers a handover asked for: once per new socket of an input it had', () => {
  const c = ready();
  const attach = (name: string) =>
    c.commanded({ type: 'input.attach', interface: name, ifindex: 3, mtu: 9000, ring: 'fresh' });
  const handedOver = (name: string) => c.accept({ type: 'input.handedOver', interface: name });
  assert.match(handedOver('in0')!, /handed input in0 over, which it was not asked to/);
  attach('in0'); // a new input: nothing to hand over
  assert.match(handedOver('in0')!, /not asked to/);
  attach('in0');
  attach('in0'); // two handovers in a row
  assert.equal(handedOver('in0'), undefined);
  assert.equal(handedOver('in0'), undefined);
  assert.match(handedOver('in0')!, /not asked to/);
  attach('in0');
  c.commanded({ type: 'input.detach', interface: 'in0' });
  assert.match(handedOver('in0')!, /not asked to/, 'a detached input has nothing to hand over');
  assert.match(handedOver('in1')!, /not asked to/);
});
