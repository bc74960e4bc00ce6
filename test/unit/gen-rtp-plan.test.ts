import { test } from 'node:test';
import assert from 'node:assert/strict';

import { RtpSequencePlan, writeRtpHeader, type RtpPlanOptions } from '../../src/gen/rtp-plan.js';

const plain: RtpPlanOptions = {
  firstSequence: 0,
  gaps: [],
  skipEvery: 0,
  duplicateEvery: 0,
  reorderEvery: 0,
};

function sequence(
  options: Partial<RtpPlanOptions>,
  count: number,
  limit = count,
): { seqs: number[]; plan: RtpSequencePlan } {
  const plan = new RtpSequencePlan({ ...plain, ...options }, limit);
  return { seqs: Array.from({ length: count }, () => plan.next()), plan };
}

test('without impairments: consecutive numbers from the first', () => {
  const { seqs, plan } = sequence({ firstSequence: 100 }, 5);
  assert.deepEqual(seqs, [100, 101, 102, 103, 104]);
  assert.deepEqual(plan.injected(), { gaps: 0, lost: 0, duplicates: 0, reordered: 0 });
});

test('numbers are extended past 65535; the wire carries their low 16 bits', () => {
  const { seqs } = sequence({ firstSequence: 65534 }, 4);
  assert.deepEqual(seqs, [65534, 65535, 65536, 65537]);
  assert.deepEqual(
    seqs.map((s) => s & 0xffff),
    [65534, 65535, 0, 1],
  );
});

test('listed gaps skip numbers before the packet named', () => {
  const { seqs, plan } = sequence(
    {
      gaps: [
        { at: 2, size: 1 },
        { at: 4, size: 3 },
      ],
    },
    6,
  );
  assert.deepEqual(seqs, [0, 1, 3, 4, 8, 9]);
  assert.deepEqual(plan.injected(), { gaps: 2, lost: 4, duplicates: 0, reordered: 0 });
});

test('skip-every skips one number before every Nth packet; with a listed gap there, one gap', () => {
  const { seqs, plan } = sequence({ skipEvery: 3 }, 7);
  assert.deepEqual(seqs, [0, 1, 2, 4, 5, 6, 8]);
  assert.deepEqual(plan.injected(), { gaps: 2, lost: 2, duplicates: 0, reordered: 0 });
  const both = sequence({ skipEvery: 3, gaps: [{ at: 3, size: 2 }] }, 4);
  assert.deepEqual(both.seqs, [0, 1, 2, 6]);
  assert.deepEqual(both.plan.injected(), { gaps: 1, lost: 3, duplicates: 0, reordered: 0 });
});

test('duplicate-every sends every Nth packet twice; the count is of datagrams', () => {
  const { seqs, plan } = sequence({ duplicateEvery: 2 }, 7);
  assert.deepEqual(seqs, [0, 1, 1, 2, 3, 3, 4]);
  assert.deepEqual(plan.injected(), { gaps: 0, lost: 0, duplicates: 2, reordered: 0 });
});

test('reorder-every sends every Nth packet after the next one', () => {
  const { seqs, plan } = sequence({ reorderEvery: 3 }, 9);
  assert.deepEqual(seqs, [0, 1, 3, 2, 4, 6, 5, 7, 8]);
  assert.deepEqual(plan.injected(), { gaps: 0, lost: 0, duplicates: 0, reordered: 2 });
});

test('all at once: a late packet may be duplicated, and a gap may sit between the pair', () => {
  const { seqs, plan } = sequence({ reorderEvery: 4, duplicateEvery: 4, gaps: [{ at: 4, size: 2 }] }, 12);
  // Packet 3 goes late and twice; 2 numbers are skipped before packet 4 (which then is 6).
  assert.deepEqual(seqs, [0, 1, 2, 6, 3, 3, 7, 8, 10, 9, 9, 11]);
  assert.deepEqual(plan.injected(), { gaps: 1, lost: 2, duplicates: 2, reordered: 2 });
});

test('near the end: no pair or duplicate that would not fit in the count', () => {
  const swap = sequence({ reorderEvery: 3 }, 3);
  assert.deepEqual(swap.seqs, [0, 1, 2]);
  assert.equal(swap.plan.injected().reordered, 0);
  const dup = sequence({ duplicateEvery: 3 }, 3);
  assert.deepEqual(dup.seqs, [0, 1, 2]);
  assert.equal(dup.plan.injected().duplicates, 0);
});

test('a run cut between a pair (no count): the late packet that never went out is lost', () => {
  const { seqs, plan } = sequence(
    {
      reorderEvery: 3,
      gaps: [
        { at: 2, size: 1 },
        { at: 3, size: 2 },
      ],
    },
    3,
    Infinity,
  );
  // Packet 2 (number 3) should follow packet 3 (number 6); the run stops after number 6.
  assert.deepEqual(seqs, [0, 1, 6]);
  // Numbers 2, 3, 4, 5 were never sent: one gap of 4.
  assert.deepEqual(plan.injected(), { gaps: 1, lost: 4, duplicates: 0, reordered: 0 });
});

test('a packet is not sent late past a gap of 100 or more (it would be lost to a receiver)', () => {
  const { seqs, plan } = sequence({ reorderEvery: 2, gaps: [{ at: 2, size: 100 }] }, 6);
  // Packet 1 stays in place (100 numbers are skipped after it); packet 3 goes late.
  assert.deepEqual(seqs, [0, 1, 102, 104, 103, 105]);
  assert.equal(plan.injected().reordered, 1);
});

test('the RTP header: version 2, payload type, sequence, timestamp, SSRC, big-endian', () => {
  const bytes = new Uint8Array(14);
  writeRtpHeader(bytes, 2, 33, 0xbeef, 0x01020304, 0xa1b2c3d4);
  assert.deepEqual([...bytes], [0, 0, 0x80, 33, 0xbe, 0xef, 1, 2, 3, 4, 0xa1, 0xb2, 0xc3, 0xd4]);
});
