import { test } from 'node:test';
import assert from 'node:assert/strict';

import { multicastMac } from '../../src/packet/build.js';
import { DropReason, ParsedFrame, parseFrame } from '../../src/packet/frame.js';
import { parseIpv4 } from '../../src/packet/ipv4-address.js';
import { macToString, parseMac } from '../../src/packet/mac-address.js';
import { ProbeInfo, ProbeStatus, readProbe } from '../../src/packet/probe.js';
import {
  FRAME_HEADER_BYTES,
  frameWords,
  writeFrameHeader,
  writeProbeFrame,
  type FrameHeaderFields,
} from '../../src/packet/probe-frame.js';

const SOURCE_MAC = Uint8Array.of(0x02, 0x11, 0x22, 0x33, 0x44, 0x55);

function fields(size: number, overrides: Partial<FrameHeaderFields> = {}): FrameHeaderFields {
  return {
    destinationMac: multicastMac(parseIpv4('239.129.2.3')!),
    sourceMac: SOURCE_MAC,
    source: parseIpv4('10.90.1.1')!,
    destination: parseIpv4('239.129.2.3')!,
    sourcePort: 40001,
    port: 5000,
    ttl: 9,
    payloadLength: size,
    ...overrides,
  };
}

/** A frame written the way mcrgen --raw writes one, at `offset` in a larger array. */
function frame(size: number, offset = 0, overrides: Partial<FrameHeaderFields> = {}): Uint8Array {
  const bytes = new Uint8Array(offset + FRAME_HEADER_BYTES + size + 3).fill(0xee);
  const base = writeFrameHeader(bytes, offset, fields(size, overrides));
  writeProbeFrame(
    bytes,
    frameWords(bytes),
    offset,
    size,
    0xdeadbeef,
    2 ** 40 + 17,
    1_700_000_000_123_456,
    base,
  );
  return bytes.subarray(offset, offset + FRAME_HEADER_BYTES + size);
}

const u16 = (b: Uint8Array, i: number): number => (b[i]! << 8) | b[i + 1]!;

/** RFC 1071 sum over 16-bit words, an odd last byte padded with zero; done here the plain way. */
function onesComplementSum(words: number[]): number {
  let sum = 0;
  for (const w of words) {
    sum += w;
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return sum;
}

function wordsOf(b: Uint8Array, from: number, to: number): number[] {
  const words: number[] = [];
  for (let i = from; i < to; i += 2) words.push(((b[i] ?? 0) << 8) | (i + 1 < to ? b[i + 1]! : 0));
  return words;
}

/** True when the UDP checksum of this frame verifies (pseudo-header, header, payload sum to 0xffff). */
function udpChecksumVerifies(f: Uint8Array): boolean {
  const udpLength = u16(f, 38);
  const pseudo = [...wordsOf(f, 26, 34), 17, udpLength];
  return onesComplementSum([...pseudo, ...wordsOf(f, 34, 34 + udpLength)]) === 0xffff;
}

test('headers sit at their offsets with the fields asked for', () => {
  const f = frame(64);
  assert.equal(f.length, 106);
  assert.equal(macToString(f.subarray(0, 6)), '01:00:5e:01:02:03', 'destination MAC from the group');
  assert.equal(macToString(f.subarray(6, 12)), '02:11:22:33:44:55');
  assert.equal(u16(f, 12), 0x0800);
  assert.equal(f[14], 0x45, 'IPv4, 20-byte header');
  assert.equal(f[15], 0, 'TOS');
  assert.equal(u16(f, 16), 20 + 8 + 64, 'IPv4 total length');
  assert.equal(u16(f, 18), 0, 'IP id');
  assert.equal(u16(f, 20), 0x4000, 'DF, offset 0');
  assert.equal(f[22], 9, 'TTL');
  assert.equal(f[23], 17, 'UDP');
  assert.deepEqual([...f.subarray(26, 30)], [10, 90, 1, 1]);
  assert.deepEqual([...f.subarray(30, 34)], [239, 129, 2, 3]);
  assert.equal(u16(f, 34), 40001);
  assert.equal(u16(f, 36), 5000);
  assert.equal(u16(f, 38), 8 + 64, 'UDP length');
  assert.notEqual(u16(f, 40), 0, 'a UDP checksum is present');
});

test('the IPv4 and UDP checksums verify, for even and odd payload sizes and at any even offset', () => {
  for (const size of [32, 33, 34, 35, 64, 101, 1316, 1472]) {
    for (const offset of [0, 2, 6, 64]) {
      const f = frame(size, offset);
      assert.equal(onesComplementSum(wordsOf(f, 14, 34)), 0xffff, `IPv4 checksum, size ${size} at ${offset}`);
      assert.ok(udpChecksumVerifies(f), `UDP checksum, size ${size} at ${offset}`);
    }
  }
});

test('a unicast destination takes the MAC given; other addresses and ports are checksummed too', () => {
  const f = frame(200, 0, {
    destinationMac: parseMac('02:aa:bb:cc:dd:ee')!,
    destination: parseIpv4('10.90.1.2')!,
    source: parseIpv4('192.168.255.254')!,
    sourcePort: 65535,
    port: 1,
  });
  assert.equal(macToString(f.subarray(0, 6)), '02:aa:bb:cc:dd:ee');
  assert.equal(onesComplementSum(wordsOf(f, 14, 34)), 0xffff);
  assert.ok(udpChecksumVerifies(f));
});

test('a UDP checksum that computes to 0 is sent as 0xffff (0 would mean none)', () => {
  const size = 64;
  const bytes = new Uint8Array(FRAME_HEADER_BYTES + size);
  const words = frameWords(bytes);
  writeFrameHeader(bytes, 0, fields(size));
  // With a base of 0 the stored checksum is ~S, S being the payload's folded sum; a base of
  // 0xffff − S makes the total 0xffff, whose complement is 0.
  writeProbeFrame(bytes, words, 0, size, 1, 2, 3, 0);
  const payloadSum = ~u16(bytes, 40) & 0xffff;
  writeProbeFrame(bytes, words, 0, size, 1, 2, 3, 0xffff - payloadSum);
  assert.equal(u16(bytes, 40), 0xffff);
});

test('the relay parses the frame and the receiver reads the probe in it', () => {
  const f = frame(64, 0);
  const parsed = new ParsedFrame();
  assert.equal(parseFrame(f, 0, f.length, parsed), DropReason.OK);
  assert.equal(parsed.payloadOffset, FRAME_HEADER_BYTES);
  assert.equal(parsed.payloadLength, 64);
  assert.equal(parsed.dstAddr, parseIpv4('239.129.2.3'));
  assert.equal(parsed.ttl, 9);
  const info = new ProbeInfo();
  assert.equal(readProbe(f, parsed.payloadOffset, parsed.payloadLength, info), ProbeStatus.OK);
  assert.equal(info.streamId, 0xdeadbeef);
  assert.equal(info.seq, 2 ** 40 + 17);
  assert.equal(info.timeUs, 1_700_000_000_123_456);
});

test('rewriting a slot for the next packet leaves a valid frame with the new probe', () => {
  const size = 64;
  const bytes = new Uint8Array(FRAME_HEADER_BYTES + size);
  const base = writeFrameHeader(bytes, 0, fields(size));
  const words = frameWords(bytes);
  const info = new ProbeInfo();
  for (let seq = 0; seq < 300; seq++) {
    writeProbeFrame(bytes, words, 0, size, 5, seq, 1000 + seq, base);
    assert.ok(udpChecksumVerifies(bytes), `seq ${seq}`);
    assert.equal(readProbe(bytes, FRAME_HEADER_BYTES, size, info), ProbeStatus.OK);
    assert.equal(info.seq, seq);
  }
});

test('header values that cannot be encoded, odd frame offsets and odd memory are refused', () => {
  const bytes = new Uint8Array(200);
  assert.throws(() => writeProbeFrame(bytes, frameWords(bytes), 1, 64, 0, 0, 0, 0), /even offsets, got 1/);
  assert.throws(() => frameWords(new Uint8Array(new ArrayBuffer(16), 1, 8)), /even byte/);
  assert.throws(() => writeFrameHeader(bytes, 0, fields(64, { ttl: 256 })), RangeError);
  assert.throws(() => writeFrameHeader(bytes, 0, fields(64, { sourcePort: 70000 })), RangeError);
  assert.throws(() => writeFrameHeader(bytes, 180, fields(64)), RangeError);
});

test('MAC addresses: parsed with colons or dashes, either case; printed in lower case', () => {
  assert.deepEqual([...parseMac('01:00:5E:7f:FF:01')!], [1, 0, 0x5e, 0x7f, 0xff, 1]);
  assert.deepEqual([...parseMac('02-00-00-00-00-0a')!], [2, 0, 0, 0, 0, 10]);
  for (const bad of [
    '',
    '01:00:5e:01:01',
    '01:00:5e:01:01:01:01',
    '01:00-5e:01:01:01',
    '1:0:5e:1:1:1',
    'zz:00:00:00:00:00',
  ])
    assert.equal(parseMac(bad), undefined, bad);
  assert.equal(macToString(Uint8Array.of(1, 0, 0x5e, 0x0a, 0xbc, 0xd)), '01:00:5e:0a:bc:0d');
});
