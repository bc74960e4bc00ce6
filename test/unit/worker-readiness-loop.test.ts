import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { BROKEN, EpollSet, READABLE } from '../../src/sys/epoll.js';
import { createChannelPair, FdChannel } from '../../src/sys/fd-channel.js';
import { setTimerSlack, sleepMicroseconds } from '../../src/sys/short-sleep.js';
import { closeFd } from '../../src/sys/socket.js';
import { ReadinessLoop } from '../../src/worker/readiness-loop.js';
import { waitFor } from '../helpers/processes.js';

// Local socket pairs only: readiness is what is under test, not any network path.

const BYTE = new Uint8Array([1]);

test('EpollSet reports exactly the members that are readable, and hang-ups', () => {
  const [a, aPeer] = createChannelPair();
  const [b, bPeer] = createChannelPair();
  const set = new EpollSet(8);
  try {
    set.add(a);
    set.add(b);
    assert.equal(set.wait(0), 0, 'nothing written yet');

    new FdChannel(bPeer).send(BYTE);
    assert.equal(set.wait(0), 1);
    assert.equal(set.fdAt(0), b);
    assert.equal(set.flagsAt(0) & READABLE, READABLE);
    assert.equal(set.flagsAt(0) & BROKEN, 0);
    assert.equal(set.wait(0), 1, 'level-triggered: still readable until read');

    new FdChannel(b).receive();
    assert.equal(set.wait(0), 0, 'read: no longer ready');

    closeFd(aPeer);
    assert.equal(set.wait(0), 1);
    assert.equal(set.fdAt(0), a);
    assert.notEqual(set.flagsAt(0) & BROKEN, 0, 'the peer closing is a hang-up');

    set.remove(a);
    assert.equal(set.wait(0), 0, 'a removed member is not reported');
  } finally {
    set.close();
    for (const fd of [a, b, bPeer]) closeFd(fd);
  }
});

test('EpollSet.wait blocks for its timeout when nothing is ready', () => {
  const set = new EpollSet(4);
  const [a, aPeer] = createChannelPair();
  try {
    set.add(a);
    const start = performance.now();
    assert.equal(set.wait(20), 0);
    assert.ok(performance.now() - start >= 15, 'returned before the timeout');
  } finally {
    set.close();
    closeFd(a);
    closeFd(aPeer);
  }
});

test('ReadinessLoop calls each handler for its own descriptor and stops calling after stop()', async () => {
  const loop = new ReadinessLoop(5);
  const [a, aPeer] = createChannelPair();
  const [b, bPeer] = createChannelPair();
  const seen: string[] = [];
  const readAll = (fd: number, name: string) => () => {
    const channel = new FdChannel(fd);
    while (channel.receive()) seen.push(name);
  };
  try {
    const watchA = loop.watch(a, readAll(a, 'a'));
    loop.watch(b, readAll(b, 'b'));
    new FdChannel(aPeer).send(BYTE);
    new FdChannel(bPeer).send(BYTE);
    new FdChannel(bPeer).send(BYTE);
    // (Waited for, not slept on: on a loaded machine the loop's 5-ms rounds can run late.)
    await waitFor('both handlers', () => (seen.length >= 3 ? true : undefined));
    assert.deepEqual([...seen].sort(), ['a', 'b', 'b']);

    watchA.stop();
    new FdChannel(aPeer).send(BYTE);
    new FdChannel(bPeer).send(BYTE);
    // b's byte handled means the loop went round with a's descriptor readable too.
    await waitFor('b again', () => (seen.length >= 4 ? true : undefined));
    await sleep(20);
    assert.deepEqual([...seen].sort(), ['a', 'b', 'b', 'b'], 'a stopped watch is not called');
  } finally {
    loop.stop();
    for (const fd of [a, aPeer, b, bPeer]) closeFd(fd);
  }
});

test('ReadinessLoop lets timers run while its descriptors stay busy', async () => {
  const loop = new ReadinessLoop(5);
  const [a, aPeer] = createChannelPair();
  const sender = new FdChannel(aPeer);
  const receiver = new FdChannel(a);
  let handled = 0;
  // The handler keeps its own descriptor readable: the loop never runs dry on its own.
  loop.watch(a, () => {
    receiver.receive();
    handled++;
    sender.send(BYTE);
  });
  try {
    sender.send(BYTE);
    const start = performance.now();
    await sleep(20);
    const late = performance.now() - start - 20;
    assert.ok(handled > 100, `the loop handled only ${handled} wakeups`);
    assert.ok(late < 50, `a 20-ms timer ran ${late.toFixed(1)} ms late`);
  } finally {
    loop.stop();
    closeFd(a);
    closeFd(aPeer);
  }
});

test('ReadinessLoop sets aside a descriptor whose error or hang-up keeps coming back', async () => {
  const loop = new ReadinessLoop(5);
  const [a, aPeer] = createChannelPair();
  let calls = 0;
  // A hang-up cannot be cleared and this handler does not stop watching: without the backoff the
  // loop would call it millions of times a second.
  loop.watch(a, () => {
    calls++;
  });
  try {
    closeFd(aPeer);
    await sleep(250);
    assert.ok(calls >= 11, `only ${calls} calls: the hang-up was not reported`);
    assert.ok(calls <= 50, `${calls} calls in 250 ms: the loop spun on a hang-up`);
  } finally {
    loop.stop();
    closeFd(a);
  }
});

test('ReadinessLoop pauses after a round that emptied a ring, only then, and only when coalescing', async () => {
  const pauses: number[] = [];
  const loop = new ReadinessLoop(5, (us) => pauses.push(us));
  const [ring, ringPeer] = createChannelPair();
  const [control, controlPeer] = createChannelPair();
  const ringChannel = new FdChannel(ring);
  const controlChannel = new FdChannel(control);
  let waiting = 0;
  try {
    // Like a drain that stops at its budget: takes one message per call and says whether it
    // left none behind.
    loop.watch(ring, () => {
      if (ringChannel.receive()) waiting--;
      return waiting === 0;
    });
    loop.watch(control, () => {
      while (controlChannel.receive()) {
        // consumed
      }
    });
    const send = async (fd: number, count = 1) => {
      for (let i = 0; i < count; i++) new FdChannel(fd).send(BYTE);
      if (fd === ringPeer) waiting += count;
      await sleep(30);
    };

    await send(ringPeer);
    assert.deepEqual(pauses, [], 'coalescing is off until set');

    loop.setCoalescing(50);
    await send(controlPeer);
    assert.deepEqual(pauses, [], 'a control message is not packets: no pause');
    await send(ringPeer);
    assert.deepEqual(pauses, [50], 'one pause after the round that emptied the ring');
    await send(ringPeer, 3);
    assert.deepEqual(pauses, [50, 50], 'rounds that left messages behind do not pause');

    loop.setCoalescing(0);
    await send(ringPeer);
    assert.deepEqual(pauses, [50, 50], 'off again');
  } finally {
    loop.stop();
    for (const fd of [ring, ringPeer, control, controlPeer]) closeFd(fd);
  }
});

test('sleepMicroseconds sleeps at least as long as asked', () => {
  setTimerSlack(1000);
  const start = process.hrtime.bigint();
  for (let i = 0; i < 10; i++) sleepMicroseconds(200);
  assert.ok(process.hrtime.bigint() - start >= 2_000_000n, 'ten 200-µs pauses took under 2 ms');
});
