import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { WorkerView } from '../../src/protocol/control-api.js';
import { lookupAccount } from '../../src/sys/privileges.js';
import { isAlive, processStatus } from '../helpers/processes.js';
import { expectPackets, receiverReport, RelayHost, send } from '../helpers/relay-host.js';
import { BIN, Topology } from '../helpers/topology.js';

// The account workers run as. Any process of that account may signal them, so by default they
// get one of their own, mcr (scripts/setup.sh creates it in a checkout, packages with
// sysusers.d). Without it mcrd refuses to start and says how to make it; accounts that are
// shared by design (nobody) are warned about, the supervisor's own account is refused.

const workers = (relay: RelayHost): WorkerView[] =>
  relay.mcrctlJson<{ workers: WorkerView[] }>(['workers']).workers;

/** mcrd's JSON log lines at warn level (40). */
function warnings(stderr: string): { code?: string; msg: string }[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; code?: string; msg: string })
    .filter((l) => l.level === 40);
}

interface Run {
  code: number;
  stderr: string;
  pids: number[];
}

/** Runs a command line in the relay namespace to its end; pids are those mcrd's log lines name. */
function run(topo: Topology, command: string[]): Run {
  const r = topo.exec(topo.relay, command[0]!, command.slice(1));
  const pids = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => (JSON.parse(l) as { pid?: unknown }).pid)
    .filter((pid): pid is number => typeof pid === 'number');
  return { code: r.code, stderr: r.stderr, pids };
}

function humanLine(r: Run): string {
  const line = r.stderr.split('\n').find((l) => l.startsWith('mcrd: '));
  assert.ok(line, `mcrd printed a line for a person:\n${r.stderr}`);
  return line;
}

function assertNothingStarted(topo: Topology, r: Run): void {
  assert.deepEqual(readdirSync(topo.dir), [], 'no socket file or anything else in the socket directory');
  for (const pid of r.pids) assert.equal(isAlive(pid), false, `process ${pid} is gone`);
  assert.doesNotMatch(r.stderr, /"worker":/, 'no worker was started');
  assert.doesNotMatch(r.stderr, /\n\s+at |"stack"/, 'no stack trace');
}

test('workers run as their own account, mcr, by default: its uid and gid, no other group, no warning', async () => {
  const mcr = lookupAccount('mcr');
  assert.ok(mcr, 'the account mcr exists (scripts/setup.sh creates it)');
  assert.notEqual(mcr.uid, 0);
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '2']);
    relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0');
    const recv = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, 1000);
    send(topo, '239.1.1.1', 5000, { rate: 2000, size: 300, count: 1000 });
    assert.equal((await receiverReport(recv)).code, 0, recv.stderr);
    for (const worker of workers(relay)) {
      assert.equal(worker.user, 'mcr');
      const status = processStatus(worker.pid!);
      const ids = (n: number): RegExp => new RegExp(`^${n}\\s+${n}\\s+${n}\\s+${n}$`);
      assert.match(status.Uid!, ids(mcr.uid), `worker ${worker.id} uid`);
      assert.match(status.Gid!, ids(mcr.gid), `worker ${worker.id} gid`);
      assert.equal(status.Groups, '', `worker ${worker.id} has no supplementary group`);
      // The review's finding: any process running as nobody could kill the workers.
      const probe = topo.exec(topo.relay, 'setpriv', [
        ...['--reuid=65534', '--regid=65534', '--clear-groups'],
        ...['sh', '-c', 'kill -0 "$1"', 'sh', String(worker.pid)],
      ]);
      assert.notEqual(probe.code, 0, `a nobody process cannot signal worker ${worker.id}`);
      assert.match(probe.stderr, /not permitted/);
    }
    assert.deepEqual(
      warnings(relay.daemon.stderr).filter((w) => /account|--user/.test(w.msg)),
      [],
      'no warning about the account',
    );
  } finally {
    topo.destroy();
  }
});

test('mcrd without the mcr account: says how to create it or choose another, exit 78, nothing started', () => {
  const topo = new Topology();
  // The account is not removed (it may be in use): mcrd runs in a mount namespace of its own whose
  // /etc/passwd is a copy without it.
  const scratch = mkdtempSync(join(tmpdir(), 'mcr-passwd-'));
  try {
    const passwd = join(scratch, 'passwd');
    const lines = readFileSync('/etc/passwd', 'utf8').split('\n');
    writeFileSync(passwd, lines.filter((l) => !l.startsWith('mcr:')).join('\n'));
    const r = run(topo, [
      ...['unshare', '--mount', '--propagation', 'private', 'sh', '-c'],
      'mount --bind "$1" /etc/passwd && exec "$2" --socket "$3" --workers 1',
      ...['sh', passwd, BIN('mcrd'), topo.socketPath],
    ]);
    assert.equal(r.code, 78, r.stderr);
    const line = humanLine(r);
    assert.match(line, /^mcrd: E_NO_WORKER_ACCOUNT: workers run as the account mcr, which does not exist/);
    assert.match(line, /useradd --system .*mcr/, 'says how to create it');
    assert.match(line, /scripts\/setup\.sh/);
    assert.match(line, /--user/, 'says how to choose another');
    assertNothingStarted(topo, r);
    assert.ok(lookupAccount('mcr'), "the host's account is untouched");
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    topo.destroy();
  }
});

test('--user naming a missing account: exit 2, and the same advice for that name', () => {
  const topo = new Topology();
  try {
    const r = run(topo, [BIN('mcrd'), '--socket', topo.socketPath, '--user', 'no-such-mcr-account']);
    assert.equal(r.code, 2, r.stderr);
    const line = humanLine(r);
    assert.match(line, /^mcrd: E_UNKNOWN_USER: --user no-such-mcr-account: no such user/);
    assert.match(line, /useradd --system .*no-such-mcr-account/);
    assertNothingStarted(topo, r);
  } finally {
    topo.destroy();
  }
});

test('--user nobody: the workers run, and mcrd warns that every nobody process can signal them', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1', '--user', 'nobody']);
    const warned = warnings(relay.daemon.stderr).filter((w) => w.code === 'W_SHARED_USER');
    assert.equal(warned.length, 1, relay.daemon.stderr);
    assert.match(warned[0]!.msg, /--user nobody/);
    assert.match(warned[0]!.msg, /signal/);
    assert.match(warned[0]!.msg, /mcr/, 'names the account to use instead');
    assert.equal(workers(relay)[0]!.user, 'nobody');
    assert.match(processStatus(workers(relay)[0]!.pid!).Uid!, /^65534\s/);
  } finally {
    topo.destroy();
  }
});

test('--user naming the account mcrd itself runs as is refused: its workers could signal it', () => {
  const topo = new Topology();
  try {
    // mcrd as nobody with the four capabilities it needs, as a service account would run it.
    const caps = '+net_raw,+net_admin,+setuid,+setgid';
    const r = run(topo, [
      ...['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'],
      ...[`--inh-caps=${caps}`, `--ambient-caps=${caps}`],
      ...[BIN('mcrd'), '--socket', topo.socketPath, '--workers', '1', '--user', 'nobody'],
    ]);
    assert.equal(r.code, 2, r.stderr);
    const line = humanLine(r);
    assert.match(line, /^mcrd: E_SHARED_USER: --user nobody is the account mcrd itself runs as/);
    assertNothingStarted(topo, r);
  } finally {
    topo.destroy();
  }
});
