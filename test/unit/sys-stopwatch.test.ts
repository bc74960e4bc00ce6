import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { Stopwatch } from '../../src/sys/stopwatch.js';

test('Stopwatch counts whole milliseconds since start() on the monotonic clock', async () => {
  const stopwatch = new Stopwatch();
  stopwatch.start();
  const first = stopwatch.elapsedMs();
  assert.ok(first >= 0 && first < 5, `just started, yet ${first} ms elapsed`);
  await sleep(30);
  const later = stopwatch.elapsedMs();
  assert.ok(later >= 29 && later < 500, `${later} ms after a 30-ms sleep`);
  assert.ok(Number.isInteger(later));
  stopwatch.start();
  assert.ok(stopwatch.elapsedMs() < 5, 'start() begins a new count');
});
