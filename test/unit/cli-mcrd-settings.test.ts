import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  mergeSettings,
  restartNeeded,
  type DaemonSettings,
  type ValueSource,
} from '../../src/cli/mcrd-settings.js';

const defaults: DaemonSettings = {
  socket: undefined,
  socketMode: 0o660,
  socketGroup: undefined,
  workers: undefined,
  fanout: 'hash',
  user: 'mcr',
  ringSize: 4,
  batchSize: 64,
  batchBudget: 16,
  coalesce: 0,
  workerNice: -10,
  qdiscBypass: true,
  logLevel: 'info',
  logFormat: 'json',
  stateDirectory: undefined,
  metricsListen: undefined,
};

const fromCommandLine =
  (...keys: (keyof DaemonSettings)[]) =>
  (key: keyof DaemonSettings): ValueSource =>
    keys.includes(key) ? 'cli' : 'default';

test('the command line wins over the config file, which wins over the defaults', () => {
  const flags = { ...defaults, workers: 2, logLevel: 'debug' };
  const merged = mergeSettings(flags, fromCommandLine('workers', 'logLevel'), {
    workers: 8,
    logLevel: 'warn',
    socketMode: 0o640,
    ringSizeMiB: 16,
    stateDirectory: '/var/lib/mcr',
  });
  assert.equal(merged.workers, 2, 'given on the command line');
  assert.equal(merged.logLevel, 'debug', 'given on the command line');
  assert.equal(merged.socketMode, 0o640, 'from the file, over the default');
  assert.equal(merged.ringSize, 16);
  assert.equal(merged.stateDirectory, '/var/lib/mcr');
  assert.equal(merged.batchSize, 64, 'neither: the default');
});

test('without a config file the command line and defaults stand as they are', () => {
  assert.deepEqual(mergeSettings(defaults, fromCommandLine(), undefined), defaults);
});

test('a reload names the settings only a restart applies, in the file’s words; the log level is not one', () => {
  const next = { ...defaults, workers: 4, socketMode: 0o640, logLevel: 'debug' };
  assert.deepEqual(restartNeeded({ ...defaults, workers: 2 }, next), [
    'socket.mode 0660 → 0640',
    'workers 2 → 4',
  ]);
  assert.deepEqual(restartNeeded(defaults, { ...defaults, workers: 3 }), ['workers unset → 3']);
  assert.deepEqual(restartNeeded(defaults, defaults), []);
});

test('a changed metrics.listen is reported as needing a restart, like the other listening settings', () => {
  const running = mergeSettings(defaults, fromCommandLine(), { metricsListen: '127.0.0.1:9464' });
  assert.equal(running.metricsListen, '127.0.0.1:9464');
  const moved = mergeSettings(defaults, fromCommandLine(), { metricsListen: '127.0.0.1:9465' });
  assert.deepEqual(restartNeeded(running, moved), ['metrics.listen 127.0.0.1:9464 → 127.0.0.1:9465']);
  const removed = mergeSettings(defaults, fromCommandLine(), {});
  assert.deepEqual(restartNeeded(running, removed), ['metrics.listen 127.0.0.1:9464 → unset']);
  const flags = { ...defaults, metricsListen: '127.0.0.1:9000' };
  const pinned = mergeSettings(flags, fromCommandLine('metricsListen'), { metricsListen: '127.0.0.1:9464' });
  assert.equal(pinned.metricsListen, '127.0.0.1:9000', 'the command line wins');
});
