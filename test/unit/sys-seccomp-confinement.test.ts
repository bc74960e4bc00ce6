import { test } from 'node:test';
import assert from 'node:assert/strict';

import { confineWorker, hasOwnFilter, seccompStatus, seccompSupported } from '../../src/sys/seccomp.js';

// Whether a worker is confined: where mcr has no filter it runs without one and says why; the
// supervisor judges from /proc, counting filters it passed on itself.

test('on an architecture without a filter a worker is not confined, and is told why', () => {
  assert.equal(seccompSupported('x64'), true);
  assert.equal(seccompSupported('arm64'), false);
  // Returns before touching this process: there is nothing to apply.
  const result = confineWorker('arm64');
  assert.deepEqual(result, {
    confined: false,
    reason: 'mcr has no seccomp filter for arm64 yet (its system call numbers are known for x64 only)',
  });
  assert.equal(seccompStatus()?.mode, 0, 'this test process was left alone');
});

test('a worker has a filter of its own only with more filters than the supervisor it inherited from', () => {
  const none = { mode: 0, filters: 0 };
  assert.equal(hasOwnFilter({ mode: 2, filters: 1 }, none), true);
  assert.equal(hasOwnFilter({ mode: 0, filters: 0 }, none), false);
  // Under systemd's SystemCallFilter both have one; the worker's own makes two.
  assert.equal(hasOwnFilter({ mode: 2, filters: 1 }, { mode: 2, filters: 1 }), false);
  assert.equal(hasOwnFilter({ mode: 2, filters: 2 }, { mode: 2, filters: 1 }), true);
  // Before Linux 5.9 filters are not counted: mode 2 proves it only under an unfiltered supervisor.
  assert.equal(hasOwnFilter({ mode: 2, filters: undefined }, { mode: 0, filters: undefined }), true);
  assert.equal(hasOwnFilter({ mode: 2, filters: undefined }, { mode: 2, filters: undefined }), false);
  assert.equal(hasOwnFilter({ mode: 2, filters: 1 }, undefined), true);
});

test('seccompStatus reads /proc, and says nothing of a process that is gone', () => {
  const self = seccompStatus();
  assert.ok(self);
  assert.equal(typeof self.mode, 'number');
  assert.equal(seccompStatus(2 ** 22 + 1), undefined, 'above the largest pid');
});
