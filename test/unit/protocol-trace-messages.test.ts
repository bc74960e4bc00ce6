import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { TraceRecord } from '../../src/protocol/trace.js';
import { MAX_TRACE_RECORDS_PER_MESSAGE } from '../../src/protocol/trace.js';
import { parseWorkerMessage } from '../../src/protocol/worker-message-schema.js';
import type { WorkerMessage } from '../../src/protocol/worker-messages.js';
import { MAX_OUTPUTS_PER_RULE } from '../../src/rules/rule.js';
import { WorkerConversation } from '../../src/supervisor/worker-conversation.js';

// A worker's trace messages are untrusted like the rest of what it says: their shape is bounded
// (records per message, copies per record, every field), and a worker may send records only for
// a trace it was asked to run, no more than asked, and nothing after it said the trace ended.

const bytes = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

function record(edit: Partial<Record<keyof TraceRecord, unknown>> = {}): Record<string, unknown> {
  return {
    timeUs: 1_764_563_553_123_456,
    vlan: 100,
    source: 0x0a3f0101,
    sourcePort: 40000,
    group: 0xef010101,
    port: 5000,
    ttl: 64,
    frameLength: 146,
    payloadLength: 100,
    outcome: 'forwarded',
    rule: 'r-0123456789ab',
    copies: [{ output: 0, status: 'sent', path: 'raw', errno: null }],
    ...edit,
  };
}

const records = (list: unknown[]): unknown => ({ type: 'trace.records', trace: 1, records: list, missed: 0 });

function refused(value: unknown, pattern: RegExp): void {
  const check = parseWorkerMessage(bytes(value));
  assert.equal(check.ok, false, `accepted ${JSON.stringify(value).slice(0, 300)}`);
  if (!check.ok) assert.match(check.reason, pattern);
}

test('trace.records: a well-formed message is accepted as sent', () => {
  const message = records([record(), record({ vlan: null, source: null, rule: null, copies: [] })]);
  const check = parseWorkerMessage(bytes(message));
  assert.ok(check.ok, check.ok ? '' : check.reason);
  assert.deepEqual(check.message, message);
});

test('trace.records: too many records, too many copies, forged fields are refused', () => {
  const full = Array.from({ length: MAX_TRACE_RECORDS_PER_MESSAGE }, () => record());
  assert.ok(parseWorkerMessage(bytes(records(full))).ok);
  refused(records([...full, record()]), /^trace.records: \/records must NOT have more than 32 items/);
  const copies = Array.from({ length: MAX_OUTPUTS_PER_RULE + 1 }, (_, output) => ({
    output: output % MAX_OUTPUTS_PER_RULE,
    status: 'sent',
    path: 'raw',
    errno: null,
  }));
  refused(records([record({ copies })]), /\/records\/0\/copies must NOT have more than 64 items/);
  for (const [edit, at] of [
    [{ timeUs: -1 }, 'timeUs'],
    [{ timeUs: 1.5 }, 'timeUs'],
    [{ vlan: 4096 }, 'vlan'],
    [{ source: 2 ** 32 }, 'source'],
    [{ group: '239.1.1.1' }, 'group'],
    [{ port: 65_536 }, 'port'],
    [{ ttl: 256 }, 'ttl'],
    [{ frameLength: -1 }, 'frameLength'],
    [{ outcome: 'Forwarded' }, 'outcome'],
    [{ outcome: 'x'.repeat(49) }, 'outcome'],
    [{ rule: 'r-1; rm -rf /' }, 'rule'],
    [{ copies: [{ output: 64, status: 'sent', path: 'raw', errno: null }] }, 'copies/0/output'],
    [{ copies: [{ output: 0, status: 'lost', path: 'raw', errno: null }] }, 'copies/0/status'],
    [{ copies: [{ output: 0, status: 'refused', path: 'tunnel', errno: null }] }, 'copies/0/path'],
    [{ copies: [{ output: 0, status: 'refused', path: 'raw', errno: 'enobufs' }] }, 'copies/0/errno'],
  ] as const) {
    refused(records([record(edit)]), new RegExp(`^trace.records: /records/0/${at}`));
  }
  refused(records([{ ...record(), extra: 1 }]), /has an unexpected key "extra"/);
  refused({ type: 'trace.records', trace: 0, records: [], missed: 0 }, /\/trace/);
  refused({ type: 'trace.records', trace: 1, records: [], missed: -1 }, /\/missed/);
  refused({ type: 'trace.ended', trace: 1, reason: 'bored' }, /\/reason/);
});

test('the conversation: records only for a trace asked for, within its count, none after it ended', () => {
  const talk = new WorkerConversation(10);
  assert.equal(talk.accept({ type: 'ready', pid: 10 }), undefined);
  const batch = (trace: number, n: number): WorkerMessage =>
    ({
      type: 'trace.records',
      trace,
      records: Array.from({ length: n }, () => record() as unknown as TraceRecord),
      missed: 0,
    }) as WorkerMessage;
  assert.match(talk.accept(batch(1, 1))!, /records for trace 1, which it is not running/);
  talk.traceStarted(1, 5);
  assert.equal(talk.accept(batch(1, 3)), undefined);
  assert.equal(talk.accept(batch(1, 0)), undefined, 'an item that only reports missed frames');
  assert.match(talk.accept(batch(1, 3))!, /3 records for trace 1, but only 2 more were asked for/);
  assert.equal(talk.accept(batch(1, 2)), undefined);
  assert.equal(talk.accept({ type: 'trace.ended', trace: 1, reason: 'count' }), undefined);
  assert.match(talk.accept(batch(1, 0))!, /which it is not running/);
  assert.match(
    talk.accept({ type: 'trace.ended', trace: 1, reason: 'stopped' })!,
    /said trace 1 ended, which it is not running/,
  );
  assert.match(talk.accept({ type: 'trace.ended', trace: 2, reason: 'stopped' })!, /trace 2/);
});
