import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  DumpSequencer,
  IFA_ADDRESS,
  IFA_LOCAL,
  IFF_LOWER_UP,
  IFF_RUNNING,
  IFF_UP,
  IFLA_ADDRESS,
  IFLA_IFNAME,
  IFLA_MTU,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_MULTI,
  NLM_F_REQUEST,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_NEWADDR,
  RTM_NEWLINK,
  parseNetlinkDatagram,
  type InterfaceEvent,
  type NetlinkReply,
} from '../../src/sys/netlink-messages.js';

// Builders for the kernel's little-endian structures.

function align4(n: number): number {
  return (n + 3) & ~3;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

function attr(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(align4(4 + payload.byteLength));
  const view = new DataView(out.buffer);
  view.setUint16(0, 4 + payload.byteLength, true);
  view.setUint16(2, type, true);
  out.set(payload, 4);
  return out;
}

function u32(value: number, littleEndian = true): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value, littleEndian);
  return out;
}

function cstring(s: string): Uint8Array {
  return new TextEncoder().encode(`${s}\0`);
}

function message(type: number, body: Uint8Array, options: { flags?: number; seq?: number } = {}): Uint8Array {
  const length = 16 + body.byteLength;
  const out = new Uint8Array(align4(length));
  const view = new DataView(out.buffer);
  view.setUint32(0, length, true);
  view.setUint16(4, type, true);
  view.setUint16(6, options.flags ?? 0, true);
  view.setUint32(8, options.seq ?? 0, true);
  view.setUint32(12, 0, true);
  out.set(body, 16);
  return out;
}

interface LinkSpec {
  index: number;
  flags: number;
  name?: string;
  mtu?: number;
  mac?: number[];
  family?: number;
  linkType?: number;
}

function ifinfomsg(spec: LinkSpec): Uint8Array {
  const head = new Uint8Array(16);
  const view = new DataView(head.buffer);
  view.setUint8(0, spec.family ?? 0);
  view.setUint16(2, spec.linkType ?? 1, true);
  view.setInt32(4, spec.index, true);
  view.setUint32(8, spec.flags, true);
  view.setUint32(12, 0xffffffff, true);
  const attrs: Uint8Array[] = [];
  if (spec.mac) attrs.push(attr(IFLA_ADDRESS, Uint8Array.from(spec.mac)));
  if (spec.name !== undefined) attrs.push(attr(IFLA_IFNAME, cstring(spec.name)));
  if (spec.mtu !== undefined) attrs.push(attr(IFLA_MTU, u32(spec.mtu)));
  return concat([head, ...attrs]);
}

interface AddressSpec {
  index: number;
  prefix: number;
  family?: number;
  local?: number;
  address?: number;
  addressBytes?: Uint8Array;
}

function ifaddrmsg(spec: AddressSpec): Uint8Array {
  const head = new Uint8Array(8);
  const view = new DataView(head.buffer);
  view.setUint8(0, spec.family ?? 2);
  view.setUint8(1, spec.prefix);
  view.setUint8(3, 0);
  view.setUint32(4, spec.index, true);
  const attrs: Uint8Array[] = [];
  if (spec.address !== undefined) attrs.push(attr(IFA_ADDRESS, u32(spec.address, false)));
  if (spec.addressBytes) attrs.push(attr(IFA_ADDRESS, spec.addressBytes));
  if (spec.local !== undefined) attrs.push(attr(IFA_LOCAL, u32(spec.local, false)));
  return concat([head, ...attrs]);
}

function errorBody(code: number): Uint8Array {
  // struct nlmsgerr: int error, then the offending request's header.
  const out = new Uint8Array(4 + 16);
  new DataView(out.buffer).setInt32(0, code, true);
  return out;
}

function parse(bytes: Uint8Array): { events: InterfaceEvent[]; replies: NetlinkReply[] } {
  const events: InterfaceEvent[] = [];
  const replies: NetlinkReply[] = [];
  parseNetlinkDatagram(bytes, events, replies);
  return { events, replies };
}

const eth0 = { index: 2, name: 'eth0', mtu: 1500, mac: [0x02, 0xab, 0x00, 0x11, 0x22, 0xff] };

test('RTM_NEWLINK becomes a link event with name, flags, mtu and mac', () => {
  const { events } = parse(message(RTM_NEWLINK, ifinfomsg({ ...eth0, flags: IFF_UP | IFF_RUNNING })));
  assert.deepEqual(events, [
    {
      kind: 'link',
      ifindex: 2,
      name: 'eth0',
      up: true,
      running: true,
      mtu: 1500,
      mac: '02:ab:00:11:22:ff',
      deleted: false,
    },
  ]);
});

test('up without IFF_RUNNING is not running; carrier alone does not make it running', () => {
  const { events } = parse(message(RTM_NEWLINK, ifinfomsg({ ...eth0, flags: IFF_UP | IFF_LOWER_UP })));
  assert.equal(events.length, 1);
  const [link] = events;
  assert.ok(link?.kind === 'link');
  assert.equal(link.up, true);
  assert.equal(link.running, false);
});

test('RTM_DELLINK is a deleted link', () => {
  const { events } = parse(message(RTM_DELLINK, ifinfomsg({ ...eth0, flags: 0 })));
  assert.equal(events.length, 1);
  assert.deepEqual(events[0], {
    kind: 'link',
    ifindex: 2,
    name: 'eth0',
    up: false,
    running: false,
    mtu: 1500,
    mac: '02:ab:00:11:22:ff',
    deleted: true,
  });
});

test('links without an Ethernet address have mac ""', () => {
  const loopback = ifinfomsg({ index: 1, flags: IFF_UP, name: 'lo', mtu: 65536, mac: [0, 0, 0, 0, 0, 0] });
  new DataView(loopback.buffer).setUint16(2, 772, true); // ARPHRD_LOOPBACK
  const tunnel = ifinfomsg({ index: 7, flags: IFF_UP, name: 'wg0', mtu: 1420 });
  const { events } = parse(concat([message(RTM_NEWLINK, loopback), message(RTM_NEWLINK, tunnel)]));
  assert.deepEqual(
    events.map((e) => (e.kind === 'link' ? [e.name, e.mac] : [])),
    [
      ['lo', ''],
      ['wg0', ''],
    ],
  );
});

test('AF_BRIDGE link messages about bridge ports are not link events', () => {
  const port = ifinfomsg({ ...eth0, flags: IFF_UP, family: 7 });
  const { events } = parse(concat([message(RTM_DELLINK, port), message(RTM_NEWLINK, port)]));
  assert.deepEqual(events, []);
});

test('RTM_NEWADDR prefers IFA_LOCAL over IFA_ADDRESS (the peer on point-to-point links)', () => {
  const { events } = parse(
    message(RTM_NEWADDR, ifaddrmsg({ index: 5, prefix: 32, address: 0x0a000002, local: 0x0a000001 })),
  );
  assert.deepEqual(events, [
    { kind: 'address', ifindex: 5, address: 0x0a000001, prefixLength: 32, deleted: false },
  ]);
});

test('RTM_NEWADDR with only IFA_ADDRESS uses it; RTM_DELADDR is deleted', () => {
  const { events } = parse(
    concat([
      message(RTM_NEWADDR, ifaddrmsg({ index: 3, prefix: 24, address: 0xc0a80101 })),
      message(RTM_DELADDR, ifaddrmsg({ index: 3, prefix: 24, address: 0xc0a80101, local: 0xc0a80101 })),
    ]),
  );
  assert.deepEqual(events, [
    { kind: 'address', ifindex: 3, address: 0xc0a80101, prefixLength: 24, deleted: false },
    { kind: 'address', ifindex: 3, address: 0xc0a80101, prefixLength: 24, deleted: true },
  ]);
  const first = events[0];
  assert.ok(first?.kind === 'address');
  assert.equal(first.address >>> 24, 192, 'the address is unsigned, first octet in the top byte');
});

test('non-AF_INET addresses are skipped', () => {
  const ipv6 = ifaddrmsg({ index: 3, prefix: 64, family: 10, addressBytes: new Uint8Array(16).fill(0xfe) });
  const { events } = parse(
    concat([
      message(RTM_NEWADDR, ipv6),
      message(RTM_NEWADDR, ifaddrmsg({ index: 3, prefix: 8, local: 0x7f000001 })),
    ]),
  );
  assert.deepEqual(events, [
    { kind: 'address', ifindex: 3, address: 0x7f000001, prefixLength: 8, deleted: false },
  ]);
});

test('an AF_INET address message without an address attribute is skipped', () => {
  const { events } = parse(message(RTM_NEWADDR, ifaddrmsg({ index: 3, prefix: 8 })));
  assert.deepEqual(events, []);
});

test('several messages in one datagram, unknown types skipped, DONE reported with its seq', () => {
  const datagram = concat([
    message(RTM_NEWLINK, ifinfomsg({ ...eth0, flags: IFF_UP }), { flags: NLM_F_MULTI, seq: 9 }),
    message(24 /* RTM_NEWROUTE */, new Uint8Array(12), { flags: NLM_F_MULTI, seq: 9 }),
    message(RTM_NEWLINK, ifinfomsg({ index: 3, flags: 0, name: 'eth1', mtu: 9000 }), {
      flags: NLM_F_MULTI,
      seq: 9,
    }),
    message(NLMSG_DONE, u32(0), { flags: NLM_F_MULTI, seq: 9 }),
  ]);
  const { events, replies } = parse(datagram);
  assert.deepEqual(
    events.map((e) => (e.kind === 'link' ? `${e.ifindex}:${e.name}:${e.mtu}` : e.kind)),
    ['2:eth0:1500', '3:eth1:9000'],
  );
  assert.deepEqual(replies, [{ kind: 'done', seq: 9, errno: 0 }]);
});

test('NLMSG_ERROR reports the errno (positive) and acknowledgements as errno 0', () => {
  const { events, replies } = parse(
    concat([
      message(NLMSG_ERROR, errorBody(-16), { seq: 4 }),
      message(NLMSG_ERROR, errorBody(0), { seq: 5 }),
      message(NLMSG_DONE, u32(0xfffffff4), { seq: 6 }), // DONE carrying -ENOMEM
      message(NLMSG_DONE, new Uint8Array(0), { seq: 7 }), // DONE without a payload
    ]),
  );
  assert.deepEqual(events, []);
  assert.deepEqual(replies, [
    { kind: 'error', seq: 4, errno: 16 },
    { kind: 'error', seq: 5, errno: 0 },
    { kind: 'done', seq: 6, errno: 12 },
    { kind: 'done', seq: 7, errno: 0 },
  ]);
});

test('a dump message flagged NLM_F_DUMP_INTR is reported as interrupted', () => {
  const { replies } = parse(
    message(RTM_NEWLINK, ifinfomsg({ ...eth0, flags: 0 }), { flags: NLM_F_MULTI | NLM_F_DUMP_INTR, seq: 3 }),
  );
  assert.deepEqual(replies, [{ kind: 'interrupted', seq: 3, errno: 0 }]);
});

test('without a replies array DONE and ERROR are simply consumed', () => {
  const events: InterfaceEvent[] = [];
  parseNetlinkDatagram(
    concat([message(NLMSG_DONE, u32(0), { seq: 1 }), message(NLMSG_ERROR, errorBody(-1))]),
    events,
  );
  assert.deepEqual(events, []);
});

/** Parses `bytes` placed in the middle of a larger buffer filled with valid-looking messages. */
function parseInside(bytes: Uint8Array): InterfaceEvent[] {
  // Bait before and after: if the parser read past its view it would find these links.
  const bait = message(RTM_NEWLINK, ifinfomsg({ index: 99, flags: IFF_UP, name: 'bait', mtu: 1 }));
  const backing = concat([bait, bytes, bait, bait]);
  const events: InterfaceEvent[] = [];
  const replies: NetlinkReply[] = [];
  parseNetlinkDatagram(
    backing.subarray(bait.byteLength, bait.byteLength + bytes.byteLength),
    events,
    replies,
  );
  for (const e of events) assert.ok(e.kind !== 'link' || e.name !== 'bait', 'read outside its bytes');
  return events;
}

test('a message whose length runs past the datagram ends parsing without reading past it', () => {
  const good = message(RTM_NEWLINK, ifinfomsg({ ...eth0, flags: IFF_UP }));
  const liar = message(RTM_NEWLINK, ifinfomsg({ index: 4, flags: 0, name: 'eth4', mtu: 1500 }));
  new DataView(liar.buffer).setUint32(0, liar.byteLength + 64, true);
  const events = parseInside(concat([good, liar]));
  assert.deepEqual(
    events.map((e) => (e.kind === 'link' ? e.name : e.kind)),
    ['eth0'],
  );
});

test('lengths below the header size, zero, or huge stop the datagram', () => {
  const after = message(RTM_NEWLINK, ifinfomsg({ ...eth0, flags: IFF_UP }));
  for (const length of [0, 1, 15, 0xffffffff, 0x80000000]) {
    const bad = message(RTM_NEWLINK, new Uint8Array(16));
    new DataView(bad.buffer).setUint32(0, length, true);
    assert.deepEqual(parseInside(concat([bad, after])), [], `length ${length}`);
  }
});

test('a message whose aligned length passes the end is the last one, not an error', () => {
  // 16-byte header + 16-byte ifinfomsg + IFLA_IFNAME "ab\0" = 39 bytes, no padding at the end.
  const odd = message(
    RTM_NEWLINK,
    concat([ifinfomsg({ index: 8, flags: 0 }), attr(IFLA_IFNAME, cstring('ab'))]),
  );
  const unpadded = odd.subarray(0, 16 + 16 + 7);
  new DataView(odd.buffer).setUint32(0, unpadded.byteLength, true);
  const events = parseInside(unpadded);
  assert.deepEqual(
    events.map((e) => (e.kind === 'link' ? e.name : e.kind)),
    ['ab'],
  );
});

test('truncated datagrams never throw and never yield a partial event', () => {
  const full = concat([
    message(RTM_NEWLINK, ifinfomsg({ ...eth0, flags: IFF_UP | IFF_RUNNING })),
    message(RTM_NEWADDR, ifaddrmsg({ index: 2, prefix: 24, local: 0x0a000001, address: 0x0a000001 })),
    message(NLMSG_DONE, u32(0), { seq: 1 }),
  ]);
  for (let cut = 0; cut <= full.byteLength; cut++) {
    const events = parseInside(full.subarray(0, cut));
    for (const e of events) {
      if (e.kind === 'link') assert.equal(e.name, 'eth0');
      if (e.kind === 'address') assert.equal(e.address, 0x0a000001);
    }
  }
});

test('bodies too short for their fixed header are dropped alone', () => {
  const { events } = parse(
    concat([
      message(RTM_NEWLINK, new Uint8Array(8)),
      message(RTM_NEWADDR, new Uint8Array(4)),
      message(RTM_NEWADDR, ifaddrmsg({ index: 2, prefix: 24, local: 0x0a000001 })),
    ]),
  );
  assert.deepEqual(events, [
    { kind: 'address', ifindex: 2, address: 0x0a000001, prefixLength: 24, deleted: false },
  ]);
});

test('a lying attribute length drops that message and keeps the next one', () => {
  const body = ifinfomsg({ index: 4, flags: 0, name: 'eth4', mtu: 1500 });
  new DataView(body.buffer).setUint16(16, 200, true); // first rtattr claims 200 bytes
  const zero = ifinfomsg({ index: 5, flags: 0, name: 'eth5', mtu: 1500 });
  new DataView(zero.buffer).setUint16(16, 0, true); // and a zero-length one, which would loop forever
  const events = parseInside(
    concat([
      message(RTM_NEWLINK, body),
      message(RTM_NEWLINK, zero),
      message(RTM_NEWLINK, ifinfomsg({ ...eth0, flags: IFF_UP })),
    ]),
  );
  assert.deepEqual(
    events.map((e) => (e.kind === 'link' ? e.name : e.kind)),
    ['eth0'],
  );
});

test('an unterminated IFLA_IFNAME ends at its attribute; a short IFLA_MTU is ignored', () => {
  const head = ifinfomsg({ index: 6, flags: 0 });
  const name = attr(IFLA_IFNAME, new TextEncoder().encode('abcd'));
  const mtu = attr(IFLA_MTU, new Uint8Array(2));
  const events = parseInside(message(RTM_NEWLINK, concat([head, name, mtu])));
  assert.deepEqual(
    events.map((e) => (e.kind === 'link' ? [e.name, e.mtu] : [])),
    [['abcd', 0]],
  );
});

test('random bytes never throw', () => {
  let seed = 12345;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed >>> 16;
  };
  const valid = concat([
    message(RTM_NEWLINK, ifinfomsg({ ...eth0, flags: IFF_UP })),
    message(RTM_NEWADDR, ifaddrmsg({ index: 2, prefix: 24, local: 0x0a000001 })),
  ]);
  for (let round = 0; round < 2000; round++) {
    const bytes = valid.slice();
    for (let flips = 1 + (random() % 4); flips > 0; flips--) bytes[random() % bytes.length] = random() & 0xff;
    parseInside(bytes);
  }
});

// The dump sequence: links, then IPv4 addresses, then dump-done.

function header(request: Uint8Array | undefined): {
  type: number;
  flags: number;
  seq: number;
  family: number;
} {
  assert.ok(request, 'a request to send');
  const view = new DataView(request.buffer, request.byteOffset, request.byteLength);
  assert.equal(view.getUint32(0, true), request.byteLength);
  return {
    type: view.getUint16(4, true),
    flags: view.getUint16(6, true),
    seq: view.getUint32(8, true),
    family: view.getUint8(16),
  };
}

test('a dump asks for links, then IPv4 addresses, then reports dump-done', () => {
  const dumps = new DumpSequencer();
  const out: InterfaceEvent[] = [];
  const links = header(dumps.start());
  assert.deepEqual(
    { ...links, seq: 0 },
    { type: RTM_GETLINK, flags: NLM_F_REQUEST | NLM_F_DUMP, seq: 0, family: 0 },
  );
  assert.equal(dumps.handle({ kind: 'done', seq: links.seq + 100, errno: 0 }, out), undefined, 'other seq');
  const addresses = header(dumps.handle({ kind: 'done', seq: links.seq, errno: 0 }, out));
  assert.deepEqual(
    { ...addresses, seq: 0 },
    { type: RTM_GETADDR, flags: NLM_F_REQUEST | NLM_F_DUMP, seq: 0, family: 2 },
  );
  assert.notEqual(addresses.seq, links.seq);
  assert.deepEqual(out, []);
  assert.equal(dumps.handle({ kind: 'done', seq: addresses.seq, errno: 0 }, out), undefined);
  assert.deepEqual(out, [{ kind: 'dump-done' }]);
  assert.equal(dumps.running, false);
});

test('asking again during a dump repeats it once before dump-done', () => {
  const dumps = new DumpSequencer();
  const out: InterfaceEvent[] = [];
  const first = header(dumps.start());
  assert.equal(dumps.start(), undefined);
  assert.equal(dumps.start(), undefined);
  const addresses = header(dumps.handle({ kind: 'done', seq: first.seq, errno: 0 }, out));
  const again = header(dumps.handle({ kind: 'done', seq: addresses.seq, errno: 0 }, out));
  assert.equal(again.type, RTM_GETLINK);
  assert.deepEqual(out, []);
  const addresses2 = header(dumps.handle({ kind: 'done', seq: again.seq, errno: 0 }, out));
  dumps.handle({ kind: 'done', seq: addresses2.seq, errno: 0 }, out);
  assert.deepEqual(out, [{ kind: 'dump-done' }]);
});

test('an interrupted dump starts over; a failed one reports overflow; acks are ignored', () => {
  const dumps = new DumpSequencer();
  const out: InterfaceEvent[] = [];
  const links = header(dumps.start());
  dumps.handle({ kind: 'interrupted', seq: links.seq, errno: 0 }, out);
  const addresses = header(dumps.handle({ kind: 'done', seq: links.seq, errno: 0 }, out));
  const restart = header(dumps.handle({ kind: 'done', seq: addresses.seq, errno: 0 }, out));
  assert.equal(restart.type, RTM_GETLINK);
  assert.equal(dumps.handle({ kind: 'error', seq: restart.seq, errno: 0 }, out), undefined);
  assert.equal(dumps.handle({ kind: 'error', seq: restart.seq, errno: 12 }, out), undefined);
  assert.deepEqual(out, [{ kind: 'overflow' }]);
  assert.equal(dumps.running, false);
  assert.equal(header(dumps.start()).type, RTM_GETLINK);
});
