import { test } from 'node:test';
import assert from 'node:assert/strict';

import { SeqVerdict, SequenceTracker, StreamStats, StreamTable } from '../../src/gen/sequence-tracker.js';

function counts(t: SequenceTracker): Record<string, number> {
  return {
    received: t.received,
    unique: t.unique,
    duplicates: t.duplicates,
    reordered: t.reordered,
    lost: t.lost,
    highest: t.highest,
  };
}

test('empty tracker', () => {
  const t = new SequenceTracker();
  assert.deepEqual(counts(t), { received: 0, unique: 0, duplicates: 0, reordered: 0, lost: 0, highest: -1 });
});

test('in order, no loss', () => {
  const t = new SequenceTracker();
  for (let i = 0; i < 200000; i++) assert.equal(t.record(i), SeqVerdict.IN_ORDER);
  assert.deepEqual(counts(t), {
    received: 200000,
    unique: 200000,
    duplicates: 0,
    reordered: 0,
    lost: 0,
    highest: 199999,
  });
});

test('gaps count as lost, including a late start', () => {
  const t = new SequenceTracker();
  for (const s of [3, 4, 5, 9, 10]) t.record(s);
  // 0-2 and 6-8 never arrived.
  assert.equal(t.lost, 6);
  assert.equal(t.unique, 5);
  assert.equal(t.reordered, 0);
});

test('duplicates are counted once and not as unique', () => {
  const t = new SequenceTracker();
  for (const s of [0, 1, 1, 2, 0, 2, 2]) t.record(s);
  assert.deepEqual(counts(t), { received: 7, unique: 3, duplicates: 4, reordered: 0, lost: 0, highest: 2 });
});

test('reordered packets fill gaps; a later copy of one is a duplicate', () => {
  const t = new SequenceTracker();
  assert.equal(t.record(0), SeqVerdict.IN_ORDER);
  assert.equal(t.record(2), SeqVerdict.IN_ORDER);
  assert.equal(t.record(1), SeqVerdict.REORDERED);
  assert.equal(t.record(1), SeqVerdict.DUPLICATE);
  assert.equal(t.record(5), SeqVerdict.IN_ORDER);
  assert.equal(t.record(3), SeqVerdict.REORDERED);
  assert.deepEqual(counts(t), { received: 6, unique: 5, duplicates: 1, reordered: 2, lost: 1, highest: 5 });
});

test('chunk boundaries', () => {
  const t = new SequenceTracker();
  for (const s of [65535, 65536, 65535, 131071, 131072, 0]) t.record(s);
  assert.equal(t.duplicates, 1);
  assert.equal(t.unique, 5);
  assert.equal(t.reordered, 1);
  assert.equal(t.highest, 131072);
  assert.equal(t.lost, 131073 - 5);
});

test('large sequence numbers use memory only where they land', () => {
  const t = new SequenceTracker();
  const base = 2 ** 40;
  for (let i = 0; i < 10; i++) t.record(base + i);
  t.record(base + 3);
  t.record(2 ** 53 - 1);
  t.record(2 ** 53 - 1);
  assert.equal(t.unique, 11);
  assert.equal(t.duplicates, 2);
  assert.equal(t.highest, 2 ** 53 - 1);
  assert.ok(t.chunkCount <= 2);
});

test('the window slides: memory stays bounded and far-behind packets are flagged', () => {
  const t = new SequenceTracker(4);
  for (let c = 0; c < 10; c++) t.record(c * 65536);
  assert.ok(t.chunkCount <= 4, `chunks ${t.chunkCount}`);
  // Chunk 0 is out of the window now: counted as unique and reordered, flagged.
  assert.equal(t.record(1), SeqVerdict.OUT_OF_WINDOW);
  assert.equal(t.outOfWindow, 1);
  assert.equal(t.unique, 11);
  // Inside the window duplicates are still caught.
  assert.equal(t.record(9 * 65536), SeqVerdict.DUPLICATE);
  assert.equal(t.record(6 * 65536 + 1), SeqVerdict.REORDERED);
});

test('10^7 in order stays within the default window', () => {
  const t = new SequenceTracker();
  for (let i = 0; i < 1e7; i++) t.record(i);
  assert.equal(t.lost, 0);
  assert.equal(t.outOfWindow, 0);
  assert.equal(t.chunkCount, Math.ceil(1e7 / 65536));
});

test('two streams are accounted separately', () => {
  const table = new StreamTable();
  for (let i = 0; i < 100; i++) {
    table.get(7).recordGood(i, 100, 10);
    if (i % 10 !== 0) table.get(8).recordGood(i, 200, 20 + i);
  }
  table.get(8).recordGood(5, 200, 1);
  assert.equal(table.size, 2);
  assert.equal(table.find(9), undefined);
  const [a, b] = table.all();
  assert.equal(a!.streamId, 7);
  assert.deepEqual(counts(a!.sequence), {
    received: 100,
    unique: 100,
    duplicates: 0,
    reordered: 0,
    lost: 0,
    highest: 99,
  });
  assert.equal(b!.streamId, 8);
  assert.deepEqual(counts(b!.sequence), {
    received: 91,
    unique: 90,
    duplicates: 1,
    reordered: 0,
    lost: 10,
    highest: 99,
  });
  assert.equal(a!.bytes, 10000);
  assert.equal(b!.latencyMinUs, 1);
  assert.equal(b!.latencyMaxUs, 119);
});

test('corrupted counts by status name', () => {
  const s = new StreamStats(1);
  s.recordCorrupted('bad_checksum');
  s.recordCorrupted('bad_checksum');
  s.recordCorrupted('truncated');
  assert.equal(s.corruptedTotal, 3);
  assert.deepEqual(Object.fromEntries(s.corrupted), { bad_checksum: 2, truncated: 1 });
});
