import { test } from 'node:test';
import assert from 'node:assert/strict';

import { parseOutputList } from '../../src/rules/output-syntax.js';

import { throwsRule } from '../helpers/rule-errors.js';
import { validateRule } from '../../src/rules/validate-rule.js';

test('one output with interface', () => {
  assert.deepEqual(parseOutputList('239.2.2.2:6000:eth1'), [
    { group: '239.2.2.2', port: 6000, interface: 'eth1' },
  ]);
});

test('several outputs, spaces around commas ignored', () => {
  assert.deepEqual(parseOutputList('239.2.2.2:6000:eth1, 10.0.9.7:7000:eth2 ,10.0.9.8:7001'), [
    { group: '239.2.2.2', port: 6000, interface: 'eth1' },
    { group: '10.0.9.7', port: 7000, interface: 'eth2' },
    { group: '10.0.9.8', port: 7001, interface: undefined },
  ]);
});

test('the interface is optional; an empty one counts as absent', () => {
  assert.deepEqual(parseOutputList('10.0.9.7:7000'), [
    { group: '10.0.9.7', port: 7000, interface: undefined },
  ]);
  assert.deepEqual(parseOutputList('10.0.9.7:7000:'), [
    { group: '10.0.9.7', port: 7000, interface: undefined },
  ]);
});

test('the parser only splits: values are left for validateRule', () => {
  // Not an address, port 0: both pass the split and are refused later.
  assert.deepEqual(parseOutputList('nonsense:0:eth1'), [{ group: 'nonsense', port: 0, interface: 'eth1' }]);
  assert.deepEqual(parseOutputList('239.2.2.2:99999:eth1'), [
    { group: '239.2.2.2', port: 99999, interface: 'eth1' },
  ]);
});

for (const [text, index, item] of [
  ['', 0, ''],
  ['   ', 0, ''],
  ['239.2.2.2', 0, '239.2.2.2'],
  ['239.2.2.2:6000:eth1:raw:x', 0, '239.2.2.2:6000:eth1:raw:x'],
  ['239.2.2.2:6000:eth1,', 1, ''],
  ['239.2.2.2:6000:eth1,,10.0.9.7:7000', 1, ''],
  ['239.2.2.2:6000:eth1,10.0.9.7', 1, '10.0.9.7'],
] as const) {
  test(`${JSON.stringify(text)} is E_INVALID_OUTPUT at outputs[${index}]`, () => {
    const err = throwsRule(
      () => parseOutputList(text),
      'E_INVALID_OUTPUT',
      `outputs[${index}]`,
      JSON.stringify(item),
    );
    assert.equal(err.value, item);
    assert.match(err.message, /GROUP:PORT\[:INTERFACE\[:MODE\]\]/);
  });
}

for (const [text, index, port] of [
  ['239.2.2.2:x:eth1', 0, 'x'],
  ['239.2.2.2::eth1', 0, ''],
  ['239.2.2.2:-1:eth1', 0, '-1'],
  ['239.2.2.2:1.5:eth1', 0, '1.5'],
  ['239.2.2.2:123456:eth1', 0, '123456'],
  ['239.2.2.2: 6000:eth1', 0, ' 6000'],
  ['239.2.2.2:6000:eth1,10.0.9.7:0x10', 1, '0x10'],
] as const) {
  test(`${JSON.stringify(text)} is E_INVALID_PORT at outputs[${index}].port`, () => {
    const err = throwsRule(
      () => parseOutputList(text),
      'E_INVALID_PORT',
      `outputs[${index}].port`,
      JSON.stringify(port),
    );
    assert.equal(err.value, port);
  });
}

test('parsed outputs feed validateRule, whose errors use the same field names', () => {
  const base = { inputInterface: 'eth0', inputGroup: '239.1.1.1', inputPort: 5000 };
  const rule = validateRule({ ...base, outputs: parseOutputList('239.2.2.2:6000:eth1,10.0.9.7:7000') });
  assert.equal(rule.outputs.length, 2);
  throwsRule(
    () => validateRule({ ...base, outputs: parseOutputList('239.2.2.2:6000:eth1,10.0.9.7:0') }),
    'E_INVALID_PORT',
    'outputs[1].port',
  );
  throwsRule(
    () => validateRule({ ...base, outputs: parseOutputList('239.2.2.2:6000:eth1,239.3.3.3:7000') }),
    'E_INVALID_INTERFACE',
    'outputs[1].interface',
  );
});

test('options follow the positional parts: ttl, fixed-ttl and dscp', () => {
  assert.deepEqual(parseOutputList('239.2.2.2:6000:eth1:ttl=8,239.2.2.3:6000:eth1:raw:fixed-ttl=4:dscp=ef'), [
    { group: '239.2.2.2', port: 6000, interface: 'eth1', ttl: 8 },
    { group: '239.2.2.3', port: 6000, interface: 'eth1', mode: 'raw', fixedTtl: 4, dscp: 'ef' },
  ]);
  assert.deepEqual(parseOutputList('10.0.9.7:7000:fixed-ttl=8'), [
    { group: '10.0.9.7', port: 7000, interface: undefined, fixedTtl: 8 },
  ]);
  assert.deepEqual(parseOutputList('10.0.9.7:7000::socket:dscp=46'), [
    { group: '10.0.9.7', port: 7000, interface: undefined, mode: 'socket', dscp: '46' },
  ]);
});

for (const [text, code, field] of [
  ['239.2.2.2:6000:eth1:hops=3', 'E_INVALID_OUTPUT', 'outputs[0].hops'],
  ['239.2.2.2:6000:eth1:ttl=x', 'E_INVALID_TTL', 'outputs[0].ttl'],
  ['239.2.2.2:6000:eth1:fixed-ttl=', 'E_INVALID_TTL', 'outputs[0].fixed-ttl'],
  ['239.2.2.2:6000:eth1:ttl=3:ttl=4', 'E_INVALID_OUTPUT', 'outputs[0]'],
  ['239.2.2.2:6000:ttl=3:eth1', 'E_INVALID_OUTPUT', 'outputs[0]'],
  ['239.2.2.2:6000:eth1:fast', 'E_INVALID_OUTPUT', 'outputs[0].mode'],
] as const) {
  test(`${JSON.stringify(text)} is ${code} at ${field}`, () => {
    throwsRule(() => parseOutputList(text), code, field);
  });
}

test('what the parser splits, validateRule accepts with the same meaning', () => {
  const rule = validateRule({
    inputInterface: 'eth0',
    inputGroup: '239.1.1.1',
    inputPort: 5000,
    outputs: parseOutputList('239.2.2.2:6000:eth1:fixed-ttl=4:dscp=af41'),
  });
  assert.deepEqual([rule.outputs[0]!.ttl, rule.outputs[0]!.ttlFixed, rule.outputs[0]!.dscp], [4, true, 34]);
});
