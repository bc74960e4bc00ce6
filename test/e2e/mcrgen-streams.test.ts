import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StreamReport } from '../../src/gen/report.js';
import type { SendReport } from '../../src/gen/sender.js';
import { receiverReport, startReceiver } from '../helpers/relay-host.js';
import { BIN, Topology, type RunningProcess } from '../helpers/topology.js';

// mcrgen alone, no relay: `send --streams` from the sender's eth0 straight to receivers on the
// other end of the link (the relay namespace's in0). A veth link at 20k pps is lossless, so
// every stream must arrive complete and in order.

const PORT = 5000;
const BASE_ID = 4294967294; // ids wrap: 4294967294, 4294967295, 0, 1, 2

/** `mcrgen recv --streams` in the relay namespace on in0; exits 0 only with exactly `count` packets. */
function receive(topo: Topology, group: string, streams: number, count: number): Promise<RunningProcess> {
  return startReceiver(topo, topo.relay, [
    ...['--interface', 'in0', '--group', group, '--streams', String(streams), '--port', String(PORT)],
    ...['--count', String(count), '--timeout', '30', '--expect', String(count)],
  ]);
}

function sendStreams(topo: Topology, streams: number, count: number): SendReport {
  const r = topo.exec(topo.sender, BIN('mcrgen'), [
    ...['send', '--interface', 'eth0', '--group', '239.1.1.1', '--streams', String(streams)],
    ...['--port', String(PORT), '--rate', '20000', '--size', '200', '--count', String(count)],
    ...['--stream-id', String(BASE_ID), '--json'],
  ]);
  assert.equal(r.code, 0, `mcrgen send: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as SendReport;
}

/** Each stream id in `ids` arrived exactly `each` times, sequences 0..each-1, nothing else wrong. */
function assertCleanStreams(streams: StreamReport[], ids: number[], each: number): void {
  assert.deepEqual(
    streams.map((s) => s.streamId).sort((a, b) => a - b),
    [...ids].sort((a, b) => a - b),
  );
  for (const s of streams) {
    const what = `stream ${s.streamId}`;
    assert.equal(s.received, each, what);
    assert.equal(s.unique, each, what);
    assert.equal(s.highestSeq, each - 1, what);
    assert.equal(s.lost, 0, what);
    assert.equal(s.duplicates, 0, what);
    assert.equal(s.reordered, 0, what);
    assert.equal(s.corrupted, 0, what);
  }
}

test('mcrgen send --streams 5: one sender, five clean streams to five consecutive groups', async () => {
  const topo = new Topology();
  try {
    const all = await receive(topo, '239.1.1.1', 5, 5000);
    // A plain single-group receiver sees only its own group's stream.
    const third = await receive(topo, '239.1.1.3', 1, 1000);

    const sent = sendStreams(topo, 5, 5000);
    assert.equal(sent.packets, 5000);
    assert.equal(sent.streams, 5);
    assert.equal(sent.destination, '239.1.1.1');
    assert.equal(sent.destinationRange, '239.1.1.1-239.1.1.5');
    assert.equal(sent.streamId, BASE_ID);
    assert.equal(sent.stoppedBy, 'count');

    const { code, report } = await receiverReport(all);
    assert.equal(code, 0, all.stderr);
    assert.equal(report.groups, 5);
    assert.equal(report.groupRange, '239.1.1.1-239.1.1.5');
    assert.equal(report.totals.unique, 5000);
    assert.equal(report.kernelDrops, 0);
    assertCleanStreams(report.streams, [4294967294, 4294967295, 0, 1, 2], 1000);

    const one = await receiverReport(third);
    assert.equal(one.code, 0, third.stderr);
    assertCleanStreams(one.report.streams, [0], 1000);
  } finally {
    topo.destroy();
  }
});

test('mcrgen recv --streams spreads its joins over sockets and takes only the groups it joined', async () => {
  const topo = new Topology();
  try {
    // Two groups per socket: three groups need two sockets.
    topo.sysctl(topo.relay, 'net.ipv4.igmp_max_memberships', '2');
    const low = await receive(topo, '239.1.1.1', 3, 3000);
    const high = await receive(topo, '239.1.1.4', 2, 2000);

    assert.equal(sendStreams(topo, 5, 5000).packets, 5000);

    const a = await receiverReport(low);
    assert.equal(a.code, 0, low.stderr);
    assert.equal(a.report.groupRange, '239.1.1.1-239.1.1.3');
    assert.equal(a.report.totals.datagrams, 3000);
    assertCleanStreams(a.report.streams, [4294967294, 4294967295, 0], 1000);

    const b = await receiverReport(high);
    assert.equal(b.code, 0, high.stderr);
    assert.equal(b.report.groupRange, '239.1.1.4-239.1.1.5');
    assert.equal(b.report.totals.datagrams, 2000);
    assertCleanStreams(b.report.streams, [1, 2], 1000);
  } finally {
    topo.destroy();
  }
});
