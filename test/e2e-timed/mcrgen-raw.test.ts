import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SendReport } from '../../src/gen/sender.js';
import { receiverReport, startReceiver } from '../helpers/relay-host.js';
import { BIN, ip, sleep, Topology, type RunningProcess } from '../helpers/topology.js';

// mcrgen send --raw alone, no relay: whole frames from the sender's eth0 on an AF_PACKET socket
// straight to mcrgen recv on the other end of the link (the relay namespace's in0), which checks
// every probe as it does for the socket path. Each test builds its own namespaces (Topology:
// names unique per process and call) and removes them in `finally`.

const PORT = 5000;

function sendRaw(
  topo: Topology,
  args: string[],
): { code: number; report: SendReport | undefined; stderr: string } {
  const r = topo.exec(topo.sender, BIN('mcrgen'), [
    ...['send', '--interface', 'eth0', '--port', String(PORT), '--raw', '--json'],
    ...args,
  ]);
  return {
    code: r.code,
    report: r.code === 0 ? (JSON.parse(r.stdout) as SendReport) : undefined,
    stderr: r.stderr,
  };
}

function mustSend(topo: Topology, args: string[]): SendReport {
  const r = sendRaw(topo, args);
  assert.equal(r.code, 0, `mcrgen send --raw: ${r.stderr}`);
  return r.report!;
}

function receive(topo: Topology, group: string, count: number): Promise<RunningProcess> {
  return startReceiver(topo, topo.relay, [
    ...['--interface', 'in0', '--group', group, '--port', String(PORT)],
    ...['--count', String(count), '--timeout', '30', '--expect', String(count)],
  ]);
}

function macOf(topo: Topology, ns: string, link: string): string {
  return topo.exec(ns, 'cat', [`/sys/class/net/${link}/address`]).stdout.trim();
}

test('mcrgen send --raw: an exact count of paced frames arrives intact, in order, at the rate asked', async () => {
  const topo = new Topology();
  try {
    const recv = await receive(topo, '239.1.1.1', 20000);
    const before = topo.linkStats(topo.relay, 'in0').rxPackets;
    const sent = mustSend(topo, [
      ...[
        '--group',
        '239.1.1.1',
        '--rate',
        '20000',
        '--size',
        '200',
        '--count',
        '20000',
        '--stream-id',
        '77',
      ],
    ]);
    assert.equal(sent.path, 'raw');
    assert.equal(sent.packets, 20000);
    assert.equal(sent.refused, 0);
    assert.equal(sent.stoppedBy, 'count');
    assert.equal(sent.streamId, 77);
    assert.deepEqual(sent.raw, {
      sourceMac: macOf(topo, topo.sender, 'eth0'),
      destinationMac: '01:00:5e:01:01:01',
      sourceAddress: topo.senderAddress(),
      sourcePort: sent.raw!.sourcePort,
      ttl: 16,
      qdiscBypass: true,
      dropWhenFull: false,
    });
    // Paced from elapsed time: 20000 packets at 20000 pps take one second.
    assert.ok(Math.abs(sent.pps - 20000) < 400, `paced at ${sent.pps} pps`);

    const { code, report } = await receiverReport(recv);
    assert.equal(code, 0, recv.stderr);
    assert.equal(report.totals.unique, 20000);
    assert.equal(report.totals.lost, 0);
    assert.equal(report.totals.duplicates, 0);
    assert.equal(report.totals.reordered, 0);
    assert.equal(report.totals.corrupted, 0);
    assert.equal(report.kernelDrops, 0);
    assert.deepEqual(
      report.streams.map((s) => [s.streamId, s.received, s.highestSeq]),
      [[77, 20000, 19999]],
    );
    // Link chatter (IPv6 neighbour discovery) may add a few frames, nothing more.
    const arrived = topo.linkStats(topo.relay, 'in0').rxPackets - before;
    assert.ok(arrived >= 20000 && arrived < 20010, `in0 counted ${arrived} frames`);
  } finally {
    topo.destroy();
  }
});

test('mcrgen send --raw: frames on the wire are well-formed, checksums included (tshark)', async () => {
  const topo = new Topology();
  const fields = [
    ...['eth.src', 'eth.dst', 'ip.src', 'ip.dst', 'ip.ttl', 'ip.flags.df', 'ip.id', 'ip.len'],
    ...['ip.checksum.status', 'udp.srcport', 'udp.dstport', 'udp.length', 'udp.checksum.status', 'frame.len'],
  ];
  try {
    const capture = topo.start(topo.relay, 'tshark', [
      ...['-i', 'in0', '-f', 'udp and dst host 239.1.1.2', '-c', '200', '-l', '-n'],
      ...[
        '-o',
        'ip.check_checksum:TRUE',
        '-o',
        'udp.check_checksum:TRUE',
        '-T',
        'fields',
        '-E',
        'separator=|',
      ],
      ...fields.flatMap((f) => ['-e', f]),
    ]);
    await capture.waitForStderr('Capturing on', 15000);
    await sleep(300);
    // An odd payload size exercises the UDP checksum's padding byte.
    mustSend(topo, [
      ...['--group', '239.1.1.2', '--rate', '2000', '--size', '101', '--count', '200'],
      ...['--ttl', '9', '--source-port', '40001'],
    ]);
    const { code } = await Promise.race([capture.exited, sleep(15000).then(() => ({ code: -1 }))]);
    assert.equal(code, 0, `tshark: ${capture.stderr}`);
    const rows = capture.stdout.trim().split('\n');
    assert.equal(rows.length, 200);
    const expected = [
      ...[macOf(topo, topo.sender, 'eth0'), '01:00:5e:01:01:02', topo.senderAddress(), '239.1.1.2'],
      ...['9', '1', '0x0000', String(20 + 8 + 101), '1', '40001', String(PORT), String(8 + 101), '1'],
      String(14 + 20 + 8 + 101),
    ];
    for (const [i, row] of rows.entries()) {
      const got = row.split('|');
      for (const [k, field] of fields.entries()) assert.equal(got[k], expected[k], `frame ${i}: ${field}`);
    }
  } finally {
    topo.destroy();
  }
});

test('mcrgen send --raw to a unicast host with --destination-mac; what --raw cannot do is refused', async () => {
  const topo = new Topology();
  try {
    const host = `10.${topo.net}.1.2`;
    const recv = await receive(topo, host, 5000);
    const sent = mustSend(topo, [
      ...['--group', host, '--destination-mac', macOf(topo, topo.relay, 'in0')],
      ...['--rate', '10000', '--size', '64', '--count', '5000'],
    ]);
    assert.equal(sent.packets, 5000);
    const { code, report } = await receiverReport(recv);
    assert.equal(code, 0, recv.stderr);
    assert.equal(report.totals.unique, 5000);

    const tooBig = sendRaw(topo, ['--group', '239.1.1.1', '--rate', '10', '--size', '1473', '--count', '1']);
    assert.equal(tooBig.code, 2);
    assert.match(tooBig.stderr, /--size: 1473 bytes do not fit one frame on eth0 \(MTU 1500: at most 1472/);
    ip(['-n', topo.sender, 'addr', 'flush', 'dev', 'eth0']);
    const noAddress = sendRaw(topo, ['--group', '239.1.1.1', '--rate', '10', '--size', '64', '--count', '1']);
    assert.equal(noAddress.code, 2);
    assert.match(noAddress.stderr, /--raw: eth0 has no IPv4 address to send from/);
  } finally {
    topo.destroy();
  }
});

test('mcrgen send --raw --threads 2: two senders, each its own clean stream, counts summed', async () => {
  const topo = new Topology();
  try {
    const recv = await receive(topo, '239.1.1.1', 10000);
    const sent = mustSend(topo, [
      ...['--group', '239.1.1.1', '--rate', '20000', '--size', '64', '--count', '10000'],
      ...['--stream-id', '100', '--threads', '2'],
    ]);
    assert.equal(sent.senders, 2);
    assert.equal(sent.packets, 10000);
    assert.deepEqual(
      sent.perSender!.map((r) => [r.streamId, r.packets]),
      [
        [100, 5000],
        [101, 5000],
      ],
    );
    const { code, report } = await receiverReport(recv);
    assert.equal(code, 0, recv.stderr);
    assert.deepEqual(
      report.streams.map((s) => [s.streamId, s.unique, s.lost, s.corrupted]).sort((a, b) => a[0]! - b[0]!),
      [
        [100, 5000, 0, 0],
        [101, 5000, 0, 0],
      ],
    );
  } finally {
    topo.destroy();
  }
});
