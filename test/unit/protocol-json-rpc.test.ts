import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  ControlError,
  MAX_LINE_BYTES,
  PROTOCOL_VERSION,
  RPC_APPLICATION_ERROR,
  RPC_INTERNAL_ERROR,
  RPC_INVALID_PARAMS,
  RPC_INVALID_REQUEST,
  RPC_METHOD_NOT_FOUND,
  RPC_PARSE_ERROR,
  asRequest,
} from '../../src/protocol/json-rpc.js';

test('the standard JSON-RPC 2.0 error codes', () => {
  assert.equal(RPC_PARSE_ERROR, -32700);
  assert.equal(RPC_INVALID_REQUEST, -32600);
  assert.equal(RPC_METHOD_NOT_FOUND, -32601);
  assert.equal(RPC_INVALID_PARAMS, -32602);
  assert.equal(RPC_INTERNAL_ERROR, -32603);
  assert.equal(RPC_APPLICATION_ERROR, -32000);
});

test('protocol constants', () => {
  assert.equal(PROTOCOL_VERSION, 2);
  assert.equal(MAX_LINE_BYTES, 1024 * 1024);
});

// ---------------------------------------------------------------- asRequest: accepted

test('asRequest returns a well-formed request unchanged', () => {
  const req = { jsonrpc: '2.0', id: 1, method: 'ping' };
  assert.equal(asRequest(req), req);
});

for (const id of [1, 0, -3, 'abc', '', null]) {
  test(`asRequest accepts id ${JSON.stringify(id)}`, () => {
    const req = { jsonrpc: '2.0', id, method: 'rules.list' };
    assert.equal(asRequest(req), req);
  });
}

test('asRequest accepts a notification (no id)', () => {
  const req = { jsonrpc: '2.0', method: 'ping' };
  assert.equal(asRequest(req), req);
});

test('asRequest leaves params to the method schemas', () => {
  for (const params of [{ a: 1 }, [1, 2], 5, 'x', null]) {
    const req = { jsonrpc: '2.0', id: 1, method: 'ping', params };
    assert.equal(asRequest(req), req);
  }
});

test('asRequest accepts an unknown method name (method lookup is the server’s job)', () => {
  const req = { jsonrpc: '2.0', id: 1, method: 'no.such' };
  assert.equal(asRequest(req), req);
});

// ---------------------------------------------------------------- asRequest: refused

for (const value of [null, undefined, 5, 'ping', true, [], [{ jsonrpc: '2.0', method: 'ping' }]]) {
  test(`asRequest refuses the non-object ${String(JSON.stringify(value))}`, () => {
    assert.equal(asRequest(value), 'a request must be a JSON object');
  });
}

for (const jsonrpc of [undefined, '1.0', 2, 2.0, '2', null, ' 2.0']) {
  test(`asRequest refuses jsonrpc ${String(JSON.stringify(jsonrpc))}`, () => {
    const req: Record<string, unknown> = { id: 1, method: 'ping' };
    if (jsonrpc !== undefined) req.jsonrpc = jsonrpc;
    assert.equal(asRequest(req), 'jsonrpc must be "2.0"');
  });
}

for (const method of [undefined, '', 5, null, ['ping'], { name: 'ping' }]) {
  test(`asRequest refuses method ${String(JSON.stringify(method))}`, () => {
    const req: Record<string, unknown> = { jsonrpc: '2.0', id: 1 };
    if (method !== undefined) req.method = method;
    assert.equal(asRequest(req), 'method must be a non-empty string');
  });
}

for (const id of [true, false, {}, [1], undefined]) {
  test(`asRequest refuses id ${String(JSON.stringify(id))}`, () => {
    assert.equal(asRequest({ jsonrpc: '2.0', id, method: 'ping' }), 'id must be a string, a number or null');
  });
}

test('asRequest checks jsonrpc before method before id', () => {
  assert.equal(asRequest({ jsonrpc: '1.0', method: '', id: true }), 'jsonrpc must be "2.0"');
  assert.equal(asRequest({ jsonrpc: '2.0', method: '', id: true }), 'method must be a non-empty string');
});

test('asRequest works on parsed lines', () => {
  assert.equal(typeof asRequest(JSON.parse('{"jsonrpc":"2.0","id":7,"method":"ping"}')), 'object');
  assert.equal(typeof asRequest(JSON.parse('[1]')), 'string');
  assert.equal(typeof asRequest(JSON.parse('"x"')), 'string');
});

// ---------------------------------------------------------------- ControlError

test('ControlError defaults to the application error code with only data.code', () => {
  const err = new ControlError('E_BUSY', 'try again');
  assert.ok(err instanceof Error);
  assert.ok(err instanceof ControlError);
  assert.equal(err.name, 'ControlError');
  assert.equal(err.message, 'try again');
  assert.equal(err.rpcCode, RPC_APPLICATION_ERROR);
  assert.deepEqual(err.data, { code: 'E_BUSY' });
});

test('ControlError merges details into data, the code first', () => {
  const err = new ControlError('E_INVALID_PORT', 'bad port', { field: 'outputs[0].port', value: 0 });
  assert.deepEqual(err.data, { code: 'E_INVALID_PORT', field: 'outputs[0].port', value: 0 });
  assert.deepEqual(Object.keys(err.data), ['code', 'field', 'value']);
});

test('ControlError takes an explicit JSON-RPC code', () => {
  const err = new ControlError('E_INVALID_PARAMS', 'x', {}, RPC_INVALID_PARAMS);
  assert.equal(err.rpcCode, RPC_INVALID_PARAMS);
  assert.deepEqual(err.data, { code: 'E_INVALID_PARAMS' });
});

test('ControlError data is JSON-serialisable as an error object', () => {
  const err = new ControlError('E_X', 'msg', { field: 'f', extra: [1, 'a'] });
  const wire = JSON.parse(JSON.stringify({ code: err.rpcCode, message: err.message, data: err.data }));
  assert.deepEqual(wire, {
    code: -32000,
    message: 'msg',
    data: { code: 'E_X', field: 'f', extra: [1, 'a'] },
  });
});
