import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ERROR_CODES, errorCodeTable, errorKind } from '../../src/protocol/error-codes.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

test('every code the sources use is in the registry', () => {
  const used = new Set<string>();
  for (const file of sources(join(ROOT, 'src'))) {
    for (const match of readFileSync(file, 'utf8').matchAll(/['"`]((?:E|W)_[A-Z0-9_]+)['"`]/g))
      used.add(match[1]!);
  }
  const missing = [...used].filter((code) => !(code in ERROR_CODES)).sort();
  assert.deepEqual(missing, [], 'register these in src/protocol/error-codes.ts');
});

test('docs/CONTROL-PROTOCOL.md lists exactly the registry (its table is made from it)', () => {
  const doc = readFileSync(join(ROOT, 'docs/CONTROL-PROTOCOL.md'), 'utf8');
  const start = doc.indexOf('<!-- error codes: made from src/protocol/error-codes.ts -->');
  const end = doc.indexOf('<!-- end of error codes -->');
  assert.ok(start >= 0 && end > start, 'the doc has the generated section');
  const table = doc.slice(doc.indexOf('\n', start) + 1, end).trim();
  // Prettier aligns the columns: compare cell by cell.
  const cells = (text: string): string[][] =>
    text.split('\n').map((line) =>
      line
        .split('|')
        .map((cell) => cell.trim().replace(/^-+$/, '---'))
        .filter((cell, i, all) => i > 0 && i < all.length - 1),
    );
  assert.deepEqual(
    cells(table),
    cells(errorCodeTable()),
    'regenerate it: node dist/test/helpers/write-error-table.js',
  );
});

test('kinds: usage problems, errno names, the rest', () => {
  assert.equal(errorKind('E_INVALID_PORT'), 'usage');
  assert.equal(errorKind('E_RULE_EXISTS'), 'conflict');
  assert.equal(errorKind('EPERM'), 'host');
  assert.equal(errorKind('ERR_SOMETHING_NODE'), 'internal');
});
