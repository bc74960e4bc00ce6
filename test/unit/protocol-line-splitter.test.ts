import { test } from 'node:test';
import assert from 'node:assert/strict';

import { LineSplitter } from '../../src/protocol/line-splitter.js';

test('one complete line', () => {
  assert.deepEqual(new LineSplitter(100).push('{"a":1}\n'), ['{"a":1}']);
});

test('no newline yet: nothing, and the text is kept for later', () => {
  const s = new LineSplitter(100);
  assert.deepEqual(s.push('{"a":'), []);
  assert.deepEqual(s.push('1}'), []);
  assert.deepEqual(s.push('\n'), ['{"a":1}']);
});

test('a line split across chunks', () => {
  const s = new LineSplitter(100);
  assert.deepEqual(s.push('hel'), []);
  assert.deepEqual(s.push('lo\nwor'), ['hello']);
  assert.deepEqual(s.push('ld\n'), ['world']);
});

test('several lines in one chunk, in order', () => {
  assert.deepEqual(new LineSplitter(100).push('a\nb\nc\n'), ['a', 'b', 'c']);
});

test('several lines and a partial one', () => {
  const s = new LineSplitter(100);
  assert.deepEqual(s.push('a\nb\nc'), ['a', 'b']);
  assert.deepEqual(s.push('\n'), ['c']);
});

test('a line fed one character at a time', () => {
  const s = new LineSplitter(100);
  const got: string[] = [];
  for (const ch of 'ab\ncd\n') {
    const r = s.push(ch);
    assert.notEqual(r, 'overflow');
    if (r !== 'overflow') got.push(...r);
  }
  assert.deepEqual(got, ['ab', 'cd']);
});

test('blank and whitespace-only lines are skipped', () => {
  const s = new LineSplitter(100);
  assert.deepEqual(s.push('\n\n  \n\t\na\n\r\n\nb\n'), ['a', 'b']);
  assert.deepEqual(s.push('\n'), []);
});

test('lines keep their inner and surrounding spaces (JSON.parse ignores them)', () => {
  assert.deepEqual(new LineSplitter(100).push(' {"a": 1} \r\n'), [' {"a": 1} \r']);
});

test('an empty chunk yields nothing', () => {
  const s = new LineSplitter(100);
  assert.deepEqual(s.push(''), []);
  s.push('x');
  assert.deepEqual(s.push(''), []);
  assert.deepEqual(s.push('\n'), ['x']);
});

test('a complete line of exactly the limit is accepted', () => {
  const line = 'x'.repeat(16);
  assert.deepEqual(new LineSplitter(16).push(`${line}\n`), [line]);
});

test('a complete line over the limit overflows', () => {
  assert.equal(new LineSplitter(16).push(`${'x'.repeat(17)}\n`), 'overflow');
});

test('a long line among short ones overflows the whole chunk', () => {
  assert.equal(new LineSplitter(16).push(`ok\n${'x'.repeat(17)}\nok\n`), 'overflow');
});

test('an unterminated line of exactly the limit is still waited for', () => {
  const s = new LineSplitter(16);
  assert.deepEqual(s.push('x'.repeat(16)), []);
  assert.deepEqual(s.push('\n'), ['x'.repeat(16)]);
});

test('an unterminated line over the limit overflows before its newline arrives', () => {
  const s = new LineSplitter(16);
  assert.deepEqual(s.push('x'.repeat(10)), []);
  assert.equal(s.push('x'.repeat(7)), 'overflow');
});

test('an unterminated line over the limit in a single chunk overflows', () => {
  assert.equal(new LineSplitter(16).push(`short\n${'x'.repeat(17)}`), 'overflow');
});

test('the limit is per line, not per chunk', () => {
  const s = new LineSplitter(16);
  const lines = Array.from({ length: 50 }, (_, i) => `line-${i}`);
  assert.deepEqual(s.push(`${lines.join('\n')}\n`), lines);
});

test('a line over the limit when assembled from chunks overflows', () => {
  const s = new LineSplitter(16);
  assert.deepEqual(s.push('x'.repeat(8)), []);
  assert.deepEqual(s.push('x'.repeat(8)), []);
  assert.equal(s.push('x\n'), 'overflow');
});

test('the limit is counted in bytes', {}, () => {
  assert.equal(new LineSplitter(3).push('éé\n'), 'overflow');
});

test('take: the lines before an over-long one are kept, and nothing is taken after it', () => {
  const s = new LineSplitter(16);
  assert.deepEqual(s.take(`a\nb\n${'x'.repeat(17)}\nc\n`), { lines: ['a', 'b'], overflow: true });
  assert.deepEqual(s.take('d\n'), { lines: [], overflow: true });
  assert.equal(s.push('e\n'), 'overflow');
});

test('partialBytes: the bytes of the line begun, 0 between lines', () => {
  const s = new LineSplitter(100);
  assert.equal(s.partialBytes, 0);
  s.push('{"a":');
  assert.equal(s.partialBytes, 5);
  s.push('"é"');
  assert.equal(s.partialBytes, 9);
  s.push('}\n');
  assert.equal(s.partialBytes, 0);
  s.push('\n\n');
  assert.equal(s.partialBytes, 0);
});

test('flush: the line the end of the stream completes, if not blank', () => {
  const s = new LineSplitter(100);
  s.push('a\nlast');
  assert.equal(s.flush(), 'last');
  assert.equal(s.flush(), undefined);
  s.push('  ');
  assert.equal(s.flush(), undefined);
});

test('a line of the full size fed a byte at a time costs time in proportion to its length', () => {
  // Each byte used to re-split everything pending: a 1-MiB line so fed took minutes.
  const size = 1024 * 1024;
  const s = new LineSplitter(size);
  const started = performance.now();
  for (let i = 0; i < size; i++) s.push('x');
  assert.deepEqual(s.push('\n'), ['x'.repeat(size)]);
  const ms = performance.now() - started;
  assert.ok(ms < 5000, `${ms.toFixed(0)} ms`);
});
