import { test } from 'node:test';
import assert from 'node:assert/strict';

import { parseSendOptions, type RawOptions } from '../../src/gen/options.js';
import { combineSendReports, splitSendOptions } from '../../src/gen/sender-group.js';
import type { SendReport } from '../../src/gen/sender.js';

const resolve = (name: string): number | undefined => (name === 'eth1' ? 4 : undefined);
const base: RawOptions = {
  interface: 'eth1',
  group: '239.1.2.3',
  port: '5000',
  rate: '1000',
  size: '64',
  count: '10',
  raw: true,
  threads: '3',
};

test('senders split the count (first ones take the remainder), the rate, and the stream ids', () => {
  const parts = splitSendOptions(parseSendOptions({ ...base, streams: '4' }, resolve), 0xfffffffe);
  assert.deepEqual(
    parts.map((o) => [o.stop, o.rate, o.streamId, o.senders]),
    [
      [{ kind: 'count', count: 4 }, 1000 / 3, 0xfffffffe, 1],
      [{ kind: 'count', count: 3 }, 1000 / 3, 2, 1],
      [{ kind: 'count', count: 3 }, 1000 / 3, 6, 1],
    ],
  );
  for (const o of parts) assert.equal(o.streams, 4);
  const timed = splitSendOptions(
    parseSendOptions({ ...base, count: undefined, duration: '5', rate: 'max' }, resolve),
    9,
  );
  assert.deepEqual(
    timed.map((o) => [o.stop, o.rate, o.streamId]),
    [
      [{ kind: 'duration', seconds: 5 }, 0, 9],
      [{ kind: 'duration', seconds: 5 }, 0, 10],
      [{ kind: 'duration', seconds: 5 }, 0, 11],
    ],
  );
});

function report(overrides: Partial<SendReport>): SendReport {
  return {
    mode: 'send',
    path: 'raw',
    interface: 'eth1',
    destination: '239.1.2.3',
    streams: 1,
    destinationRange: '239.1.2.3',
    port: 5000,
    streamId: 0,
    size: 64,
    targetRate: 500,
    stoppedBy: 'count',
    packets: 0,
    refused: 0,
    bytes: 0,
    elapsedSeconds: 0,
    pps: 0,
    payloadMbps: 0,
    retries: 0,
    partialSends: 0,
    sendErrors: {},
    boundToDevice: true,
    sendBufferBytes: 1,
    rtp: null,
    raw: null,
    senders: 1,
    perSender: null,
    ...overrides,
  };
}

test('the combined report sums the counts over the longest sender time and keeps each report', () => {
  const options = parseSendOptions({ ...base, threads: '2' }, resolve);
  const a = report({
    streamId: 7,
    packets: 6,
    refused: 1,
    bytes: 384,
    elapsedSeconds: 2,
    sendErrors: { ENOBUFS: 2 },
    retries: 2,
  });
  const b = report({
    streamId: 8,
    packets: 4,
    bytes: 256,
    elapsedSeconds: 1.6,
    sendErrors: { ENOBUFS: 1, EAGAIN: 3 },
    partialSends: 1,
  });
  const sum = combineSendReports(options, 7, [a, b]);
  assert.equal(sum.streamId, 7);
  assert.equal(sum.targetRate, 1000);
  assert.equal(sum.packets, 10);
  assert.equal(sum.refused, 1);
  assert.equal(sum.bytes, 640);
  assert.equal(sum.elapsedSeconds, 2);
  assert.equal(sum.pps, 5);
  assert.equal(sum.payloadMbps, (640 * 8) / 2 / 1e6);
  assert.deepEqual(sum.sendErrors, { ENOBUFS: 3, EAGAIN: 3 });
  assert.equal(sum.retries, 2);
  assert.equal(sum.partialSends, 1);
  assert.equal(sum.stoppedBy, 'count');
  assert.equal(sum.senders, 2);
  assert.deepEqual(sum.perSender, [a, b]);
  assert.equal(combineSendReports(options, 7, [a, { ...b, stoppedBy: 'signal' }]).stoppedBy, 'signal');
});
