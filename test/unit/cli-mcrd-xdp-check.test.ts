import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { checkXdpCapabilities, StartError } from '../../src/cli/mcrd-checks.js';

// mcrd at start without what the XDP path needs: a warning, or a refusal when its config file
// forces xdp.

test('without the XDP capabilities mcrd warns, and refuses to start when the config forces xdp', () => {
  const lines: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
  checkXdpCapabilities(null, 3, log);
  assert.equal(lines.length, 0);
  checkXdpCapabilities('mcrd lacks CAP_BPF, which the XDP path needs', 0, log);
  assert.match(lines[0]!, /CAP_BPF.*every rule stays on the worker path/);
  assert.throws(
    () => checkXdpCapabilities('mcrd lacks CAP_BPF, which the XDP path needs', 2, log),
    (err: unknown) =>
      err instanceof StartError && /2 rule\(s\) of the config file ask for xdp/.test(err.message),
  );
});
