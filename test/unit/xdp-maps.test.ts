import { test } from 'node:test';
import assert from 'node:assert/strict';

import { XdpInput } from '../../src/xdp/xdp-input.js';
import {
  egressConstants,
  encodeOutputValue,
  foldLe16,
  loadedBe16,
  OUTPUT_VALUE_SIZE,
} from '../../src/xdp/output-header.js';
import {
  copyNumbers,
  encodeOutputKey,
  decodeRuleKey,
  decodeRuleValue,
  encodeAddressKey,
  encodeRuleKey,
  encodeRuleValue,
  minimumInputTtl,
  ruleKeyText,
  sumOutputCounts,
  sumRuleCounts,
} from '../../src/xdp/xdp-maps.js';

// The byte layouts the XDP programs and mcrd share, and the per-output constants: pure.

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

test('a rule key: group and port in network order as in the packet, the VLAN in host order', () => {
  const key = { group: 0xef010203, port: 5000, vlan: 10 };
  assert.equal(hex(encodeRuleKey(key)), 'ef010203' + '1388' + '0a00');
  assert.deepEqual(decodeRuleKey(encodeRuleKey(key)), key);
  assert.equal(hex(encodeRuleKey({ group: 0xef010203, port: 5000, vlan: 0 })).slice(12), '0000');
  assert.throws(() => encodeRuleKey({ ...key, vlan: 4096 }), /vlan/);
  assert.throws(() => encodeRuleKey({ ...key, port: 70000 }), /port/);
  assert.equal(ruleKeyText(key), '239.1.2.3:5000 vlan 10');
  assert.equal(ruleKeyText({ ...key, vlan: 0 }), '239.1.2.3:5000');
});

test('a rule value: slot, output count, lowest relayed TTL and output set, host order', () => {
  const value = { slot: 258, outputs: 5, minTtl: 2, outputSet: 1030 };
  assert.equal(hex(encodeRuleValue(value)), '02010000' + '0500' + '02' + '00' + '06040000');
  assert.deepEqual(decodeRuleValue(encodeRuleValue(value)), value);
  assert.throws(() => encodeRuleValue({ ...value, outputs: 65 }), /outputs/);
});

test('an output key: output set, link, copy on that link; copies count per link in list order', () => {
  assert.equal(
    hex(encodeOutputKey({ outputSet: 3, ifindex: 7, copy: 1 })),
    '03000000' + '07000000' + '01000000',
  );
  assert.deepEqual(copyNumbers([7, 8, 7, 7, 9, 8]), [0, 0, 1, 2, 0, 1]);
  assert.throws(() => encodeOutputKey({ outputSet: 3, ifindex: 7, copy: 64 }), /copy/);
});

test('the lowest input TTL relayed: 2 unless an output has a fixed TTL', () => {
  assert.equal(minimumInputTtl([{ ttlFixed: false }, { ttlFixed: false }]), 2);
  assert.equal(minimumInputTtl([{ ttlFixed: false }, { ttlFixed: true }]), 0);
});

test('an address key is the 4 bytes of the packet', () => {
  assert.equal(hex(encodeAddressKey(0x0a000001)), '0a000001');
});

test('per-CPU counters are summed field by field', () => {
  const cpu = (values: number[]): Uint8Array => {
    const bytes = new Uint8Array(values.length * 8);
    values.forEach((v, i) => new DataView(bytes.buffer).setBigUint64(i * 8, BigInt(v), true));
    return bytes;
  };
  assert.deepEqual(sumRuleCounts([cpu([1, 100, 0, 2, 0]), cpu([3, 300, 1, 0, 4])]), {
    packets: 4,
    bytes: 400,
    ownSource: 1,
    ttlExpired: 2,
    noOutput: 4,
  });
  assert.deepEqual(sumOutputCounts([cpu([1, 10, 0, 1, 10]), cpu([2, 20, 5, 0, 0])]), {
    packets: 3,
    bytes: 30,
    ttlExpired: 5,
    refused: 1,
    refusedBytes: 10,
  });
});

test("an output's constants: the group's MAC, addresses and ports as they sit in the header", () => {
  const c = egressConstants({
    group: 0xef820203, // 239.130.2.3: the MAC keeps the low 23 bits
    port: 6000,
    sourcePort: 40000,
    sourceAddress: 0x0a010001,
    sourceMac: Uint8Array.of(2, 0xaa, 0, 0, 0, 1),
    ttl: 16,
    ttlFixed: false,
    dscp: 46,
  });
  assert.equal(hex(c.ethernet), '01005e020203' + '02aa00000001' + '0800');
  assert.equal(hex(c.addresses), '0a010001' + 'ef820203');
  assert.equal(hex(c.ports), '9c40' + '1770');
  assert.equal(c.dscpBits, 46 << 2);
  assert.equal(c.udpAddedSum, foldLe16(c.addresses) + foldLe16(c.ports));
  assert.equal(egressConstants({ ...sample(), dscp: undefined }).dscpBits, -1);
  assert.throws(() => egressConstants({ ...sample(), ttl: 0 }), /ttl/);
  const value = encodeOutputValue(c, 9);
  assert.equal(value.length, OUTPUT_VALUE_SIZE);
  assert.equal(hex(value.subarray(0, 14)), hex(c.ethernet));
  assert.equal(hex(value.subarray(16, 28)), hex(c.addresses) + hex(c.ports));
  assert.equal(
    hex(value.subarray(32, 40)),
    '09000000' + '10' + '00' + 'b8' + '00',
    'slot, TTL 16 capped, DSCP 46, set',
  );
  assert.equal(encodeOutputValue(egressConstants(sample()), 0)[39], 1, 'no DSCP: keep the input');
  assert.throws(() => egressConstants({ ...sample(), dscp: 64 }), /dscp/);
});

function sample(): Parameters<typeof egressConstants>[0] {
  return {
    group: 0xef000001,
    port: 1,
    sourcePort: 1,
    sourceAddress: 0x0a000001,
    sourceMac: new Uint8Array(6),
    ttl: 1,
    ttlFixed: false,
    dscp: undefined,
  };
}

test('network-order 16-bit values as a little-endian load sees them', () => {
  assert.equal(loadedBe16(0x0800), 0x0008);
  assert.equal(loadedBe16(0x3fff), 0xff3f);
});

test('XdpInput refuses generic mode before touching the kernel', () => {
  assert.throws(() => XdpInput.open(1, 'generic', 'eth9'), {
    code: 'E_XDP_MODE',
    message: /eth9: only native mode/,
  });
});
