import { test } from 'node:test';
import assert from 'node:assert/strict';

import { OptionError, parseRecvOptions, parseSendOptions, type RawOptions } from '../../src/gen/options.js';

const resolve = (name: string): number | undefined => (name === 'eth1' ? 4 : undefined);

const send: RawOptions = {
  interface: 'eth1',
  group: '239.1.2.3',
  port: '5000',
  rate: '20000',
  size: '1316',
  count: '10000',
};
const recv: RawOptions = { interface: 'eth1', group: '239.1.2.3', port: '5000', count: '10' };

function rejects(fn: () => unknown, field: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof OptionError, String(err));
    assert.equal(err.field, field);
    assert.match(err.detail, pattern);
    assert.equal(err.message, `${field}: ${err.detail}`);
    return true;
  });
}

test('send: a full valid command line', () => {
  const o = parseSendOptions(
    { ...send, ttl: '3', streamId: '0x10', sourcePort: '4000', json: true },
    resolve,
  );
  assert.deepEqual(o, {
    interfaceName: 'eth1',
    ifindex: 4,
    group: 0xef010203,
    multicast: true,
    streams: 1,
    port: 5000,
    stop: { kind: 'count', count: 10000 },
    json: true,
    rate: 20000,
    size: 1316,
    ttl: 3,
    streamId: 16,
    sourcePort: 4000,
    rtp: undefined,
    raw: undefined,
    senders: 1,
  });
});

test('send --raw: its options, and the ones that only apply with it', () => {
  // commander passes qdiscBypass: true unless --no-qdisc-bypass was given.
  const o = parseSendOptions({ ...send, raw: true, qdiscBypass: true }, resolve);
  assert.deepEqual(o.raw, { destinationMac: undefined, qdiscBypass: true, dropWhenFull: false });
  const all = parseSendOptions(
    { ...send, raw: true, qdiscBypass: false, dropWhenFull: true, destinationMac: '02-AA-bb-cc-dd-0E' },
    resolve,
  );
  assert.deepEqual(all.raw, { destinationMac: '02:aa:bb:cc:dd:0e', qdiscBypass: false, dropWhenFull: true });
  const unicast = parseSendOptions(
    { ...send, group: '10.0.0.2', raw: true, destinationMac: '02:00:00:00:00:02' },
    resolve,
  );
  assert.equal(unicast.raw?.destinationMac, '02:00:00:00:00:02');

  rejects(
    () => parseSendOptions({ ...send, group: '10.0.0.2', raw: true }, resolve),
    '--destination-mac',
    /required with --raw for a unicast --group/,
  );
  rejects(
    () => parseSendOptions({ ...send, raw: true, destinationMac: '02:00:00:00:00' }, resolve),
    '--destination-mac',
    /not a MAC address/,
  );
  rejects(
    () => parseSendOptions({ ...send, destinationMac: '02:00:00:00:00:02' }, resolve),
    '--destination-mac',
    /only applies with --raw/,
  );
  rejects(
    () => parseSendOptions({ ...send, dropWhenFull: true }, resolve),
    '--drop-when-full',
    /only applies with --raw/,
  );
  rejects(
    () => parseSendOptions({ ...send, qdiscBypass: false }, resolve),
    '--no-qdisc-bypass',
    /only applies with --raw/,
  );
  rejects(
    () => parseSendOptions({ ...send, raw: true, rtp: true, size: '200' }, resolve),
    '--rtp',
    /UDP socket only; leave out --raw/,
  );
});

test('send --threads: how many senders, and what cannot be shared', () => {
  assert.equal(parseSendOptions({ ...send, threads: '3' }, resolve).senders, 3);
  rejects(() => parseSendOptions({ ...send, threads: '65' }, resolve), '--threads', /1-64/);
  rejects(() => parseSendOptions({ ...send, threads: '0' }, resolve), '--threads', /out of range/);
  rejects(
    () => parseSendOptions({ ...send, count: '2', threads: '3' }, resolve),
    '--threads',
    /3 senders cannot share --count 2/,
  );
  rejects(
    () => parseSendOptions({ ...send, rtp: true, threads: '2', size: '200' }, resolve),
    '--rtp',
    /not one per sender; leave --threads out/,
  );
});

test('send: defaults and alternatives', () => {
  const o = parseSendOptions(
    { ...send, count: undefined, duration: '2.5', rate: 'max', group: '10.0.0.2' },
    resolve,
  );
  assert.equal(o.rate, 0);
  assert.equal(o.ttl, 16);
  assert.equal(o.streamId, undefined);
  assert.equal(o.sourcePort, undefined);
  assert.equal(o.multicast, false);
  assert.equal(o.json, false);
  assert.deepEqual(o.stop, { kind: 'duration', seconds: 2.5 });
  assert.equal(parseSendOptions({ ...send, rate: '0' }, resolve).rate, 0);
  assert.equal(parseSendOptions({ ...send, rate: '0.5' }, resolve).rate, 0.5);
  assert.equal(parseSendOptions({ ...send, size: '32' }, resolve).size, 32);
  assert.equal(parseSendOptions({ ...send, size: '65507' }, resolve).size, 65507);
  assert.equal(parseSendOptions({ ...send, streamId: '4294967295' }, resolve).streamId, 0xffffffff);
});

test('send: bad values name the option and what is expected', () => {
  rejects(() => parseSendOptions({ ...send, interface: undefined }, resolve), '--interface', /required/);
  rejects(
    () => parseSendOptions({ ...send, interface: 'eth9' }, resolve),
    '--interface',
    /no interface named "eth9"/,
  );
  rejects(() => parseSendOptions({ ...send, group: undefined }, resolve), '--group', /required/);
  rejects(() => parseSendOptions({ ...send, group: '239.1.2' }, resolve), '--group', /not an IPv4 address/);
  rejects(() => parseSendOptions({ ...send, group: '239.01.2.3' }, resolve), '--group', /dotted quad/);
  rejects(() => parseSendOptions({ ...send, group: '0.0.0.0' }, resolve), '--group', /cannot be used/);
  rejects(
    () => parseSendOptions({ ...send, group: '255.255.255.255' }, resolve),
    '--group',
    /cannot be used/,
  );
  rejects(
    () => parseSendOptions({ ...send, port: '0' }, resolve),
    '--port',
    /out of range; expected an integer 1-65535/,
  );
  rejects(() => parseSendOptions({ ...send, port: '65536' }, resolve), '--port', /out of range/);
  rejects(() => parseSendOptions({ ...send, port: 'http' }, resolve), '--port', /not an integer/);
  rejects(() => parseSendOptions({ ...send, port: undefined }, resolve), '--port', /required/);
  rejects(() => parseSendOptions({ ...send, size: '31' }, resolve), '--size', /32-65507/);
  rejects(() => parseSendOptions({ ...send, size: '65508' }, resolve), '--size', /out of range/);
  rejects(() => parseSendOptions({ ...send, size: undefined }, resolve), '--size', /required/);
  rejects(() => parseSendOptions({ ...send, rate: '-1' }, resolve), '--rate', /negative/);
  rejects(() => parseSendOptions({ ...send, rate: 'fast' }, resolve), '--rate', /not a number/);
  rejects(() => parseSendOptions({ ...send, rate: undefined }, resolve), '--rate', /required/);
  rejects(() => parseSendOptions({ ...send, ttl: '256' }, resolve), '--ttl', /0-255/);
  rejects(
    () => parseSendOptions({ ...send, streamId: '4294967296' }, resolve),
    '--stream-id',
    /0-4294967295/,
  );
  rejects(() => parseSendOptions({ ...send, sourcePort: '0' }, resolve), '--source-port', /1-65535/);
  rejects(() => parseSendOptions({ ...send, count: '0' }, resolve), '--count', /out of range/);
  rejects(() => parseSendOptions({ ...send, count: '1.5' }, resolve), '--count', /not an integer/);
  rejects(() => parseSendOptions({ ...send, count: undefined }, resolve), '--count/--duration', /neither/);
  rejects(() => parseSendOptions({ ...send, duration: '3' }, resolve), '--count/--duration', /both/);
  rejects(() => parseSendOptions({ ...send, count: undefined, duration: '0' }, resolve), '--duration', /> 0/);
  rejects(
    () => parseSendOptions({ ...send, count: undefined, duration: '1e3' }, resolve),
    '--duration',
    /not a number/,
  );
  rejects(
    () => parseSendOptions({ ...send, count: undefined, duration: '9999999' }, resolve),
    '--duration',
    /out of range/,
  );
});

test('recv: valid command lines', () => {
  const o = parseRecvOptions({ ...recv, timeout: '20', expect: '10', maxSize: '9000' }, resolve);
  assert.deepEqual(o, {
    interfaceName: 'eth1',
    ifindex: 4,
    group: 0xef010203,
    multicast: true,
    streams: 1,
    port: 5000,
    stop: { kind: 'count', count: 10 },
    json: false,
    timeoutSeconds: 20,
    expect: 10,
    maxSize: 9000,
    rtp: false,
  });
  const d = parseRecvOptions({ ...recv, count: undefined, duration: '5', group: '10.77.0.2' }, resolve);
  assert.equal(d.maxSize, 2048);
  assert.equal(d.multicast, false);
  assert.equal(d.timeoutSeconds, undefined);
  assert.equal(d.expect, undefined);
  assert.equal(parseRecvOptions({ ...recv, expect: '0' }, resolve).expect, 0);
});

test('recv: bad values', () => {
  rejects(
    () => parseRecvOptions({ ...recv, count: undefined, duration: '5', timeout: '3' }, resolve),
    '--timeout',
    /only applies with --count/,
  );
  rejects(() => parseRecvOptions({ ...recv, timeout: '-3' }, resolve), '--timeout', /out of range/);
  rejects(() => parseRecvOptions({ ...recv, expect: '-1' }, resolve), '--expect', /out of range/);
  rejects(() => parseRecvOptions({ ...recv, maxSize: '16' }, resolve), '--max-size', /32-65535/);
  rejects(() => parseRecvOptions({ ...recv, maxSize: '65536' }, resolve), '--max-size', /out of range/);
  rejects(() => parseRecvOptions({ ...recv, port: '99999' }, resolve), '--port', /out of range/);
});

test('--streams: consecutive addresses from --group, 1-1024, default 1', () => {
  assert.equal(parseSendOptions(send, resolve).streams, 1);
  assert.equal(parseRecvOptions(recv, resolve).streams, 1);
  const o = parseSendOptions({ ...send, group: '239.1.1.1', streams: '100' }, resolve);
  assert.equal(o.streams, 100);
  assert.equal(o.group, 0xef010101);
  assert.equal(o.multicast, true);
  assert.equal(parseRecvOptions({ ...recv, streams: '5' }, resolve).streams, 5);
  assert.equal(parseSendOptions({ ...send, streams: '1024' }, resolve).streams, 1024);
  // The range may cross octets, and end exactly at either edge of 224.0.0.0/4.
  assert.equal(parseSendOptions({ ...send, group: '239.1.1.200', streams: '100' }, resolve).streams, 100);
  assert.equal(parseSendOptions({ ...send, group: '239.255.255.156', streams: '100' }, resolve).streams, 100);
  assert.equal(parseRecvOptions({ ...recv, group: '239.255.255.255', streams: '1' }, resolve).streams, 1);
  // Unicast destinations work too, for send, as long as they stay unicast.
  const u = parseSendOptions({ ...send, group: '10.0.0.1', streams: '3' }, resolve);
  assert.equal(u.multicast, false);
  assert.equal(u.streams, 3);
  assert.equal(parseSendOptions({ ...send, group: '223.255.255.250', streams: '6' }, resolve).streams, 6);
  assert.equal(parseSendOptions({ ...send, group: '255.255.255.253', streams: '2' }, resolve).streams, 2);
});

test('--streams: bad counts and ranges that leave their kind of address', () => {
  for (const parse of [parseSendOptions, parseRecvOptions]) {
    const base = parse === parseSendOptions ? send : recv;
    rejects(
      () => parse({ ...base, streams: '0' }, resolve),
      '--streams',
      /out of range; expected an integer 1-1024/,
    );
    rejects(() => parse({ ...base, streams: '1025' }, resolve), '--streams', /out of range/);
    rejects(() => parse({ ...base, streams: '-1' }, resolve), '--streams', /out of range/);
    rejects(() => parse({ ...base, streams: 'many' }, resolve), '--streams', /not an integer/);
    rejects(() => parse({ ...base, streams: '2.5' }, resolve), '--streams', /not an integer/);
    rejects(
      () => parse({ ...base, group: '239.255.255.200', streams: '100' }, resolve),
      '--streams',
      /^100 consecutive addresses from 239\.255\.255\.200 would run to 240\.0\.0\.43, outside the multicast range 224\.0\.0\.0\/4; expected at most 56 from this --group \(the last one 239\.255\.255\.255\)/,
    );
    rejects(
      () => parse({ ...base, group: '239.255.255.156', streams: '101' }, resolve),
      '--streams',
      /would run to 240\.0\.0\.0, outside the multicast range/,
    );
  }
  rejects(
    () => parseSendOptions({ ...send, group: '223.255.255.250', streams: '7' }, resolve),
    '--streams',
    /would run to 224\.0\.0\.0, into the multicast range 224\.0\.0\.0\/4 .*expected at most 6/,
  );
  rejects(
    () => parseSendOptions({ ...send, group: '255.255.255.253', streams: '3' }, resolve),
    '--streams',
    /would run to 255\.255\.255\.255, which includes the broadcast address/,
  );
  rejects(
    () => parseSendOptions({ ...send, group: '255.255.255.200', streams: '100' }, resolve),
    '--streams',
    /would run past 255\.255\.255\.255; expected at most 55/,
  );
  rejects(
    () => parseRecvOptions({ ...recv, group: '10.0.0.2', streams: '2' }, resolve),
    '--streams',
    /10\.0\.0\.2 is a unicast address and there is nothing to join/,
  );
  assert.equal(parseRecvOptions({ ...recv, group: '10.0.0.2', streams: '1' }, resolve).streams, 1);
});

test('send --rtp: the sequence options, checked; absent without --rtp', () => {
  assert.equal(parseSendOptions(send, resolve).rtp, undefined);
  const o = parseSendOptions(
    {
      ...send,
      rtp: true,
      rtpFirstSequence: '65000',
      rtpGaps: '100, 250:3,900:1000',
      rtpSkipEvery: '7',
      rtpDuplicateEvery: '11',
      rtpReorderEvery: '13',
    },
    resolve,
  );
  assert.deepEqual(o.rtp, {
    firstSequence: 65000,
    gaps: [
      { at: 100, size: 1 },
      { at: 250, size: 3 },
      { at: 900, size: 1000 },
    ],
    skipEvery: 7,
    duplicateEvery: 11,
    reorderEvery: 13,
  });
  const first = parseSendOptions({ ...send, rtp: true }, resolve).rtp!.firstSequence;
  assert.ok(Number.isInteger(first) && first >= 0 && first <= 65535, 'a random first number');
  for (const gaps of ['0', '5,5', '9,3', '10:0', '10:1001', 'x', '10:', '']) {
    rejects(
      () => parseSendOptions({ ...send, rtp: true, rtpGaps: gaps }, resolve),
      '--rtp-gaps',
      /PACKET\[:SIZE\]/,
    );
  }
  rejects(
    () => parseSendOptions({ ...send, rtpGaps: '5' }, resolve),
    '--rtp-gaps',
    /only applies with --rtp/,
  );
  rejects(
    () => parseSendOptions({ ...send, rtp: true, rtpReorderEvery: '1' }, resolve),
    '--rtp-reorder-every',
    /2-1000000/,
  );
  rejects(
    () => parseSendOptions({ ...send, rtp: true, rtpFirstSequence: '65536' }, resolve),
    '--rtp-first-sequence',
    /0-65535/,
  );
  rejects(() => parseSendOptions({ ...send, rtp: true, size: '43' }, resolve), '--size', /at least 44/);
  rejects(() => parseSendOptions({ ...send, rtp: true, streams: '2' }, resolve), '--rtp', /one RTP stream/);
});

test('recv --rtp: the probe follows an RTP header', () => {
  assert.equal(parseRecvOptions(recv, resolve).rtp, false);
  assert.equal(parseRecvOptions({ ...recv, rtp: true }, resolve).rtp, true);
});
