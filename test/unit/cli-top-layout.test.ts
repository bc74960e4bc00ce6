import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  COLUMN_GAP,
  fitColumns,
  fitSections,
  fitText,
  interfacesTable,
  reasonsLine,
  rulesTable,
  totalsLine,
  workersTable,
  type Table,
} from '../../src/cli/top-layout.js';
import { topModel } from '../../src/cli/top-model.js';
import { iface, rule, snapshot, worker } from './stats-fixtures.js';

const plain = (text: string) => ({ text, tone: 'plain' as const });

function table(): Table {
  return {
    columns: [
      { title: 'NAME', align: 'left', drop: 0, cut: { at: 1, minWidth: 6 } },
      { title: 'ID', align: 'left', drop: 9 },
      { title: 'INPUT', align: 'left', drop: 5, cut: { at: 7, minWidth: 8 } },
      { title: 'PPS', align: 'right', drop: 0 },
      { title: 'STATE', align: 'left', drop: 3 },
    ],
    rows: [
      [
        plain('camera-one'),
        plain('r-0123456789'),
        plain('in0 239.1.1.1:5000'),
        plain('400'),
        plain('active'),
      ],
    ],
  };
}

const widthOf = (fitted: { width: number }[]): number =>
  fitted.reduce((a, f) => a + f.width, 0) + COLUMN_GAP * (fitted.length - 1);

test('every column at its widest text when the terminal is wide enough', () => {
  const fitted = fitColumns(table(), 200);
  assert.deepEqual(
    fitted.map((f) => [f.index, f.width]),
    [
      [0, 10],
      [1, 12],
      [2, 18],
      [3, 3],
      [4, 6],
    ],
  );
});

test('narrower: the lowest priority goes first, a cut only as far as needed, then drops', () => {
  // Natural: 10+12+18+3+6 + 4 gaps = 57. Without ID (9): 43.
  assert.deepEqual(
    fitColumns(table(), 45).map((f) => f.index),
    [0, 2, 3, 4],
  );
  // 40: INPUT (cut at 7) narrows from 18 to 15.
  const at40 = fitColumns(table(), 40);
  assert.deepEqual(
    at40.map((f) => [f.index, f.width]),
    [
      [0, 10],
      [2, 15],
      [3, 3],
      [4, 6],
    ],
  );
  assert.equal(widthOf(at40), 40);
  // 30: INPUT at its minimum is not enough; INPUT (5) goes, then the room left returns to nobody.
  const at30 = fitColumns(table(), 30);
  assert.deepEqual(
    at30.map((f) => f.index),
    [0, 3, 4],
  );
  assert.ok(widthOf(at30) <= 30);
});

test('room a drop leaves goes back to a column cut before it', () => {
  const t: Table = {
    columns: [
      { title: 'A', align: 'left', drop: 0, cut: { at: 9, minWidth: 4 } },
      { title: 'B', align: 'left', drop: 5 },
    ],
    rows: [[plain('aaaaaaaaaa'), plain('bbbbbbbbbbbbbbbbbbbb')]],
  };
  // 10 + 2 + 20 = 32 > 15: A is cut to 4 (still 26), then B goes; A gets its 10 back.
  assert.deepEqual(fitColumns(t, 15), [{ index: 0, width: 10 }]);
});

test('columns that never go stay, cut to their minimum, when nothing else is left', () => {
  const fitted = fitColumns(table(), 5);
  assert.deepEqual(
    fitted.map((f) => [f.index, f.width]),
    [
      [0, 6],
      [3, 3],
    ],
  );
});

test('fitText pads or cuts to the exact width', () => {
  assert.equal(fitText('abc', 5, 'left'), 'abc  ');
  assert.equal(fitText('abc', 5, 'right'), '  abc');
  assert.equal(fitText('abcdef', 4, 'left'), 'abc…');
  assert.equal(fitText('abcdef', 1, 'left'), 'a');
  assert.equal(fitText('abc', 3, 'right'), 'abc');
});

test('fitSections: everything when the terminal is tall enough', () => {
  // 3 + rules (2 + 3) + workers (2 + 2 + 1) + interfaces (2 + 2) = 17.
  assert.deepEqual(fitSections(17, { rules: 3, workers: 2, interfaces: 2, reasons: true }), {
    ruleRows: 3,
    moreRules: 0,
    workers: true,
    reasons: true,
    interfaces: true,
  });
});

test('fitSections: a short terminal cuts the rule list and says how many more', () => {
  const fit = fitSections(17, { rules: 10, workers: 2, interfaces: 2, reasons: true });
  // 17 - 3 - 2 - 5 - 4 = 3 lines for rule rows: 2 rows and "… 8 more".
  assert.deepEqual(fit, { ruleRows: 2, moreRules: 8, workers: true, reasons: true, interfaces: true });
});

test('fitSections: interfaces go first, then workers, so at least a rule or two show', () => {
  assert.deepEqual(fitSections(12, { rules: 5, workers: 2, interfaces: 3, reasons: false }), {
    ruleRows: 2,
    moreRules: 3,
    workers: true,
    reasons: false,
    interfaces: false,
  });
  assert.deepEqual(fitSections(7, { rules: 5, workers: 2, interfaces: 3, reasons: true }), {
    ruleRows: 1,
    moreRules: 4,
    workers: false,
    reasons: false,
    interfaces: false,
  });
  const none = fitSections(8, { rules: 0, workers: 1, interfaces: 0, reasons: false });
  assert.equal(none.workers, true, 'with no rules, one line says so and workers still show');
});

function model() {
  const now = snapshot(2000, {
    time: '2026-12-01T00:01:00.000Z',
    rules: [
      rule('r-1', 'cam1', {
        pps: 400,
        bytesPerSecond: 80_000,
        drops: { egress_failed: 3 },
        lastPacketAt: '2026-12-01T00:00:59.800Z',
      }),
      rule('r-2', null, { state: 'degraded', reason: 'out1 is down', lastPacketAt: null }),
    ],
    workers: [
      worker(0, { framesSeen: 1000, forwarded: 900, fps: 600, cpu: 0.031, dropsByReason: { no_rule: 100 } }),
    ],
    interfaces: [iface('in0', { rxDropped: 2 })],
  });
  const before = snapshot(1000, { workers: [worker(0, { framesSeen: 400, forwarded: 400 })] });
  return topModel(now, before, 'rate');
}

test('every table has a cell for each column in every row', () => {
  const m = model();
  for (const t of [rulesTable(m.rules), workersTable(m.workers), interfacesTable(m.interfaces)]) {
    for (const r of t.rows) assert.equal(r.length, t.columns.length, t.columns.map((c) => c.title).join(','));
  }
});

test('the rules table: rates with units, ages, drops marked, the state with its reason', () => {
  const t = rulesTable(model().rules);
  const text = (r: number, title: string): string =>
    t.rows[r]![t.columns.findIndex((c) => c.title === title)]!.text;
  assert.equal(text(0, 'RULE'), 'cam1');
  assert.equal(text(0, 'IN PPS'), '400');
  assert.equal(text(0, 'IN BIT/S'), '640 kbit/s');
  assert.equal(text(0, 'DROPS'), '3');
  assert.equal(text(0, 'DROPS/S'), '-');
  assert.equal(text(0, 'LAST'), '0.2s');
  assert.equal(text(1, 'RULE'), 'r-2');
  assert.equal(text(1, 'LAST'), 'never');
  assert.equal(text(1, 'STATE'), 'degraded: out1 is down');
  const drops = t.columns.findIndex((c) => c.title === 'DROPS');
  assert.equal(t.rows[0]![drops]!.tone, 'warn');
  assert.equal(t.rows[1]![drops]!.tone, 'plain');
  const state = t.columns.findIndex((c) => c.title === 'STATE');
  assert.equal(t.rows[0]![state]!.tone, 'good');
  assert.equal(t.rows[1]![state]!.tone, 'warn');
});

test('RTP LOST shows only when a rule counts its RTP stream, "-" for the others', () => {
  assert.ok(!rulesTable(model().rules).columns.some((c) => c.title === 'RTP LOST'));
  const now = snapshot(0, {
    rules: [rule('r-1', 'cam-rtp', { rtp: { lost: 16, packets: 3000 } }), rule('r-2', 'plain')],
  });
  const t = rulesTable(topModel(now, undefined, 'name').rules);
  const at = t.columns.findIndex((c) => c.title === 'RTP LOST');
  assert.ok(at > 0);
  assert.deepEqual(
    t.rows.map((r) => [r[0]!.text, r[at]!.text, r[at]!.tone]),
    [
      ['cam-rtp', '16', 'warn'],
      ['plain', '-', 'dim'],
    ],
  );
  for (const r of t.rows) assert.equal(r.length, t.columns.length);
});

test('a narrow terminal keeps the rule, its input rate and its drop rate', () => {
  const t = rulesTable(model().rules);
  const titles = fitColumns(t, 40).map((f) => t.columns[f.index]!.title);
  assert.ok(
    titles.includes('RULE') && titles.includes('IN PPS') && titles.includes('DROPS/S'),
    titles.join(),
  );
  assert.ok(!titles.includes('ID'));
  assert.ok(widthOf(fitColumns(t, 40)) <= 40);
});

test('the totals and reasons lines', () => {
  const m = model();
  assert.equal(totalsLine(m), 'in 600 pps   out 400 pps   drops 100/s (total 100)   workers 1/1 running');
  assert.equal(reasonsLine(m), 'drops by reason: no_rule 100');
  assert.equal(reasonsLine({ ...m, totals: { ...m.totals, dropsByReason: [] } }), '');
});

test('the workers and interfaces tables', () => {
  const m = model();
  const w = workersTable(m.workers).rows[0]!.map((c) => c.text);
  assert.deepEqual(w, ['0', '1000', 'running', '3.1%', '600', '100', '0', '0', '50.0M']);
  const i = interfacesTable(m.interfaces).rows[0]!.map((c) => c.text);
  assert.deepEqual(i, ['in0', '2', '0', '0', '0', '-']);
});
