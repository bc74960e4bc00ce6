import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { Rule, RuleRequest } from '../../src/rules/rule.js';
import { throwsRule } from '../helpers/rule-errors.js';
import { validateRule } from '../../src/rules/validate-rule.js';
import { RuleStore, type StoredRule } from '../../src/supervisor/rule-store.js';

function rule(over: Partial<RuleRequest> = {}): Rule {
  return validateRule({
    inputInterface: 'eth0',
    inputGroup: '239.1.1.1',
    inputPort: 5000,
    outputs: [{ group: '239.2.2.2', port: 6000, interface: 'eth1' }],
    ...over,
  });
}

test('a new store is empty', () => {
  const store = new RuleStore();
  assert.equal(store.size, 0);
  assert.deepEqual(store.list(), []);
});

test('add stores the rule with its creation time', () => {
  const store = new RuleStore();
  const r = rule();
  const before = Date.now();
  const stored = store.add(r);
  assert.equal(stored.rule, r);
  assert.ok(stored.createdAt instanceof Date);
  assert.ok(stored.createdAt.getTime() >= before && stored.createdAt.getTime() <= Date.now());
  assert.equal(store.size, 1);
  assert.deepEqual(store.list(), [stored]);
});

test('a second rule on the same input is E_RULE_EXISTS naming the existing id and name', () => {
  const store = new RuleStore();
  const first = rule({ name: 'feed-a' });
  store.add(first);
  const again = rule({ name: 'feed-b', outputs: [{ group: '10.0.9.7', port: 7000 }] });
  const err = throwsRule(() => store.add(again), 'E_RULE_EXISTS', 'input');
  assert.ok(err.message.includes(first.id), err.message);
  assert.ok(err.message.includes('feed-a'), err.message);
  assert.ok(err.message.includes('eth0 239.1.1.1:5000'), err.message);
  assert.equal(err.value, 'eth0 239.1.1.1:5000');
  assert.equal(store.size, 1);
  assert.equal(store.find({ id: first.id }).rule, first);
});

test('E_RULE_EXISTS for an unnamed holder names just its id', () => {
  const store = new RuleStore();
  const first = rule();
  store.add(first);
  const err = throwsRule(() => store.add(rule()), 'E_RULE_EXISTS', 'input');
  assert.ok(err.message.includes(first.id), err.message);
  assert.ok(!err.message.includes('('), err.message);
  assert.ok(!err.message.includes('undefined'), err.message);
});

test('the same group and port on another interface is another rule', () => {
  const store = new RuleStore();
  store.add(rule());
  store.add(rule({ inputInterface: 'eth2' }));
  store.add(rule({ inputPort: 5001 }));
  store.add(rule({ inputGroup: '239.1.1.2' }));
  assert.equal(store.size, 4);
});

test('a name already in use is E_NAME_TAKEN naming the holder', () => {
  const store = new RuleStore();
  const holder = rule({ name: 'feed-a' });
  store.add(holder);
  const err = throwsRule(() => store.add(rule({ name: 'feed-a', inputPort: 5001 })), 'E_NAME_TAKEN', 'name');
  assert.ok(err.message.includes('feed-a'), err.message);
  assert.ok(err.message.includes(holder.id), err.message);
  assert.equal(err.value, 'feed-a');
  assert.equal(store.size, 1);
});

test('names are case-sensitive', () => {
  const store = new RuleStore();
  store.add(rule({ name: 'feed-a' }));
  store.add(rule({ name: 'Feed-A', inputPort: 5001 }));
  assert.equal(store.size, 2);
});

test('several unnamed rules are fine', () => {
  const store = new RuleStore();
  store.add(rule({ inputPort: 1 }));
  store.add(rule({ inputPort: 2 }));
  assert.equal(store.size, 2);
});

test('an existing input is reported before a taken name', () => {
  const store = new RuleStore();
  store.add(rule({ name: 'feed-a' }));
  throwsRule(() => store.add(rule({ name: 'feed-a' })), 'E_RULE_EXISTS', 'input');
});

test('checkAddable checks without adding', () => {
  const store = new RuleStore();
  const r = rule({ name: 'feed-a' });
  store.checkAddable(r);
  assert.equal(store.size, 0);
  store.add(r);
  throwsRule(() => store.checkAddable(r), 'E_RULE_EXISTS', 'input');
  throwsRule(() => store.checkAddable(rule({ name: 'feed-a', inputPort: 9 })), 'E_NAME_TAKEN', 'name');
});

test('find by id and by name', () => {
  const store = new RuleStore();
  const a = store.add(rule({ name: 'feed-a' }));
  const b = store.add(rule({ inputPort: 5001 }));
  assert.equal(store.find({ id: a.rule.id }), a);
  assert.equal(store.find({ name: 'feed-a' }), a);
  assert.equal(store.find({ id: b.rule.id }), b);
});

test('find prefers the id when both are given', () => {
  const store = new RuleStore();
  const a = store.add(rule({ name: 'feed-a' }));
  const b = store.add(rule({ name: 'feed-b', inputPort: 5001 }));
  assert.equal(store.find({ id: b.rule.id, name: 'feed-a' }), b);
  assert.equal(store.find({ id: a.rule.id, name: undefined }), a);
});

test('an unknown id is E_RULE_NOT_FOUND naming the id', () => {
  const store = new RuleStore();
  store.add(rule({ name: 'feed-a' }));
  const err = throwsRule(() => store.find({ id: 'r-000000000000' }), 'E_RULE_NOT_FOUND', 'id');
  assert.equal(err.value, 'r-000000000000');
  assert.ok(err.message.includes('id r-000000000000'), err.message);
});

test('an unknown name is E_RULE_NOT_FOUND naming the name', () => {
  const store = new RuleStore();
  store.add(rule({ name: 'feed-a' }));
  const err = throwsRule(() => store.find({ name: 'feed-b' }), 'E_RULE_NOT_FOUND', 'name');
  assert.equal(err.value, 'feed-b');
  assert.ok(err.message.includes('name feed-b'), err.message);
});

test('a name is not an id and an id is not a name', () => {
  const store = new RuleStore();
  const a = store.add(rule({ name: 'feed-a' }));
  throwsRule(() => store.find({ id: 'feed-a' }), 'E_RULE_NOT_FOUND', 'id');
  throwsRule(() => store.find({ name: a.rule.id }), 'E_RULE_NOT_FOUND', 'name');
});

test('an empty selector finds nothing, not an unnamed rule', () => {
  const store = new RuleStore();
  store.add(rule());
  const err = throwsRule(() => store.find({}), 'E_RULE_NOT_FOUND', 'name');
  assert.equal(err.value, undefined);
});

test('remove deletes the rule and frees its input and name', () => {
  const store = new RuleStore();
  const a = store.add(rule({ name: 'feed-a' }));
  const b = store.add(rule({ name: 'feed-b', inputPort: 5001 }));
  store.remove(a.rule.id);
  assert.equal(store.size, 1);
  throwsRule(() => store.find({ id: a.rule.id }), 'E_RULE_NOT_FOUND', 'id');
  throwsRule(() => store.find({ name: 'feed-a' }), 'E_RULE_NOT_FOUND', 'name');
  assert.deepEqual(store.list(), [b]);
  // Input and name are free again.
  store.add(rule({ name: 'feed-a' }));
  assert.equal(store.size, 2);
});

test('removing an unknown id does nothing', () => {
  const store = new RuleStore();
  store.add(rule());
  store.remove('r-000000000000');
  assert.equal(store.size, 1);
});

test('list is in creation order', () => {
  const store = new RuleStore();
  const stored: StoredRule[] = [];
  // Ports chosen so that id order differs from creation order.
  for (const [i, port] of [5003, 5001, 5004, 5002].entries()) {
    const s = store.add(rule({ inputPort: port }));
    s.createdAt = new Date(1_700_000_000_000 + i * 1000);
    stored.push(s);
  }
  assert.deepEqual(store.list(), stored);
});

test('rules list in the order they were added, whatever their ids or times', () => {
  const store = new RuleStore();
  const at = new Date(1_700_000_000_000);
  const stored = [5003, 5001, 5004, 5002].map((port) => {
    const s = store.add(rule({ inputPort: port }));
    s.createdAt = at;
    return s;
  });
  assert.deepEqual(
    store.list().map((s) => s.rule.id),
    stored.map((s) => s.rule.id),
    'a config file, and the runtime rules after it, come back in the same order after a restart',
  );
});

test('list returns a copy', () => {
  const store = new RuleStore();
  store.add(rule());
  const list = store.list();
  list.pop();
  assert.equal(store.list().length, 1);
});
