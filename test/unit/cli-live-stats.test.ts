import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { StatsPoller } from '../../src/cli/live-stats.js';
import { PROTOCOL_VERSION } from '../../src/protocol/json-rpc.js';
import { rule, snapshot } from './stats-fixtures.js';

// The live views' connection to mcrd, against a stand-in mcrd on a Unix socket: it answers,
// then goes away, and the poller says so at once and connects again to the next one.

/** Answers version, ping and stats.get as mcrd would, one JSON line per request. */
function fakeMcrd(path: string, pid: number) {
  const connections = new Set<Socket>();
  const server = createServer((socket) => {
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
    let buffered = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
        const request = JSON.parse(buffered.slice(0, end)) as { id: number; method: string };
        buffered = buffered.slice(end + 1);
        const result =
          request.method === 'version'
            ? { version: '9.9.9', protocol: PROTOCOL_VERSION, node: process.version }
            : request.method === 'ping'
              ? { pong: true, pid, uptimeSeconds: 5 }
              : snapshot(0, { rules: [rule('r-1', 'cam1', { pps: 400 })] }).stats;
        socket.write(`${JSON.stringify({ jsonrpc: '2.0', id: request.id, result })}\n`);
      }
    });
  });
  return {
    listening: new Promise<void>((resolve) => server.listen(path, resolve)),
    /** Stops as mcrd does: every connection closed, the socket file gone. */
    stop: () =>
      new Promise<void>((resolve) => {
        for (const c of connections) c.destroy();
        server.close(() => resolve());
      }),
  };
}

test(
  'a poll reaches mcrd, fails at once when mcrd went away, and reaches the next mcrd',
  { timeout: 10_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcr-live-'));
    const path = join(dir, 'mcrd.sock');
    try {
      const first = fakeMcrd(path, 41);
      await first.listening;
      // A timeout longer than the test's own: a poll that waited for it fails the test.
      const poller = new StatsPoller(path, 30_000);
      const ok = await poller.poll();
      assert.ok(ok.ok);
      assert.equal(ok.daemon.pid, 41);
      assert.equal(ok.daemon.version, '9.9.9');
      assert.equal(ok.snapshot.stats.rules[0]!.name, 'cam1');
      assert.ok(ok.snapshot.at > 0);

      await first.stop();
      // The closed connection is noticed: the request is not written into a dead socket.
      await new Promise((resolve) => setTimeout(resolve, 50));
      const gone = await poller.poll();
      assert.ok(!gone.ok);
      assert.equal(gone.error.code, 'E_NOT_RUNNING');
      assert.match(gone.error.message, /mcrd is not running/);

      const next = fakeMcrd(path, 42);
      await next.listening;
      const again = await poller.poll();
      assert.ok(again.ok);
      assert.equal(again.daemon.pid, 42, 'the next mcrd, on a new connection');
      poller.close();
      await next.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
