import { test } from 'node:test';
import assert from 'node:assert/strict';

import { emptyRuleCounters } from '../../src/protocol/counters.js';
import {
  MAX_PID,
  MAX_REPORTED_RULES,
  MAX_WORKER_TEXT,
  parseWorkerMessage,
} from '../../src/protocol/worker-message-schema.js';
import {
  encodeMessage,
  type WorkerMessage,
  type WorkerStatsReport,
} from '../../src/protocol/worker-messages.js';
import { MAX_OUTPUTS_PER_RULE } from '../../src/rules/rule.js';
import { WorkerCounterSet } from '../../src/worker/worker-counters.js';

// Every message a worker sends is checked before the supervisor uses it: a worker is untrusted.

const bytes = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

function report(): WorkerStatsReport {
  const rule = emptyRuleCounters(2);
  rule.packetsIn = 10;
  rule.drops.own_source = 1;
  rule.outputs[0]!.errors.ENOBUFS = 2;
  rule.outputs[1]!.errors.E531 = 1;
  return {
    // The worker's own counters, as it makes them.
    worker: new WorkerCounterSet().snapshot(),
    health: {
      rssBytes: 50_000_000,
      gcCount: 2,
      gcTotalMs: 3.5,
      gcMaxPauseMs: 2.25,
      gcPausesOver1Ms: 1,
      cpuSeconds: 0.5,
    },
    rules: { 'r-0123456789ab': rule },
  };
}

const good: Record<WorkerMessage['type'], WorkerMessage> = {
  ready: { type: 'ready', pid: 1234 },
  heartbeat: { type: 'heartbeat', seq: 7, rulesHash: '0123456789abcdef' },
  stats: { type: 'stats', requestId: 3, report: report() },
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
  for (const message of [...Object.values(good), { type: 'stats', requestId: null, report: report() }]) {
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

test('stats: a null, partial or inflated report is refused', () => {
  const stats = good.stats;
  refused({ ...stats, report: null }, /^stats: \/report must be object/);
  refused({ ...stats, requestId: 0 }, /^stats: \/requestId/);
  refused({ ...stats, requestId: 'a' }, /^stats: \/requestId/);
  refused(
    edited(stats, (m) => delete (m.report as Record<string, unknown>).health),
    /^stats: \/report lacks health/,
  );
  refused(
    edited(stats, (m) => ((m.report as WorkerStatsReport).worker.forwarded = -1)),
    /^stats: \/report\/worker\/forwarded must be >= 0/,
  );
  refused(
    edited(stats, (m) => ((m.report as WorkerStatsReport).worker.framesSeen = 2 ** 60)),
    /^stats: \/report\/worker\/framesSeen must be <=/,
  );
  refused(
    edited(stats, (m) => ((m.report as WorkerStatsReport).worker.malformed = 0.5)),
    /^stats: \/report\/worker\/malformed must be integer/,
  );
  refused(
    edited(stats, (m) => ((m.report as WorkerStatsReport).health.gcTotalMs = -1)),
    /^stats: \/report\/health\/gcTotalMs/,
  );
  refused(
    edited(stats, (m) => ((m.report as WorkerStatsReport).worker.dropsByReason['Not A Reason'] = 1)),
    /^stats: \/report\/worker\/dropsByReason/,
  );
  refused(
    edited(stats, (m) => {
      const drops = (m.report as WorkerStatsReport).worker.dropsByReason;
      for (let i = 0; i < 65; i++) drops[`reason_${i}`] = 1;
    }),
    /^stats: \/report\/worker\/dropsByReason must NOT have more than 64 properties/,
  );
  refused(
    edited(stats, (m) => ((m.report as WorkerStatsReport).rules['not-a-rule-id'] = emptyRuleCounters(1))),
    /^stats: \/report\/rules/,
  );
  refused(
    edited(
      stats,
      (m) =>
        ((m.report as WorkerStatsReport).rules['r-0123456789ab'] = emptyRuleCounters(
          MAX_OUTPUTS_PER_RULE + 1,
        )),
    ),
    /outputs must NOT have more than 64 items/,
  );
  refused(
    edited(
      stats,
      (m) => ((m.report as WorkerStatsReport).rules['r-0123456789ab']!.outputs[0]!.errors.enobufs = 1),
    ),
    /errors/,
  );
  refused(
    edited(
      stats,
      (m) =>
        ((
          (m.report as WorkerStatsReport).rules['r-0123456789ab']!.outputs[0] as unknown as Record<
            string,
            unknown
          >
        ).extra = 1),
    ),
    /has an unexpected key "extra"/,
  );
  const many: Record<string, unknown> = {};
  const one = emptyRuleCounters(0);
  for (let i = 0; i <= MAX_REPORTED_RULES; i++) many[`r-${i.toString(16).padStart(12, '0')}`] = one;
  refused(
    edited(stats, (m) => ((m.report as Record<string, unknown>).rules = many)),
    /must NOT have more than 100000 properties/,
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
