import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  copyErrors,
  interfaceRows,
  nextSortKey,
  perSecond,
  ruleDrops,
  ruleRows,
  sortRules,
  topModel,
  totals,
  workerRows,
  type RuleRow,
} from '../../src/cli/top-model.js';
import { iface, rule, snapshot, worker } from './stats-fixtures.js';

test('a rule row takes its rates from mcrd: pps, payload bits, all outputs together', () => {
  const now = snapshot(2000, {
    rules: [
      rule('r-1', 'cam1', {
        pps: 400,
        bytesPerSecond: 80_000,
        outputs: [
          { pps: 400, bytesPerSecond: 80_000 },
          { pps: 398, bytesPerSecond: 79_600 },
        ],
      }),
    ],
  });
  const [row] = ruleRows(now, undefined);
  assert.ok(row);
  assert.equal(row.label, 'cam1');
  assert.equal(row.input, 'in0 239.1.1.1:5000');
  assert.equal(row.inPps, 400);
  assert.equal(row.inBitRate, 640_000);
  assert.equal(row.outPps, 798);
  assert.equal(row.outBitRate, (80_000 + 79_600) * 8);
  assert.equal(row.state, 'active');
});

test('a rule without a name shows its id; the input names its VLAN, source and rtp', () => {
  const r = rule('r-abc', null, { rtp: { lost: 4 } });
  r.input.vlan = 100;
  r.input.source = '10.0.1.5';
  const [row] = ruleRows(snapshot(0, { rules: [r] }), undefined);
  assert.equal(row!.label, 'r-abc');
  assert.equal(row!.input, 'in0 vlan 100 239.1.1.1:5000 from 10.0.1.5 rtp');
  assert.equal(row!.rtpLost, 4);
  assert.equal(ruleRows(snapshot(0, { rules: [rule('r-1', 'a')] }), undefined)[0]!.rtpLost, null);
});

test('drops are the packets relayed nowhere; copy errors are the copies not sent', () => {
  const r = rule('r-1', 'cam1', {
    drops: { egress_failed: 700, own_source: 3 },
    outputs: [
      { pps: 0, bytesPerSecond: 0, errors: { ENETDOWN: 700 }, ttlExpired: 2 },
      { pps: 10, bytesPerSecond: 100, errors: { ENOBUFS: 5 } },
    ],
  });
  assert.equal(ruleDrops(r), 703);
  assert.equal(copyErrors(r), 707);
});

test('drops per second come from two snapshots of the same rule', () => {
  const before = snapshot(1000, { rules: [rule('r-1', 'a', { drops: { egress_failed: 100 } })] });
  const now = snapshot(3000, { rules: [rule('r-1', 'a', { drops: { egress_failed: 500 } })] });
  const [row] = ruleRows(now, before);
  assert.equal(row!.drops, 500);
  assert.equal(row!.dropsPerSecond, 200);
  assert.equal(ruleRows(now, undefined)[0]!.dropsPerSecond, null, 'no rate from one snapshot');
  const added = snapshot(3000, { rules: [rule('r-2', 'b', { drops: { egress_failed: 5 } })] });
  assert.equal(ruleRows(added, before)[0]!.dropsPerSecond, null, 'a rule new since the last snapshot');
});

test('perSecond: null without an earlier value, over too short a time, or when a total went back', () => {
  assert.equal(perSecond(10, undefined, 1), null);
  assert.equal(perSecond(10, 5, 0.01), null);
  assert.equal(perSecond(10, 5, 0.1), 50, 'the shortest --interval still gives a rate');
  assert.equal(perSecond(3, 10, 1), null, 'mcrd restarted');
  assert.equal(perSecond(15, 5, 2), 5);
  assert.equal(perSecond(5, 5, 1), 0);
});

test("the last packet's age is by mcrd's clock; never when no packet matched", () => {
  const now = snapshot(0, {
    time: '2026-12-01T00:01:00.000Z',
    rules: [
      rule('r-1', 'a', { lastPacketAt: '2026-12-01T00:00:59.700Z' }),
      rule('r-2', 'b', { lastPacketAt: '2026-12-01T00:00:00.000Z' }),
      rule('r-3', 'c', { lastPacketAt: null }),
      rule('r-4', 'd', { lastPacketAt: '2026-12-01T00:01:00.500Z' }),
    ],
  });
  const ages = ruleRows(now, undefined).map((r) => r.lastPacketAge);
  assert.ok(Math.abs(ages[0]! - 0.3) < 1e-9);
  assert.equal(ages[1], 60);
  assert.equal(ages[2], null);
  assert.equal(ages[3], 0, 'a packet stamped after the answer (clock step) is not in the future');
});

function row(label: string, inPps: number, drops = 0, dropsPerSecond: number | null = null): RuleRow {
  return {
    id: `r-${label}`,
    label,
    input: 'in0 239.1.1.1:5000',
    inPps,
    inBitRate: 0,
    outPps: 0,
    outBitRate: 0,
    drops,
    dropsPerSecond,
    copyErrors: 0,
    rtpLost: null,
    lastPacketAge: null,
    state: 'active',
    reason: null,
  };
}

test('sort by rate: busiest first, equal rates by name so rows do not swap between refreshes', () => {
  const rows = [row('b', 10), row('c', 500), row('a', 10), row('d', 0)];
  assert.deepEqual(
    sortRules(rows, 'rate').map((r) => r.label),
    ['c', 'a', 'b', 'd'],
  );
  assert.deepEqual(
    rows.map((r) => r.label),
    ['b', 'c', 'a', 'd'],
    'the input is left as it was',
  );
});

test('sort by name, and by drops: the rate first, then the total', () => {
  const rows = [row('b', 1, 50, 0), row('a', 1, 0, null), row('c', 1, 10, 5), row('d', 1, 60, 0)];
  assert.deepEqual(
    sortRules(rows, 'name').map((r) => r.label),
    ['a', 'b', 'c', 'd'],
  );
  assert.deepEqual(
    sortRules(rows, 'drops').map((r) => r.label),
    ['c', 'd', 'b', 'a'],
  );
});

test('the sort key cycles rate, name, drops', () => {
  assert.equal(nextSortKey('rate'), 'name');
  assert.equal(nextSortKey('name'), 'drops');
  assert.equal(nextSortKey('drops'), 'rate');
});

test('worker rows: CPU in percent, frames per second, frames not forwarded, memory', () => {
  const stats = snapshot(0, {
    workers: [
      worker(0, { framesSeen: 1000, forwarded: 900, ringDrops: 7, fps: 600, cpu: 0.125, restarts: 2 }),
      worker(1, { state: 'starting', rssBytes: null }),
    ],
  }).stats;
  const [w0, w1] = workerRows(stats);
  assert.deepEqual(w0, {
    id: 0,
    pid: 1000,
    state: 'running',
    cpuPercent: 12.5,
    framesPerSecond: 600,
    dropped: 100,
    ringDrops: 7,
    restarts: 2,
    rssBytes: 50 * 1048576,
  });
  assert.equal(w1!.rssBytes, null);
  assert.equal(w1!.state, 'starting');
});

test('totals: frames in, copies out, every worker drop (ring drops too), by reason', () => {
  const before = snapshot(1000, {
    workers: [worker(0, { framesSeen: 100, forwarded: 90 }), worker(1, { framesSeen: 100, forwarded: 100 })],
  });
  const now = snapshot(2000, {
    rules: [
      rule('r-1', 'a', {
        outputs: [
          { pps: 300, bytesPerSecond: 0 },
          { pps: 300, bytesPerSecond: 0 },
        ],
      }),
      rule('r-2', 'b', { pps: 100 }),
    ],
    workers: [
      worker(0, {
        framesSeen: 400,
        forwarded: 300,
        ringDrops: 5,
        fps: 400,
        dropsByReason: { no_rule: 80, not_udp: 20 },
      }),
      worker(1, {
        framesSeen: 150,
        forwarded: 150,
        fps: 50,
        state: 'stopped',
        dropsByReason: { no_rule: 0 },
      }),
    ],
  });
  const t = totals(now, before);
  assert.equal(t.inPps, 450);
  assert.equal(t.outPps, 700);
  assert.equal(t.drops, 105);
  assert.equal(t.dropsPerSecond, 95);
  assert.equal(t.workers, 2);
  assert.equal(t.workersRunning, 1);
  assert.deepEqual(t.dropsByReason, [
    ['no_rule', 80],
    ['not_udp', 20],
    ['ring_full', 5],
  ]);
  assert.equal(totals(now, undefined).dropsPerSecond, null);
});

test("interface rows: the kernel's counters, and all their drops per second", () => {
  const before = snapshot(0, { interfaces: [iface('in0', { rxDropped: 10 }), iface('gone0')] });
  const now = snapshot(2000, {
    interfaces: [iface('in0', { rxDropped: 20, rxMissed: 4, txErrors: 6 }), iface('out0', { txDropped: 1 })],
  });
  const rows = interfaceRows(now, before);
  assert.deepEqual(rows[0], {
    name: 'in0',
    rxDropped: 20,
    rxMissed: 4,
    txDropped: 0,
    txErrors: 6,
    dropsPerSecond: 10,
  });
  assert.equal(rows[1]!.dropsPerSecond, null, 'a new interface has no rate yet');
});

test('topModel puts it together in the chosen order', () => {
  const now = snapshot(0, {
    rules: [rule('r-1', 'alpha', { pps: 1 }), rule('r-2', 'zeta', { pps: 1000 })],
    workers: [worker(0)],
    interfaces: [iface('in0')],
  });
  const byRate = topModel(now, undefined, 'rate');
  assert.deepEqual(
    byRate.rules.map((r) => r.label),
    ['zeta', 'alpha'],
  );
  assert.equal(byRate.workers.length, 1);
  assert.equal(byRate.interfaces.length, 1);
  assert.equal(byRate.rateInterval, 1);
  assert.equal(byRate.time, now.stats.time);
  assert.deepEqual(
    topModel(now, undefined, 'name').rules.map((r) => r.label),
    ['alpha', 'zeta'],
  );
});
