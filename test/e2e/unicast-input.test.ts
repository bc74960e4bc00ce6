import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expectPackets, receiverReport, RelayHost, send, workerTotals } from '../helpers/relay-host.js';
import { Topology } from '../helpers/topology.js';

// A unicast input relays traffic addressed to the relay host itself. The host must stay quiet
// about it (no ICMP port unreachable to the sender), and rules that cannot work are refused.

/** One field of the Icmp line of /proc/net/snmp in a namespace. */
function icmpCounter(topo: Topology, ns: string, field: string): number {
  const lines = topo
    .exec(ns, 'cat', ['/proc/net/snmp'])
    .stdout.split('\n')
    .filter((l) => l.startsWith('Icmp:'));
  const names = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/);
  return Number(values[names.indexOf(field)]);
}

test('a unicast input is relayed without the host answering ICMP port unreachable', async () => {
  const topo = new Topology({ net: 99 });
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    const relayAddress = `10.${topo.net}.1.2`;
    relay.addRule(relayAddress, 5000, '239.2.2.1:6000:out0', ['--unicast-input']);
    const sentBefore = icmpCounter(topo, topo.relay, 'OutDestUnreachs');
    const receivedBefore = icmpCounter(topo, topo.sender, 'InDestUnreachs');
    const recv = await expectPackets(topo, 'eth0', '239.2.2.1', 6000, 300);
    send(topo, relayAddress, 5000, { rate: 1000, size: 200, count: 300 });
    assert.equal((await receiverReport(recv)).code, 0, recv.stderr);
    const stats = await relay.statsAfter((s) => workerTotals(s).forwarded >= 300);
    assert.equal(workerTotals(stats).forwarded, 300);
    assert.equal(icmpCounter(topo, topo.relay, 'OutDestUnreachs') - sentBefore, 0, 'the relay sent no ICMP');
    assert.equal(icmpCounter(topo, topo.sender, 'InDestUnreachs') - receivedBefore, 0, 'the sender got none');

    // Removing the rule gives the port back: the host answers as any host would.
    assert.equal(relay.mcrctl(['remove', '--rule-id', stats.rules[0]!.id]).code, 0);
    send(topo, relayAddress, 5000, { rate: 1000, size: 200, count: 10 });
    assert.ok(icmpCounter(topo, topo.relay, 'OutDestUnreachs') - sentBefore > 0);
  } finally {
    topo.destroy();
  }
});

test('a unicast input on an address the host does not have, or looped to itself, is refused', async () => {
  const topo = new Topology({ net: 89 });
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    const notMine = relay.mcrctl([
      ...[
        'add',
        '-i',
        'in0',
        '-g',
        '10.89.1.77',
        '-p',
        '5000',
        '-o',
        '239.2.2.1:6000:out0',
        '--unicast-input',
      ],
    ]);
    assert.equal(notMine.code, 1, notMine.stderr);
    assert.match(
      notMine.stderr,
      /E_NOT_LOCAL_ADDRESS: input-group 10\.89\.1\.77 is not an address of this host/,
    );
    const looped = relay.mcrctl([
      ...['add', '-i', 'in0', '-g', '10.89.1.2', '-p', '5000', '-o', '10.89.1.2:5000', '--unicast-input'],
    ]);
    assert.equal(looped.code, 2, looped.stderr);
    assert.match(looped.stderr, /E_LOOP: outputs\[0\] 10\.89\.1\.2:5000 is the rule's own input/);
    assert.deepEqual(relay.mcrctlJson<{ rules: unknown[] }>(['list']).rules, []);
  } finally {
    topo.destroy();
  }
});
