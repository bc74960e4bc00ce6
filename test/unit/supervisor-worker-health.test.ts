import { test } from 'node:test';
import assert from 'node:assert/strict';

import { HealthJudge } from '../../src/supervisor/health-judge.js';
import {
  classifyDeath,
  restartDelay,
  type Death,
  type RestartHistory,
} from '../../src/supervisor/restart-policy.js';

// Judging a worker by what it did (answers, reading its queue), not by the supervisor's delays;
// and when to start it again.

const settings = { intervalMs: 250, timeoutMs: 1500 };

test('a silent worker is given up after the timeout of the supervisor’s own running time', () => {
  const judge = new HealthJudge(settings, 0);
  let t = 0;
  const ticks: boolean[] = [];
  for (let i = 0; i < 8; i++) ticks.push(judge.tick((t += 250), false).alive);
  // 6 intervals of silence is the timeout itself; the 7th is past it.
  assert.deepEqual(ticks, [true, true, true, true, true, true, false, false]);
});

test('a supervisor stalled for 1.9 s does not count its stall against a worker', () => {
  const judge = new HealthJudge(settings, 0);
  assert.equal(judge.tick(250, false).alive, true);
  // The timer fires 1.9 s late: the supervisor was stopped, not the worker.
  const late = judge.tick(250 + 1900 + 250, false);
  assert.equal(late.alive, true);
  assert.equal(late.lateMs, 1900);
  assert.equal(late.silentMs, 500, 'one interval per tick, not the wall-clock gap');
  // It answers as soon as the supervisor reads again.
  judge.heard();
  assert.equal(judge.tick(2650, false).silentMs, 250);
});

test('a stall and a truly silent worker: the silence still ends it, counted in intervals', () => {
  const judge = new HealthJudge(settings, 0);
  let t = 0;
  let alive = true;
  let ticks = 0;
  while (alive) {
    t += ticks % 2 === 0 ? 2000 : 250; // every other tick comes very late
    alive = judge.tick(t, false).alive;
    ticks++;
  }
  assert.equal(ticks, 7, 'six intervals of silence whatever the delays');
});

test('a worker that reads what waits for it is alive although its answers are behind', () => {
  const judge = new HealthJudge(settings, 0);
  let t = 0;
  for (let i = 0; i < 40; i++) assert.equal(judge.tick((t += 250), i % 3 === 0).alive, true);
  // It stops reading: six intervals later it is given up.
  let verdicts = 0;
  while (judge.tick((t += 250), false).alive) verdicts++;
  assert.ok(verdicts <= 6, `still alive after ${verdicts} silent ticks`);
});

const death = (d: Partial<Death>): Death => ({
  ranFine: true,
  upMs: 5000,
  code: null,
  signal: 'SIGKILL',
  replaced: false,
  ...d,
});
const fresh: RestartHistory = { startFailures: 0, laterFailures: 0 };

test('deaths are of three kinds', () => {
  assert.equal(classifyDeath(death({ ranFine: false })), 'start-up');
  assert.equal(classifyDeath(death({ ranFine: false, signal: null, code: 78 })), 'start-up');
  assert.equal(classifyDeath(death({})), 'killed');
  assert.equal(classifyDeath(death({ signal: 'SIGTERM' })), 'killed');
  assert.equal(classifyDeath(death({ signal: null, code: 1 })), 'failed');
  assert.equal(classifyDeath(death({ signal: 'SIGSEGV' })), 'failed');
  assert.equal(classifyDeath(death({ signal: 'SIGSYS' })), 'failed');
  assert.equal(
    classifyDeath(death({ replaced: true })),
    'failed',
    'the supervisor killed it for a fault of its own',
  );
});

test('a kill storm never delays a restart: workers that ran fine and were killed restart at once', () => {
  let history = fresh;
  for (let i = 0; i < 15; i++) {
    const next = restartDelay(history, death({ upMs: 1000 }));
    assert.equal(next.delayMs, 0);
    history = next.history;
  }
});

test('a crash loop at start-up backs off from 100 ms to 10 s; running fine clears it', () => {
  let history = fresh;
  const delays: number[] = [];
  for (let i = 0; i < 9; i++) {
    const next = restartDelay(history, death({ ranFine: false, upMs: 300 }));
    delays.push(next.delayMs);
    history = next.history;
  }
  assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
  const killed = restartDelay(history, death({}));
  assert.equal(killed.delayMs, 0);
  assert.equal(killed.history.startFailures, 0);
  assert.equal(restartDelay(killed.history, death({ ranFine: false })).delayMs, 100);
});

test('failures after running fine: at once, then a short delay capped at 1 s; 30 s up clears them', () => {
  let history = fresh;
  const delays: number[] = [];
  for (let i = 0; i < 7; i++) {
    const next = restartDelay(history, death({ signal: null, code: 1 }));
    delays.push(next.delayMs);
    history = next.history;
  }
  assert.deepEqual(delays, [0, 100, 200, 400, 800, 1000, 1000]);
  assert.equal(restartDelay(history, death({ signal: null, code: 1, upMs: 30_000 })).delayMs, 0);
});
