import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { WorkerOutput, WorkerRule } from '../../src/protocol/worker-messages.js';
import { ruleSockets } from '../../src/worker/rule-sockets.js';

const egress = { template: '00', mtu: 1500 };

function output(attached: boolean, raw: boolean): WorkerOutput {
  return {
    label: 'x',
    ttl: 16,
    ttlFixed: false,
    dscp: null,
    attached,
    egress: attached && raw ? egress : null,
  };
}

function rule(outputs: WorkerOutput[]): WorkerRule {
  return {
    id: 'r',
    inputInterface: 'in0',
    inputVlan: 0,
    inputSource: 0,
    inputGroup: 1,
    inputPort: 2,
    outputs,
  };
}

test('UDP sockets of attached outputs in order, then raw sockets of those with an egress spec', () => {
  const r = rule([output(true, true), output(false, false), output(true, false), output(true, true)]);
  assert.deepEqual(ruleSockets(r, [10, 11, 12, 20, 21]), [
    { socketFd: 10, raw: { fd: 20, spec: egress } },
    undefined,
    { socketFd: 11, raw: undefined },
    { socketFd: 12, raw: { fd: 21, spec: egress } },
  ]);
});

test('a rule with no attached output takes no sockets', () => {
  assert.deepEqual(ruleSockets(rule([output(false, false), output(false, false)]), []), [
    undefined,
    undefined,
  ]);
});

test('a count that does not add up is refused, naming what was expected', () => {
  const r = rule([output(true, true), output(false, false)]);
  assert.throws(() => ruleSockets(r, [10]), /1 sockets for 1 attached outputs and 1 raw paths/);
  assert.throws(() => ruleSockets(r, [10, 11, 12]), /3 sockets/);
});
