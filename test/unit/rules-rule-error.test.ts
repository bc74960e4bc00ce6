import { test } from 'node:test';
import assert from 'node:assert/strict';

import { RuleError } from '../../src/rules/rule-error.js';

test('RuleError carries code, field, value and message', () => {
  const err = new RuleError('E_INVALID_PORT', 'outputs[1].port', 0, 'outputs[1].port 0 is not a UDP port');
  assert.ok(err instanceof Error);
  assert.ok(err instanceof RuleError);
  assert.equal(err.name, 'RuleError');
  assert.equal(err.code, 'E_INVALID_PORT');
  assert.equal(err.field, 'outputs[1].port');
  assert.equal(err.value, 0);
  assert.equal(err.message, 'outputs[1].port 0 is not a UDP port');
  assert.ok(err.stack?.includes('RuleError'));
});

test('RuleError keeps any value as given', () => {
  const value = { group: 'x' };
  assert.equal(new RuleError('E_INVALID_OUTPUT', 'outputs[0]', value, 'm').value, value);
  assert.equal(new RuleError('E_INVALID_OUTPUT', 'outputs[0]', undefined, 'm').value, undefined);
});

test('RuleError string form names the class and the message', () => {
  assert.equal(
    String(new RuleError('E_LOOP', 'outputs[0]', 'v', 'it would loop')),
    'RuleError: it would loop',
  );
});
