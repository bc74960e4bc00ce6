import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import type { Poll } from '../../src/cli/live-stats.js';
import { rule, snapshot, worker } from './stats-fixtures.js';

// mcrctl top drawn on a stand-in terminal: what it shows after each answer of a scripted mcrd,
// how it takes keys and a resize, and that it leaves the alternate screen when it quits. The
// real terminal (tmux) is the end-to-end test's.

// ink takes a CI variable for "not a terminal" and then draws nothing until it exits; mcrctl
// clears it before loading ink (see mcrctl-live.ts), and so does this test.
delete process.env.CI;
delete process.env.CONTINUOUS_INTEGRATION;
const { runTop } = await import('../../src/cli/top-view.js');

const ESC = '\u001b';
const CSI = new RegExp(`${ESC}\\[[\\d;?]*[A-Za-z]`, 'g');

class FakeStdout extends EventEmitter {
  isTTY = true;
  columns = 120;
  rows = 24;
  writes: string[] = [];

  write(data: string): boolean {
    this.writes.push(data);
    return true;
  }

  /** The last whole frame, as plain text. */
  frame(): string {
    const last = [...this.writes].reverse().find((w) => w.includes('q quit'));
    return (last ?? '').replace(CSI, '').replace(/\n$/, '');
  }
}

class FakeStdin extends EventEmitter {
  isTTY = true;
  private queued: string[] = [];
  setRawMode(): this {
    return this;
  }
  setEncoding(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  read(): string | null {
    return this.queued.shift() ?? null;
  }
  type(keys: string): void {
    this.queued.push(keys);
    this.emit('readable');
  }
}

/** A poller that gives the scripted answers one by one, then the last one again. */
class ScriptedPoller {
  closed = false;
  private readonly answers: Poll[];
  constructor(answers: Poll[]) {
    this.answers = answers;
  }
  poll(): Promise<Poll> {
    return Promise.resolve(this.answers.length > 1 ? this.answers.shift()! : this.answers[0]!);
  }
  close(): void {
    this.closed = true;
  }
}

const daemon = (pid: number) => ({ version: '9.9.9', pid, startedAt: 0 });

function answer(at: number, pid: number, cam1Drops: number): Poll & { ok: true } {
  return {
    ok: true,
    daemon: daemon(pid),
    snapshot: snapshot(at, {
      rules: [
        rule('r-1', 'alpha', { pps: 10, drops: { egress_failed: 0 } }),
        rule('r-2', 'zeta', { pps: 400, drops: { egress_failed: cam1Drops } }),
      ],
      workers: [worker(0, { framesSeen: 100, forwarded: 100, fps: 410 })],
    }),
  };
}

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test('top shows the rules by rate, takes s and q, follows a resize and an outage, and leaves the alternate screen', async () => {
  const stdout = new FakeStdout();
  const stdin = new FakeStdin();
  const first = answer(0, 100, 0);
  const outage: Poll = { ok: false, error: { code: 'E_NOT_RUNNING', message: 'mcrd is not running' } };
  const poller = new ScriptedPoller([
    answer(1000, 100, 50),
    ...Array.from({ length: 10 }, () => outage),
    answer(3000, 200, 0),
  ]);
  const running = runTop(
    { poller, first, intervalMs: 40, colour: false },
    {
      stdout: stdout as unknown as NodeJS.WriteStream,
      stdin: stdin as unknown as NodeJS.ReadStream,
    },
  );
  assert.ok(stdout.writes[0]!.startsWith(`${ESC}[?1049h`), 'on the alternate screen first');

  await until('the first frame', () => /^zeta /m.test(stdout.frame()));
  let frame = stdout.frame();
  assert.match(frame, /^mcrd 9\.9\.9 {2}pid 100 {2}up /m);
  const lines = frame.split('\n');
  assert.ok(
    lines.findIndex((l) => l.startsWith('zeta ')) < lines.findIndex((l) => l.startsWith('alpha ')),
    `busiest first:\n${frame}`,
  );
  assert.equal(lines.length, stdout.rows - 1, 'one line short of the terminal');

  // The outage is shown over the last numbers, and the next mcrd (another pid) replaces them.
  await until('the outage', () => /mcrd not reachable for \d+s \(E_NOT_RUNNING/.test(stdout.frame()));
  await until('the new mcrd', () => /pid 200/.test(stdout.frame()) && !/not reachable/.test(stdout.frame()));

  stdin.type('s');
  await until('sort by name', () => /sort: name/.test(stdout.frame()));
  frame = stdout.frame();
  const byName = frame.split('\n');
  assert.ok(byName.findIndex((l) => l.startsWith('alpha ')) < byName.findIndex((l) => l.startsWith('zeta ')));

  stdout.columns = 50;
  stdout.rows = 12;
  stdout.emit('resize');
  await until('the narrow frame', () => stdout.frame().split('\n').length === 11);
  for (const line of stdout.frame().split('\n')) assert.ok(line.length <= 50, `${line.length}: ${line}`);

  stdin.type('q');
  await running;
  assert.ok(stdout.writes.at(-1)!.endsWith(`${ESC}[?1049l`), 'the alternate screen left last');
  assert.ok(poller.closed, 'the connection closed');
});
