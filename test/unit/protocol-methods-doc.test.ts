import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { methodNames } from '../../src/protocol/control-schemas.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

test('docs/CONTROL-PROTOCOL.md has a row for every method mcrd serves, and none it does not', () => {
  const doc = readFileSync(join(ROOT, 'docs/CONTROL-PROTOCOL.md'), 'utf8');
  const documented = [...doc.matchAll(/^\| `([a-zA-Z.]+)`\s+\|/gm)]
    .map((m) => m[1]!)
    .filter((name) => !name.startsWith('E_') && !name.startsWith('W_'));
  assert.deepEqual([...documented].sort(), [...methodNames()].sort());
});
