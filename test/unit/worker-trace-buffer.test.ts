import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ENODEV } from '../../src/sys/constants.js';
import {
  COPY_DETACHED,
  COPY_RAW,
  COPY_SOCKET,
  COPY_TTL_EXPIRED,
  TraceBuffer,
} from '../../src/worker/trace-buffer.js';
import { FORWARDED, NO_RULE, TTL_EXPIRED } from '../../src/packet/frame-outcomes.js';

// A trace's records in a worker: a bounded ring of typed arrays, written by the data path and
// taken by the worker's timer. Full means not written (the data path counts it missed), never
// overwritten and never grown; withdrawn records leave no gap.

function add(buffer: TraceBuffer, n: number, outcome = NO_RULE): number {
  return buffer.begin(n * 1000, outcome, 142, -1, 0x0a3f0101, 0xef010101, 40000, 5000, 64, 100);
}

test('records come out oldest first, across the end of the ring; a full buffer takes no more', () => {
  const buffer = new TraceBuffer(3);
  assert.ok(add(buffer, 1) >= 0);
  assert.ok(add(buffer, 2) >= 0);
  assert.deepEqual(
    buffer.take(1).map((r) => r.timeUs),
    [1000],
  );
  assert.ok(add(buffer, 3) >= 0);
  assert.ok(add(buffer, 4) >= 0, 'wraps into the slot taken');
  assert.equal(add(buffer, 5), -1, 'full');
  assert.equal(buffer.size, 3);
  assert.deepEqual(
    buffer.take(10).map((r) => r.timeUs),
    [2000, 3000, 4000],
  );
  assert.equal(buffer.size, 0);
  assert.deepEqual(buffer.take(10), []);
});

test('a record says what the worker read, null where it read nothing, and each copy', () => {
  const buffer = new TraceBuffer(2);
  const at = add(buffer, 1, FORWARDED);
  buffer.setRule(at, 'r-0123456789ab');
  for (const status of [COPY_RAW, COPY_SOCKET, COPY_TTL_EXPIRED, COPY_DETACHED]) buffer.addCopy(at, status);
  buffer.refuse(at, 1, ENODEV);
  const malformed = buffer.begin(2000, 10, 60, -1, -1, -1, -1, -1, -1, -1);
  assert.deepEqual(buffer.take(2), [
    {
      timeUs: 1000,
      vlan: null,
      source: 0x0a3f0101,
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
        { output: 1, status: 'refused', path: 'socket', errno: 'ENODEV' },
        { output: 2, status: 'ttl_expired', path: null, errno: null },
        { output: 3, status: 'detached', path: null, errno: null },
      ],
    },
    {
      timeUs: 2000,
      vlan: null,
      source: null,
      sourcePort: null,
      group: null,
      port: null,
      ttl: null,
      frameLength: 60,
      payloadLength: null,
      outcome: 'bad_ipv4_checksum',
      rule: null,
      copies: [],
    },
  ]);
  assert.ok(malformed >= 0);
});

test('withdrawn records of the last batch free their room, the others keep their order', () => {
  const buffer = new TraceBuffer(4);
  add(buffer, 1);
  buffer.take(1); // the ring now starts at slot 1: compaction must follow it round
  const kept = [2, 3, 4, 5].map((n) => add(buffer, n, n % 2 === 0 ? FORWARDED : TTL_EXPIRED));
  buffer.setRule(kept[1]!, 'r-000000000003');
  buffer.addCopy(kept[1]!, COPY_TTL_EXPIRED);
  buffer.withdraw(kept[0]!);
  buffer.withdraw(kept[2]!);
  buffer.compact(4);
  assert.equal(buffer.size, 2);
  assert.ok(add(buffer, 6) >= 0 && add(buffer, 7) >= 0, 'room again');
  const records = buffer.take(10);
  assert.deepEqual(
    records.map((r) => [r.timeUs, r.outcome, r.rule, r.copies.length]),
    [
      [3000, 'ttl_expired', 'r-000000000003', 1],
      [5000, 'ttl_expired', null, 0],
      [6000, 'no_rule', null, 0],
      [7000, 'no_rule', null, 0],
    ],
  );
});
