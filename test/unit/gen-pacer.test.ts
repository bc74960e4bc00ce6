import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Pacer, packetsInDuration } from '../../src/gen/pacer.js';

test('packet 0 is due at the start, then one per 1/rate', () => {
  const p = new Pacer(1000, Number.POSITIVE_INFINITY);
  assert.equal(p.dueBy(-1), 0);
  assert.equal(p.dueBy(0), 1);
  assert.equal(p.dueBy(0.999), 1);
  assert.equal(p.dueBy(1), 2);
  assert.equal(p.dueBy(1000), 1001);
});

test('due counts come from elapsed time only, so late wake-ups do not drift the rate', () => {
  const p = new Pacer(20000, Number.POSITIVE_INFINITY);
  // Whatever the wake-up pattern, the cumulative count at a given time is the same.
  let sent = 0;
  for (const t of [0, 1.3, 1.31, 7.9, 250, 250.0001, 1000]) sent = Math.max(sent, p.dueBy(t));
  assert.equal(sent, p.dueBy(1000));
  assert.equal(p.dueBy(1000), 20001);
});

test('exact slot boundaries count as due despite float error', () => {
  for (const rate of [3, 7, 30000, 44100, 123456.7]) {
    const p = new Pacer(rate, Number.POSITIVE_INFINITY);
    for (const i of [1, 2, 3, 10, 999, 12345]) {
      const t = (i * 1000) / rate;
      assert.equal(p.dueBy(t), i + 1, `rate ${rate} packet ${i}`);
      assert.ok(Math.abs(p.msUntil(i, t)) < 1e-9);
    }
  }
});

test('the limit caps the due count', () => {
  const p = new Pacer(100, 5);
  assert.equal(p.dueBy(10), 2);
  assert.equal(p.dueBy(1e6), 5);
});

test('unpaced: everything up to the limit is due at once', () => {
  const p = new Pacer(0, 1000);
  assert.ok(p.unpaced);
  assert.equal(p.dueBy(0), 1000);
  assert.equal(p.msUntil(999, 0), 0);
  assert.equal(new Pacer(0, Number.POSITIVE_INFINITY).dueBy(0), Number.POSITIVE_INFINITY);
});

test('msUntil gives the wait to the next slot', () => {
  const p = new Pacer(500, Number.POSITIVE_INFINITY);
  assert.equal(p.msUntil(3, 5), 1);
  assert.equal(p.msUntil(3, 7), -1);
});

test('fractional rates', () => {
  const p = new Pacer(0.5, Number.POSITIVE_INFINITY);
  assert.equal(p.dueBy(1999), 1);
  assert.equal(p.dueBy(2000), 2);
  assert.equal(p.msUntil(2, 0), 4000);
});

test('packetsInDuration counts the slots strictly before the end', () => {
  assert.equal(packetsInDuration(20000, 1), 20000);
  assert.equal(packetsInDuration(3, 1), 3);
  assert.equal(packetsInDuration(3, 0.5), 2);
  assert.equal(packetsInDuration(0.5, 1), 1);
  assert.equal(packetsInDuration(1000, 0.001), 1);
});

test('bad arguments are rejected', () => {
  assert.throws(() => new Pacer(-1, 10), RangeError);
  assert.throws(() => new Pacer(Number.NaN, 10), RangeError);
  assert.throws(() => new Pacer(Number.POSITIVE_INFINITY, 10), RangeError);
});
