import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { BIN, Topology } from '../helpers/topology.js';

// The control socket path as mcrd and mcrctl take it (--socket, $MCR_SOCKET): a path that cannot
// work gets one sentence naming what is wrong, never a Node internal error, and mcrd leaves
// whatever is at the path alone unless it is a socket nobody answers on.

interface Result {
  code: number;
  stderr: string;
}

/** mcrd in the relay namespace, run to its end; `env` entries are set with env(1) first. */
function mcrd(topo: Topology, args: string[], env: string[] = []): Result {
  const r = topo.exec(topo.relay, 'env', [...env, BIN('mcrd'), '--workers', '1', ...args]);
  return { code: r.code, stderr: r.stderr };
}

function mcrctl(args: string[], env: Record<string, string> = {}): Result {
  const r = spawnSync(BIN('mcrctl'), args, {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 30000,
  });
  return { code: r.status ?? -1, stderr: r.stderr };
}

function assertClear(r: Result, program: 'mcrd' | 'mcrctl', code: string, pattern: RegExp): void {
  const line = r.stderr.split('\n').find((l) => l.startsWith(`${program}: `));
  assert.ok(line, `${program} printed a line for a person:\n${r.stderr}`);
  assert.equal(line.startsWith(`${program}: ${code}: `), true, line);
  assert.match(line, pattern);
  assert.doesNotMatch(r.stderr, /ERR_[A-Z_]+|\n\s+at |"stack"/, 'no Node internals, no stack');
}

test('mcrd refuses a socket path that is a directory or a regular file, and leaves it alone', () => {
  const topo = new Topology();
  try {
    const directory = join(topo.dir, 'a-directory');
    mkdirSync(directory);
    let r = mcrd(topo, ['--socket', directory]);
    assert.equal(r.code, 78, r.stderr);
    assertClear(r, 'mcrd', 'E_NOT_A_SOCKET', /a-directory is a directory, not a socket/);
    assert.doesNotMatch(r.stderr, /stale/);
    assert.deepEqual(readdirSync(directory), []);
    assert.doesNotMatch(r.stderr, /"worker":/, 'no worker was started');

    const file = join(topo.dir, 'a-file');
    writeFileSync(file, 'precious');
    r = mcrd(topo, ['--socket', file]);
    assert.equal(r.code, 78, r.stderr);
    assertClear(r, 'mcrd', 'E_NOT_A_SOCKET', /a-file is a regular file, not a socket/);
    assert.equal(readFileSync(file, 'utf8'), 'precious', 'the file is untouched');
  } finally {
    topo.destroy();
  }
});

test("mcrd creates only the socket's own directory; a missing one above it is an error", () => {
  const topo = new Topology();
  try {
    const r = mcrd(topo, ['--socket', join(topo.dir, 'typo', 'mcr', 'mcrd.sock')]);
    assert.equal(r.code, 78, r.stderr);
    assertClear(r, 'mcrd', 'E_SOCKET_PATH', /typo does not exist/);
    assert.deepEqual(readdirSync(topo.dir), [], 'no directory was created');
    assert.doesNotMatch(r.stderr, /"worker":/, 'no worker was started');
  } finally {
    topo.destroy();
  }
});

test('mcrd: an empty --socket and a path too long for a socket address are usage errors (exit 2)', () => {
  const topo = new Topology();
  try {
    let r = mcrd(topo, ['--socket', '']);
    assert.equal(r.code, 2, r.stderr);
    assertClear(r, 'mcrd', 'E_USAGE', /--socket is empty/);

    const longDir = join(topo.dir, 'd'.repeat(100));
    r = mcrd(topo, ['--socket', join(longDir, 'mcrd.sock')]);
    assert.equal(r.code, 2, r.stderr);
    assertClear(r, 'mcrd', 'E_SOCKET_PATH_TOO_LONG', /at most 107/);
    assert.deepEqual(readdirSync(topo.dir), [], 'no directory or truncated socket was created');

    r = mcrd(topo, [], [`MCR_SOCKET=${join(longDir, 'mcrd.sock')}`]);
    assert.equal(r.code, 2, r.stderr);
    assertClear(r, 'mcrd', 'E_SOCKET_PATH_TOO_LONG', /\$MCR_SOCKET/);
  } finally {
    topo.destroy();
  }
});

test('mcrd: an empty $MCR_SOCKET counts as unset: mcrd serves the default path', async () => {
  const topo = new Topology();
  try {
    // `ip netns exec` runs in a mount namespace of its own that does not propagate back, so a
    // tmpfs over /run keeps the host's /run/mcr out of this test.
    const daemon = topo.start(topo.relay, 'sh', [
      '-c',
      'mount -t tmpfs mcr-test /run && MCR_SOCKET= exec "$0" --workers 1',
      BIN('mcrd'),
    ]);
    await daemon.waitForStderr('mcrd ready', 15000);
    assert.match(daemon.stderr, /"socket":"\/run\/mcr\/mcrd\.sock"/);
    daemon.child.kill('SIGTERM');
    assert.equal((await daemon.exited).code, 0, daemon.stderr);
  } finally {
    topo.destroy();
  }
});

test('mcrctl names what is at the path, and takes an empty $MCR_SOCKET as unset', () => {
  const topo = new Topology();
  try {
    const directory = join(topo.dir, 'a-directory');
    mkdirSync(directory);
    let r = mcrctl(['--socket', directory, 'ping']);
    assert.equal(r.code, 1, r.stderr);
    assertClear(r, 'mcrctl', 'E_NOT_A_SOCKET', /a-directory is a directory, not mcrd's control socket/);

    const file = join(topo.dir, 'a-file');
    writeFileSync(file, '');
    r = mcrctl(['ping'], { MCR_SOCKET: file });
    assert.equal(r.code, 1, r.stderr);
    assertClear(r, 'mcrctl', 'E_NOT_A_SOCKET', /a-file is a regular file/);

    // Both are usage errors: mcrctl exits 2 on them, as mcrd does.
    r = mcrctl(['--socket', join(topo.dir, 'x'.repeat(110)), 'ping']);
    assert.equal(r.code, 2, r.stderr);
    assertClear(r, 'mcrctl', 'E_SOCKET_PATH_TOO_LONG', /at most 107/);

    r = mcrctl(['--socket', '', 'ping']);
    assert.equal(r.code, 2, r.stderr);
    assertClear(r, 'mcrctl', 'E_USAGE', /--socket is empty/);

    // Empty means unset: mcrctl goes to the default path (whether or not an mcrd serves it there).
    r = mcrctl(['ping'], { MCR_SOCKET: '' });
    if (r.code !== 0) assertClear(r, 'mcrctl', 'E_NOT_RUNNING', /\/run\/mcr\/mcrd\.sock/);
    assert.equal(existsSync(join(topo.dir, 'x'.repeat(103))), false);
  } finally {
    topo.destroy();
  }
});
