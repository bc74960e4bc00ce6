import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { OutputRequest, RuleRequest } from '../../src/rules/rule.js';
import { RuleError } from '../../src/rules/rule-error.js';
import { throwsRule } from '../helpers/rule-errors.js';
import {
  checkRule,
  validateAddress,
  validateInterfaceName,
  validatePort,
  validateRule,
  validateRuleName,
} from '../../src/rules/validate-rule.js';

function request(over: Partial<RuleRequest> = {}): RuleRequest {
  return {
    inputInterface: 'eth0',
    inputGroup: '239.1.1.1',
    inputPort: 5000,
    outputs: [{ group: '239.2.2.2', port: 6000, interface: 'eth1' }],
    ...over,
  };
}

const out = (group: string, port: number, iface?: string, ttl?: number): OutputRequest => ({
  group,
  port,
  interface: iface,
  ttl,
});

// ---------------------------------------------------------------- a valid rule

test('validateRule turns a valid request into a Rule', () => {
  const rule = validateRule(
    request({
      name: 'feed-a',
      outputs: [out('239.2.2.2', 6000, 'eth1'), out('10.0.9.7', 7000), out('10.0.9.8', 7001, 'eth2', 3)],
    }),
  );
  assert.deepEqual(rule, {
    id: rule.id,
    name: 'feed-a',
    inputInterface: 'eth0',
    inputVlan: 0,
    inputSource: 0,
    inputGroup: 0xef010101,
    inputPort: 5000,
    unicastInput: false,
    rtp: false,
    outputs: [
      {
        group: 0xef020202,
        port: 6000,
        interface: 'eth1',
        ttl: 16,
        ttlFixed: false,
        dscp: undefined,
        multicast: true,
        mode: 'auto',
      },
      {
        group: 0x0a000907,
        port: 7000,
        interface: undefined,
        ttl: 64,
        ttlFixed: false,
        dscp: undefined,
        multicast: false,
        mode: 'auto',
      },
      {
        group: 0x0a000908,
        port: 7001,
        interface: 'eth2',
        ttl: 3,
        ttlFixed: false,
        dscp: undefined,
        multicast: false,
        mode: 'auto',
      },
    ],
  });
  assert.match(rule.id, /^r-[0-9a-f]{12}$/);
});

test('validateRule leaves name undefined when absent', () => {
  assert.equal(validateRule(request()).name, undefined);
});

// ---------------------------------------------------------------- addresses

for (const bad of [
  '239.1.1',
  '300.1.1.1',
  '',
  '239.1.1.1.1',
  ' 239.1.1.1',
  '239.01.1.1',
  'a.b.c.d',
  '-1.1.1.1',
]) {
  test(`validateAddress rejects ${JSON.stringify(bad)}`, () => {
    const err = throwsRule(() => validateAddress(bad, 'input-group'), 'E_INVALID_ADDRESS', 'input-group');
    assert.ok(err.message.includes(JSON.stringify(bad)), err.message);
    assert.equal(err.value, bad);
  });
}

for (const bad of [239, null, undefined, {}, ['239.1.1.1'], true]) {
  test(`validateAddress rejects the non-string ${String(JSON.stringify(bad))}`, () => {
    const err = throwsRule(
      () => validateAddress(bad, 'outputs[0].group'),
      'E_INVALID_ADDRESS',
      'outputs[0].group',
    );
    assert.equal(err.value, bad);
  });
}

test('validateAddress returns the unsigned 32-bit address', () => {
  assert.equal(validateAddress('239.1.1.1', 'f'), 0xef010101);
  assert.equal(validateAddress('0.0.0.0', 'f'), 0);
  assert.equal(validateAddress('255.255.255.255', 'f'), 0xffffffff);
});

test('validateRule names the field of a malformed input group', () => {
  throwsRule(
    () => validateRule(request({ inputGroup: '239.1.1' })),
    'E_INVALID_ADDRESS',
    'input-group',
    '239.1.1',
  );
});

test('validateRule names the field of a malformed output group', () => {
  throwsRule(
    () =>
      validateRule(request({ outputs: [out('239.2.2.2', 6000, 'eth1'), out('300.1.1.1', 6000, 'eth1')] })),
    'E_INVALID_ADDRESS',
    'outputs[1].group',
    '300.1.1.1',
  );
});

// ---------------------------------------------------------------- ports

for (const bad of [0, 65536, 1.5, '80', -1, NaN, Infinity, null, undefined]) {
  test(`validatePort rejects ${String(JSON.stringify(bad) ?? bad)}`, () => {
    const err = throwsRule(() => validatePort(bad, 'input-port'), 'E_INVALID_PORT', 'input-port');
    assert.equal(err.value, bad);
    const shown = JSON.stringify(bad);
    if (shown !== undefined) assert.ok(err.message.includes(shown), err.message);
  });
}

test('validatePort accepts 1 and 65535', () => {
  assert.equal(validatePort(1, 'f'), 1);
  assert.equal(validatePort(65535, 'f'), 65535);
});

test('validateRule names the field of a bad input port', () => {
  throwsRule(() => validateRule(request({ inputPort: 0 })), 'E_INVALID_PORT', 'input-port', '0');
});

test('validateRule names the field of a bad output port', () => {
  throwsRule(
    () => validateRule(request({ outputs: [out('239.2.2.2', 65536, 'eth1')] })),
    'E_INVALID_PORT',
    'outputs[0].port',
    '65536',
  );
});

// ---------------------------------------------------------------- multicast input

test('an input group that is not multicast is E_NOT_MULTICAST', () => {
  const err = throwsRule(
    () => validateRule(request({ inputGroup: '10.0.0.5' })),
    'E_NOT_MULTICAST',
    'input-group',
    '10.0.0.5',
  );
  assert.equal(err.value, '10.0.0.5');
});

test('multicast range boundaries for the input group', () => {
  assert.doesNotThrow(() => validateRule(request({ inputGroup: '224.0.0.1' })));
  assert.doesNotThrow(() => validateRule(request({ inputGroup: '239.255.255.255' })));
  throwsRule(
    () => validateRule(request({ inputGroup: '223.255.255.255' })),
    'E_NOT_MULTICAST',
    'input-group',
  );
  throwsRule(() => validateRule(request({ inputGroup: '240.0.0.1' })), 'E_NOT_MULTICAST', 'input-group');
});

test('a unicast input address is accepted with unicastInput: true', () => {
  const rule = validateRule(request({ inputGroup: '10.0.0.5', unicastInput: true }));
  assert.equal(rule.unicastInput, true);
  assert.equal(rule.inputGroup, 0x0a000005);
});

test('unicastInput must be exactly true to relax the multicast check', () => {
  const loose = { ...request({ inputGroup: '10.0.0.5' }), unicastInput: 'yes' } as unknown as RuleRequest;
  throwsRule(() => validateRule(loose), 'E_NOT_MULTICAST', 'input-group');
});

// ---------------------------------------------------------------- interface names

test('validateInterfaceName accepts ordinary names up to 15 bytes', () => {
  for (const name of ['eth0', 'lo', 'enp0s31f6', 'br-lan.100', 'wg0', 'a', 'abcdefghijklmno', 'veth_x-y@z']) {
    assert.equal(validateInterfaceName(name, 'input-interface'), name);
  }
});

for (const bad of [
  '',
  'abcdefghijklmnop',
  'eth/0',
  'eth0:1',
  'eth 0',
  ' eth0',
  'eth0\t',
  'eth0\n',
  '.',
  '..',
  'abcdefghijklmné',
]) {
  test(`validateInterfaceName rejects ${JSON.stringify(bad)}`, () => {
    const err = throwsRule(
      () => validateInterfaceName(bad, 'input-interface'),
      'E_INVALID_INTERFACE',
      'input-interface',
      JSON.stringify(bad),
    );
    assert.equal(err.value, bad);
  });
}

test('validateInterfaceName counts bytes, not characters', () => {
  // 14 characters, 15 bytes in UTF-8: fits.
  assert.equal(validateInterfaceName('abcdefghijklmé', 'f'), 'abcdefghijklmé');
});

for (const bad of [5, null, undefined, {}, ['eth0']]) {
  test(`validateInterfaceName rejects the non-string ${String(JSON.stringify(bad))}`, () => {
    throwsRule(
      () => validateInterfaceName(bad, 'outputs[0].interface'),
      'E_INVALID_INTERFACE',
      'outputs[0].interface',
    );
  });
}

test('validateInterfaceName rejects an embedded NUL', {}, () => {
  throwsRule(
    () => validateInterfaceName('eth0\u0000', 'input-interface'),
    'E_INVALID_INTERFACE',
    'input-interface',
  );
});

test('validateRule names the field of a bad input interface', () => {
  throwsRule(
    () => validateRule(request({ inputInterface: 'eth0:1' })),
    'E_INVALID_INTERFACE',
    'input-interface',
    'eth0:1',
  );
});

test('validateRule names the field of a bad output interface', () => {
  throwsRule(
    () => validateRule(request({ outputs: [out('239.2.2.2', 6000, 'eth 1')] })),
    'E_INVALID_INTERFACE',
    'outputs[0].interface',
    'eth 1',
  );
});

// ---------------------------------------------------------------- output interfaces

test('a multicast output without an interface is refused', () => {
  throwsRule(
    () => validateRule(request({ outputs: [out('239.2.2.2', 6000)] })),
    'E_INVALID_INTERFACE',
    'outputs[0].interface',
    '239.2.2.2',
  );
});

test('an empty output interface counts as absent', () => {
  throwsRule(
    () => validateRule(request({ outputs: [out('239.2.2.2', 6000, '')] })),
    'E_INVALID_INTERFACE',
    'outputs[0].interface',
  );
  const rule = validateRule(request({ outputs: [out('10.0.9.7', 7000, '')] }));
  assert.equal(rule.outputs[0]!.interface, undefined);
});

test('a unicast output without an interface is accepted (the kernel routes it)', () => {
  const rule = validateRule(request({ outputs: [out('10.0.9.7', 7000)] }));
  assert.deepEqual(rule.outputs, [
    {
      group: 0x0a000907,
      port: 7000,
      interface: undefined,
      ttl: 64,
      ttlFixed: false,
      dscp: undefined,
      multicast: false,
      mode: 'auto',
    },
  ]);
});

// ---------------------------------------------------------------- loops

test('an output equal to the input on the same interface is E_LOOP', () => {
  const err = throwsRule(
    () => validateRule(request({ outputs: [out('239.1.1.1', 5000, 'eth0')] })),
    'E_LOOP',
    'outputs[0]',
    '239.1.1.1:5000:eth0',
  );
  assert.equal(err.value, '239.1.1.1:5000:eth0');
});

test('E_LOOP names the index of the looping output', () => {
  throwsRule(
    () =>
      validateRule(request({ outputs: [out('239.2.2.2', 6000, 'eth1'), out('239.1.1.1', 5000, 'eth0')] })),
    'E_LOOP',
    'outputs[1]',
  );
});

test('the same group and port on another interface is not a loop', () => {
  const rule = validateRule(request({ outputs: [out('239.1.1.1', 5000, 'eth1')] }));
  assert.equal(rule.outputs[0]!.interface, 'eth1');
});

test('the same group on the same interface with another port is not a loop', () => {
  assert.doesNotThrow(() => validateRule(request({ outputs: [out('239.1.1.1', 5001, 'eth0')] })));
});

test('a unicast input looped back on its own interface is E_LOOP', () => {
  throwsRule(
    () =>
      validateRule(
        request({ inputGroup: '10.0.0.5', unicastInput: true, outputs: [out('10.0.0.5', 5000, 'eth0')] }),
      ),
    'E_LOOP',
    'outputs[0]',
  );
});

test('a unicast output to the unicast input address and port is E_LOOP, whatever its interface', () => {
  for (const iface of [undefined, 'eth1']) {
    throwsRule(
      () =>
        validateRule(
          request({ inputGroup: '10.0.0.5', unicastInput: true, outputs: [out('10.0.0.5', 5000, iface)] }),
        ),
      'E_LOOP',
      'outputs[0]',
      '10.0.0.5:5000',
    );
  }
});

test('an output to the input group on the input link is no loop when the input is another VLAN', () => {
  assert.doesNotThrow(() =>
    validateRule(request({ inputVlan: 100, outputs: [out('239.1.1.1', 5000, 'eth0')] })),
  );
});

// ---------------------------------------------------------------- VLAN

test('inputVlan 1-4094 is kept; absent means untagged (0)', () => {
  assert.equal(validateRule(request()).inputVlan, 0);
  assert.equal(validateRule(request({ inputVlan: 1 })).inputVlan, 1);
  assert.equal(validateRule(request({ inputVlan: 4094 })).inputVlan, 4094);
});

for (const bad of [0, 4095, -1, 1.5, '100', null]) {
  test(`inputVlan ${String(JSON.stringify(bad))} is E_INVALID_VLAN`, () => {
    throwsRule(
      () => validateRule(request({ inputVlan: bad as unknown as number })),
      'E_INVALID_VLAN',
      'input-vlan',
    );
  });
}

// ---------------------------------------------------------------- TTL policy and DSCP

test('fixedTtl gives every copy that TTL; ttl is a cap; both at once is refused', () => {
  const fixed = validateRule(request({ outputs: [{ ...out('239.2.2.2', 6000, 'eth1'), fixedTtl: 4 }] }));
  assert.deepEqual([fixed.outputs[0]!.ttl, fixed.outputs[0]!.ttlFixed], [4, true]);
  const capped = validateRule(request({ outputs: [out('239.2.2.2', 6000, 'eth1', 8)] }));
  assert.deepEqual([capped.outputs[0]!.ttl, capped.outputs[0]!.ttlFixed], [8, false]);
  throwsRule(
    () => validateRule(request({ outputs: [{ ...out('239.2.2.2', 6000, 'eth1', 8), fixedTtl: 4 }] })),
    'E_INVALID_TTL',
    'outputs[0].fixed-ttl',
  );
  throwsRule(
    () => validateRule(request({ outputs: [{ ...out('239.2.2.2', 6000, 'eth1'), fixedTtl: 0 }] })),
    'E_INVALID_TTL',
    'outputs[0].fixed-ttl',
  );
});

test("dscp takes 0-63 or a name in any case; absent keeps the input's", () => {
  const dscp = (value: number | string | undefined): number | undefined =>
    validateRule(request({ outputs: [{ ...out('239.2.2.2', 6000, 'eth1'), dscp: value }] })).outputs[0]!.dscp;
  assert.equal(dscp(undefined), undefined);
  assert.equal(dscp(0), 0);
  assert.equal(dscp(63), 63);
  assert.equal(dscp('46'), 46);
  assert.equal(dscp('ef'), 46);
  assert.equal(dscp('AF41'), 34);
  assert.equal(dscp('cs1'), 8);
  for (const bad of [64, -1, 1.5, 'x', 'af44', '']) {
    throwsRule(() => dscp(bad), 'E_INVALID_DSCP', 'outputs[0].dscp');
  }
});

// ---------------------------------------------------------------- duplicates

test('a repeated output is E_DUPLICATE_OUTPUT naming both indexes', () => {
  const err = throwsRule(
    () =>
      validateRule(
        request({
          outputs: [
            out('239.2.2.2', 6000, 'eth1'),
            out('239.3.3.3', 6000, 'eth1'),
            out('239.2.2.2', 6000, 'eth1'),
          ],
        }),
      ),
    'E_DUPLICATE_OUTPUT',
    'outputs[2]',
    'outputs[0]',
  );
  assert.equal(err.value, '239.2.2.2:6000:eth1');
  assert.ok(err.message.includes('239.2.2.2:6000:eth1'), err.message);
});

test('duplicates ignore ttl: the destination is what counts', () => {
  throwsRule(
    () =>
      validateRule(
        request({ outputs: [out('239.2.2.2', 6000, 'eth1', 4), out('239.2.2.2', 6000, 'eth1', 8)] }),
      ),
    'E_DUPLICATE_OUTPUT',
    'outputs[1]',
    'outputs[0]',
  );
});

test('repeated unicast outputs without interface are duplicates', () => {
  throwsRule(
    () => validateRule(request({ outputs: [out('10.0.9.7', 7000), out('10.0.9.7', 7000, '')] })),
    'E_DUPLICATE_OUTPUT',
    'outputs[1]',
    'outputs[0]',
  );
});

test('outputs differing only by interface or port are distinct', () => {
  const rule = validateRule(
    request({
      outputs: [
        out('239.2.2.2', 6000, 'eth1'),
        out('239.2.2.2', 6000, 'eth2'),
        out('239.2.2.2', 6001, 'eth1'),
      ],
    }),
  );
  assert.equal(rule.outputs.length, 3);
});

// ---------------------------------------------------------------- output count and shape

/** E_NO_OUTPUTS: code, field and value; the message test follows. */
function throwsNoOutputs(outputs: unknown): RuleError {
  let caught: unknown;
  try {
    validateRule(request({ outputs: outputs as OutputRequest[] }));
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof RuleError, `expected a RuleError, got ${String(caught)}`);
  assert.equal(caught.code, 'E_NO_OUTPUTS');
  assert.equal(caught.field, 'outputs');
  assert.equal(caught.value, outputs);
  assert.match(caught.message, /needs at least one/);
  return caught;
}

test('a rule without outputs is E_NO_OUTPUTS', () => {
  throwsNoOutputs([]);
});

test('a missing or non-array outputs is E_NO_OUTPUTS', () => {
  for (const outputs of [undefined, null, 'x', {}]) throwsNoOutputs(outputs);
});

test('the E_NO_OUTPUTS message names the field and the value', {}, () => {
  const err = throwsNoOutputs('x');
  assert.ok(err.message.includes('outputs'), err.message);
  assert.ok(err.message.includes('"x"'), err.message);
});

const many = (n: number): OutputRequest[] =>
  Array.from({ length: n }, (_, i) => out('239.2.2.2', 6000 + i, 'eth1'));

test('64 outputs are accepted', () => {
  assert.equal(validateRule(request({ outputs: many(64) })).outputs.length, 64);
});

test('65 outputs are E_TOO_MANY_OUTPUTS', () => {
  const err = throwsRule(
    () => validateRule(request({ outputs: many(65) })),
    'E_TOO_MANY_OUTPUTS',
    'outputs',
    '65',
  );
  assert.ok(err.message.includes('64'), err.message);
  assert.equal(err.value, 65);
});

test('an output that is not an object is E_INVALID_OUTPUT', () => {
  for (const bad of [null, 5, 'x']) {
    const err = throwsRule(
      () =>
        validateRule(request({ outputs: [out('239.2.2.2', 6000, 'eth1'), bad as unknown as OutputRequest] })),
      'E_INVALID_OUTPUT',
      'outputs[1]',
    );
    assert.equal(err.value, bad);
  }
});

// ---------------------------------------------------------------- ttl

test('ttl defaults: 16 for multicast, 64 for unicast', () => {
  const rule = validateRule(
    request({ outputs: [out('239.2.2.2', 6000, 'eth1'), out('10.0.9.7', 7000, 'eth1')] }),
  );
  assert.equal(rule.outputs[0]!.ttl, 16);
  assert.equal(rule.outputs[0]!.multicast, true);
  assert.equal(rule.outputs[1]!.ttl, 64);
  assert.equal(rule.outputs[1]!.multicast, false);
});

test('ttl 1 and 255 are accepted', () => {
  const rule = validateRule(
    request({ outputs: [out('239.2.2.2', 6000, 'eth1', 1), out('10.0.9.7', 7000, 'eth1', 255)] }),
  );
  assert.deepEqual(
    rule.outputs.map((o) => o.ttl),
    [1, 255],
  );
});

for (const bad of [0, 256, -1, 1.5, NaN, '8', null]) {
  test(`ttl ${String(JSON.stringify(bad))} is E_INVALID_TTL`, () => {
    const err = throwsRule(
      () => validateRule(request({ outputs: [out('239.2.2.2', 6000, 'eth1', bad as unknown as number)] })),
      'E_INVALID_TTL',
      'outputs[0].ttl',
      String(bad),
    );
    assert.equal(err.value, bad);
  });
}

// ---------------------------------------------------------------- reserved destinations

for (const reserved of [
  '0.0.0.0',
  '255.255.255.255',
  '127.0.0.1',
  '127.255.255.254',
  '240.0.0.1',
  '250.1.2.3',
]) {
  for (const iface of ['eth1', undefined]) {
    test(`${reserved} is not a destination (interface ${String(iface)})`, () => {
      const err = throwsRule(
        () => validateRule(request({ outputs: [out(reserved, 6000, iface)] })),
        'E_INVALID_ADDRESS',
        'outputs[0].group',
        reserved,
      );
      assert.equal(err.value, reserved);
    });
  }
}

test('addresses next to the reserved ranges are fine destinations', () => {
  for (const group of ['126.255.255.255', '128.0.0.1', '223.255.255.255', '10.0.0.1']) {
    assert.doesNotThrow(() => validateRule(request({ outputs: [out(group, 6000)] })), group);
  }
});

// ---------------------------------------------------------------- names

test('validateRuleName accepts letters, digits, dot, underscore, dash', () => {
  for (const name of [
    'a',
    'Z',
    '0',
    'feed-a',
    'Feed_A.1',
    'r-1',
    'r-0123456789AB',
    'r-0123456789abc',
    'x'.repeat(64),
  ]) {
    assert.equal(validateRuleName(name), name);
  }
});

for (const bad of [
  '',
  '-feed',
  '.feed',
  '_feed',
  'feed a',
  'feed/a',
  'feed:a',
  'féed',
  'x'.repeat(65),
  'a\n',
]) {
  test(`validateRuleName rejects ${JSON.stringify(bad.length > 20 ? `${bad.slice(0, 8)}…(${bad.length})` : bad)}`, () => {
    const err = throwsRule(() => validateRuleName(bad), 'E_INVALID_NAME', 'name', JSON.stringify(bad));
    assert.equal(err.value, bad);
  });
}

for (const bad of [5, null, undefined, {}]) {
  test(`validateRuleName rejects the non-string ${String(JSON.stringify(bad))}`, () => {
    throwsRule(() => validateRuleName(bad), 'E_INVALID_NAME', 'name');
  });
}

test('a name that looks like a rule id is refused', () => {
  const err = throwsRule(
    () => validateRuleName('r-0123456789ab'),
    'E_INVALID_NAME',
    'name',
    'r-0123456789ab',
  );
  assert.match(err.message, /rule id/);
});

test('validateRule checks the name', () => {
  throwsRule(() => validateRule(request({ name: 'bad name' })), 'E_INVALID_NAME', 'name', 'bad name');
  throwsRule(() => validateRule(request({ name: '' })), 'E_INVALID_NAME', 'name');
});

// ---------------------------------------------------------------- order of checks

test('the first field at fault is reported: interface before group before port', () => {
  const all = request({ inputInterface: '', inputGroup: 'x', inputPort: 0, outputs: [] });
  throwsRule(() => validateRule(all), 'E_INVALID_INTERFACE', 'input-interface');
  throwsRule(() => validateRule({ ...all, inputInterface: 'eth0' }), 'E_INVALID_ADDRESS', 'input-group');
  throwsRule(
    () => validateRule({ ...all, inputInterface: 'eth0', inputGroup: '239.1.1.1' }),
    'E_INVALID_PORT',
    'input-port',
  );
});

test('validateRule does not modify its request', () => {
  const req = request({ name: 'n', outputs: [out('239.2.2.2', 6000, 'eth1'), out('10.0.9.7', 7000)] });
  const copy = structuredClone(req);
  validateRule(req);
  assert.deepEqual(req, copy);
});

test('an output mode is auto by default, and raw, socket or auto when given', () => {
  for (const mode of ['auto', 'raw', 'socket'] as const) {
    const rule = validateRule(request({ outputs: [{ ...out('239.2.2.2', 6000, 'eth1'), mode }] }));
    assert.equal(rule.outputs[0]!.mode, mode);
  }
  throwsRule(
    () => validateRule(request({ outputs: [{ ...out('239.2.2.2', 6000, 'eth1'), mode: 'fast' as never }] })),
    'E_INVALID_OUTPUT',
    'outputs[0].mode',
  );
});

test('raw egress on a unicast output is E_RAW_UNSUPPORTED', () => {
  throwsRule(
    () => validateRule(request({ outputs: [{ ...out('10.0.9.7', 7000, 'eth2'), mode: 'raw' }] })),
    'E_RAW_UNSUPPORTED',
    'outputs[0].mode',
  );
});

// ---------------------------------------------------------------- every error, and sources

test('checkRule reports every field at fault, not only the first', () => {
  const { rule, errors } = checkRule(
    request({
      inputGroup: '239.1.1',
      inputPort: 0,
      name: 'bad name',
      outputs: [out('239.2.2.2', 70000, 'eth1'), { ...out('239.2.2.3', 6000, 'eth1'), dscp: 'xx' }],
    }),
  );
  assert.equal(rule, undefined);
  assert.deepEqual(
    errors.map((e) => [e.code, e.field]),
    [
      ['E_INVALID_ADDRESS', 'input-group'],
      ['E_INVALID_PORT', 'input-port'],
      ['E_INVALID_NAME', 'name'],
      ['E_INVALID_PORT', 'outputs[0].port'],
      ['E_INVALID_DSCP', 'outputs[1].dscp'],
    ],
  );
});

test('a source-specific input: a unicast sender, part of the id; not for unicast inputs', () => {
  const any = validateRule(request());
  const specific = validateRule(request({ inputSource: '10.1.1.7' }));
  assert.equal(specific.inputSource, 0x0a010107);
  assert.equal(any.inputSource, 0);
  assert.notEqual(specific.id, any.id);
  for (const bad of ['239.1.1.9', '0.0.0.0', '255.255.255.255', 'x']) {
    assert.equal(checkRule(request({ inputSource: bad })).errors[0]?.field, 'input-source', bad);
  }
  throwsRule(
    () => validateRule(request({ inputGroup: '10.0.0.5', unicastInput: true, inputSource: '10.1.1.7' })),
    'E_INVALID_SOURCE',
    'input-source',
  );
});

test('the rtp option is a plain yes or no, off unless asked for', () => {
  assert.equal(validateRule(request({ rtp: true })).rtp, true);
  assert.equal(validateRule(request({ rtp: false })).rtp, false);
  assert.equal(validateRule(request()).rtp, false);
  // It does not change which input the rule takes: the id stays.
  assert.equal(validateRule(request({ rtp: true })).id, validateRule(request()).id);
});
