import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  DEFAULT_MULTICAST_TTL,
  DEFAULT_UNICAST_TTL,
  MAX_OUTPUTS_PER_RULE,
  describeInput,
  describeOutput,
  ruleIdFor,
  type Output,
} from '../../src/rules/rule.js';
import { validateRule } from '../../src/rules/validate-rule.js';

const G239_1_1_1 = 0xef010101;

test('ruleIdFor is "r-" and 12 lowercase hex digits', () => {
  for (const [iface, group, port] of [
    ['eth0', G239_1_1_1, 5000],
    ['lo', 0, 1],
    ['abcdefghijklmno', 0xffffffff, 65535],
  ] as const) {
    assert.match(ruleIdFor(iface, group, port), /^r-[0-9a-f]{12}$/);
  }
});

test('ruleIdFor is stable across runs and hosts (pinned values)', () => {
  // SHA-256 of "eth0|239.1.1.1|5000" etc.; changing these breaks every stored id.
  assert.equal(ruleIdFor('eth0', G239_1_1_1, 5000), 'r-dcfca9531161');
  assert.equal(ruleIdFor('eth1', G239_1_1_1, 5000), 'r-623ea1853d44');
  assert.equal(ruleIdFor('eth0', 0x0a000005, 5000), 'r-a56464418ccc');
});

test('ruleIdFor is deterministic', () => {
  assert.equal(ruleIdFor('eth0', G239_1_1_1, 5000), ruleIdFor('eth0', G239_1_1_1, 5000));
});

test('ruleIdFor changes with each part of the tuple', () => {
  const base = ruleIdFor('eth0', G239_1_1_1, 5000);
  const variants = [
    ruleIdFor('eth1', G239_1_1_1, 5000),
    ruleIdFor('eth0', G239_1_1_1 + 1, 5000),
    ruleIdFor('eth0', G239_1_1_1, 5001),
  ];
  for (const v of variants) assert.notEqual(v, base);
  assert.equal(new Set(variants).size, 3);
});

test('ruleIdFor treats a signed and an unsigned address alike', () => {
  assert.equal(ruleIdFor('eth0', G239_1_1_1 | 0, 5000), ruleIdFor('eth0', G239_1_1_1, 5000));
});

test('a rule id depends only on the input tuple, not on name, outputs or unicast flag', () => {
  const a = validateRule({
    inputInterface: 'eth0',
    inputGroup: '239.1.1.1',
    inputPort: 5000,
    outputs: [{ group: '239.2.2.2', port: 6000, interface: 'eth1' }],
  });
  const b = validateRule({
    name: 'other',
    inputInterface: 'eth0',
    inputGroup: '239.1.1.1',
    inputPort: 5000,
    unicastInput: true,
    outputs: [
      { group: '10.0.0.9', port: 1 },
      { group: '239.9.9.9', port: 9, interface: 'eth9', ttl: 1 },
    ],
  });
  assert.equal(a.id, b.id);
  assert.equal(a.id, ruleIdFor('eth0', G239_1_1_1, 5000));
});

test('describeOutput shows GROUP:PORT:INTERFACE, the syntax operators type', () => {
  const o: Output = {
    group: 0xef020202,
    port: 6000,
    interface: 'eth1',
    ttl: 16,
    ttlFixed: false,
    dscp: undefined,
    multicast: true,
    mode: 'auto',
  };
  assert.equal(describeOutput(o), '239.2.2.2:6000:eth1');
});

test('describeOutput omits an absent interface', () => {
  const o: Output = {
    group: 0x0a000907,
    port: 7000,
    interface: undefined,
    ttl: 64,
    ttlFixed: false,
    dscp: undefined,
    multicast: false,
    mode: 'auto',
  };
  assert.equal(describeOutput(o), '10.0.9.7:7000');
});

test('describeOutput shows a TTL or DSCP only when it is not the default, in the syntax operators type', () => {
  const o: Output = {
    group: 0xef020202,
    port: 6000,
    interface: 'eth1',
    ttl: 16,
    ttlFixed: false,
    dscp: undefined,
    multicast: true,
    mode: 'auto',
  };
  assert.equal(describeOutput(o), '239.2.2.2:6000:eth1');
  assert.equal(describeOutput({ ...o, ttl: 3 }), '239.2.2.2:6000:eth1:ttl=3');
  assert.equal(describeOutput({ ...o, ttlFixed: true }), '239.2.2.2:6000:eth1:fixed-ttl=16');
  assert.equal(describeOutput({ ...o, dscp: 46, mode: 'raw' }), '239.2.2.2:6000:eth1:raw:dscp=46');
  assert.equal(
    describeOutput({
      ...o,
      group: 0x0a000907,
      interface: undefined,
      multicast: false,
      ttl: 64,
      mode: 'socket',
    }),
    '10.0.9.7:6000::socket',
  );
});

test('a VLAN id is part of the rule id and the input description; untagged ids are unchanged', () => {
  const request = {
    inputInterface: 'eth0',
    inputGroup: '239.1.1.1',
    inputPort: 5000,
    outputs: [{ group: '239.2.2.2', port: 6000, interface: 'eth1' }],
  };
  const untagged = validateRule(request);
  const tagged = validateRule({ ...request, inputVlan: 100 });
  assert.equal(untagged.id, 'r-dcfca9531161');
  assert.notEqual(tagged.id, untagged.id);
  assert.equal(tagged.id, ruleIdFor('eth0', G239_1_1_1, 5000, 100));
  assert.equal(describeInput(tagged), 'eth0 vlan 100 239.1.1.1:5000');
});

test('describeInput shows "INTERFACE GROUP:PORT"', () => {
  const rule = validateRule({
    inputInterface: 'eth0',
    inputGroup: '239.1.1.1',
    inputPort: 5000,
    outputs: [{ group: '239.2.2.2', port: 6000, interface: 'eth1' }],
  });
  assert.equal(describeInput(rule), 'eth0 239.1.1.1:5000');
});

test('published limits and defaults', () => {
  assert.equal(DEFAULT_MULTICAST_TTL, 16);
  assert.equal(DEFAULT_UNICAST_TTL, 64);
  assert.equal(MAX_OUTPUTS_PER_RULE, 64);
});

test('describeOutput shows a forced path as a fourth field', () => {
  const o: Output = {
    group: 0xef020202,
    port: 6000,
    interface: 'eth1',
    ttl: 16,
    ttlFixed: false,
    dscp: undefined,
    multicast: true,
    mode: 'raw',
  };
  assert.equal(describeOutput(o), '239.2.2.2:6000:eth1:raw');
});
