import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  checkExpectation,
  formatRecvText,
  formatSendText,
  summarizeReceive,
  type ReceiveSummaryInput,
} from '../../src/gen/report.js';
import type { SendReport } from '../../src/gen/sender.js';
import { StreamTable } from '../../src/gen/sequence-tracker.js';

function input(table: StreamTable, over: Partial<ReceiveSummaryInput> = {}): ReceiveSummaryInput {
  return {
    interfaceName: 'vb',
    group: 0xef090909,
    groups: 1,
    port: 5000,
    stoppedBy: 'count',
    elapsedSeconds: 1,
    countTarget: 100,
    datagrams: 0,
    bytes: 0,
    goodSpanSeconds: 0.99,
    corrupted: new Map(),
    streams: table.all(),
    kernelDrops: 0,
    receiveBufferBytes: 1 << 20,
    boundToDevice: true,
    expect: undefined,
    ...over,
  };
}

test('a clean run: totals add up and --expect holds', () => {
  const table = new StreamTable();
  for (let i = 0; i < 100; i++) table.get(5).recordGood(i, 100, 10 + (i % 3));
  const r = summarizeReceive(input(table, { datagrams: 100, bytes: 10000, expect: 100 }));
  assert.equal(r.group, '239.9.9.9');
  assert.equal(r.totals.good, 100);
  assert.equal(r.totals.unique, 100);
  assert.equal(r.totals.lost, 0);
  assert.ok(Math.abs(r.totals.pps - 100) < 1e-9);
  assert.deepEqual(r.totals.latencyUs, { minUs: 10, avgUs: 11, maxUs: 12 });
  assert.deepEqual(r.expect, { packets: 100, ok: true, problems: [] });
  assert.equal(r.streams[0]!.highestSeq, 99);
  assert.equal(r.timedOut, false);
  const text = formatRecvText(r);
  assert.match(text, /^mcrgen recv: 239\.9\.9\.9:5000 on vb/);
  assert.match(text, /expect 100: OK/);
  assert.doesNotThrow(() => JSON.parse(JSON.stringify(r)));
});

test('--expect lists every problem', () => {
  const table = new StreamTable();
  for (const s of [0, 1, 1, 3]) table.get(1).recordGood(s, 64, 5);
  const corrupted = new Map([['bad_checksum', 2]]);
  const r = summarizeReceive(input(table, { corrupted, expect: 4, stoppedBy: 'timeout' }));
  assert.equal(r.timedOut, true);
  assert.equal(r.expect?.ok, false);
  assert.deepEqual(r.expect?.problems, [
    'received 3 unique good packets, expected 4',
    '1 lost (gaps in the sequence numbers)',
    '1 duplicates',
    '2 corrupted (bad_checksum 2)',
  ]);
  assert.match(formatRecvText(r), /TIMED OUT/);
});

test('totals sum over streams; no packets gives null latency', () => {
  const table = new StreamTable();
  table.get(1).recordGood(0, 10, 1);
  table.get(2).recordGood(1, 10, 9);
  const r = summarizeReceive(input(table));
  assert.equal(r.totals.streams, 2);
  assert.equal(r.totals.lost, 1);
  assert.deepEqual(r.totals.latencyUs, { minUs: 1, avgUs: 5, maxUs: 9 });
  const empty = summarizeReceive(input(new StreamTable(), { goodSpanSeconds: 0 }));
  assert.equal(empty.totals.latencyUs, null);
  assert.equal(empty.totals.pps, 0);
  assert.equal(checkExpectation(empty.totals, 0).ok, true);
});

test('send report text', () => {
  const report: SendReport = {
    mode: 'send',
    path: 'socket',
    interface: 'va',
    destination: '239.9.9.9',
    streams: 1,
    destinationRange: '239.9.9.9',
    port: 5000,
    streamId: 7,
    size: 1316,
    targetRate: 'max',
    stoppedBy: 'duration',
    packets: 10,
    refused: 0,
    bytes: 13160,
    elapsedSeconds: 0.5,
    pps: 20,
    payloadMbps: 0.2,
    retries: 2,
    partialSends: 1,
    sendErrors: { ENOBUFS: 1 },
    boundToDevice: false,
    sendBufferBytes: 1,
    rtp: null,
    raw: null,
    senders: 1,
    perSender: null,
  };
  const text = formatSendText(report);
  assert.match(text, /10 packets of 1316 bytes to 239\.9\.9\.9:5000 via va/);
  assert.match(text, /as fast as possible/);
  assert.match(text, /ENOBUFS 1/);
  assert.match(text, /not bound to the device/);
  assert.match(text, /, stream 7, stopped/);

  const many = formatSendText({
    ...report,
    streams: 100,
    destinationRange: '239.1.1.1-239.1.1.100',
    streamId: 0xfffffffe,
  });
  assert.match(
    many,
    /to 239\.1\.1\.1-239\.1\.1\.100:5000 via va, 100 streams \(ids 4294967294-97, round-robin\)/,
  );
  assert.doesNotMatch(text, /rtp/);
  assert.doesNotMatch(text, /raw frames/);
  const raw = formatSendText({
    ...report,
    path: 'raw',
    packets: 9,
    refused: 1,
    boundToDevice: true,
    raw: {
      sourceMac: '02:00:00:00:00:01',
      destinationMac: '01:00:5e:09:09:09',
      sourceAddress: '10.1.1.1',
      sourcePort: 40000,
      ttl: 16,
      qdiscBypass: true,
      dropWhenFull: true,
    },
  });
  assert.match(
    raw,
    /raw frames 02:00:00:00:00:01 10\.1\.1\.1:40000 > 01:00:5e:09:09:09, ttl 16, through an AF_PACKET socket, qdisc bypassed; packets are the frames the kernel accepted, 1 refused by a full device queue and dropped \(10\.00 % of 10 offered\)/,
  );
  assert.doesNotMatch(raw, /not bound/);
  const group = formatSendText({ ...report, streams: 3, senders: 2, streamId: 10 });
  assert.match(group, /6 streams \(ids 10-15, round-robin from each of 2 senders\)/);
  const rtp = formatSendText({
    ...report,
    rtp: {
      ssrc: 7,
      payloadType: 96,
      firstSequence: 65000,
      lastSequence: 2468,
      injected: { gaps: 4, lost: 16, duplicates: 11, reordered: 7 },
    },
  });
  assert.match(
    rtp,
    /rtp: ssrc 7, payload type 96, sequence 65000 to 2468; injected: 4 gaps \(16 numbers lost\), 11 duplicates, 7 reordered/,
  );
});

test('recv report over several groups names the range', () => {
  const table = new StreamTable();
  for (let k = 0; k < 5; k++) table.get(k).recordGood(0, 64, 1);
  const r = summarizeReceive(input(table, { group: 0xef0101ff, groups: 5 }));
  assert.equal(r.group, '239.1.1.255');
  assert.equal(r.groups, 5);
  assert.equal(r.groupRange, '239.1.1.255-239.1.2.3');
  assert.equal(r.totals.streams, 5);
  assert.match(formatRecvText(r), /^mcrgen recv: 239\.1\.1\.255-239\.1\.2\.3:5000 \(5 groups\) on vb/);
  assert.match(formatRecvText(r), /kernel drops on its sockets: 0; receive buffer 1048576 bytes each/);
  const one = summarizeReceive(input(table));
  assert.equal(one.groupRange, '239.9.9.9');
  assert.match(formatRecvText(one), /^mcrgen recv: 239\.9\.9\.9:5000 on vb/);
});
