import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';

import { MSG_DONTWAIT } from '../../src/sys/constants.js';
import { allocateNative, Region } from '../../src/sys/libc.js';
import { DestinationTable, MessageBatch } from '../../src/sys/message-batch.js';
import { closeFd, connectIpv4, openUdpSocket } from '../../src/sys/socket.js';

// Over loopback only: three listeners on 127.0.0.1-3 (all of 127/8 is local on Linux), one
// unconnected socket, one sendmmsg call whose messages each name their own destination.

const LOOPBACK = [0x7f000001, 0x7f000002, 0x7f000003];

async function listener(address: string, port: number): Promise<Socket> {
  const socket = createSocket('udp4');
  socket.bind(port, address);
  await once(socket, 'listening');
  return socket;
}

function collect(socket: Socket, into: string[]): void {
  socket.on('message', (m) => into.push(m.toString('latin1')));
}

test('addTo: one sendmmsg call, every message to its own destination, in order', async () => {
  const first = await listener('127.0.0.1', 0);
  const port = first.address().port;
  const sockets = [first, await listener('127.0.0.2', port), await listener('127.0.0.3', port)];
  const received: string[][] = [[], [], []];
  sockets.forEach((s, k) => collect(s, received[k]!));

  const fd = openUdpSocket('test');
  const table = new DestinationTable(LOOPBACK, port);
  const batch = new MessageBatch(8);
  const payload = allocateNative(8 * 4);
  try {
    assert.equal(table.length, 3);
    for (let i = 0; i < 7; i++) {
      payload.bytes.set(Buffer.from(`m${i}/${i % 3}`, 'latin1'), i * 4);
      batch.addTo(payload.region, i * 4, 4, table, i % 3);
    }
    assert.equal(batch.count, 7);
    assert.equal(batch.send(fd, 0, MSG_DONTWAIT), 7);

    const deadline = Date.now() + 2000;
    while (received.flat().length < 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(received, [
      ['m0/0', 'm3/0', 'm6/0'],
      ['m1/1', 'm4/1'],
      ['m2/2', 'm5/2'],
    ]);

    // Refilling the batch replaces each message's destination.
    batch.count = 0;
    payload.bytes.set(Buffer.from('r0/2', 'latin1'), 0);
    batch.addTo(payload.region, 0, 4, table, 2);
    assert.equal(batch.send(fd, 0, MSG_DONTWAIT), 1);
    while (received[2]!.length < 3 && Date.now() < deadline + 2000)
      await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(received[2], ['m2/2', 'm5/2', 'r0/2']);
    assert.equal(received[0]!.length, 3);
  } finally {
    closeFd(fd);
    batch.free();
    table.free();
    payload.free();
    for (const s of sockets) s.close();
  }
});

test('a message without a destination on an unconnected socket is refused (EDESTADDRREQ)', () => {
  const fd = openUdpSocket('test');
  const batch = new MessageBatch(1);
  const payload = allocateNative(4);
  try {
    batch.add(payload.region, 0, 4);
    assert.equal(batch.send(fd, 0, MSG_DONTWAIT), -89); // EDESTADDRREQ
  } finally {
    closeFd(fd);
    batch.free();
    payload.free();
  }
});

test('Region writes base + offset as two 32-bit halves, carrying into the high half', () => {
  const words = new Uint32Array(4);
  const region = new Region(0x7f12_ffff_fff0);
  region.writeAddress(words, 0, 0x0c);
  region.writeAddress(words, 2, 0x20);
  assert.deepEqual([...words], [0xffff_fffc, 0x7f12, 0x10, 0x7f13]);
  assert.equal(region.pointer, 0x7f12_ffff_fff0n);
});

test('addWithHeader: header and payload from two regions leave as one datagram', async () => {
  const sink = await listener('127.0.0.1', 0);
  const received: string[] = [];
  collect(sink, received);
  const fd = openUdpSocket('test');
  connectIpv4(fd, LOOPBACK[0]!, sink.address().port);
  const headers = allocateNative(16);
  const payloads = allocateNative(16);
  const batch = new MessageBatch(2, 2);
  try {
    headers.bytes.set(Buffer.from('H0H1', 'latin1'), 4);
    payloads.bytes.set(Buffer.from('-payload', 'latin1'), 8);
    batch.addWithHeader(headers.region, 4, 2, payloads.region, 8, 8);
    batch.addWithHeader(headers.region, 6, 2, payloads.region, 9, 7);
    assert.equal(batch.send(fd, 0, MSG_DONTWAIT), 2);
    const deadline = Date.now() + 2000;
    while (received.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(received, ['H0-payload', 'H1payload']);
  } finally {
    closeFd(fd);
    batch.free();
    headers.free();
    payloads.free();
    sink.close();
  }
});

test('addWithIpOptions: the kernel takes the IP_TTL and IP_TOS control messages as written', async () => {
  const sink = await listener('127.0.0.1', 0);
  const received: string[] = [];
  collect(sink, received);
  const fd = openUdpSocket('test');
  connectIpv4(fd, LOOPBACK[0]!, sink.address().port);
  const payload = allocateNative(8);
  const batch = new MessageBatch(4, 1, true);
  try {
    payload.bytes.set(Buffer.from('abcd', 'latin1'));
    // Neither, TTL only, TOS only, both: four layouts of msg_control, one call.
    batch.addWithIpOptions(payload.region, 0, 1, 0, -1);
    batch.addWithIpOptions(payload.region, 1, 1, 7, -1);
    batch.addWithIpOptions(payload.region, 2, 1, 0, 0xb8);
    batch.addWithIpOptions(payload.region, 3, 1, 255, 3);
    assert.equal(batch.send(fd, 0, MSG_DONTWAIT), 4);
    // A value the kernel refuses proves it read the option (ip_cmsg_send: TTL 1-255).
    batch.count = 0;
    batch.addWithIpOptions(payload.region, 0, 1, 256, -1);
    assert.equal(batch.send(fd, 0, MSG_DONTWAIT), -22); // EINVAL
    // Reused slots: options of an earlier fill do not linger.
    batch.count = 0;
    batch.addWithIpOptions(payload.region, 0, 1, 0, -1);
    assert.equal(batch.send(fd, 0, MSG_DONTWAIT), 1);
    const deadline = Date.now() + 2000;
    while (received.length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(received, ['a', 'b', 'c', 'd', 'a']);
    const plain = new MessageBatch(1);
    assert.throws(() => plain.addWithIpOptions(payload.region, 0, 1, 1, 1), /without room/);
    plain.free();
  } finally {
    closeFd(fd);
    batch.free();
    payload.free();
    sink.close();
  }
});
