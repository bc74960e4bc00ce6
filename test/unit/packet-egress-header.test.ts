import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  EGRESS_HEADER_SIZE,
  egressSums,
  patchEgressHeader,
  VNET_HEADER_SIZE,
  writeEgressTemplate,
} from '../../src/packet/egress-header.js';
import { DropReason, ParsedFrame, parseFrame } from '../../src/packet/frame.js';

function template(ttl: number, dscp: number): Uint8Array {
  const t = new Uint8Array(EGRESS_HEADER_SIZE);
  writeEgressTemplate(t, 0, {
    sourceMac: Uint8Array.of(2, 0, 0, 0, 0, 9),
    sourceAddress: 0x0a000001,
    sourcePort: 40000,
    group: 0xef020202,
    port: 6000,
    ttl,
    dscp,
  });
  return t;
}

/** The frame a raw copy puts on the wire: the patched header (without virtio_net_hdr) and a payload. */
function wire(header: Uint8Array, offset: number, payloadLength: number): Uint8Array {
  const frame = new Uint8Array(EGRESS_HEADER_SIZE - VNET_HEADER_SIZE + payloadLength);
  frame.set(header.subarray(offset + VNET_HEADER_SIZE, offset + EGRESS_HEADER_SIZE));
  return frame;
}

test('each copy carries its own TTL and TOS, with a correct header checksum', () => {
  // Whatever TTL and DSCP the template was written with, they do not leak into the copies.
  for (const [templateTtl, templateDscp] of [
    [1, 0],
    [64, 46],
    [255, 63],
  ] as const) {
    const slot = new Uint8Array(128);
    slot.set(template(templateTtl, templateDscp), 64);
    const sums = egressSums(slot, 64);
    let id = 0;
    for (const ttl of [1, 2, 15, 63, 64, 128, 255]) {
      for (const tos of [0, 1, 2, 3, 0xb8, 0xb9, 0x88, 0xfc, 0xff]) {
        for (const payload of [0, 1, 100, 1472]) {
          patchEgressHeader(slot, 64, payload, id, ttl, tos, sums);
          const parsed = new ParsedFrame();
          const frame = wire(slot, 64, payload);
          assert.equal(parseFrame(frame, 0, frame.length, parsed), DropReason.OK, `ttl ${ttl} tos ${tos}`);
          assert.equal(parsed.ttl, ttl);
          assert.equal((parsed.dscp << 2) | parsed.ecn, tos);
          assert.equal(parsed.ipId, id);
          assert.equal(parsed.payloadLength, payload);
          id = (id + 4099) & 0xffff;
        }
      }
    }
  }
});
