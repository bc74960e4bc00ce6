import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DEFAULT_SOCKET, socketPathFrom } from '../../src/cli/package-info.js';
import { ClientError, ControlClient } from '../../src/protocol/control-client.js';
import { claimSocketPath } from '../../src/supervisor/socket-path.js';

// Where the control socket is, and what mcrd and mcrctl say when the path cannot work: only a
// socket file nobody answers on is stale and may be replaced; anything else is named.

const dir = mkdtempSync(join(tmpdir(), 'mcr-socket-path-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A path of exactly `bytes` bytes inside the temporary directory. */
function pathOfLength(bytes: number): string {
  const prefix = join(dir, 'x');
  return prefix + 'y'.repeat(bytes - Buffer.byteLength(prefix));
}

/** A socket file left by a process that died without removing it (SIGKILL). */
async function staleSocket(path: string): Promise<void> {
  const child = spawn(
    process.execPath,
    ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.kill('SIGKILL');
  await new Promise<void>((resolve) => child.once('exit', () => resolve()));
  assert.ok(existsSync(path));
}

async function rejectsWith(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    const e = err as Error & { code?: string };
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

function withEnv(value: string | undefined, fn: () => void): void {
  const saved = process.env.MCR_SOCKET;
  if (value === undefined) delete process.env.MCR_SOCKET;
  else process.env.MCR_SOCKET = value;
  try {
    fn();
  } finally {
    if (saved === undefined) delete process.env.MCR_SOCKET;
    else process.env.MCR_SOCKET = saved;
  }
}

test('socket path: --socket, else $MCR_SOCKET, else the default; an empty $MCR_SOCKET counts as unset', () => {
  withEnv(undefined, () => assert.equal(socketPathFrom(undefined), DEFAULT_SOCKET));
  withEnv('', () => assert.equal(socketPathFrom(undefined), DEFAULT_SOCKET));
  withEnv('/tmp/env.sock', () => assert.equal(socketPathFrom(undefined), '/tmp/env.sock'));
  withEnv('/tmp/env.sock', () => assert.equal(socketPathFrom('/tmp/opt.sock'), '/tmp/opt.sock'));
});

test('socket path: an explicit empty --socket is a usage error', () => {
  assert.throws(
    () => socketPathFrom(''),
    (err: Error & { code?: string }) => err.code === 'E_USAGE' && /--socket is empty/.test(err.message),
  );
});

test('socket path: at most 107 bytes, from --socket or $MCR_SOCKET', () => {
  assert.equal(socketPathFrom(pathOfLength(107)), pathOfLength(107));
  const long = pathOfLength(108);
  assert.throws(
    () => socketPathFrom(long),
    (err: Error & { code?: string }) =>
      err.code === 'E_SOCKET_PATH_TOO_LONG' &&
      err.message.includes('108 bytes') &&
      err.message.includes('107'),
  );
  withEnv(long, () =>
    assert.throws(
      () => socketPathFrom(undefined),
      (err: Error & { code?: string }) =>
        err.code === 'E_SOCKET_PATH_TOO_LONG' && /MCR_SOCKET/.test(err.message),
    ),
  );
});

test('claim: a directory, a regular file, a link or a FIFO is named and left alone', async () => {
  const directory = join(dir, 'a-directory');
  mkdirSync(directory);
  await rejectsWith(claimSocketPath(directory), 'E_NOT_A_SOCKET', /is a directory, not a socket/);
  assert.ok(existsSync(directory));

  const file = join(dir, 'a-file');
  writeFileSync(file, 'keep me');
  await rejectsWith(claimSocketPath(file), 'E_NOT_A_SOCKET', /is a regular file, not a socket/);
  assert.equal(readFileSync(file, 'utf8'), 'keep me');

  const link = join(dir, 'a-link');
  symlinkSync(file, link);
  await rejectsWith(claimSocketPath(link), 'E_NOT_A_SOCKET', /is a symbolic link/);

  const fifo = join(dir, 'a-fifo');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  await rejectsWith(claimSocketPath(fifo), 'E_NOT_A_SOCKET', /is a named pipe/);

  await rejectsWith(
    claimSocketPath(join(file, 'mcrd.sock')),
    'E_SOCKET_PATH',
    /a-file is a regular file, not a directory/,
  );
});

test("claim: only the socket's own directory may be missing (mcrd creates it, like /run/mcr)", async () => {
  await claimSocketPath(join(dir, 'own-directory', 'mcrd.sock'));
  const typo = join(dir, 'no-such', 'mcr', 'mcrd.sock');
  await rejectsWith(claimSocketPath(typo), 'E_SOCKET_PATH', /no-such does not exist/);
  assert.equal(existsSync(join(dir, 'no-such')), false, 'nothing was created');
});

test('claim: too long or empty paths are refused before anything is created', async () => {
  const long = join(pathOfLength(100), 'sub', 'mcrd.sock');
  await rejectsWith(claimSocketPath(long), 'E_SOCKET_PATH_TOO_LONG', /107/);
  assert.equal(existsSync(pathOfLength(100)), false);
  await rejectsWith(claimSocketPath(''), 'E_SOCKET_PATH', /empty/);
});

test('claim: a stale socket is replaced, a live one refused, an absent one is fine', async () => {
  await claimSocketPath(join(dir, 'absent.sock'));

  const stale = join(dir, 'stale.sock');
  await staleSocket(stale);
  await claimSocketPath(stale);
  assert.equal(existsSync(stale), false, 'the stale socket was removed');

  const live = join(dir, 'live.sock');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(live, resolve));
  try {
    await rejectsWith(claimSocketPath(live), 'E_ALREADY_RUNNING', /already serving/);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('client: says what is at the path when it is not a socket, and refuses impossible paths', async () => {
  const directory = join(dir, 'client-directory');
  mkdirSync(directory);
  const file = join(dir, 'client-file');
  writeFileSync(file, '');
  const stale = join(dir, 'client-stale.sock');
  await staleSocket(stale);

  const open = (path: string): Promise<ControlClient> => ControlClient.open(path, 2000);
  await rejectsWith(open(directory), 'E_NOT_A_SOCKET', /is a directory, not mcrd's control socket/);
  await rejectsWith(open(file), 'E_NOT_A_SOCKET', /is a regular file, not mcrd's control socket/);
  await rejectsWith(
    open(join(file, 'mcrd.sock')),
    'E_SOCKET_PATH',
    /client-file is a regular file, not a directory/,
  );
  await rejectsWith(open(stale), 'E_NOT_RUNNING', /nobody answers/);
  await rejectsWith(open(join(dir, 'nothing.sock')), 'E_NOT_RUNNING', /no control socket/);
  await rejectsWith(open(pathOfLength(108)), 'E_SOCKET_PATH_TOO_LONG', /107/);
  await rejectsWith(open(''), 'E_SOCKET_PATH', /empty/);
  await assert.rejects(open(directory), ClientError);
});
