import { test } from 'node:test';
import assert from 'node:assert/strict';

import { formatCount, formatRate, formatTable } from '../../src/cli/table.js';

// ---------------------------------------------------------------- formatTable

test('columns are left-aligned, two spaces apart, widest cell sets the width', () => {
  const text = formatTable(
    ['ID', 'NAME', 'INPUT'],
    [
      ['r-1', 'feed-a', 'eth0 239.1.1.1:5000'],
      ['r-22', 'b', 'eth1 239.9.9.9:1'],
    ],
  );
  assert.equal(
    text,
    ['ID    NAME    INPUT', 'r-1   feed-a  eth0 239.1.1.1:5000', 'r-22  b       eth1 239.9.9.9:1'].join('\n'),
  );
});

test("a header ending in '>' right-aligns its column and the '>' is not shown", () => {
  const text = formatTable(
    ['RULE', 'PACKETS>', 'RATE>'],
    [
      ['a', '5', '0'],
      ['bbbbbbbbbb', '1.23M', '12.3k'],
    ],
  );
  assert.equal(
    text,
    ['RULE        PACKETS   RATE', 'a                 5      0', 'bbbbbbbbbb    1.23M  12.3k'].join('\n'),
  );
  assert.ok(!text.includes('>'));
});

test('a right-aligned value wider than its header widens the column, header padded on the left', () => {
  assert.equal(formatTable(['N>'], [['12345'], ['7']]), ['    N', '12345', '    7'].join('\n'));
});

test('lines carry no trailing spaces', () => {
  const text = formatTable(
    ['A', 'B'],
    [
      ['x', ''],
      ['longer', 'y'],
    ],
  );
  for (const line of text.split('\n')) assert.equal(line, line.trimEnd());
  assert.equal(text, ['A       B', 'x', 'longer  y'].join('\n'));
});

test('a header alone when there are no rows', () => {
  assert.equal(formatTable(['ID', 'COUNT>'], []), 'ID  COUNT');
});

test('missing cells count as empty for width', () => {
  assert.equal(
    formatTable(['A', 'B', 'C'], [['1'], ['1', '2', '3']]),
    ['A  B  C', '1', '1  2  3'].join('\n'),
  );
});

test("only a trailing '>' marks alignment", () => {
  assert.equal(formatTable(['>X', 'Y'], [['1', '2']]), ['>X  Y', '1   2'].join('\n'));
});

test('every row has the same width up to its last non-empty cell', () => {
  const rows = [
    ['r-1', '10', '1.00k'],
    ['r-2', '200000', '0'],
    ['r-3', '3', '999'],
  ];
  const lines = formatTable(['ID', 'PKTS>', 'RATE>'], rows).split('\n');
  const widths = new Set(lines.map((l) => l.length));
  assert.equal(widths.size, 1, lines.join('\n'));
});

// ---------------------------------------------------------------- formatCount

test('counts below 10000 are exact (rounded to integers)', () => {
  assert.equal(formatCount(0), '0');
  assert.equal(formatCount(1), '1');
  assert.equal(formatCount(999), '999');
  assert.equal(formatCount(1000), '1000');
  assert.equal(formatCount(9999), '9999');
  assert.equal(formatCount(1.4), '1');
  assert.equal(formatCount(2.5), '3');
  assert.equal(formatCount(0.4), '0');
});

test('counts from 10000 use k, M, G, T with three significant digits', () => {
  assert.equal(formatCount(10_000), '10.0k');
  assert.equal(formatCount(12_345), '12.3k');
  assert.equal(formatCount(123_456), '123k');
  assert.equal(formatCount(999_000), '999k');
  assert.equal(formatCount(1_000_000), '1.00M');
  assert.equal(formatCount(1_234_567), '1.23M');
  assert.equal(formatCount(12_345_678), '12.3M');
  assert.equal(formatCount(123_456_789), '123M');
  assert.equal(formatCount(1_500_000_000), '1.50G');
  assert.equal(formatCount(2_000_000_000_000), '2.00T');
  assert.equal(formatCount(45_600_000_000_000), '45.6T');
});

test('beyond T the number stays in T', () => {
  assert.equal(formatCount(1e15), '1000T');
});

test('rounding never yields 1000 of a unit or an extra digit', {}, () => {
  assert.equal(formatCount(99_999), '100k');
  assert.equal(formatCount(999_999), '1.00M');
  assert.equal(formatCount(9_999_999), '10.0M');
  assert.equal(formatCount(9_999.6), '10.0k');
});

// ---------------------------------------------------------------- formatRate

test('formatRate shows an exact 0 and otherwise formats like a count', () => {
  assert.equal(formatRate(0), '0');
  assert.equal(formatRate(1), '1');
  assert.equal(formatRate(0.4), '0');
  assert.equal(formatRate(123.6), '124');
  assert.equal(formatRate(9999), '9999');
  assert.equal(formatRate(15_000), '15.0k');
  assert.equal(formatRate(2_500_000), '2.50M');
});
