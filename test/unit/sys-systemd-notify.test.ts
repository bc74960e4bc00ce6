import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { notifySystemd } from '../../src/sys/systemd-notify.js';

test('without $NOTIFY_SOCKET nothing is sent', () => {
  assert.equal(notifySystemd('READY=1', ''), false);
});

test(
  'READY=1 reaches a datagram socket as systemd listens (socat stands in for systemd)',
  { skip: spawnSync('which', ['socat']).status !== 0 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcr-notify-'));
    const path = join(dir, 'notify');
    try {
      const { spawn } = await import('node:child_process');
      const listener = spawn('socat', ['-u', `UNIX-RECV:${path}`, 'STDOUT'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let received = '';
      listener.stdout.setEncoding('utf8').on('data', (d: string) => (received += d));
      for (let i = 0; i < 50 && spawnSync('test', ['-S', path]).status !== 0; i++)
        await new Promise((r) => setTimeout(r, 20));
      assert.equal(notifySystemd('READY=1\nSTATUS=serving', path), true);
      for (let i = 0; i < 50 && !received; i++) await new Promise((r) => setTimeout(r, 20));
      listener.kill();
      assert.equal(received, 'READY=1\nSTATUS=serving');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
