import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  formatAge,
  formatBitRate,
  formatBytes,
  formatPps,
  formatSi,
  formatUptime,
} from '../../src/cli/rate-format.js';

test('formatSi: three significant digits with an SI prefix', () => {
  const cases: [number, string][] = [
    [0, '0'],
    [0.004, '0'],
    [0.5, '0.50'],
    [7, '7.00'],
    [12.34, '12.3'],
    [512, '512'],
    [999.4, '999'],
    [1000, '1.00k'],
    [1234, '1.23k'],
    [12345, '12.3k'],
    [123456, '123k'],
    [1234567, '1.23M'],
    [9.41e9, '9.41G'],
    [2.5e15, '2.50P'],
  ];
  for (const [value, text] of cases) assert.equal(formatSi(value), text, String(value));
});

test('formatSi: rounding that reaches 1000 takes the next prefix', () => {
  assert.equal(formatSi(999.7), '1.00k');
  assert.equal(formatSi(999_960), '1.00M');
  assert.equal(formatSi(9.996), '10.0');
  assert.equal(formatSi(99.96), '100');
});

test('formatSi: negative and non-finite values', () => {
  assert.equal(formatSi(-1234), '-1.23k');
  assert.equal(formatSi(Number.NaN), '-');
  assert.equal(formatSi(Number.POSITIVE_INFINITY), '-');
});

test('formatPps is formatSi', () => {
  assert.equal(formatPps(400), '400');
  assert.equal(formatPps(148_800), '149k');
});

test('formatBitRate: bit/s with the prefix before the unit', () => {
  assert.equal(formatBitRate(0), '0');
  assert.equal(formatBitRate(960), '960 bit/s');
  assert.equal(formatBitRate(640_000), '640 kbit/s');
  assert.equal(formatBitRate(1_200_000), '1.20 Mbit/s');
  assert.equal(formatBitRate(9.41e9), '9.41 Gbit/s');
});

test('formatBytes: binary units for memory', () => {
  assert.equal(formatBytes(0), '0B');
  assert.equal(formatBytes(812), '812B');
  assert.equal(formatBytes(1536), '1.50K');
  assert.equal(formatBytes(52.3 * 1048576), '52.3M');
  assert.equal(formatBytes(150 * 1048576), '150M');
  assert.equal(formatBytes(1.2 * 1073741824), '1.20G');
});

test('formatAge: tenths under 10 s, then whole seconds, minutes, hours, days', () => {
  const cases: [number | null, string][] = [
    [null, 'never'],
    [0, '0.0s'],
    [0.34, '0.3s'],
    [0.99, '0.9s'],
    [9.99, '9.9s'],
    [10, '10s'],
    [42.7, '42s'],
    [60, '1m'],
    [750, '12m'],
    [3599, '59m'],
    [3600, '1h'],
    [7200, '2h'],
    [86400, '1d'],
    [200000, '2d'],
    [-3, '0.0s'],
  ];
  for (const [seconds, text] of cases) assert.equal(formatAge(seconds), text, String(seconds));
});

test('formatUptime: two units, the smaller zero-padded', () => {
  assert.equal(formatUptime(0), '0s');
  assert.equal(formatUptime(45.9), '45s');
  assert.equal(formatUptime(725), '12m05s');
  assert.equal(formatUptime(3 * 3600 + 7 * 60 + 59), '3h07m');
  assert.equal(formatUptime(2 * 86400 + 4 * 3600), '2d04h');
});
