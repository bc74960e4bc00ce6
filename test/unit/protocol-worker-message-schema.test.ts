import { test } from 'node:test';
import assert from 'node:assert/strict';

import { MAX_PID, MAX_WORKER_TEXT, parseWorkerMessage } from '../../src/protocol/worker-message-schema.js';
import { encodeMessage, type WorkerMessage } from '../../src/protocol/worker-messages.js';

// Every message a worker sends is checked before the supervisor uses it: a worker is untrusted.
// (Its counters are not messages: the supervisor reads them from shared memory, checked there;
// see supervisor-counter-store.test.ts.)

const bytes = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

const health = {
  rssBytes: 50_000_000,
  gcCount: 2,
  gcTotalMs: 3.5,
  gcMaxPauseMs: 2.25,
  gcPausesOver1Ms: 1,
  cpuSeconds: 0.5,
};

const good: Record<WorkerMessage['type'], WorkerMessage> = {
  ready: { type: 'ready', pid: 1234 },
  heartbeat: { type: 'heartbeat', seq: 7, rulesHash: '0123456789abcdef' },
  health: { type: 'health', health },
  error: { type: 'error', code: 'E_WORKER', message: 'rule r-1 has no output 3', subject: 'output.attach' },
  fatal: { type: 'fatal', code: 'E_WORKER_START', message: 'could not switch to user nobody' },
  'trace.records': {
    type: 'trace.records',
    trace: 2,
    records: [
      {
        timeUs: 1_764_563_553_123_456,
        vlan: null,
        source: 0x0a3f0102,
        sourcePort: 40000,
        group: 0xef010101,
        port: 5000,
        ttl: 64,
        frameLength: 142,
        payloadLength: 100,
        outcome: 'forwarded',
        rule: 'r-0123456789ab',
        copies: [
          { output: 0, status: 'sent', path: 'raw', errno: null },
          { output: 1, status: 'refused', path: 'socket', errno: 'ENOBUFS' },
        ],
      },
    ],
    missed: 0,
  },
  'trace.ended': { type: 'trace.ended', trace: 2, reason: 'count' },
  'input.handedOver': { type: 'input.handedOver', interface: 'in0' },
};

function refused(value: unknown, pattern: RegExp): void {
  const check = parseWorkerMessage(bytes(value));
  assert.equal(check.ok, false, `accepted ${JSON.stringify(value).slice(0, 200)}`);
  if (!check.ok) assert.match(check.reason, pattern);
}

/** A copy of `message` with `edit` applied to it. */
function edited<T>(message: T, edit: (copy: Record<string, unknown>) => void): Record<string, unknown> {
  const copy = structuredClone(message) as Record<string, unknown>;
  edit(copy);
  return copy;
}

test('every message type as the worker sends it is accepted, unchanged', () => {
  for (const message of Object.values(good)) {
    const check = parseWorkerMessage(encodeMessage(message as WorkerMessage));
    assert.ok(check.ok, check.ok ? '' : check.reason);
    assert.deepEqual(check.message, message);
  }
});

test('bytes that are not a JSON object of a known type are refused', () => {
  for (const [data, pattern] of [
    [new TextEncoder().encode('{"type":"ready",'), /is not JSON/],
    [new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), /is not UTF-8/],
    [new Uint8Array(0), /is not JSON/],
    [bytes(null), /null, not an object/],
    [bytes([good.ready]), /an array, not an object/],
    [bytes('ready'), /a string, not an object/],
    [bytes({ pid: 1 }), /unknown type missing/],
    [bytes({ type: 'shutdown' }), /unknown type "shutdown"/],
    [bytes({ type: 7 }), /unknown type a number/],
    [bytes({ type: '__proto__' }), /unknown type/],
    [bytes({ type: 'x'.repeat(10_000) }), /unknown type "x{32}"$/],
  ] as const) {
    const check = parseWorkerMessage(data);
    assert.equal(check.ok, false);
    if (!check.ok) assert.match(check.reason, pattern);
  }
});

test('every type: a missing field, an extra key, a wrong type are refused', () => {
  for (const message of Object.values(good)) {
    for (const key of Object.keys(message).filter((k) => k !== 'type')) {
      refused(
        edited(message, (m) => delete m[key]),
        new RegExp(`^${message.type}: / lacks ${key}`),
      );
      refused(
        edited(message, (m) => (m[key] = { nested: true })),
        new RegExp(`^${message.type}: /${key} `),
      );
    }
    refused(
      edited(message, (m) => (m.extra = 1)),
      new RegExp(`^${message.type}: / has an unexpected key "extra"`),
    );
  }
});

test('input.handedOver: an interface name that no interface can have is refused', () => {
  for (const name of ['', 'a-name-of-16-chr', 7, null])
    refused({ type: 'input.handedOver', interface: name }, /^input\.handedOver: \/interface/);
});

test('ready: a pid that no process can have is refused', () => {
  for (const pid of [0, -1, 1.5, MAX_PID + 1, '1234', null]) refused({ type: 'ready', pid }, /^ready: \/pid/);
  assert.ok(parseWorkerMessage(bytes({ type: 'ready', pid: MAX_PID })).ok);
});

test('heartbeat: the sequence number and the rules hash are bounded', () => {
  for (const seq of [0, -3, 2.5, Number.MAX_SAFE_INTEGER + 2, 1e300, '7'])
    refused({ type: 'heartbeat', seq, rulesHash: '0123456789abcdef' }, /^heartbeat: \/seq/);
  for (const rulesHash of ['', '0123456789ABCDEF', '0123456789abcde', 'g123456789abcdef', 'a'.repeat(5000)])
    refused({ type: 'heartbeat', seq: 1, rulesHash }, /^heartbeat: \/rulesHash/);
});

test('health: a partial, negative or inflated report is refused', () => {
  refused({ type: 'health', health: null }, /^health: \/health must be object/);
  refused(
    edited(good.health, (m) => delete (m.health as Record<string, unknown>).cpuSeconds),
    /^health: \/health lacks cpuSeconds/,
  );
  refused(
    edited(good.health, (m) => ((m.health as Record<string, unknown>).gcTotalMs = -1)),
    /^health: \/health\/gcTotalMs/,
  );
  refused(
    edited(good.health, (m) => ((m.health as Record<string, unknown>).rssBytes = 2 ** 60)),
    /^health: \/health\/rssBytes must be <=/,
  );
  refused(
    edited(good.health, (m) => ((m.health as Record<string, unknown>).extra = 1)),
    /has an unexpected key "extra"/,
  );
});

test('error and fatal: codes are stable codes, texts are bounded', () => {
  for (const type of ['error', 'fatal'] as const) {
    for (const code of ['', 'e_worker', 'E WORKER', 'E_'.padEnd(65, 'X'), 42])
      refused({ ...good[type], code }, new RegExp(`^${type}: /code`));
    refused({ ...good[type], message: 'x'.repeat(MAX_WORKER_TEXT + 1) }, new RegExp(`^${type}: /message`));
    assert.ok(parseWorkerMessage(bytes({ ...good[type], message: 'x'.repeat(MAX_WORKER_TEXT) })).ok);
  }
  for (const subject of ['', 'Rule.add', 'rule add', 'x'.repeat(33)])
    refused({ ...good.error, subject }, /^error: \/subject/);
  // Errno names and Node's own codes are codes too.
  for (const code of ['EPERM', 'ERR_INVALID_ARG_TYPE', 'E_WORKER'])
    assert.ok(parseWorkerMessage(bytes({ ...good.error, code })).ok, code);
});
