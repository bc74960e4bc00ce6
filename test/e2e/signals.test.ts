import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import type { RuleView, WorkerView } from '../../src/protocol/control-api.js';
import { isAlive, waitFor } from '../helpers/processes.js';
import { expectPackets, receiverReport, RelayHost, send, startReceiver } from '../helpers/relay-host.js';
import { sleep, Topology } from '../helpers/topology.js';

// Signals sent to a running mcrd and to its workers (see "Signals" in the README): the ones that
// must not end a process leave every process, rule and flow as it was, and nothing starts to
// listen on TCP (Node opens its inspector on 127.0.0.1:9229 on SIGUSR1 unless told otherwise).

const workers = (relay: RelayHost): WorkerView[] =>
  relay.mcrctlJson<{ workers: WorkerView[] }>(['workers']).workers;

/** TCP listeners in the relay's namespace, where mcrd and its workers run (`ss` lines). */
function tcpListeners(topo: Topology): string[] {
  const r = topo.exec(topo.relay, 'ss', ['-H', '-ltnp']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter((line) => line.trim() !== '');
}

/**
 * Starts mcrd with two workers and a rule, sends each signal to mcrd and to every worker, and
 * checks that nothing changed: same pids, no restart, the socket answers, the rule is active,
 * traffic flows, no TCP listener. Returns mcrd's log for further checks.
 */
async function survives(signals: NodeJS.Signals[]): Promise<string> {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '2']);
    const rule = relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0');
    const mcrdPid = relay.mcrctlJson<{ pid: number }>(['ping']).pid;
    const before = workers(relay);
    assert.equal(before.length, 2);
    assert.deepEqual(tcpListeners(topo), [], 'nothing listens before the signals');

    for (const signal of signals) {
      for (const pid of [mcrdPid, ...before.map((w) => w.pid!)]) {
        assert.ok(isAlive(pid), `pid ${pid} is alive before ${signal}:\n${relay.daemon.stderr}`);
        process.kill(pid, signal);
      }
      // Node's inspector opens within milliseconds of SIGUSR1; give it ample time to show.
      await sleep(500);
    }

    assert.ok(isAlive(mcrdPid), `mcrd is alive after ${signals.join(', ')}:\n${relay.daemon.stderr}`);
    assert.equal(relay.mcrctl(['ping']).code, 0, 'the control socket answers');
    const after = workers(relay);
    for (const [i, worker] of after.entries()) {
      assert.equal(worker.pid, before[i]!.pid, `worker ${worker.id} has the same pid`);
      assert.equal(worker.restarts, 0, `worker ${worker.id} was not restarted`);
      assert.equal(worker.state, 'running');
      assert.ok(isAlive(worker.pid!));
    }
    const rules = relay.mcrctlJson<{ rules: RuleView[] }>(['list']).rules;
    assert.deepEqual(
      rules.map((r) => [r.id, r.state]),
      [[rule.id, 'active']],
      'the rule is still there and active',
    );
    assert.deepEqual(tcpListeners(topo), [], 'no process listens on TCP (no inspector)');

    const recv = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, 1000);
    send(topo, '239.1.1.1', 5000, { rate: 2000, size: 200, count: 1000 });
    assert.equal((await receiverReport(recv)).code, 0, recv.stderr);
    return relay.daemon.stderr;
  } finally {
    topo.destroy();
  }
}

test('SIGHUP to mcrd and its workers: mcrd, started without --config, says there is no file to reload; nothing changes', async () => {
  const log = await survives(['SIGHUP']);
  assert.match(log, /E_NO_CONFIG.*started without --config, so there is no file to reload/);
});

test('SIGUSR2 to mcrd and its workers: logged and ignored', async () => {
  const log = await survives(['SIGUSR2']);
  assert.match(log, /SIGUSR2/);
});

test('SIGUSR1 to mcrd and its workers: no inspector opens, nothing listens on TCP', async () => {
  const log = await survives(['SIGUSR1']);
  assert.doesNotMatch(log, /Debugger listening/);
  assert.match(log, /SIGUSR1/);
});

test('signals nobody should send (ALRM, VTALRM, IO, PWR, STKFLT) are logged and ignored', async () => {
  const log = await survives(['SIGALRM', 'SIGVTALRM', 'SIGIO', 'SIGPWR', 'SIGSTKFLT']);
  for (const name of ['SIGALRM', 'SIGVTALRM', 'SIGIO', 'SIGPWR', 'SIGSTKFLT'])
    assert.match(log, new RegExp(name));
});

test('workers ignore SIGINT and SIGQUIT (the supervisor decides); SIGQUIT stops mcrd cleanly', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '2']);
    relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0');
    const before = workers(relay);
    for (const worker of before) {
      process.kill(worker.pid!, 'SIGINT');
      process.kill(worker.pid!, 'SIGQUIT');
    }
    await sleep(500);
    assert.deepEqual(
      workers(relay).map((w) => [w.pid, w.restarts]),
      before.map((w) => [w.pid, 0]),
      'workers ignore SIGINT and SIGQUIT',
    );

    relay.daemon.child.kill('SIGQUIT');
    const { code, signal } = await relay.daemon.exited;
    assert.equal(signal, null, 'mcrd exits rather than dumping core');
    assert.equal(code, 0, relay.daemon.stderr);
    assert.match(relay.daemon.stderr, /final counters/);
    for (const worker of before) assert.equal(isAlive(worker.pid!), false, `worker ${worker.pid} is gone`);
    assert.equal(existsSync(topo.socketPath), false, 'the control socket is removed');
  } finally {
    topo.destroy();
  }
});

test('SIGXCPU: a worker exits and is replaced; mcrd stops cleanly with status 1', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0');
    const [first] = workers(relay);
    process.kill(first!.pid!, 'SIGXCPU');
    const replaced = await waitFor('the worker to be replaced', () => {
      const [w] = workers(relay);
      return w && w.pid !== first!.pid && w.state === 'running' ? w : undefined;
    });
    assert.equal(replaced.restarts, 1);
    assert.equal(isAlive(first!.pid!), false);
    const recv = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, 500);
    send(topo, '239.1.1.1', 5000, { rate: 2000, size: 200, count: 500 });
    assert.equal((await receiverReport(recv)).code, 0, recv.stderr);

    relay.daemon.child.kill('SIGXCPU');
    const { code, signal } = await relay.daemon.exited;
    assert.equal(signal, null, 'mcrd exits rather than dumping core');
    assert.equal(code, 1, relay.daemon.stderr);
    assert.match(relay.daemon.stderr, /CPU time limit/);
    assert.equal(isAlive(replaced.pid!), false, 'its worker is gone');
    assert.equal(existsSync(topo.socketPath), false, 'the control socket is removed');
  } finally {
    topo.destroy();
  }
});

test('mcrgen (usually run as root) opens no inspector on SIGUSR1 and finishes its run', async () => {
  const topo = new Topology();
  try {
    const recv = await startReceiver(topo, topo.receiver, [
      ...['--interface', 'eth0', '--group', '239.1.1.1', '--port', '5000', '--duration', '2'],
    ]);
    recv.child.kill('SIGUSR1');
    await sleep(500);
    const r = topo.exec(topo.receiver, 'ss', ['-H', '-ltnp']);
    assert.equal(r.stdout.trim(), '', 'nothing listens on TCP in the receiver namespace');
    const { code } = await receiverReport(recv);
    assert.equal(code, 0, recv.stderr);
    assert.doesNotMatch(recv.stderr, /Debugger listening/);
  } finally {
    topo.destroy();
  }
});
