import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  GenericNetlink,
  genlRequest,
  parseFamily,
  parseMessages,
  stringAttribute,
  u32Attribute,
} from '../../src/sys/generic-netlink.js';
import { changedDevices, XdpFeatureEvents } from '../../src/sys/xdp-feature-events.js';

// Generic netlink messages as the kernel lays them out, parsed without a socket; then the real
// controller and netdev family of this kernel.

const NLA_F_NESTED = 0x8000;

function nested(type: number, ...attributes: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(attributes);
  const head = new DataView(new ArrayBuffer(4));
  head.setUint16(0, 4 + body.byteLength, true);
  head.setUint16(2, type | NLA_F_NESTED, true);
  return Buffer.concat([new Uint8Array(head.buffer), body]);
}

function u16Attribute(type: number, value: number): Uint8Array {
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, 6, true);
  view.setUint16(2, type, true);
  view.setUint16(4, value, true);
  return bytes;
}

test('a family reply gives its id and its multicast groups by name', () => {
  const reply = genlRequest(
    0x10,
    1,
    stringAttribute(2, 'netdev'),
    u16Attribute(1, 27),
    nested(
      7,
      nested(1, u32Attribute(2, 9), stringAttribute(1, 'mgmt')),
      nested(2, stringAttribute(1, 'page-pool'), u32Attribute(2, 10)),
    ),
  );
  const [message] = parseMessages(reply);
  assert.ok(message);
  const family = parseFamily(message.attributes);
  assert.deepEqual(family, {
    id: 27,
    groups: new Map([
      ['mgmt', 9],
      ['page-pool', 10],
    ]),
  });
  assert.equal(parseFamily(new DataView(stringAttribute(2, 'x').buffer)), undefined, 'no id: no family');
});

test('a datagram of several messages is split; errors and cut messages are left out', () => {
  const change = genlRequest(27, 4, u32Attribute(1, 5), u32Attribute(3, 7));
  const added = genlRequest(27, 2, u32Attribute(1, 6));
  const removed = genlRequest(27, 3, u32Attribute(1, 8));
  const error = genlRequest(2, 0, u32Attribute(1, 0)); // type 2: NLMSG_ERROR
  const datagram = Buffer.concat([change, error, added, removed, change.subarray(0, 10)]);
  const messages = parseMessages(datagram);
  assert.deepEqual(
    messages.map((m) => m.command),
    [4, 2, 3],
  );
  // Changes and additions name devices to look at again, once each; removals are rtnetlink's.
  assert.deepEqual(changedDevices([...messages, ...parseMessages(change)]), [5, 6]);
});

test("this kernel's controller knows the netdev family and its mgmt group, which a socket can join", () => {
  const genl = GenericNetlink.open();
  try {
    const family = genl.family('netdev');
    assert.ok(family, 'the netdev family (Linux 6.3+)');
    assert.ok(family.groups.has('mgmt'), JSON.stringify([...family.groups]));
    assert.equal(genl.family('no-such-family-here'), undefined);
  } finally {
    genl.close();
  }
  const events = XdpFeatureEvents.open();
  assert.ok(events);
  try {
    // (Another test may add a device in this namespace meanwhile: only the shape is certain.)
    const { ifindexes, overflow } = events.read();
    assert.ok(Array.isArray(ifindexes) && typeof overflow === 'boolean');
  } finally {
    events.close();
  }
});
