import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  ETHERNET_MIN_FRAME,
  ETHERTYPE_IPV4,
  ETHERTYPE_QINQ,
  ETHERTYPE_VLAN,
  IPV4_FLAG_DF,
  IPV4_FLAG_MF,
  buildUdpFrame,
  ipv4HeaderChecksum,
  multicastMac,
  writeEthernetHeader,
  writeIpv4Header,
  writeMulticastMac,
  writeUdpHeader,
  writeVlanTag,
} from '../../src/packet/build.js';
import { DropReason, ParsedFrame, parseFrame } from '../../src/packet/frame.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const fromHex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

// A commonly cited worked example: 192.168.0.1 → 192.168.0.199, UDP, TTL 64, DF, total 115.
// Checksum by hand: 4500+0073+0000+4000+4011+c0a8+0001+c0a8+00c7 = 0x2479e; fold → 0x479e;
// one's complement → 0xb861.
const EXAMPLE_HEADER = '4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7';

test('ipv4HeaderChecksum: known vector, and the stored field is ignored', () => {
  const h = fromHex(EXAMPLE_HEADER);
  assert.equal(ipv4HeaderChecksum(h, 0, 20), 0xb861);
  h[10] = 0x12;
  h[11] = 0x34;
  assert.equal(ipv4HeaderChecksum(h, 0, 20), 0xb861);
  // At an offset inside a larger array.
  const big = new Uint8Array(30).fill(0xff);
  big.set(fromHex(EXAMPLE_HEADER), 7);
  assert.equal(ipv4HeaderChecksum(big, 7, 20), 0xb861);
});

test('ipv4HeaderChecksum: end-around carries, all-ones and all-zero headers', () => {
  // ffff + ffff + 0001 = 0x1ffff; the first fold gives 0x10000, which must fold again to 1.
  const carry = new Uint8Array(20);
  carry.set([0xff, 0xff, 0xff, 0xff, 0x00, 0x01]);
  assert.equal(ipv4HeaderChecksum(carry, 0, 20), 0xfffe);
  const h = new Uint8Array(60).fill(0xff);
  assert.equal(ipv4HeaderChecksum(h, 0, 60), 0x0000);
  const z = new Uint8Array(20);
  assert.equal(ipv4HeaderChecksum(z, 0, 20), 0xffff);
});

test('ipv4HeaderChecksum rejects bad ranges', () => {
  assert.throws(() => ipv4HeaderChecksum(new Uint8Array(20), 1, 20), RangeError);
  assert.throws(() => ipv4HeaderChecksum(new Uint8Array(40), 0, 19), RangeError);
  assert.throws(() => ipv4HeaderChecksum(new Uint8Array(40), 0, 21), RangeError);
});

test('writeIpv4Header reproduces the known header byte for byte', () => {
  const b = new Uint8Array(20);
  const next = writeIpv4Header(b, 0, {
    src: 0xc0a80001,
    dst: 0xc0a800c7,
    protocol: 17,
    ttl: 64,
    totalLength: 0x73,
    flags: IPV4_FLAG_DF,
  });
  assert.equal(next, 20);
  assert.equal(hex(b), hex(fromHex(EXAMPLE_HEADER)));
});

test('writeIpv4Header: every field and options', () => {
  const b = new Uint8Array(64).fill(0xaa);
  const options = Uint8Array.of(0x94, 0x04, 0x00, 0x00, 1, 1, 1, 0); // router alert, NOPs, EOL
  const next = writeIpv4Header(b, 2, {
    src: 0xffffffff,
    dst: 0xef000001,
    protocol: 17,
    ttl: 1,
    totalLength: 1500,
    dscp: 0x3f,
    ecn: 3,
    id: 0x1234,
    flags: IPV4_FLAG_MF,
    fragmentOffset: 0x1fff,
    options,
  });
  assert.equal(next, 30);
  assert.equal(b[1], 0xaa, 'byte before untouched');
  assert.equal(b[30], 0xaa, 'byte after untouched');
  assert.equal(
    hex(b.subarray(2, 22)),
    '47ff05dc1234' + '3fff' + '0111' + hex(b.subarray(12, 14)) + 'ffffffff' + 'ef000001',
  );
  assert.equal(hex(b.subarray(22, 30)), hex(options));
  assert.equal(ipv4HeaderChecksum(b, 2, 28), (b[12]! << 8) | b[13]!);
});

test('writeIpv4Header rejects values that do not fit', () => {
  const b = new Uint8Array(80);
  const base = { src: 1, dst: 2, protocol: 17, ttl: 64, totalLength: 28 };
  assert.throws(() => writeIpv4Header(b, 0, { ...base, options: new Uint8Array(3) }), RangeError);
  assert.throws(() => writeIpv4Header(b, 0, { ...base, options: new Uint8Array(44) }), RangeError);
  assert.throws(() => writeIpv4Header(b, 0, { ...base, ttl: 256 }), RangeError);
  assert.throws(() => writeIpv4Header(b, 0, { ...base, dscp: 64 }), RangeError);
  assert.throws(() => writeIpv4Header(b, 0, { ...base, src: -1 }), RangeError);
  assert.throws(() => writeIpv4Header(b, 0, { ...base, dst: 2 ** 32 }), RangeError);
  assert.throws(() => writeIpv4Header(b, 0, { ...base, fragmentOffset: 0x2000 }), RangeError);
  assert.throws(() => writeIpv4Header(b, 70, base), RangeError);
});

test('writeEthernetHeader and writeVlanTag', () => {
  const b = new Uint8Array(22);
  const dst = multicastMac(0xef010203);
  const src = Uint8Array.of(0x02, 0x11, 0x22, 0x33, 0x44, 0x55);
  let p = writeEthernetHeader(b, 0, dst, src, ETHERTYPE_QINQ);
  assert.equal(p, 14);
  p = writeVlanTag(b, p, 100, ETHERTYPE_VLAN);
  assert.equal(p, 18);
  p = writeVlanTag(b, p, 0xfff, ETHERTYPE_IPV4, 7, true);
  assert.equal(p, 22);
  assert.equal(hex(b), '01005e010203' + '021122334455' + '88a8' + '0064' + '8100' + 'ffff' + '0800');
  assert.throws(() => writeVlanTag(b, 0, 4096, ETHERTYPE_IPV4), RangeError);
  assert.throws(() => writeVlanTag(b, 0, 1, ETHERTYPE_IPV4, 8), RangeError);
  assert.throws(() => writeEthernetHeader(b, 0, new Uint8Array(5), src, ETHERTYPE_IPV4), RangeError);
  assert.throws(() => writeEthernetHeader(b, 10, dst, src, ETHERTYPE_IPV4), RangeError);
});

test('writeUdpHeader', () => {
  const b = new Uint8Array(8);
  assert.equal(writeUdpHeader(b, 0, 0x1234, 5000, 108), 8);
  assert.equal(hex(b), '1234' + '1388' + '006c' + '0000');
  writeUdpHeader(b, 0, 65535, 0, 8, 0xabcd);
  assert.equal(hex(b), 'ffff0000' + '0008abcd');
  assert.throws(() => writeUdpHeader(b, 0, 65536, 1, 8), RangeError);
  assert.throws(() => writeUdpHeader(b, 1, 1, 1, 8), RangeError);
});

test('multicastMac keeps the low 23 bits of the group', () => {
  assert.equal(hex(multicastMac(0xe00000fb)), '01005e0000fb'); // 224.0.0.251
  assert.equal(hex(multicastMac(0xef810101)), '01005e010101'); // 239.129.1.1: bit 23 dropped
  assert.equal(hex(multicastMac(0xefffffff)), '01005e7fffff');
  const b = new Uint8Array(8);
  assert.equal(writeMulticastMac(b, 2, 0xe1020304), 8);
  assert.equal(hex(b), '0000' + '01005e020304');
});

test('buildUdpFrame round-trips through parseFrame', () => {
  const out = new ParsedFrame();
  const payload = Uint8Array.from({ length: 333 }, (_, i) => (i * 7) & 0xff);
  for (const tags of [
    [],
    [{ id: 10 }],
    [
      { id: 20, tpid: ETHERTYPE_QINQ },
      { id: 30, priority: 3 },
    ],
  ]) {
    for (const optionWords of [0, 1, 10]) {
      const f = buildUdpFrame({
        src: 0xc0a80a0b,
        dst: 0xe8010203,
        srcPort: 1,
        dstPort: 65535,
        payload,
        ttl: 255,
        dscp: 10,
        ecn: 2,
        id: 77,
        ipOptions: optionWords > 0 ? new Uint8Array(optionWords * 4).fill(1) : undefined,
        vlanTags: tags,
      });
      assert.equal(parseFrame(f, 0, f.length, out), DropReason.OK);
      assert.equal(out.vlanCount, tags.length);
      assert.equal(out.vlanId, tags[0]?.id ?? -1);
      assert.equal(out.srcAddr, 0xc0a80a0b);
      assert.equal(out.dstAddr, 0xe8010203);
      assert.equal(out.ttl, 255);
      assert.equal(out.dscp, 10);
      assert.equal(out.ecn, 2);
      assert.equal(out.ipId, 77);
      assert.equal(out.ipHeaderLength, 20 + optionWords * 4);
      assert.equal(out.srcPort, 1);
      assert.equal(out.dstPort, 65535);
      assert.equal(hex(f.subarray(out.payloadOffset, out.payloadOffset + out.payloadLength)), hex(payload));
      assert.equal(out.payloadOffset + out.payloadLength, f.length);
      assert.equal(hex(f.subarray(0, 6)), '01005e010203');
    }
  }
});

test('buildUdpFrame defaults: broadcast MAC for unicast, zero payload by length, padding', () => {
  const f = buildUdpFrame({
    src: 1,
    dst: 0x0a000002,
    srcPort: 1,
    dstPort: 2,
    payload: 5,
    padTo: ETHERNET_MIN_FRAME,
  });
  assert.equal(f.length, 60);
  assert.equal(hex(f.subarray(0, 6)), 'ffffffffffff');
  assert.equal(hex(f.subarray(6, 12)), '020000000001');
  const out = new ParsedFrame();
  assert.equal(parseFrame(f, 0, f.length, out), DropReason.OK);
  assert.equal(out.payloadLength, 5);
  assert.equal(out.ttl, 64);
  assert.equal(hex(f.subarray(42, 60)), '00'.repeat(18));
  // padTo smaller than the frame changes nothing.
  assert.equal(
    buildUdpFrame({ src: 1, dst: 2, srcPort: 1, dstPort: 2, payload: 100, padTo: 60 }).length,
    142,
  );
});
