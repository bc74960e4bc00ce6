import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { EAGAIN } from '../../src/sys/constants.js';
import { SysError } from '../../src/sys/errors.js';
import { createChannelPair, FdChannel } from '../../src/sys/fd-channel.js';
import { watchReadable, WATCH_FAULTS_BEFORE_STOP, type WatchFault } from '../../src/sys/libc.js';
import { closeFd } from '../../src/sys/socket.js';
import { ReadinessLoop } from '../../src/worker/readiness-loop.js';

// An exception thrown by a readiness callback is caught where the callback runs: it used to stay
// pending inside koffi and come out of the next, unrelated FFI call.

const BYTE = new Uint8Array([1]);

test('a throwing readable callback is reported with its descriptor, and an unrelated send still works', async () => {
  const [a, aPeer] = createChannelPair();
  const [b, bPeer] = createChannelPair();
  const faults: WatchFault[] = [];
  const reader = new FdChannel(a);
  const watch = watchReadable(
    a,
    () => {
      reader.receive();
      throw new Error('garbage on channel a');
    },
    { onFault: (fault) => faults.push(fault) },
  );
  try {
    new FdChannel(aPeer).send(BYTE);
    await sleep(30);
    // Before the fix this send threw "garbage on channel a".
    new FdChannel(bPeer).send(BYTE);
    assert.ok(new FdChannel(b).receive(), 'the unrelated message went through');
    assert.equal(faults.length, 1);
    assert.equal(faults[0]!.fd, a);
    assert.equal(faults[0]!.event, 'readable');
    assert.equal(faults[0]!.stopped, false);
    assert.match((faults[0]!.error as Error).message, /garbage on channel a/);

    // The watch keeps working after a fault.
    new FdChannel(aPeer).send(BYTE);
    await sleep(30);
    assert.equal(faults.length, 2);
    assert.equal(faults[1]!.inARow, 2);
  } finally {
    watch.stop();
    for (const fd of [a, aPeer, b, bPeer]) closeFd(fd);
  }
});

test('a callback that keeps throwing is stopped and reported once as stopped, not spun', async () => {
  const [a, aPeer] = createChannelPair();
  const faults: WatchFault[] = [];
  let calls = 0;
  // It never reads, so the descriptor stays readable: without a limit this would spin forever.
  const watch = watchReadable(
    a,
    () => {
      calls++;
      throw new Error('always');
    },
    { onFault: (fault) => faults.push(fault) },
  );
  try {
    new FdChannel(aPeer).send(BYTE);
    await sleep(50);
    assert.equal(calls, WATCH_FAULTS_BEFORE_STOP);
    assert.deepEqual(
      faults.map((f) => f.stopped),
      [...Array.from({ length: WATCH_FAULTS_BEFORE_STOP - 1 }, () => false), true],
    );
    await sleep(30);
    assert.equal(calls, WATCH_FAULTS_BEFORE_STOP, 'no call after it was stopped');
  } finally {
    watch.stop();
    closeFd(a);
    closeFd(aPeer);
  }
});

test('whenWritable calls back once a full channel has room, and not after it is cleared', async () => {
  const [a, aPeer] = createChannelPair();
  const sender = new FdChannel(a);
  const payload = new Uint8Array(4096);
  let sent = 0;
  for (;;) {
    try {
      sender.send(payload, [], false);
      sent++;
    } catch (err) {
      assert.ok(err instanceof SysError && err.errno === EAGAIN, String(err));
      break;
    }
  }
  let writable = 0;
  const watch = watchReadable(a, () => undefined, { onFault: (f) => assert.fail(String(f.error)) });
  try {
    watch.whenWritable(() => {
      writable++;
      watch.whenWritable(null);
    });
    await sleep(20);
    assert.equal(writable, 0, 'still full');
    const peer = new FdChannel(aPeer);
    for (let i = 0; i < sent; i++) peer.receive();
    await sleep(20);
    assert.equal(writable, 1);
    await sleep(20);
    assert.equal(writable, 1, 'cleared: not called again');
  } finally {
    watch.stop();
    closeFd(a);
    closeFd(aPeer);
  }
});

test('ReadinessLoop contains a throwing handler: the other descriptors are served, a persistent one is removed', async () => {
  const faults: WatchFault[] = [];
  const loop = new ReadinessLoop(5, undefined, (fault) => faults.push(fault));
  const [a, aPeer] = createChannelPair();
  const [b, bPeer] = createChannelPair();
  const [c, cPeer] = createChannelPair();
  let bCalls = 0;
  const seen: number[] = [];
  try {
    loop.watch(b, () => {
      bCalls++;
      throw new Error('bad ring');
    });
    const readerA = new FdChannel(a);
    loop.watch(a, () => {
      while (readerA.receive()) seen.push(a);
    });
    new FdChannel(bPeer).send(BYTE);
    new FdChannel(aPeer).send(BYTE);
    await sleep(50);
    assert.deepEqual(seen, [a], 'a was served although b throws');
    assert.equal(bCalls, WATCH_FAULTS_BEFORE_STOP, 'b was called until it was removed');
    assert.ok(faults.every((f) => f.fd === b));
    assert.equal(faults.at(-1)!.stopped, true);
    assert.equal(faults.filter((f) => f.stopped).length, 1);
    // An unrelated FFI call is not hit by the handler's exception.
    new FdChannel(cPeer).send(BYTE);
    assert.ok(new FdChannel(c).receive());
    new FdChannel(aPeer).send(BYTE);
    await sleep(30);
    assert.deepEqual(seen, [a, a], 'the loop is still healthy');
    assert.equal(bCalls, WATCH_FAULTS_BEFORE_STOP);
  } finally {
    loop.stop();
    for (const fd of [a, aPeer, b, bPeer, c, cPeer]) closeFd(fd);
  }
});
