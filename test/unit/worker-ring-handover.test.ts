import { test } from 'node:test';
import assert from 'node:assert/strict';

import { buildUdpFrame } from '../../src/packet/build.js';
import {
  alignRuns,
  FINGERPRINT_BYTES,
  FrameLog,
  findOverlap,
  flowOf,
  type Alignment,
} from '../../src/worker/ring-handover.js';

// The handover's decision, without a kernel: frames are small byte arrays, a "ring" is the list
// of frames in the order it received them. Frame k of flow f is frame(k, f).

function frame(seq: number, flow = 0): Uint8Array {
  const f = new Uint8Array(64);
  f[0] = seq >>> 8;
  f[1] = seq & 0xff;
  f[2] = flow;
  return f;
}

function log(frames: readonly Uint8Array[], capacity = frames.length): FrameLog {
  const l = new FrameLog(Math.max(1, capacity));
  for (const f of frames) l.add(f, 0, f.length, f.length, 0, f[2]!);
  return l;
}

/** findOverlap on frames of one flow, as the alignment of that flow. */
function align(tail: FrameLog, head: FrameLog, headFull: boolean): Alignment {
  const byRuns = alignRuns(tail.count, head.count, (i, j) => tail.same(i, head, j), headFull);
  const { duplicateOf, skipped } = findOverlap(tail, head, headFull);
  assert.equal(skipped, byRuns.skip);
  assert.deepEqual(
    [...duplicateOf],
    Array.from({ length: head.count }, (_, j) => (j < byRuns.skip ? byRuns.tailStart + j : -1)),
  );
  return byRuns;
}

const seqs = (from: number, to: number): Uint8Array[] =>
  Array.from({ length: to - from }, (_, i) => frame(from + i));

test('no overlap: the old ring took nothing the new one holds', () => {
  assert.deepEqual(align(log(seqs(0, 10)), log(seqs(10, 15)), false), { skip: 0, tailStart: 10 });
  assert.deepEqual(align(log([]), log(seqs(0, 5)), false), { skip: 0, tailStart: 0 });
  assert.deepEqual(align(log(seqs(0, 5)), log([]), false), { skip: 0, tailStart: 5 });
});

test('full overlap: everything in the new ring was taken from the old one', () => {
  assert.deepEqual(align(log(seqs(0, 10)), log(seqs(4, 10)), false), { skip: 6, tailStart: 4 });
  // The tail is exactly what the new ring holds.
  assert.deepEqual(align(log(seqs(3, 8)), log(seqs(3, 8)), false), { skip: 5, tailStart: 0 });
});

test('partial overlap: the old ring was closed while frames kept coming', () => {
  // Old took 0..9; the new ring was set up at 6 and kept receiving after the old closed.
  assert.deepEqual(align(log(seqs(0, 10)), log(seqs(6, 20)), false), { skip: 4, tailStart: 6 });
});

test('the whole run must match, not only its first frame', () => {
  // Frame 7 also appears earlier in the tail: aligned there, the first frame matches but the
  // next does not.
  const tail = log([...seqs(0, 7), frame(7), frame(3), frame(7), frame(8)]);
  const head = log(seqs(7, 13));
  assert.deepEqual(align(tail, head, false), { skip: 2, tailStart: 9 });
});

test('a repeated packet in the traffic: the longest consistent run wins', () => {
  // The source sent frame 5 twice in a row. Old took …, 4, 5, 5; the new ring holds 5, 5, 6.
  const tail = log([frame(3), frame(4), frame(5), frame(5)]);
  assert.deepEqual(align(tail, log([frame(5), frame(5), frame(6)]), false), { skip: 2, tailStart: 2 });
  // Old took …, 4, 5 and the new ring holds 5, 5, 6: only one of the two 5s is a duplicate.
  const shorter = log([frame(3), frame(4), frame(5)]);
  assert.deepEqual(align(shorter, log([frame(5), frame(5), frame(6)]), false), {
    skip: 1,
    tailStart: 2,
  });
  // A repeat the new ring alone holds does not make the tail's other frames duplicates.
  const repeatAfter = log([frame(1), frame(2)]);
  assert.deepEqual(align(repeatAfter, log([frame(2), frame(2), frame(3)]), false), {
    skip: 1,
    tailStart: 1,
  });
});

test('without a full new ring, head cannot start further back than its own length', () => {
  // Head 3..5 also sits at the tail's start, but the tail went on to 9: had the new ring held
  // 3..5 from the old ring, it would hold 6..9 too. So it is no overlap (another 3..5).
  const tail = log(seqs(3, 10));
  assert.deepEqual(align(tail, log(seqs(3, 6)), false), { skip: 0, tailStart: 7 });
});

test('a full new ring dropped what came after: all of it is a run inside the tail', () => {
  // The new ring (capacity 4) filled with 2..5 while the old one was taken up to 9.
  const tail = log(seqs(0, 10));
  assert.deepEqual(align(tail, log(seqs(2, 6)), true), { skip: 4, tailStart: 2 });
});

test('a frame only one ring got breaks the run: nothing is skipped, nothing lost', () => {
  // The old ring was full and missed frame 8; the new ring has it.
  const tail = log([...seqs(0, 8), frame(9)]);
  const head = log(seqs(6, 12));
  assert.deepEqual(align(tail, head, false), { skip: 0, tailStart: 9 });
});

test('fingerprints: length and VLAN tag tell frames apart; a frame cut short matches its whole copy', () => {
  const whole = buildUdpFrame({ src: 0x0a000001, dst: 0xef010101, srcPort: 1, dstPort: 2, payload: 3000 });
  const a = new FrameLog(4);
  a.add(whole, 0, whole.length, whole.length, 0, 0);
  a.add(whole, 0, 1966, whole.length, 0, 0); // the old ring's slot held 1966 bytes of it
  a.add(whole, 0, whole.length, whole.length, 0x10000 | 100, 0); // the same bytes, stripped tag VLAN 100
  a.add(whole, 0, whole.length - 1, whole.length - 1, 0, 0); // one byte shorter on the wire
  assert.equal(a.same(0, a, 1), true, 'only the first FINGERPRINT_BYTES count');
  assert.ok(FINGERPRINT_BYTES <= 1966);
  assert.equal(a.wasTruncated(1), true);
  assert.equal(a.wasTruncated(0), false);
  assert.equal(a.same(0, a, 2), false, 'VLAN tag');
  assert.equal(a.same(0, a, 3), false, 'length');
  const other = Uint8Array.from(whole);
  other[40] = other[40]! ^ 1; // one bit in the UDP header
  const b = log([other]);
  assert.equal(a.same(0, b, 0), false);
  assert.equal(a.add(whole, 0, 10, 10, 0, 0), false, 'a full log says so');
});

test('flows interleaved differently in the two rings (two CPUs): each flow lines up on its own', () => {
  // Flow 1 and flow 2 arrive on different CPUs: the old ring took …, a5, b5, a6, b6 and the new
  // ring got a5, a6, b5, b6, a7, b7 (same frames, per-flow order kept, interleaving not).
  const tail = log([frame(4, 1), frame(4, 2), frame(5, 1), frame(5, 2), frame(6, 1), frame(6, 2)]);
  const head = log([frame(5, 1), frame(6, 1), frame(5, 2), frame(6, 2), frame(7, 1), frame(7, 2)]);
  const { duplicateOf, skipped } = findOverlap(tail, head, false);
  assert.equal(skipped, 4);
  assert.deepEqual([...duplicateOf], [2, 4, 3, 5, -1, -1]);
  // Over the whole ring, as one run, nothing would line up: 4 duplicates.
  assert.equal(alignRuns(tail.count, head.count, (i, j) => tail.same(i, head, j), false).skip, 0);
});

test("flowOf: addresses, protocol, ports and VLAN; a frame cut short is in its whole copy's flow", () => {
  const base = { src: 0x0a000001, dst: 0xef010101, srcPort: 1000, dstPort: 5000, payload: 3000 };
  const f = buildUdpFrame(base);
  const flow = flowOf(f, 0, f.length, 0);
  assert.notEqual(flow, 0);
  const cut = f.slice(0, 1966); // what a small slot held: headers intact, total length runs past it
  assert.equal(flowOf(cut, 0, cut.length, 0), flow);
  assert.equal(flowOf(buildUdpFrame({ ...base, payload: 10 }), 0, 52, 0), flow, 'size is not the flow');
  const tagged = buildUdpFrame({ ...base, vlanTags: [{ id: 7 }] });
  assert.notEqual(flowOf(tagged, 0, tagged.length, 0), flow, 'an inline tag');
  const fragment = buildUdpFrame({ ...base, flags: 1 });
  assert.notEqual(flowOf(fragment, 0, fragment.length, 0), flow, 'fragments have no ports');
  assert.notEqual(flowOf(f, 0, f.length, 0x10000 | 7), flow);
  for (const other of [{ src: 0x0a000002 }, { dst: 0xef010102 }, { srcPort: 1001 }, { dstPort: 5001 }]) {
    const g = buildUdpFrame({ ...base, ...other });
    assert.notEqual(flowOf(g, 0, g.length, 0), flow, JSON.stringify(other));
  }
  assert.equal(flowOf(new Uint8Array(10), 0, 10, 0), 0, 'too short to say');
});
