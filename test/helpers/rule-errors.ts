import assert from 'node:assert/strict';
import { RuleError, type RuleErrorCode } from '../../src/rules/rule-error.js';

/**
 * Asserts that `fn` throws a RuleError with this code and field, whose message names the field
 * (and `shown`, the offending value as the operator typed it, when given).
 */
export function throwsRule(fn: () => unknown, code: RuleErrorCode, field: string, shown?: string): RuleError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof RuleError, `expected a RuleError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.field, field, caught.message);
  assert.ok(caught.message.includes(field), `message ${JSON.stringify(caught.message)} names ${field}`);
  if (shown !== undefined) {
    assert.ok(caught.message.includes(shown), `message ${JSON.stringify(caught.message)} shows ${shown}`);
  }
  return caught;
}
