import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  PROBE_HEADER_SIZE,
  PROBE_MAGIC,
  PROBE_MAX_SIZE,
  PROBE_MIN_SIZE,
  ProbeInfo,
  ProbeStatus,
  fnv1a32,
  probeStatusName,
  readProbe,
  writeProbe,
} from '../../src/packet/probe.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const ascii = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

function probe(size: number, streamId: number, seq: number, timeUs: number): Uint8Array {
  const b = new Uint8Array(size);
  writeProbe(b, 0, size, streamId, seq, timeUs);
  return b;
}

test('constants and status names', () => {
  assert.equal(PROBE_HEADER_SIZE, 32);
  assert.equal(PROBE_MIN_SIZE, 32);
  assert.equal(PROBE_MAGIC, 0x4d435231);
  assert.equal(hex(probe(32, 0, 0, 0).subarray(0, 4)), hex(ascii('MCR1')));
  assert.ok(Object.isFrozen(ProbeStatus));
  for (const [key, code] of Object.entries(ProbeStatus))
    assert.equal(probeStatusName(code), key.toLowerCase());
  assert.equal(probeStatusName(99), 'unknown');
});

test('fnv1a32 matches the published FNV-1a test vectors', () => {
  assert.equal(fnv1a32(new Uint8Array(0), 0, 0), 0x811c9dc5);
  assert.equal(fnv1a32(ascii('a'), 0, 1), 0xe40c292c);
  assert.equal(fnv1a32(ascii('foobar'), 0, 6), 0xbf9cf968);
  // Chaining two ranges equals hashing them in one go.
  const s = ascii('xxfoobaryy');
  assert.equal(fnv1a32(s, 5, 3, fnv1a32(s, 2, 3)), 0xbf9cf968);
});

test('known vectors: exact bytes of two probes', () => {
  // Computed independently from the layout (a separate reference implementation, not this code).
  assert.equal(
    hex(probe(32, 0, 0, 0)),
    '4d435231' + '00000000' + '0000000000000000' + '0000000000000000' + '0020' + '0000' + '5538d568',
  );
  assert.equal(
    hex(probe(38, 7, 0x123456789a, 1_700_000_000_123_456)),
    '4d435231' +
      '00000007' +
      '00000012' +
      '3456789a' +
      '00060a24' +
      '18202240' +
      '0026' +
      '0000' +
      'c28d8004' +
      'ff5f405dfdc9', // filler: one full word, then two bytes of the next
  );
});

test('round trip at many sizes, offsets and values', () => {
  const out = new ProbeInfo();
  const buf = new Uint8Array(2000);
  const values = [0, 1, 0xffffffff, 2 ** 32, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER];
  for (const size of [32, 33, 34, 35, 36, 37, 100, 1472, 1500]) {
    for (const offset of [0, 1, 3, 7]) {
      for (const seq of values) {
        const timeUs = values[(values.indexOf(seq) + 1) % values.length]!;
        buf.fill(0x5a);
        writeProbe(buf, offset, size, 0xdeadbeef, seq, timeUs);
        assert.equal(buf[offset - 1] ?? 0x5a, 0x5a, 'byte before untouched');
        assert.equal(buf[offset + size], 0x5a, 'byte after untouched');
        const status = readProbe(buf, offset, size, out);
        assert.equal(probeStatusName(status), 'ok', `size=${size} offset=${offset} seq=${seq}`);
        assert.equal(out.streamId, 0xdeadbeef);
        assert.equal(out.seq, seq);
        assert.equal(out.timeUs, timeUs);
        assert.equal(out.length, size);
      }
    }
  }
});

test('filler depends on the sequence number, including its high half', () => {
  const a = probe(64, 1, 5, 0).subarray(PROBE_HEADER_SIZE);
  const b = probe(64, 1, 6, 0).subarray(PROBE_HEADER_SIZE);
  const c = probe(64, 1, 5 + 2 ** 32, 0).subarray(PROBE_HEADER_SIZE);
  const again = probe(64, 99, 5, 12345).subarray(PROBE_HEADER_SIZE);
  assert.notEqual(hex(a), hex(b));
  assert.notEqual(hex(a), hex(c));
  assert.equal(hex(a), hex(again), 'a function of (seq, index) only');
});

test('any single corrupted byte is detected', () => {
  const out = new ProbeInfo();
  for (const size of [32, 45, 300]) {
    const good = probe(size, 3, 123456789, 987654321);
    for (let i = 0; i < size; i++) {
      for (const flip of [0x01, 0x80, 0xff]) {
        const bad = good.slice();
        bad[i] = bad[i]! ^ flip;
        const status = readProbe(bad, 0, size, out);
        assert.notEqual(status, ProbeStatus.OK, `size=${size} byte=${i} flip=${flip}`);
        // Where the damage lands decides the reason.
        if (i < 4) assert.equal(status, ProbeStatus.BAD_MAGIC);
        else if (i === 24 || i === 25) assert.equal(status, ProbeStatus.BAD_LENGTH);
        else assert.equal(status, ProbeStatus.BAD_CHECKSUM);
      }
    }
  }
});

test('a filler spliced from another packet is detected', () => {
  const a = probe(100, 1, 10, 0);
  const b = probe(100, 1, 11, 0);
  a.set(b.subarray(PROBE_HEADER_SIZE), PROBE_HEADER_SIZE);
  assert.equal(readProbe(a, 0, 100, new ProbeInfo()), ProbeStatus.BAD_CHECKSUM);
});

test('too short, wrong length, and bounds past the array', () => {
  const out = new ProbeInfo();
  const p = probe(64, 1, 2, 3);
  for (let n = 0; n < 32; n++) assert.equal(readProbe(p, 0, n, out), ProbeStatus.TOO_SHORT);
  for (let n = 32; n < 64; n++) assert.equal(readProbe(p, 0, n, out), ProbeStatus.BAD_LENGTH);
  const longer = new Uint8Array(65);
  longer.set(p);
  assert.equal(readProbe(longer, 0, 65, out), ProbeStatus.BAD_LENGTH);
  assert.equal(out.length, 64);
  // Size running past the array: only the existing bytes count.
  assert.equal(readProbe(p, 0, 1000, out), ProbeStatus.OK);
  assert.equal(readProbe(p, 40, 64, out), ProbeStatus.TOO_SHORT);
  assert.equal(readProbe(p, 100, 64, out), ProbeStatus.TOO_SHORT);
  assert.equal(readProbe(p, -1, 64, out), ProbeStatus.TOO_SHORT);
  assert.equal(readProbe(p, 0, Number.NaN, out), ProbeStatus.TOO_SHORT);
  assert.equal(readProbe(new Uint8Array(64), 0, 64, out), ProbeStatus.BAD_MAGIC);
});

test('writeProbe rejects what it cannot encode', () => {
  const b = new Uint8Array(PROBE_MAX_SIZE + 10);
  assert.throws(() => writeProbe(b, 0, 31, 0, 0, 0), RangeError);
  assert.throws(() => writeProbe(b, 0, PROBE_MAX_SIZE + 1, 0, 0, 0), RangeError);
  assert.throws(() => writeProbe(b, 20, PROBE_MAX_SIZE, 0, 0, 0), RangeError);
  assert.throws(() => writeProbe(b, 0, 64, -1, 0, 0), RangeError);
  assert.throws(() => writeProbe(b, 0, 64, 2 ** 32, 0, 0), RangeError);
  assert.throws(() => writeProbe(b, 0, 64, 0, -1, 0), RangeError);
  assert.throws(() => writeProbe(b, 0, 64, 0, 2 ** 53, 0), RangeError);
  assert.throws(() => writeProbe(b, 0, 64, 0, 1.5, 0), RangeError);
  assert.throws(() => writeProbe(b, 0, 64, 0, 0, Number.NaN), RangeError);
  writeProbe(b, 0, PROBE_MAX_SIZE, 0, 0, 0);
  assert.equal(readProbe(b, 0, PROBE_MAX_SIZE, new ProbeInfo()), ProbeStatus.OK);
});
