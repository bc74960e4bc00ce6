import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RtpCounters, RuleCounters } from '../../src/protocol/control-api.js';
import {
  addRtpCounters,
  addRuleCounters,
  addWorkerCounters,
  emptyRtpCounters,
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
    outputs: [{ packets: 4, bytes: 400, raw: 4, xdp: 0, errors: { ENOBUFS: 1 }, ttlExpired: 2 }],
    lastPacketAt: '2026-12-01T04:00:02.000Z',
    rtp: null,
  };
  const b = {
    packetsIn: 1,
    bytesIn: 100,
    drops: { own_source: 2, ttl_expired: 1 },
    outputs: [{ packets: 1, bytes: 100, raw: 0, xdp: 0, errors: { ENOBUFS: 2, ENETDOWN: 1 }, ttlExpired: 1 }],
    lastPacketAt: '2026-12-01T04:00:01.000Z',
    rtp: null,
  };
  assert.deepEqual(addRuleCounters(a, b), {
    packetsIn: 5,
    bytesIn: 500,
    drops: { own_source: 3, ttl_expired: 1 },
    outputs: [{ packets: 5, bytes: 500, raw: 4, xdp: 0, errors: { ENOBUFS: 3, ENETDOWN: 1 }, ttlExpired: 3 }],
    lastPacketAt: '2026-12-01T04:00:02.000Z',
    rtp: null,
  });
  assert.deepEqual(addRuleCounters(undefined, b), b);
  assert.deepEqual(emptyRuleCounters(2).outputs, [
    { packets: 0, bytes: 0, raw: 0, xdp: 0, errors: {}, ttlExpired: 0 },
    { packets: 0, bytes: 0, raw: 0, xdp: 0, errors: {}, ttlExpired: 0 },
  ]);
});

test('RTP counters add per field; null (no rtp option in that worker) counts as nothing', () => {
  const rtp = (n: number): RtpCounters => ({
    packets: 100 * n,
    notRtp: n,
    lost: 2 * n,
    gaps: n,
    duplicates: 3 * n,
    reordered: 4 * n,
    ssrcChanges: 5 * n,
    resyncs: 6 * n,
  });
  const counters = (r: RtpCounters | null): RuleCounters => ({ ...emptyRuleCounters(0), rtp: r });
  assert.deepEqual(addRuleCounters(counters(rtp(1)), counters(rtp(2))).rtp, rtp(3));
  assert.deepEqual(addRuleCounters(counters(null), counters(rtp(2))).rtp, rtp(2));
  assert.deepEqual(addRuleCounters(counters(rtp(1)), counters(null)).rtp, rtp(1));
  assert.equal(addRuleCounters(counters(null), counters(null)).rtp, null);
  assert.equal(addRtpCounters(null, null), null);
  assert.equal(emptyRuleCounters(1).rtp, null);
  assert.deepEqual(emptyRuleCounters(1, true).rtp, emptyRtpCounters());
});
