import assert from 'node:assert/strict';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { lookupAccount } from '../../src/sys/privileges.js';
import { isAlive } from '../helpers/processes.js';
import { BIN, Topology } from '../helpers/topology.js';

// mcrd refusing to start: what it says, its exit status, and that it leaves nothing behind
// (no socket file, no process). Each run happens in a topology's relay namespace.

interface Run {
  code: number;
  stderr: string;
  /** pids named by mcrd's and its workers' JSON log lines. */
  pids: number[];
}

/** Runs mcrd to its end in the relay namespace, through `wrapper` (e.g. setpriv), with `args`. */
function runMcrd(topo: Topology, wrapper: string[], args: string[]): Run {
  const command = [...wrapper, BIN('mcrd'), ...args];
  const r = topo.exec(topo.relay, command[0]!, command.slice(1));
  const pids = new Set<number>();
  for (const line of r.stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    const pid = (JSON.parse(line) as { pid?: unknown }).pid;
    if (typeof pid === 'number') pids.add(pid);
  }
  return { code: r.code, stderr: r.stderr, pids: [...pids] };
}

/** The line meant for a person: "mcrd: CODE: sentence". */
function humanLine(run: Run): string {
  const line = run.stderr.split('\n').find((l) => l.startsWith('mcrd: '));
  assert.ok(line, `mcrd printed a line for a person:\n${run.stderr}`);
  return line;
}

function assertNothingLeft(topo: Topology, run: Run): void {
  assert.deepEqual(readdirSync(topo.dir), [], 'no socket file or anything else in the socket directory');
  for (const pid of run.pids) assert.equal(isAlive(pid), false, `process ${pid} is gone`);
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  assert.doesNotMatch(run.stderr, /"stack"/, 'no stack trace in the logs');
}

test('mcrd without root: names every missing capability and what to do, exit 78 (not worth a retry), nothing started', () => {
  const topo = new Topology();
  try {
    const run = runMcrd(
      topo,
      ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'],
      ['--socket', topo.socketPath, '--workers', '1'],
    );
    assert.equal(run.code, 78, run.stderr);
    const line = humanLine(run);
    assert.match(line, /^mcrd: E_PRIVILEGES: /);
    for (const cap of ['CAP_NET_RAW', 'CAP_NET_ADMIN', 'CAP_SETUID', 'CAP_SETGID'])
      assert.match(line, new RegExp(cap));
    assert.match(line, /run it as root/i);
    assert.match(line, /AmbientCapabilities/);
    assert.doesNotMatch(run.stderr, /"worker":/, 'no worker was started');
    assertNothingLeft(topo, run);
  } finally {
    topo.destroy();
  }
});

test('mcrd as root without CAP_NET_RAW and CAP_NET_ADMIN names just those two', () => {
  const topo = new Topology();
  try {
    const run = runMcrd(
      topo,
      ['setpriv', '--inh-caps=-all', '--bounding-set=-net_raw,-net_admin'],
      ['--socket', topo.socketPath, '--workers', '1'],
    );
    assert.equal(run.code, 78, run.stderr);
    const line = humanLine(run);
    assert.match(line, /^mcrd: E_PRIVILEGES: mcrd lacks CAP_NET_RAW, CAP_NET_ADMIN; /);
    assert.doesNotMatch(run.stderr, /"worker":/, 'no worker was started');
    assertNothingLeft(topo, run);
  } finally {
    topo.destroy();
  }
});

test("a worker that cannot drop its privileges: its reason is mcrd's error, no stack, nothing left", () => {
  const topo = new Topology();
  try {
    // A user namespace that maps only root: mcrd holds every capability there, but a worker
    // cannot switch to its account, mcr (setgroups is denied and mcr's uid is not mapped).
    const run = runMcrd(
      topo,
      ['unshare', '--user', '--map-root-user'],
      ['--socket', topo.socketPath, '--workers', '2'],
    );
    assert.equal(run.code, 1, run.stderr);
    const line = humanLine(run);
    assert.match(line, /^mcrd: E_WORKER_START: worker \d could not start: /);
    const mcr = lookupAccount('mcr')!;
    assert.match(line, new RegExp(`could not switch to user mcr \\(uid ${mcr.uid}, gid ${mcr.gid}\\)`));
    assert.match(line, /setgroups/);
    assert.match(line, /EPERM/);
    assert.doesNotMatch(line, /see its log lines/);
    assertNothingLeft(topo, run);
  } finally {
    topo.destroy();
  }
});

test('mcrd --config with a file that has problems: each named, exit 78, nothing started', () => {
  const topo = new Topology();
  try {
    const file = join(topo.dir, 'bad.json5');
    writeFileSync(file, "{ workers: 'two', rules: [{ input: { interface: 'in0', group: '239.1.1.1' } }] }\n");
    const run = runMcrd(topo, [], ['--socket', topo.socketPath, '--config', file]);
    rmSync(file);
    assert.equal(run.code, 78, run.stderr);
    assert.match(run.stderr, /workers "two" is not a whole number/);
    assert.match(run.stderr, /input.port is missing/);
    assert.match(run.stderr, /outputs is missing/);
    assert.match(humanLine(run), /^mcrd: E_CONFIG_INVALID: .*3 problem\(s\); mcrd did not start/);
    assertNothingLeft(topo, run);
  } finally {
    topo.destroy();
  }
});
