import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  DROP_REASON_COUNT,
  DropReason,
  ParsedFrame,
  dropReasonName,
  isDropReasonCode,
  parseFrame,
  type DropReasonCode,
} from '../../src/packet/frame.js';
import {
  ETHERTYPE_ARP,
  ETHERTYPE_IPV6,
  ETHERTYPE_QINQ,
  IPV4_FLAG_DF,
  IPV4_FLAG_MF,
  IP_PROTO_TCP,
  buildUdpFrame,
  ipv4HeaderChecksum,
  type UdpFrameOptions,
} from '../../src/packet/build.js';

const SRC = 0x0a000001; // 10.0.0.1
const GROUP = 0xef010203; // 239.1.2.3

function frame(over: Partial<UdpFrameOptions> = {}): Uint8Array {
  return buildUdpFrame({
    src: SRC,
    dst: GROUP,
    srcPort: 40000,
    dstPort: 5000,
    payload: Uint8Array.from({ length: 100 }, (_, i) => i),
    ttl: 17,
    dscp: 46,
    ecn: 1,
    id: 0xbeef,
    ...over,
  });
}

function parse(bytes: Uint8Array, start = 0, length = bytes.length - start): [DropReasonCode, ParsedFrame] {
  const out = new ParsedFrame();
  return [parseFrame(bytes, start, length, out), out];
}

/** Offset of the IPv4 header in a frame from `frame()` with `tags` VLAN tags. */
function ipAt(tags = 0): number {
  return 14 + 4 * tags;
}

/** Rewrites the IPv4 checksum after a test edits the header, so only the intended fault remains. */
function fixChecksum(bytes: Uint8Array, ip: number): void {
  const hl = (bytes[ip]! & 0x0f) * 4;
  const c = ipv4HeaderChecksum(bytes, ip, hl);
  bytes[ip + 10] = c >>> 8;
  bytes[ip + 11] = c & 0xff;
}

/**
 * Wraps a Uint8Array so every indexed read is recorded, to prove the parser stays inside
 * [start, start+length). parseFrame only uses indexing and .length, which the trap forwards.
 */
function recordingView(bytes: Uint8Array): { view: Uint8Array; reads: number[] } {
  const reads: number[] = [];
  const view = new Proxy(bytes, {
    get(target, prop) {
      if (typeof prop === 'string' && /^\d+$/.test(prop)) reads.push(Number(prop));
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { view, reads };
}

test('drop reason codes are dense, named and frozen', () => {
  assert.ok(Object.isFrozen(DropReason));
  const codes = Object.values(DropReason).sort((a, b) => a - b);
  assert.deepEqual(
    codes,
    Array.from({ length: DROP_REASON_COUNT }, (_, i) => i),
  );
  const names = new Set<string>();
  for (const [key, code] of Object.entries(DropReason)) {
    assert.equal(dropReasonName(code), key.toLowerCase());
    assert.ok(isDropReasonCode(code));
    names.add(dropReasonName(code));
  }
  assert.equal(names.size, DROP_REASON_COUNT);
  assert.equal(dropReasonName(DROP_REASON_COUNT), 'unknown');
  assert.equal(dropReasonName(-1), 'unknown');
  assert.equal(isDropReasonCode(DROP_REASON_COUNT), false);
  assert.equal(isDropReasonCode(1.5), false);
});

test('valid untagged frame: every field', () => {
  const bytes = frame();
  const [code, f] = parse(bytes);
  assert.equal(dropReasonName(code), 'ok');
  assert.equal(f.vlanCount, 0);
  assert.equal(f.vlanId, -1);
  assert.equal(f.etherType, 0x0800);
  assert.equal(f.ipOffset, 14);
  assert.equal(f.ipHeaderLength, 20);
  assert.equal(f.ipTotalLength, 128);
  assert.equal(f.srcAddr, 0x0a000001);
  assert.equal(f.dstAddr, 0xef010203);
  assert.equal(f.ttl, 17);
  assert.equal(f.dscp, 46);
  assert.equal(f.ecn, 1);
  assert.equal(f.ipId, 0xbeef);
  assert.equal(f.protocol, 17);
  assert.equal(f.srcPort, 40000);
  assert.equal(f.dstPort, 5000);
  assert.equal(f.udpLength, 108);
  assert.equal(f.payloadOffset, 42);
  assert.equal(f.payloadLength, 100);
  assert.equal(bytes[f.payloadOffset], 0);
  assert.equal(bytes[f.payloadOffset + 99], 99);
});

test('addresses are unsigned with the high bit set', () => {
  const [code, f] = parse(frame({ src: 0xffffffff, dst: 0xe0000001 }));
  assert.equal(code, DropReason.OK);
  assert.equal(f.srcAddr, 4294967295);
  assert.equal(f.dstAddr, 0xe0000001);
  assert.ok(f.dstAddr > 0);
});

test('one VLAN tag', () => {
  const [code, f] = parse(frame({ vlanTags: [{ id: 0xabc, priority: 5, dropEligible: true }] }));
  assert.equal(code, DropReason.OK);
  assert.equal(f.vlanCount, 1);
  assert.equal(f.vlanId, 0xabc);
  assert.equal(f.ipOffset, ipAt(1));
  assert.equal(f.payloadOffset, ipAt(1) + 28);
  assert.equal(f.payloadLength, 100);
  assert.equal(f.dstPort, 5000);
});

test('two VLAN tags (802.1ad outer, 802.1Q inner): vlanId is the outer one', () => {
  const bytes = frame({ vlanTags: [{ id: 100, tpid: ETHERTYPE_QINQ }, { id: 4095 }] });
  const [code, f] = parse(bytes);
  assert.equal(code, DropReason.OK);
  assert.equal(f.vlanCount, 2);
  assert.equal(f.vlanId, 100);
  assert.equal(f.ipOffset, ipAt(2));
  assert.equal(f.srcAddr, SRC);
  assert.equal(f.payloadOffset, ipAt(2) + 28);
});

test('three VLAN tags → too_many_vlan_tags', () => {
  const bytes = frame({ vlanTags: [{ id: 1 }, { id: 2 }, { id: 3 }] });
  assert.equal(parse(bytes)[0], DropReason.TOO_MANY_VLAN_TAGS);
  // Even when the third tag itself is cut off, the count is the reason.
  assert.equal(parse(bytes, 0, 22)[0], DropReason.TOO_MANY_VLAN_TAGS);
});

test('IP options, IHL 6..15', () => {
  for (let ihl = 6; ihl <= 15; ihl++) {
    const options = new Uint8Array((ihl - 5) * 4).fill(1); // NOPs
    for (const tags of [0, 1, 2]) {
      const bytes = frame({ ipOptions: options, vlanTags: Array.from({ length: tags }, () => ({ id: 7 })) });
      const [code, f] = parse(bytes);
      assert.equal(code, DropReason.OK, `ihl=${ihl} tags=${tags}`);
      assert.equal(f.ipHeaderLength, ihl * 4);
      assert.equal(f.ipOffset, ipAt(tags));
      assert.equal(f.payloadOffset, ipAt(tags) + ihl * 4 + 8);
      assert.equal(f.payloadLength, 100);
      assert.equal(f.dstAddr, GROUP);
      assert.equal(f.srcPort, 40000);
    }
  }
});

test('Ethernet padding after a short packet is ignored', () => {
  const bytes = frame({ payload: 4, padTo: 60 });
  assert.equal(bytes.length, 60);
  bytes.fill(0xa5, 14 + 32); // garbage padding
  const [code, f] = parse(bytes);
  assert.equal(code, DropReason.OK);
  assert.equal(f.ipTotalLength, 32);
  assert.equal(f.payloadLength, 4);
  assert.equal(f.payloadOffset + f.payloadLength, 14 + 32);
});

test('zero-length UDP payload is valid', () => {
  const [code, f] = parse(frame({ payload: 0 }));
  assert.equal(code, DropReason.OK);
  assert.equal(f.udpLength, 8);
  assert.equal(f.payloadLength, 0);
});

test('UDP length shorter than the IP payload: payload follows UDP length', () => {
  const bytes = frame();
  const udp = 14 + 20;
  bytes[udp + 5] = 50; // udpLength 50 < 108
  const [code, f] = parse(bytes);
  assert.equal(code, DropReason.OK);
  assert.equal(f.payloadLength, 42);
});

test('DF flag is not a fragment', () => {
  assert.equal(parse(frame({ flags: IPV4_FLAG_DF }))[0], DropReason.OK);
});

test('fragments → fragment', () => {
  assert.equal(parse(frame({ flags: IPV4_FLAG_MF }))[0], DropReason.FRAGMENT);
  assert.equal(parse(frame({ fragmentOffset: 1 }))[0], DropReason.FRAGMENT);
  assert.equal(parse(frame({ fragmentOffset: 0x1fff }))[0], DropReason.FRAGMENT);
  assert.equal(
    parse(frame({ flags: IPV4_FLAG_MF | IPV4_FLAG_DF, fragmentOffset: 185 }))[0],
    DropReason.FRAGMENT,
  );
  // A non-first fragment has no UDP header: its "UDP length" bytes must not matter.
  const later = frame({ fragmentOffset: 10 });
  later[14 + 20 + 4] = 0;
  later[14 + 20 + 5] = 0;
  assert.equal(parse(later)[0], DropReason.FRAGMENT);
  // Addresses are still available for tracing.
  const [, f] = parse(frame({ flags: IPV4_FLAG_MF }));
  assert.equal(f.dstAddr, GROUP);
});

test('fragment with a broken header is malformed, not a fragment', () => {
  const bytes = frame({ flags: IPV4_FLAG_MF });
  bytes[14 + 8] = 16; // TTL changed, checksum not fixed
  assert.equal(parse(bytes)[0], DropReason.BAD_IPV4_CHECKSUM);
});

test('non-UDP fragment → not_udp', () => {
  assert.equal(parse(frame({ protocol: IP_PROTO_TCP, flags: IPV4_FLAG_MF }))[0], DropReason.NOT_UDP);
});

test('ARP, IPv6 → not_ipv4 (also behind a VLAN tag)', () => {
  const arp = new Uint8Array(42);
  arp.fill(0xff, 0, 6);
  arp[12] = ETHERTYPE_ARP >>> 8;
  arp[13] = ETHERTYPE_ARP & 0xff;
  const [code, f] = parse(arp);
  assert.equal(code, DropReason.NOT_IPV4);
  assert.equal(f.etherType, ETHERTYPE_ARP);

  const v6 = frame({ vlanTags: [{ id: 3 }] });
  v6[16] = ETHERTYPE_IPV6 >>> 8;
  v6[17] = ETHERTYPE_IPV6 & 0xff;
  assert.equal(parse(v6)[0], DropReason.NOT_IPV4);
  // Exactly 14 bytes of a non-IPv4 type is a complete, just unwanted, frame.
  assert.equal(parse(arp, 0, 14)[0], DropReason.NOT_IPV4);
});

test('TCP → not_udp', () => {
  const [code, f] = parse(frame({ protocol: IP_PROTO_TCP }));
  assert.equal(code, DropReason.NOT_UDP);
  assert.equal(f.protocol, 6);
  assert.equal(f.srcAddr, SRC);
});

test('truncated Ethernet and VLAN tags', () => {
  for (let len = 0; len < 14; len++) assert.equal(parse(frame(), 0, len)[0], DropReason.TRUNCATED_ETHERNET);
  const tagged = frame({ vlanTags: [{ id: 1 }, { id: 2 }] });
  for (let len = 14; len < 22; len++)
    assert.equal(parse(tagged, 0, len)[0], DropReason.TRUNCATED_ETHERNET, `len=${len}`);
  assert.equal(parse(tagged, 0, 22)[0], DropReason.TRUNCATED_IPV4);
});

test('truncated IPv4 header → truncated_ipv4', () => {
  for (let len = 14; len < 34; len++) assert.equal(parse(frame(), 0, len)[0], DropReason.TRUNCATED_IPV4);
});

test('bad IPv4 version', () => {
  const bytes = frame();
  bytes[14] = 0x65;
  fixChecksum(bytes, 14);
  assert.equal(parse(bytes)[0], DropReason.BAD_IPV4_VERSION);
});

test('bad IPv4 header length', () => {
  for (const ihl of [0, 1, 4]) {
    const bytes = frame();
    bytes[14] = 0x40 | ihl;
    assert.equal(parse(bytes)[0], DropReason.BAD_IPV4_HEADER_LENGTH, `ihl=${ihl}`);
  }
  // IHL 15 = 60 bytes, but only 40 captured after L2.
  const short = frame({ payload: 12 });
  short[14] = 0x4f;
  assert.equal(short.length - 14, 40);
  assert.equal(parse(short)[0], DropReason.BAD_IPV4_HEADER_LENGTH);
});

test('bad IPv4 total length', () => {
  const small = frame();
  small[16] = 0;
  small[17] = 19; // < IHL*4
  fixChecksum(small, 14);
  assert.equal(parse(small)[0], DropReason.BAD_IPV4_TOTAL_LENGTH);

  const withOptions = frame({ ipOptions: new Uint8Array(8).fill(1) });
  withOptions[17] = 24; // >= 20 but < IHL*4 = 28
  withOptions[16] = 0;
  fixChecksum(withOptions, 14);
  assert.equal(parse(withOptions)[0], DropReason.BAD_IPV4_TOTAL_LENGTH);

  const big = frame();
  big[17] = 129; // one byte more than the 128 captured
  fixChecksum(big, 14);
  assert.equal(parse(big)[0], DropReason.BAD_IPV4_TOTAL_LENGTH);
});

test('bad IPv4 checksum', () => {
  const bytes = frame();
  bytes[14 + 10] = bytes[14 + 10]! ^ 0x01;
  assert.equal(parse(bytes)[0], DropReason.BAD_IPV4_CHECKSUM);
  const opt = frame({ ipOptions: new Uint8Array(40).fill(1) });
  opt[14 + 59] = 0; // last option byte
  assert.equal(parse(opt)[0], DropReason.BAD_IPV4_CHECKSUM);
});

test('truncated UDP: fewer than 8 bytes inside total length', () => {
  for (let udpBytes = 0; udpBytes < 8; udpBytes++) {
    const bytes = frame();
    bytes[16] = 0;
    bytes[17] = 20 + udpBytes;
    fixChecksum(bytes, 14);
    assert.equal(parse(bytes)[0], DropReason.TRUNCATED_UDP, `udpBytes=${udpBytes}`);
  }
});

test('bad UDP length', () => {
  const udp = 14 + 20;
  for (const len of [0, 7, 109, 0xffff]) {
    const bytes = frame();
    bytes[udp + 4] = len >>> 8;
    bytes[udp + 5] = len & 0xff;
    assert.equal(parse(bytes)[0], DropReason.BAD_UDP_LENGTH, `udpLength=${len}`);
  }
  // UDP length must fit the IP total length, not the (padded) frame.
  const padded = frame({ payload: 4, padTo: 60 });
  padded[udp + 5] = 13;
  assert.equal(parse(padded)[0], DropReason.BAD_UDP_LENGTH);
});

test('every truncation of a full frame is a truncated_* or bad_* reason, never ok', () => {
  const shapes: Partial<UdpFrameOptions>[] = [
    {},
    { payload: 0 },
    { vlanTags: [{ id: 1 }] },
    { vlanTags: [{ id: 1 }, { id: 2 }] },
    { ipOptions: new Uint8Array(40).fill(1) },
  ];
  for (const shape of shapes) {
    const bytes = frame(shape);
    assert.equal(parse(bytes)[0], DropReason.OK);
    for (let len = 0; len < bytes.length; len++) {
      const [code] = parse(bytes, 0, len);
      const name = dropReasonName(code);
      assert.match(name, /^(truncated|bad)_/, `len=${len} of ${bytes.length}: ${name}`);
      // Same answer from a view that ends at len.
      assert.equal(parse(bytes.subarray(0, len))[0], code);
    }
  }
});

test('never reads outside [start, start+length): larger array with garbage around', () => {
  const valid = frame({ vlanTags: [{ id: 9 }], ipOptions: new Uint8Array(4).fill(1) });
  const before = 37;
  const big = new Uint8Array(before + valid.length + 200).fill(0xee);
  big.set(valid, before);

  const [ok, f] = parse(big, before, valid.length);
  assert.equal(ok, DropReason.OK);
  assert.equal(f.ipOffset, before + 18);
  assert.equal(f.payloadOffset, before + 18 + 24 + 8);
  assert.equal(f.payloadLength, 100);

  for (let len = 0; len <= valid.length; len++) {
    const { view, reads } = recordingView(big);
    const out = new ParsedFrame();
    const code = parseFrame(view, before, len, out);
    assert.equal(code, len === valid.length ? DropReason.OK : parseFrame(big, before, len, out));
    for (const i of reads)
      assert.ok(i >= before && i < before + len, `read ${i} outside [${before}, ${before + len})`);
  }
});

test('exact frame as a subarray view of a larger buffer', () => {
  const valid = frame();
  const big = new Uint8Array(valid.length + 64).fill(0x45);
  big.set(valid, 32);
  const view = big.subarray(32, 32 + valid.length);
  const [code, f] = parse(view);
  assert.equal(code, DropReason.OK);
  assert.equal(f.ipOffset, 14); // indexes are relative to the view
  assert.equal(f.payloadOffset, 42);
});

test('length past the end of the array is clamped to the array', () => {
  const valid = frame();
  assert.equal(parse(valid, 0, valid.length + 1000)[0], DropReason.OK);
  assert.equal(parse(valid.subarray(0, 40), 0, valid.length)[0], DropReason.BAD_IPV4_TOTAL_LENGTH);
  assert.equal(parse(valid, valid.length + 5, 100)[0], DropReason.TRUNCATED_ETHERNET);
});

test('nonsense bounds do not throw', () => {
  const valid = frame();
  for (const [s, l] of [
    [-1, 10],
    [0, -1],
    [0.5, 100],
    [0, Number.NaN],
    [Number.POSITIVE_INFINITY, 1],
  ] as const) {
    assert.equal(parse(valid, s, l)[0], DropReason.TRUNCATED_ETHERNET, `start=${s} length=${l}`);
  }
});

test('the ParsedFrame instance is reused without stale payload fields on OK', () => {
  const out = new ParsedFrame();
  assert.equal(parseFrame(frame({ vlanTags: [{ id: 5 }] }), 0, 146, out), DropReason.OK);
  const plain = frame({ payload: 3 });
  assert.equal(parseFrame(plain, 0, plain.length, out), DropReason.OK);
  assert.equal(out.vlanCount, 0);
  assert.equal(out.vlanId, -1);
  assert.equal(out.payloadLength, 3);
  assert.equal(out.ipOffset, 14);
});
