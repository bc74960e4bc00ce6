import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RuleView, StatsView } from '../../src/protocol/control-api.js';
import { expectPackets, receiverReport, RelayHost, send } from '../helpers/relay-host.js';
import { waitFor } from '../helpers/processes.js';
import { ip, sleep, Topology } from '../helpers/topology.js';

// Raw egress (AF_PACKET with a header template) and socket egress (UDP) must put the same packet
// on the wire, apart from what differs between two outputs anyway (destination group, source
// port of each output's socket, IP id). tshark on the receiver reads both.

const FIELDS = [
  'ip.dst',
  'eth.src',
  'eth.dst',
  'ip.src',
  'ip.ttl',
  'ip.dsfield',
  'ip.flags.df',
  'ip.proto',
  'ip.len',
  'ip.checksum.status',
  'udp.srcport',
  'udp.dstport',
  'udp.length',
  'data',
] as const;
type Packet = Record<(typeof FIELDS)[number], string>;

test('raw and socket egress put identical packets on the wire; oversize payloads take the socket path', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    const rule = relay.addRule('239.1.1.1', 5000, '239.2.2.1:6000:out0:raw,239.2.2.2:6000:out0:socket');
    assert.deepEqual(
      rule.outputs.map((o) => [o.mode, o.path]),
      [
        ['raw', 'raw'],
        ['socket', 'socket'],
      ],
    );
    const capture = topo.start(topo.receiver, 'tshark', [
      ...['-i', 'eth0', '-f', 'udp and dst net 239.2.2.0/24', '-c', '200', '-l', '-n'],
      ...[
        '-o',
        'ip.check_checksum:TRUE',
        '-T',
        'fields',
        '-E',
        'separator=|',
        ...FIELDS.flatMap((f) => ['-e', f]),
      ],
    ]);
    await capture.waitForStderr('Capturing on', 15000);
    await sleep(300);
    send(topo, '239.1.1.1', 5000, { rate: 1000, size: 700, count: 100 });
    const { code } = await Promise.race([capture.exited, sleep(15000).then(() => ({ code: -1 }))]);
    assert.equal(code, 0, `tshark: ${capture.stderr}`);

    const packets = capture.stdout
      .trim()
      .split('\n')
      .map((line) => Object.fromEntries(line.split('|').map((v, i) => [FIELDS[i], v])) as Packet);
    const raw = packets.filter((p) => p['ip.dst'] === '239.2.2.1');
    const socket = packets.filter((p) => p['ip.dst'] === '239.2.2.2');
    assert.equal(raw.length, 100);
    assert.equal(socket.length, 100);
    const same = [
      'eth.src',
      'ip.src',
      'ip.ttl',
      'ip.dsfield',
      'ip.flags.df',
      'ip.proto',
      'ip.len',
      'udp.dstport',
      'udp.length',
      'data',
    ] as const;
    for (let i = 0; i < 100; i++) {
      for (const field of same) assert.equal(raw[i]![field], socket[i]![field], `packet ${i} ${field}`);
      assert.equal(raw[i]!['eth.dst'], '01:00:5e:02:02:01');
      assert.equal(socket[i]!['eth.dst'], '01:00:5e:02:02:02');
      assert.equal(raw[i]!['ip.checksum.status'], '1', `packet ${i}: the raw path's IPv4 checksum verifies`);
      assert.notEqual(raw[i]!['udp.srcport'], '0');
    }

    // Payloads above what the output link's MTU carries go through the socket path, which
    // fragments them; the receiver still gets every one intact.
    ip(['-n', topo.relay, 'link', 'set', 'out0', 'mtu', '1000']);
    ip(['-n', topo.receiver, 'link', 'set', 'eth0', 'mtu', '1000']);
    await sleep(200);
    const big = await expectPackets(topo, 'eth0', '239.2.2.1', 6000, 50);
    send(topo, '239.1.1.1', 5000, { rate: 1000, size: 1200, count: 50 });
    assert.equal((await receiverReport(big)).code, 0, big.stderr);
    const stats = await relay.statsAfter((s) => s.rules[0]!.counters.outputs[0]!.packets === 150);
    const out = stats.rules[0]!.counters.outputs[0]!;
    assert.equal(out.packets, 150);
    assert.equal(out.raw, 100, 'the 50 oversize copies took the socket path');
    assert.equal(relay.mcrctlJson<StatsView>(['stats']).rules[0]!.counters.outputs[1]!.raw, 0);
  } finally {
    topo.destroy();
  }
});

test('auto picks raw on an Ethernet link; forcing raw where it cannot apply is refused', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    const auto = relay.addRule('239.1.1.1', 5000, `239.2.2.1:6000:out0,${topo.receiverAddress(0)}:7000:out0`);
    assert.deepEqual(
      auto.outputs.map((o) => o.path),
      ['raw', 'socket'],
    );
    const refused = relay.mcrctl([
      'add',
      '-i',
      'in0',
      '-g',
      '239.1.1.2',
      '-p',
      '5000',
      '-o',
      `${topo.receiverAddress(0)}:7000:out0:raw`,
    ]);
    assert.equal(refused.code, 2, 'a raw unicast output cannot be valid: bad usage');
    assert.match(refused.stderr, /E_RAW_UNSUPPORTED: outputs\[0\]\.mode raw/);
    // A link without an IPv4 address cannot source packets: its outputs wait for one (raw or
    // auto alike), and take their path once it is there.
    ip(['-n', topo.relay, 'addr', 'flush', 'dev', 'out0']);
    await sleep(200);
    const waiting = relay.mcrctlJson<{ rule: RuleView }>([
      ...['add', '-i', 'in0', '-g', '239.1.1.3', '-p', '5000'],
      ...['-o', '239.2.2.3:6000:out0:raw,239.2.2.4:6000:out0'],
    ]).rule;
    assert.equal(waiting.state, 'waiting');
    assert.equal(waiting.reason, 'out0 has no IPv4 address');
    assert.deepEqual(
      waiting.outputs.map((o) => [o.state, o.path]),
      [
        ['waiting', null],
        ['waiting', null],
      ],
    );
    ip(['-n', topo.relay, 'addr', 'add', `10.${topo.net}.10.1/24`, 'dev', 'out0']);
    const ready = await waitFor('the outputs to attach', () => {
      const rule = relay.mcrctlJson<{ rules: RuleView[] }>(['list']).rules.find((r) => r.id === waiting.id);
      return rule?.state === 'active' ? rule : undefined;
    });
    assert.deepEqual(
      ready.outputs.map((o) => o.path),
      ['raw', 'raw'],
    );
  } finally {
    topo.destroy();
  }
});
