import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { validateRule } from '../../src/rules/validate-rule.js';
import { readRuntimeRules, STATE_FILE, writeRuntimeRules } from '../../src/supervisor/state-file.js';

const rule = (group: string, name?: string) =>
  validateRule({
    ...(name ? { name } : {}),
    inputInterface: 'eth0',
    inputGroup: group,
    inputPort: 5000,
    outputs: [{ group: '239.9.9.9', port: 6000, interface: 'eth1' }],
  });

function withDirectory(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'mcr-state-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('runtime rules written and read again are the same rules, names and ids', () => {
  withDirectory((dir) => {
    assert.deepEqual(readRuntimeRules(dir), { kind: 'absent' });
    const rules = [rule('239.1.1.1', 'cam1'), rule('239.1.1.2')];
    writeRuntimeRules(dir, rules);
    const read = readRuntimeRules(dir);
    assert.equal(read.kind, 'rules');
    if (read.kind !== 'rules') return;
    assert.deepEqual(
      read.rules.map((r) => validateRule(r)),
      rules,
    );
    assert.deepEqual(readdirSync(dir), [STATE_FILE], 'no temporary file left');
  });
});

test('a write cut short by a crash never loses the previous state', () => {
  withDirectory((dir) => {
    writeRuntimeRules(dir, [rule('239.1.1.1', 'before')]);
    // What a crash mid-write leaves: a temporary file with half a document; no rename happened.
    const half = readFileSync(join(dir, STATE_FILE), 'utf8').slice(0, 40);
    writeFileSync(join(dir, `${STATE_FILE}.new-4242`), half);
    const read = readRuntimeRules(dir);
    assert.equal(read.kind, 'rules');
    if (read.kind === 'rules') assert.equal(read.rules[0]!.name, 'before');
    assert.deepEqual(readdirSync(dir), [STATE_FILE], 'the leftover is removed');
  });
});

test('a state file that is not rules is kept aside, not overwritten', () => {
  withDirectory((dir) => {
    writeFileSync(join(dir, STATE_FILE), '{ rules: [ { input: ');
    const read = readRuntimeRules(dir);
    assert.equal(read.kind, 'unusable');
    if (read.kind !== 'unusable') return;
    assert.equal(read.problems[0]!.code, 'E_CONFIG_SYNTAX');
    assert.ok(existsSync(read.keptAs));
    assert.equal(readFileSync(read.keptAs, 'utf8'), '{ rules: [ { input: ');
    assert.equal(existsSync(join(dir, STATE_FILE)), false);
  });
});
