import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import type { RtpCounters } from '../../src/protocol/control-api.js';
import {
  RTP_MAX_DROPOUT,
  RTP_SETTLE_MS,
  RTP_WINDOW,
  RtpCounterSet,
  RtpHealth,
} from '../../src/worker/rtp-health.js';

const OFFSET = 7; // payloads start anywhere in a ring: never assume 0

/** An RTP packet (version 2) with this sequence number and SSRC, in a buffer at OFFSET. */
function packet(seq: number, ssrc = 0x11223344, length = 40): Uint8Array {
  const bytes = new Uint8Array(OFFSET + length);
  bytes[OFFSET] = 0x80;
  bytes[OFFSET + 1] = 96;
  bytes[OFFSET + 2] = (seq >>> 8) & 0xff;
  bytes[OFFSET + 3] = seq & 0xff;
  bytes[OFFSET + 8] = ssrc >>> 24;
  bytes[OFFSET + 9] = (ssrc >>> 16) & 0xff;
  bytes[OFFSET + 10] = (ssrc >>> 8) & 0xff;
  bytes[OFFSET + 11] = ssrc & 0xff;
  return bytes;
}

/** Feeds the sequence numbers (16-bit, wrapped here) and settles twice, as two stats timers would. */
function run(seqs: readonly number[], ssrc?: number): RtpCounters {
  const health = new RtpHealth();
  feed(health, seqs, ssrc);
  return settled(health);
}

function feed(health: RtpHealth, seqs: readonly number[], ssrc?: number): void {
  for (const s of seqs) {
    const p = packet(s & 0xffff, ssrc);
    health.observe(p, OFFSET, p.length - OFFSET);
  }
}

let clock = 1_000_000;
function settled(health: RtpHealth): RtpCounters {
  clock += RTP_SETTLE_MS;
  health.settle(clock);
  clock += RTP_SETTLE_MS;
  health.settle(clock);
  return health.counters.snapshot();
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

function expectCounts(actual: RtpCounters, expected: Partial<RtpCounters>): void {
  const zero: RtpCounters = {
    packets: 0,
    notRtp: 0,
    lost: 0,
    gaps: 0,
    duplicates: 0,
    reordered: 0,
    ssrcChanges: 0,
    resyncs: 0,
  };
  assert.deepEqual(actual, { ...zero, ...expected });
}

test('an unbroken sequence counts packets only', () => {
  expectCounts(run(range(100, 1100)), { packets: 1000 });
});

test('gaps: each run of missing numbers is one gap, its size in lost', () => {
  const seqs = [...range(0, 10), ...range(11, 20), ...range(25, 300), ...range(400, 500)];
  // missing: 10 (1), 20-24 (5), 300-399 (100)
  expectCounts(run(seqs), { packets: seqs.length, lost: 106, gaps: 3 });
});

test('a gap is counted once the window passes it, without waiting for a settle', () => {
  const health = new RtpHealth();
  feed(health, [...range(0, 10), ...range(13, 13 + RTP_WINDOW + 2)]);
  expectCounts(health.counters.snapshot(), { packets: 10 + RTP_WINDOW + 2, lost: 3, gaps: 1 });
});

test('a gap wider than the window is one gap', () => {
  const seqs = [...range(0, 50), ...range(50 + 1000, 50 + 1100)];
  expectCounts(run(seqs), { packets: 150, lost: 1000, gaps: 1 });
});

test('a gap at the end of a stream is judged lost by settling', () => {
  const health = new RtpHealth();
  feed(health, [...range(0, 50), ...range(52, 60)]);
  expectCounts(health.counters.snapshot(), { packets: 58 });
  // The first settle only marks the time; the next judges what was missing at the first.
  clock += RTP_SETTLE_MS;
  health.settle(clock);
  expectCounts(health.counters.snapshot(), { packets: 58 });
  clock += RTP_SETTLE_MS - 1;
  health.settle(clock); // too soon: nothing
  expectCounts(health.counters.snapshot(), { packets: 58 });
  clock += 1;
  health.settle(clock);
  expectCounts(health.counters.snapshot(), { packets: 58, lost: 2, gaps: 1 });
  expectCounts(settled(health), { packets: 58, lost: 2, gaps: 1 });
});

test('settling does not judge holes younger than the last settle', () => {
  const health = new RtpHealth();
  clock += RTP_SETTLE_MS;
  health.settle(clock);
  feed(health, [...range(0, 50), ...range(52, 60)]);
  clock += RTP_SETTLE_MS;
  health.settle(clock); // 50, 51 went missing after the last settle: they may still come
  feed(health, [50, 51]);
  expectCounts(settled(health), { packets: 60, reordered: 2 });
});

test('duplicates: the same number again, right after or later within the window', () => {
  const seqs = [...range(0, 10), 9, ...range(10, 20), 15, 15, ...range(20, 30)];
  expectCounts(run(seqs), { packets: seqs.length, duplicates: 3 });
});

test('reordered: a late packet fills its hole and is not lost', () => {
  const seqs = [0, 1, 3, 2, 4, 5, 7, 8, 6, 9];
  expectCounts(run(seqs), { packets: 10, reordered: 2 });
});

test('a late packet that comes twice is one reordered and one duplicate', () => {
  expectCounts(run([0, 1, 3, 2, 2, 4]), { packets: 6, reordered: 1, duplicates: 1 });
});

test('reordering next to a gap: only the numbers that never came are lost', () => {
  // 5 is skipped; 7 and 6 are swapped; 12 and 13 are skipped; 14 is sent twice.
  const seqs = [0, 1, 2, 3, 4, 7, 6, 8, 9, 10, 11, 14, 14, 15];
  expectCounts(run(seqs), { packets: 14, lost: 3, gaps: 2, reordered: 1, duplicates: 1 });
});

test('a packet late by up to the window size minus one is late, not lost', () => {
  const late = 500;
  const seqs = [
    ...range(0, late),
    ...range(late + 1, late + RTP_WINDOW),
    late,
    ...range(late + RTP_WINDOW, 900),
  ];
  expectCounts(run(seqs), { packets: 900, reordered: 1 });
});

test('a packet later than the window was lost; when it comes it counts late too', () => {
  const late = 500;
  const seqs = [
    ...range(0, late),
    ...range(late + 1, late + RTP_WINDOW + 5),
    late,
    ...range(late + RTP_WINDOW + 5, 900),
  ];
  expectCounts(run(seqs), { packets: 900, lost: 1, gaps: 1, reordered: 1 });
});

test('16-bit wrap-around: no gap across 65535 → 0, and gaps across it are sized right', () => {
  expectCounts(run(range(65000, 66000)), { packets: 1000 });
  const seqs = [...range(65530, 65534), ...range(65537, 65600)]; // missing 65534, 65535, 0 (as 65536)
  expectCounts(run(seqs), { packets: 4 + 63, lost: 3, gaps: 1 });
  // Late and duplicate across the wrap.
  expectCounts(run([65534, 65535, 1, 0, 0, 2]), { packets: 6, reordered: 1, duplicates: 1 });
});

test('several wraps: counting stays right past 2^16 and 2^17 numbers', () => {
  const seqs = range(0, 200_000).filter((n) => n % 50_000 !== 25_000); // 4 single gaps
  expectCounts(run(seqs), { packets: seqs.length, lost: 4, gaps: 4 });
});

test('a new SSRC starts afresh: an SSRC change, not a gap', () => {
  const health = new RtpHealth();
  feed(health, range(1000, 1100), 0xaaaa);
  feed(health, range(40000, 40100), 0xbbbb);
  expectCounts(settled(health), { packets: 200, ssrcChanges: 1 });
});

test('an SSRC change judges what the old sender still owed as lost', () => {
  const health = new RtpHealth();
  feed(health, [...range(0, 10), ...range(12, 20)], 1);
  feed(health, range(5, 50), 2);
  expectCounts(settled(health), { packets: 18 + 45, lost: 2, gaps: 1, ssrcChanges: 1 });
});

test(`a jump ahead of more than ${RTP_MAX_DROPOUT} is a resync, not a gap`, () => {
  expectCounts(run([...range(0, 100), ...range(20000, 20100)]), { packets: 200, resyncs: 1 });
  // At the bound: a gap.
  const at = [...range(0, 100), ...range(99 + RTP_MAX_DROPOUT, 99 + RTP_MAX_DROPOUT + 10)];
  expectCounts(run(at), { packets: 110, lost: RTP_MAX_DROPOUT - 1, gaps: 1 });
});

test('a jump far back followed by its successor is a resync', () => {
  expectCounts(run([...range(5000, 5100), ...range(100, 200)]), { packets: 200, resyncs: 1 });
});

test('a lone packet far behind is one late packet, and the stream goes on', () => {
  const seqs = [...range(5000, 5100), 10, ...range(5100, 5200)];
  expectCounts(run(seqs), { packets: 201, reordered: 1 });
  // The last packet of a stream, decided by the settle.
  expectCounts(run([...range(5000, 5100), 10]), { packets: 101, reordered: 1 });
});

test('payloads that are not RTP: too short, or not version 2', () => {
  const health = new RtpHealth();
  const short = packet(1);
  health.observe(short, OFFSET, 11);
  const v1 = packet(2);
  v1[OFFSET] = 0x40;
  health.observe(v1, OFFSET, 40);
  const v0 = new Uint8Array(64); // e.g. MPEG-TS without RTP starts 0x47: version 1; zeros: version 0
  health.observe(v0, 0, 64);
  feed(health, range(0, 10));
  expectCounts(settled(health), { packets: 10, notRtp: 3 });
});

test('counters live in the array given (for a shared region)', () => {
  const values = new Float64Array(8);
  const health = new RtpHealth(new RtpCounterSet(values));
  feed(health, [0, 1, 3]);
  assert.equal(values[0], 3);
  assert.throws(() => new RtpCounterSet(new Float64Array(4)), /8 cells/);
});

test('randomised streams: the counts equal what was done to them', () => {
  let state = 12345;
  const random = (n: number): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state >>> 8) % n;
  };
  for (let round = 0; round < 20; round++) {
    let next = random(65536);
    let lost = 0;
    let gaps = 0;
    let duplicates = 0;
    let reordered = 0;
    const seqs: number[] = [];
    for (let i = 0; i < 5000; i++) {
      if (random(50) === 0) {
        const skip = 1 + random(20);
        next += skip;
        lost += skip;
        gaps++;
      }
      if (random(40) === 0) {
        // This one and the next, swapped; a gap may sit between them (counted above next time).
        seqs.push(next + 1, next);
        reordered++;
        next += 2;
        i++;
      } else seqs.push(next++);
      if (random(60) === 0) {
        seqs.push(seqs[seqs.length - 1]!);
        duplicates++;
      }
    }
    expectCounts(run(seqs), { packets: seqs.length, lost, gaps, duplicates, reordered });
  }
});

test('observe allocates nothing per packet once warm, gaps, late packets and duplicates included', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // One lap of 4,096 payloads back to back: in order, with a gap, a swapped pair and a duplicate
  // every 64; each lap starts the numbers again (a jump back: a resync).
  const lap = 4096;
  const bytes = new Uint8Array(lap * 16);
  let seq = 0;
  for (let i = 0; i < lap; i++) {
    const at = i * 16;
    const k = i % 64;
    const n = k === 10 ? ++seq : k === 20 ? seq + 1 : k === 21 ? seq - 1 : k === 30 ? seq - 1 : seq;
    if (k !== 30) seq++;
    bytes[at] = 0x80;
    bytes[at + 2] = (n >>> 8) & 0xff;
    bytes[at + 3] = n & 0xff;
    bytes[at + 11] = 9;
  }
  const health = new RtpHealth();
  const run = (laps: number): void => {
    for (let l = 0; l < laps; l++) for (let i = 0; i < lap; i++) health.observe(bytes, i * 16, 16);
  };
  run(200);
  gc();
  const before = process.memoryUsage().heapUsed;
  run(500);
  const grown = process.memoryUsage().heapUsed - before;
  settled(health); // the last lap's last holes
  const c = health.counters.snapshot();
  assert.equal(c.packets, 700 * lap);
  assert.deepEqual(
    [c.lost, c.gaps, c.reordered, c.duplicates, c.resyncs],
    [700 * 64, 700 * 64, 700 * 64, 700 * 64, 699],
    'one of each per 64 payloads, and a resync per lap',
  );
  // One 16-byte heap number per payload would be 32 MB; 2 MB is the JIT and the measurement.
  assert.ok(grown < 2 * 1024 * 1024, `${grown} bytes of heap for ${500 * lap} payloads`);
});
