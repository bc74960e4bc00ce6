import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  addRuleCounters,
  addWorkerCounters,
  emptyRuleCounters,
  emptyWorkerCounters,
} from '../../src/protocol/counters.js';

test('worker counters add field by field, drop reasons by name', () => {
  const a = {
    ...emptyWorkerCounters(),
    framesSeen: 10,
    forwarded: 7,
    noRule: 3,
    dropsByReason: { no_rule: 3 },
  };
  const b = {
    ...emptyWorkerCounters(),
    framesSeen: 5,
    malformed: 2,
    ringDrops: 1,
    dropsByReason: { no_rule: 1, bad_ipv4_checksum: 2 },
  };
  const sum = addWorkerCounters(a, b);
  assert.equal(sum.framesSeen, 15);
  assert.equal(sum.forwarded, 7);
  assert.equal(sum.malformed, 2);
  assert.equal(sum.ringDrops, 1);
  assert.deepEqual(sum.dropsByReason, { no_rule: 4, bad_ipv4_checksum: 2 });
  assert.deepEqual(a.dropsByReason, { no_rule: 3 }, 'the inputs are not changed');
});

test('rule counters add per output, errors by errno, drops by reason; a missing side counts as zero', () => {
  const a = {
    packetsIn: 4,
    bytesIn: 400,
    drops: { own_source: 1 },
    outputs: [{ packets: 4, bytes: 400, raw: 4, errors: { ENOBUFS: 1 }, ttlExpired: 2 }],
    lastPacketAt: '2026-12-01T04:00:02.000Z',
  };
  const b = {
    packetsIn: 1,
    bytesIn: 100,
    drops: { own_source: 2, ttl_expired: 1 },
    outputs: [{ packets: 1, bytes: 100, raw: 0, errors: { ENOBUFS: 2, ENETDOWN: 1 }, ttlExpired: 1 }],
    lastPacketAt: '2026-12-01T04:00:01.000Z',
  };
  assert.deepEqual(addRuleCounters(a, b), {
    packetsIn: 5,
    bytesIn: 500,
    drops: { own_source: 3, ttl_expired: 1 },
    outputs: [{ packets: 5, bytes: 500, raw: 4, errors: { ENOBUFS: 3, ENETDOWN: 1 }, ttlExpired: 3 }],
    lastPacketAt: '2026-12-01T04:00:02.000Z',
  });
  assert.deepEqual(addRuleCounters(undefined, b), b);
  assert.deepEqual(emptyRuleCounters(2).outputs, [
    { packets: 0, bytes: 0, raw: 0, errors: {}, ttlExpired: 0 },
    { packets: 0, bytes: 0, raw: 0, errors: {}, ttlExpired: 0 },
  ]);
});
