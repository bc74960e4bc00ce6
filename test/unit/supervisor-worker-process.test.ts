import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';

import type { WorkerProcessHealth } from '../../src/protocol/control-api.js';
import {
  decodeSupervisorMessage,
  encodeMessage,
  type WorkerMessage,
} from '../../src/protocol/worker-messages.js';
import { WorkerProcess, type WorkerChild } from '../../src/supervisor/worker-process.js';
import { duplicateDescriptor, FdChannel } from '../../src/sys/fd-channel.js';

// WorkerProcess against a fake worker: a real socketpair, no process. The fake says what a test
// makes it say, forged messages included; the supervisor side must replace it, not crash or leak.

class FakeChild extends EventEmitter implements WorkerChild {
  readonly pid = 4242;
  readonly kills: NodeJS.Signals[] = [];
  channel: FdChannel | undefined;

  kill(signal: NodeJS.Signals): boolean {
    this.kills.push(signal);
    setImmediate(() => this.emit('exit', null, signal));
    return true;
  }

  say(message: WorkerMessage | object): void {
    this.channel!.send(encodeMessage(message as WorkerMessage));
  }

  /** Everything the supervisor sent so far. */
  heard(): string[] {
    const types: string[] = [];
    for (;;) {
      const m = this.channel!.receive();
      if (!m) return types;
      types.push(decodeSupervisorMessage(m.data).type);
    }
  }
}

function start(): { child: FakeChild; worker: WorkerProcess; logs: { msg: string; code?: string }[] } {
  const child = new FakeChild();
  const logs: { msg: string; code?: string }[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const worker = new WorkerProcess({
    id: 0,
    entry: 'unused',
    cpu: 0,
    nice: 0,
    account: { name: 'nobody', uid: 65534, gid: 65534 },
    logLevel: 'info',
    logFormat: 'json',
    log,
    expectedRulesHash: () => '0123456789abcdef',
    launch: (_args, channelFd) => {
      // WorkerProcess closes its copy of the worker's end once the child has it.
      child.channel = new FdChannel(duplicateDescriptor(channelFd));
      return child;
    },
  });
  return { child, worker, logs };
}

const health: WorkerProcessHealth = {
  rssBytes: 1,
  gcCount: 0,
  gcTotalMs: 0,
  gcMaxPauseMs: 0,
  gcPausesOver1Ms: 0,
  cpuSeconds: 0,
};

async function exited(worker: WorkerProcess): Promise<void> {
  if (worker.state !== 'stopped') await new Promise((resolve) => worker.once('exit', resolve));
}

test('a well-behaved worker is ready once, answers heartbeats, reports its health, and is kept', async () => {
  const { child, worker } = start();
  try {
    child.say({ type: 'ready', pid: 4242 });
    await sleep(300);
    assert.equal(worker.state, 'running');
    const reported = new Promise((resolve) => worker.once('health', resolve));
    const heard = child.heard();
    assert.ok(heard.includes('heartbeat'), heard.join());
    child.say({ type: 'heartbeat', seq: 1, rulesHash: '0123456789abcdef' });
    child.say({ type: 'health', health });
    assert.deepEqual(await reported, health);
    assert.equal(worker.ranFine, true);
    assert.deepEqual(child.kills, []);
  } finally {
    child.kill('SIGKILL');
    await exited(worker);
    worker.closeChannel();
  }
});

for (const [what, forged, reason] of [
  ['a second ready', { type: 'ready', pid: 4242 }, /said ready a second time/],
  ['a health report that is null', { type: 'health', health: null }, /health: \/health must be object/],
  [
    'an answer to a heartbeat never sent',
    { type: 'heartbeat', seq: 99, rulesHash: '0123456789abcdef' },
    /answered heartbeat 99/,
  ],
  ['garbage', { type: 'hello', x: 1 }, /unknown type "hello"/],
] as const) {
  test(`a worker that sends ${what} is replaced, logged once with the reason`, async () => {
    const { child, worker, logs } = start();
    try {
      child.say({ type: 'ready', pid: 4242 });
      await sleep(20);
      // Many of them: one verdict, one log line, one kill.
      for (let i = 0; i < 100; i++) child.say(forged);
      await exited(worker);
      assert.deepEqual(child.kills, ['SIGKILL']);
      assert.match(worker.replacedFor!, reason);
      const lines = logs.filter((l) => l.code === 'E_WORKER_MISBEHAVED');
      assert.equal(lines.length, 1, JSON.stringify(logs));
      assert.match(lines[0]!.msg, reason);
    } finally {
      worker.closeChannel();
    }
  });
}

test('a worker that sends descriptors is replaced and the descriptors are closed', async () => {
  const { child, worker } = start();
  try {
    child.say({ type: 'ready', pid: 4242 });
    await sleep(20);
    const [a, b] = [duplicateDescriptor(0), duplicateDescriptor(0)];
    child.channel!.send(encodeMessage({ type: 'heartbeat', seq: 1, rulesHash: '0123456789abcdef' }), [a, b]);
    await exited(worker);
    assert.match(worker.replacedFor!, /sent 2 descriptors/);
  } finally {
    worker.closeChannel();
  }
});

test('a ready with another process’s pid is refused before anything else', async () => {
  const { child, worker } = start();
  try {
    child.say({ type: 'ready', pid: 1 });
    await exited(worker);
    assert.equal(worker.ranFine, false);
    assert.match(worker.replacedFor!, /said ready with pid 1, but its pid is 4242/);
  } finally {
    worker.closeChannel();
  }
});
