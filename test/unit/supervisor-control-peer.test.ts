import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { connect, createServer, Socket, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { controlPeer } from '../../src/supervisor/control-peer.js';
import { peerCredentials } from '../../src/sys/peer-credentials.js';

// Events name the control client that made a change by the process the kernel recorded for its
// connection (SO_PEERCRED): here the client is this very process.

const dir = mkdtempSync(join(tmpdir(), 'mcr-peer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test("a control connection's peer is the process that connected, with its uid and gid", async () => {
  const path = join(dir, 'peer.sock');
  const accepted = new Promise<Socket>((resolve) => {
    const server: Server = createServer((socket) => {
      resolve(socket);
      server.close();
    });
    server.listen(path);
  });
  await new Promise((resolve) => setTimeout(resolve, 10));
  const client = connect(path);
  const socket = await accepted;
  assert.deepEqual(controlPeer(socket), {
    pid: process.pid,
    uid: process.getuid!(),
    gid: process.getgid!(),
  });
  client.destroy();
  socket.destroy();
});

test('a socket without a descriptor, a descriptor that is not open, or one that is no socket has no known peer', () => {
  assert.equal(controlPeer(new Socket()), null);
  assert.equal(peerCredentials(0x7fff_fff0), null);
  const file = openSync(join(dir, 'plain'), 'w');
  try {
    assert.equal(peerCredentials(file), null, 'a plain file has no peer');
  } finally {
    closeSync(file);
  }
});
