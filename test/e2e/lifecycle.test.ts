import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import type { RuleView, WorkerView } from '../../src/protocol/control-api.js';
import { isAlive, waitFor } from '../helpers/processes.js';
import { expectPackets, receiverReport, RelayHost, send } from '../helpers/relay-host.js';
import { BIN, ip, Topology } from '../helpers/topology.js';

// Interfaces that come and go under a running mcrd, and how mcrd starts and stops.

const ruleState = (relay: RelayHost, id: string): RuleView | undefined =>
  relay.mcrctlJson<{ rules: RuleView[] }>(['list']).rules.find((r) => r.id === id);

test('a rule for an interface created later starts forwarding when it appears, and waits again when it goes', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    const rule = relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0', []);
    // A second input link, made only now: sender eth1 ── relay in1.
    const later = relay.mcrctlJson<{ rule: RuleView }>([
      'add',
      '-i',
      'in1',
      '-g',
      '239.5.5.5',
      '-p',
      '5000',
      '-o',
      '239.6.6.6:6000:out0',
    ]).rule;
    assert.equal(later.state, 'waiting');
    assert.equal(later.reason, 'waiting for in1');

    ip([
      '-n',
      topo.sender,
      'link',
      'add',
      'eth1',
      'type',
      'veth',
      'peer',
      'name',
      'in1',
      'netns',
      topo.relay,
    ]);
    ip(['-n', topo.sender, 'addr', 'add', `10.${topo.net}.2.1/24`, 'dev', 'eth1']);
    ip(['-n', topo.sender, 'link', 'set', 'eth1', 'up']);
    ip(['-n', topo.relay, 'link', 'set', 'in1', 'up']);
    await waitFor('the rule to become active', () =>
      ruleState(relay, later.id)?.state === 'active' ? true : undefined,
    );

    const recv = await expectPackets(topo, 'eth0', '239.6.6.6', 6000, 500);
    const sent = topo.exec(topo.sender, BIN('mcrgen'), [
      ...['send', '--interface', 'eth1', '--group', '239.5.5.5', '--port', '5000'],
      ...['--rate', '1000', '--size', '200', '--count', '500'],
    ]);
    assert.equal(sent.code, 0, sent.stderr);
    assert.equal((await receiverReport(recv)).code, 0, recv.stderr);

    ip(['-n', topo.relay, 'link', 'del', 'in1']);
    await waitFor('the rule to wait again', () =>
      ruleState(relay, later.id)?.state === 'waiting' ? true : undefined,
    );
    assert.equal(ruleState(relay, rule.id)?.state, 'active', 'the other rule is untouched');
  } finally {
    topo.destroy();
  }
});

test('an input link taken down and up again resumes forwarding without restarting anything', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    const rule = relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0');
    const workerBefore = relay.mcrctlJson<{ workers: WorkerView[] }>(['workers']).workers[0]!;

    ip(['-n', topo.relay, 'link', 'set', 'in0', 'down']);
    await waitFor('the rule to show its link down', () =>
      ruleState(relay, rule.id)?.state === 'down' ? true : undefined,
    );
    assert.equal(ruleState(relay, rule.id)?.reason, 'in0 is down');
    ip(['-n', topo.relay, 'link', 'set', 'in0', 'up']);
    await waitFor('the rule to be active again', () =>
      ruleState(relay, rule.id)?.state === 'active' ? true : undefined,
    );

    const recv = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, 1000);
    send(topo, '239.1.1.1', 5000, { rate: 2000, size: 300, count: 1000 });
    assert.equal((await receiverReport(recv)).code, 0, recv.stderr);

    // The output link's address changes: its sockets are renewed, forwarding goes on.
    ip(['-n', topo.relay, 'addr', 'add', `10.${topo.net}.10.9/24`, 'dev', 'out0']);
    await waitFor('output sockets renewed', () =>
      /output attached: out0 addresses/.test(relay.daemon.stderr) ? true : undefined,
    );
    const again = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, 500);
    send(topo, '239.1.1.1', 5000, { rate: 2000, size: 300, count: 500 });
    assert.equal((await receiverReport(again)).code, 0, again.stderr);

    const workerAfter = relay.mcrctlJson<{ workers: WorkerView[] }>(['workers']).workers[0]!;
    assert.equal(workerAfter.pid, workerBefore.pid, 'the worker was not restarted');
    assert.equal(workerAfter.restarts, 0);
  } finally {
    topo.destroy();
  }
});

test('SIGTERM under traffic: clean exit, no process left behind, socket removed', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '2']);
    relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0');
    const workerPids = relay.mcrctlJson<{ workers: WorkerView[] }>(['workers']).workers.map((w) => w.pid!);
    const sender = topo.start(topo.sender, BIN('mcrgen'), [
      ...['send', '--interface', 'eth0', '--group', '239.1.1.1', '--port', '5000'],
      ...['--rate', '5000', '--size', '200', '--duration', '3'],
    ]);
    await waitFor('traffic', () =>
      /"forwarded": [1-9]/.test(relay.mcrctl(['--json', 'stats']).stdout) ? true : undefined,
    );
    const { code, signal } = await relay.stop();
    assert.equal(signal, null);
    assert.equal(code, 0, relay.daemon.stderr);
    assert.match(relay.daemon.stderr, /final counters/);
    for (const pid of workerPids) assert.equal(isAlive(pid), false, `worker ${pid} is gone`);
    assert.equal(existsSync(topo.socketPath), false, 'the control socket is removed');
    await sender.exited;
  } finally {
    topo.destroy();
  }
});

test('a second mcrd on the same socket refuses to start and leaves the first one serving', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    const second = topo.start(topo.relay, BIN('mcrd'), ['--socket', topo.socketPath, '--workers', '1']);
    const { code } = await second.exited;
    assert.equal(code, 1);
    assert.match(second.stderr, /E_ALREADY_RUNNING: another mcrd is already serving/);
    assert.equal(relay.mcrctl(['ping']).code, 0);
    assert.equal(existsSync(topo.socketPath), true);
  } finally {
    topo.destroy();
  }
});
