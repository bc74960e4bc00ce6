import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { MethodName } from '../../src/protocol/control-api.js';
import { checkParams, isMethodName } from '../../src/protocol/control-schemas.js';
import { ControlError, RPC_INVALID_PARAMS } from '../../src/protocol/json-rpc.js';

const METHODS: MethodName[] = [
  'ping',
  'version',
  'rules.add',
  'rules.remove',
  'rules.list',
  'stats.get',
  'workers.list',
];
const EMPTY_METHODS: MethodName[] = ['ping', 'version', 'rules.list', 'stats.get', 'workers.list'];

function validAdd(): Record<string, unknown> {
  return {
    name: 'feed-a',
    inputInterface: 'eth0',
    inputGroup: '239.1.1.1',
    inputPort: 5000,
    unicastInput: false,
    outputs: [
      { group: '239.2.2.2', port: 6000, interface: 'eth1', ttl: 8 },
      { group: '10.0.9.7', port: 7000 },
    ],
  };
}

/** Asserts checkParams refuses `params` with E_INVALID_PARAMS; returns the error. */
function refuses(method: MethodName, params: unknown, field?: string): ControlError {
  let caught: unknown;
  try {
    checkParams(method, params);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ControlError, `expected a ControlError, got ${String(caught)}`);
  assert.equal(caught.rpcCode, RPC_INVALID_PARAMS);
  assert.equal(caught.data.code, 'E_INVALID_PARAMS');
  assert.ok(caught.message.startsWith(`${method}: `), caught.message);
  if (field !== undefined) {
    assert.equal(caught.data.field, field, caught.message);
    assert.ok(caught.message.includes(field), `${JSON.stringify(caught.message)} names ${field}`);
  }
  return caught;
}

// ---------------------------------------------------------------- method names

test('isMethodName knows every method', () => {
  for (const m of METHODS) assert.equal(isMethodName(m), true, m);
});

test('isMethodName refuses anything else', () => {
  for (const m of [
    '',
    'rules',
    'rules.ADD',
    'Ping',
    'rules.add ',
    'constructor',
    'toString',
    '__proto__',
    'hasOwnProperty',
  ]) {
    assert.equal(isMethodName(m), false, m);
  }
});

// ---------------------------------------------------------------- rules.add

test('a valid rules.add passes and is returned as is', () => {
  const params = validAdd();
  assert.equal(checkParams('rules.add', params), params);
});

test('rules.add with only the required fields passes', () => {
  const params = {
    inputInterface: 'eth0',
    inputGroup: '239.1.1.1',
    inputPort: 5000,
    outputs: [{ group: '239.2.2.2', port: 6000 }],
  };
  assert.equal(checkParams('rules.add', params), params);
});

test('rules.add leaves meaning to the rules layer (bad values with the right types pass)', () => {
  const params = { ...validAdd(), inputGroup: 'nonsense', inputPort: 0, outputs: [] };
  assert.equal(checkParams('rules.add', params), params);
});

for (const missing of ['inputInterface', 'inputGroup', 'inputPort', 'outputs']) {
  test(`rules.add without ${missing} names the field`, () => {
    const params = validAdd();
    delete params[missing];
    const err = refuses('rules.add', params, missing);
    assert.equal(err.message, `rules.add: ${missing} is required`);
  });
}

for (const missing of ['group', 'port']) {
  test(`an output without ${missing} names outputs[i].${missing}`, () => {
    const params = validAdd();
    const outputs = params.outputs as Record<string, unknown>[];
    delete outputs[1]![missing];
    refuses('rules.add', params, `outputs[1].${missing}`);
  });
}

test('rules.add with an unknown parameter names it', () => {
  const err = refuses('rules.add', { ...validAdd(), inputport: 5000 }, 'inputport');
  assert.match(err.message, /unknown parameter inputport/);
});

test('an output with an unknown parameter names it', () => {
  const params = validAdd();
  (params.outputs as Record<string, unknown>[])[0]!.iface = 'eth1';
  const err = refuses('rules.add', params, 'outputs[0].iface');
  assert.match(err.message, /unknown parameter outputs\[0\]\.iface/);
});

for (const [field, value] of [
  ['name', 5],
  ['inputInterface', ['eth0']],
  ['inputGroup', 0xef010101],
  ['inputPort', '5000'],
  ['inputPort', 1.5],
  ['unicastInput', 'true'],
  ['unicastInput', 1],
  ['outputs', {}],
  ['outputs', 'x'],
] as const) {
  test(`rules.add ${field}: ${JSON.stringify(value)} is a wrong type`, () => {
    refuses('rules.add', { ...validAdd(), [field]: value }, field);
  });
}

for (const [field, value] of [
  ['group', 1],
  ['port', '6000'],
  ['port', 6000.5],
  ['interface', 1],
  ['ttl', '8'],
  ['ttl', 1.5],
] as const) {
  test(`an output ${field}: ${JSON.stringify(value)} is a wrong type`, () => {
    const params = validAdd();
    (params.outputs as Record<string, unknown>[])[1]![field] = value;
    refuses('rules.add', params, `outputs[1].${field}`);
  });
}

test('an output that is not an object names its index', () => {
  refuses('rules.add', { ...validAdd(), outputs: [{ group: '239.2.2.2', port: 1 }, 'x'] }, 'outputs[1]');
});

test('rules.add params that are not an object are refused', () => {
  for (const params of [[], 'x', 5, true]) {
    const err = refuses('rules.add', params);
    assert.equal(err.data.field, '');
    assert.match(err.message, /params/);
  }
});

test('rules.add without params says which field is required first', () => {
  refuses('rules.add', undefined, 'inputInterface');
  refuses('rules.add', null, 'inputInterface');
});

// ---------------------------------------------------------------- rules.remove

test('rules.remove by id or by name passes', () => {
  assert.deepEqual(checkParams('rules.remove', { id: 'r-0123456789ab' }), { id: 'r-0123456789ab' });
  assert.deepEqual(checkParams('rules.remove', { name: 'feed-a' }), { name: 'feed-a' });
});

test('rules.remove with both id and name is refused', () => {
  const err = refuses('rules.remove', { id: 'r-0123456789ab', name: 'feed-a' });
  assert.equal(err.message, 'rules.remove: give exactly one of id or name');
});

test('rules.remove with neither id nor name is refused', () => {
  refuses('rules.remove', {});
  refuses('rules.remove', undefined);
});

test('rules.remove with neither id nor name says to give one of id or name', () => {
  const err = refuses('rules.remove', {});
  assert.equal(err.message, 'rules.remove: give exactly one of id or name');
});

test('rules.remove with an unknown parameter names it', () => {
  refuses('rules.remove', { id: 'r-0123456789ab', force: true }, 'force');
});

test('rules.remove with a non-string id or name names the field', () => {
  refuses('rules.remove', { id: 5 }, 'id');
  refuses('rules.remove', { name: null }, 'name');
});

// ---------------------------------------------------------------- methods without parameters

for (const method of EMPTY_METHODS) {
  test(`${method} accepts no params, null or {}`, () => {
    assert.deepEqual(checkParams(method, undefined), {});
    assert.deepEqual(checkParams(method, null), {});
    assert.deepEqual(checkParams(method, {}), {});
  });

  test(`${method} refuses any parameter, naming it`, () => {
    const err = refuses(method, { verbose: true }, 'verbose');
    assert.equal(err.message, `${method}: unknown parameter verbose`);
  });

  test(`${method} refuses params that are not an object`, () => {
    for (const params of [[], [1], 'x', 0, false]) refuses(method, params);
  });
}

test('trace.start takes a rule, or an interface with a group and port optionally', () => {
  for (const params of [
    { rule: 'cam1' },
    { rule: 'r-0123456789ab', count: 100, timeout: 0.5, dropsOnly: true },
    { interface: 'eth0' },
    { interface: 'eth0', group: '239.1.1.1', port: 5000, count: 10_000, timeout: 3600 },
  ]) {
    assert.deepEqual(checkParams('trace.start', params), params);
  }
  for (const params of [{}, { rule: 'cam1', interface: 'eth0' }, { group: '239.1.1.1' }]) {
    assert.match(refuses('trace.start', params).message, /give a rule, or an interface/);
  }
  refuses('trace.start', { rule: 'cam1', count: 0 }, 'count');
  refuses('trace.start', { rule: 'cam1', count: 10_001 }, 'count');
  refuses('trace.start', { rule: 'cam1', timeout: 0 }, 'timeout');
  refuses('trace.start', { rule: 'cam1', timeout: 3601 }, 'timeout');
  refuses('trace.start', { interface: 'eth0', port: '5000' }, 'port');
  refuses('trace.start', { rule: 'x'.repeat(257) }, 'rule');
  refuses('trace.start', { rule: 'cam1', follow: true }, 'follow');
});
