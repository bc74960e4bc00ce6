import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptyRuleCounters } from '../../src/protocol/counters.js';
import { addXdpTotals, emptyXdpTotals, mergeXdpCounters } from '../../src/supervisor/xdp-counters.js';

// The XDP path's counts merged into a rule's counters, and kept across map re-creations.

const live = (packets: number, ids = ['a', 'b']) => ({
  counts: { packets, bytes: packets * 100, ownSource: 2, ttlExpired: 1, noOutput: 0 },
  outputs: ids.map((id) => ({
    id,
    counts: { packets, bytes: packets * 100, ttlExpired: 1, refused: 0, refusedBytes: 0 },
  })),
});

test('XDP counts add to the worker counters: in, drops by the same names, outputs by id, also in xdp', () => {
  const worker = emptyRuleCounters(2);
  worker.packetsIn = 5;
  worker.outputs[0]!.packets = 5;
  worker.outputs[0]!.raw = 5;
  const totals = { ...addXdpTotals(emptyXdpTotals(), live(10)), lastPacketAt: new Date(0) };
  const merged = mergeXdpCounters(worker, totals, ['a', 'b']);
  assert.equal(merged.packetsIn, 15);
  assert.equal(merged.bytesIn, 1000);
  assert.deepEqual(merged.drops, { own_source: 2, ttl_expired: 1 });
  assert.deepEqual(merged.outputs[0], {
    packets: 15,
    bytes: 1000,
    raw: 5,
    xdp: 10,
    errors: {},
    ttlExpired: 1,
  });
  assert.deepEqual(merged.outputs[1], {
    packets: 10,
    bytes: 1000,
    raw: 0,
    xdp: 10,
    errors: {},
    ttlExpired: 1,
  });
});

test("copies the output's driver refused are not sent: they are the output's xdp_refused errors", () => {
  const worker = emptyRuleCounters(1);
  worker.outputs[0]!.errors = { ENOBUFS: 1 };
  const refused = {
    counts: { packets: 10, bytes: 1000, ownSource: 0, ttlExpired: 0, noOutput: 0 },
    outputs: [
      { id: 'a', counts: { packets: 10, bytes: 1000, ttlExpired: 0, refused: 4, refusedBytes: 400 } },
    ],
  };
  const twice = addXdpTotals(addXdpTotals(emptyXdpTotals(), refused), refused);
  const merged = mergeXdpCounters(worker, twice, ['a']);
  assert.equal(merged.packetsIn, 20);
  assert.deepEqual(merged.outputs[0], {
    packets: 12,
    bytes: 1200,
    raw: 0,
    xdp: 12,
    errors: { ENOBUFS: 1, xdp_refused: 8 },
    ttlExpired: 0,
  });
});

test('carried counts and live ones add up: a re-created output set or input never goes backwards', () => {
  const before = addXdpTotals(emptyXdpTotals(), live(10));
  const after = addXdpTotals(before, live(3, ['b', 'c']));
  assert.equal(after.counts.packets, 13);
  assert.deepEqual(
    [...after.outputs].map(([id, c]) => [id, c.packets]),
    [
      ['a', 10],
      ['b', 13],
      ['c', 3],
    ],
  );
});
