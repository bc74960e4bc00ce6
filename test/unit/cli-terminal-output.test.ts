import assert from 'node:assert/strict';
import { test } from 'node:test';
import { colourWanted, intervalMs } from '../../src/cli/terminal-output.js';

test('colours only on a terminal, unless NO_COLOR says otherwise or TERM is dumb', () => {
  const tty = { isTTY: true };
  assert.equal(colourWanted(tty, { TERM: 'xterm-256color' }), true);
  assert.equal(colourWanted(tty, {}), true);
  assert.equal(colourWanted({ isTTY: false }, {}), false, 'a pipe or a file');
  assert.equal(colourWanted({}, {}), false);
  assert.equal(colourWanted(tty, { NO_COLOR: '1' }), false);
  assert.equal(colourWanted(tty, { NO_COLOR: 'anything' }), false);
  assert.equal(colourWanted(tty, { NO_COLOR: '' }), true, 'an empty NO_COLOR counts as unset (no-color.org)');
  assert.equal(colourWanted(tty, { TERM: 'dumb' }), false);
});

test('--interval: seconds, decimals allowed, 0.1 to 3600', () => {
  assert.equal(intervalMs('1'), 1000);
  assert.equal(intervalMs('0.5'), 500);
  assert.equal(intervalMs('.25'), 250);
  assert.equal(intervalMs('0.1'), 100);
  assert.equal(intervalMs('3600'), 3_600_000);
  for (const bad of ['0', '0.05', '3601', '-1', '1s', '', 'abc', '1e3', ' 1', 'Infinity']) {
    assert.equal(intervalMs(bad), undefined, bad);
  }
});
