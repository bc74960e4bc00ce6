import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { SupervisorMessage } from '../../src/protocol/worker-messages.js';
import {
  WorkerChannel,
  type ChannelTransport,
  type QueueLimits,
  type QueueOwner,
} from '../../src/supervisor/worker-channel.js';

// The queue in front of a worker's channel, against a fake channel that is full (EAGAIN) until
// the test says the worker read: order, descriptor copies, coalescing, re-sync, bounds.

class FakeTransport implements ChannelTransport {
  /** Messages the fake worker received, with the descriptor copies they carried. */
  readonly delivered: { message: SupervisorMessage; fds: number[] }[] = [];
  readonly open = new Set<number>();
  full = false;
  gone = false;
  onRoom: (() => void) | null = null;
  private next = 1000;

  trySend(data: Uint8Array, fds: readonly number[]): boolean {
    if (this.gone) throw Object.assign(new Error('sendmsg: EPIPE'), { code: 'EPIPE' });
    if (this.full) return false;
    this.delivered.push({
      message: JSON.parse(new TextDecoder().decode(data)) as SupervisorMessage,
      fds: [...fds],
    });
    return true;
  }

  duplicate(fd: number): number {
    assert.ok(fd < 1000 || this.open.has(fd), `duplicating a closed descriptor ${fd}`);
    const copy = this.next++;
    this.open.add(copy);
    return copy;
  }

  close(fd: number): void {
    assert.ok(this.open.delete(fd), `closing ${fd}, which is not an open copy`);
  }

  whenWritable(callback: (() => void) | null): void {
    this.onRoom = callback;
  }

  unread(): number {
    return 0;
  }

  /** The worker read everything: the channel has room. */
  drain(): void {
    this.full = false;
    this.onRoom?.();
  }

  types(): string[] {
    return this.delivered.map((d) => d.message.type);
  }
}

class Owner implements QueueOwner {
  coalescings: number[] = [];
  resyncs = 0;
  failures: string[] = [];
  onResync: () => void = () => undefined;
  coalesced(dropped: number): void {
    this.coalescings.push(dropped);
  }
  resync(): void {
    this.resyncs++;
    this.onResync();
  }
  failed(error: unknown, message: string): void {
    this.failures.push(`${message}: ${String(error)}`);
  }
}

const limits: QueueLimits = {
  coalesceMessages: 4,
  coalesceBytes: 1 << 20,
  coalesceFds: 100,
  maxMessages: 12,
  maxBytes: 1 << 20,
  maxFds: 200,
};

const ruleAdd = (id: string): SupervisorMessage => ({
  type: 'rule.add',
  rule: { id, inputInterface: 'in0', inputVlan: 0, inputSource: 0, inputGroup: 1, inputPort: 2, outputs: [] },
  counters: { rule: { slot: 0, tag: 1 }, outputs: [] },
});
const ruleRemove = (id: string): SupervisorMessage => ({ type: 'rule.remove', id });
const attach = (name: string): SupervisorMessage => ({
  type: 'input.attach',
  interface: name,
  ifindex: 3,
  ring: 'fresh',
  mtu: 1500,
});

function setup(): { transport: FakeTransport; owner: Owner; channel: WorkerChannel } {
  const transport = new FakeTransport();
  const owner = new Owner();
  return { transport, owner, channel: new WorkerChannel(transport, owner, limits) };
}

test('a free channel sends at once; a full one queues with copies of the descriptors and flushes in order', () => {
  const { transport, channel } = setup();
  assert.equal(channel.send(attach('in0'), [5]), 'sent');
  assert.deepEqual(transport.delivered[0]!.fds, [5], 'sent at once: the caller’s own descriptor');
  transport.full = true;
  assert.equal(channel.send(ruleAdd('r-1'), [6, 7]), 'queued');
  assert.equal(channel.send({ type: 'heartbeat', seq: 1 }), 'queued');
  assert.equal(channel.send(attach('in1'), [8]), 'queued');
  assert.equal(channel.backlog, 3);
  assert.equal(transport.open.size, 3, 'copies held while waiting');
  assert.ok(channel.holds('heartbeat'));
  assert.ok(transport.onRoom, 'watching for room');
  transport.drain();
  assert.deepEqual(transport.types(), ['input.attach', 'rule.add', 'heartbeat', 'input.attach']);
  assert.equal(channel.backlog, 0);
  assert.equal(channel.written, 3);
  assert.equal(transport.open.size, 0, 'copies closed once sent');
  assert.equal(transport.onRoom, null, 'no longer watching');
  // Sent copies, not the caller's numbers (which it may have closed meanwhile).
  assert.ok(transport.delivered[1]!.fds.every((fd) => fd >= 1000));
});

test('a message behind a waiting one waits too, even when the channel has room: order is kept', () => {
  const { transport, channel } = setup();
  transport.full = true;
  channel.send(attach('in0'), [5]);
  transport.full = false; // room, but the queue is not flushed yet
  assert.equal(channel.send(attach('in1'), [6]), 'queued');
  transport.drain();
  assert.deepEqual(
    transport.delivered.map((d) => (d.message as { interface: string }).interface),
    ['in0', 'in1'],
  );
});

test('past the coalescing mark rule messages are dropped, and once caught up the rules are re-sent whole', () => {
  const { transport, owner, channel } = setup();
  transport.full = true;
  channel.send(attach('in0'), [5]);
  for (let i = 0; i < 4; i++) {
    assert.equal(channel.send(ruleAdd(`r-${i}`), [10 + i]), 'queued');
    channel.send({ type: 'heartbeat', seq: i + 1 });
  }
  // The fifth rule message passes the mark: every waiting rule message goes.
  assert.equal(channel.send(ruleRemove('r-0')), 'coalesced');
  assert.deepEqual(owner.coalescings, [5]);
  assert.ok(channel.rulesStale);
  assert.equal(transport.open.size, 1, 'the dropped messages’ copies were closed; the input’s stays');
  // While stale, rule messages are not even queued; others are.
  assert.equal(channel.send(ruleAdd('r-9'), [20]), 'coalesced');
  assert.equal(channel.send({ type: 'input.detach', interface: 'in0' }), 'queued');
  assert.equal(owner.resyncs, 0, 'no re-sync before the worker caught up');

  owner.onResync = () => {
    // The re-sync is sent from inside the callback and counts as such: not coalesced again,
    // even though it is more than the mark, and even though the channel is full again.
    transport.full = true;
    assert.equal(channel.send({ type: 'rules.reset' }), 'queued');
    for (let i = 0; i < 6; i++) assert.equal(channel.send(ruleAdd(`r-${i}`), [30 + i]), 'queued');
  };
  transport.drain();
  assert.equal(owner.resyncs, 1);
  assert.equal(channel.rulesStale, false);
  assert.deepEqual(transport.types(), [
    'input.attach',
    'heartbeat',
    'heartbeat',
    'heartbeat',
    'heartbeat',
    'input.detach',
  ]);
  transport.drain();
  assert.deepEqual(transport.types().slice(6), [
    'rules.reset',
    ...Array.from({ length: 6 }, () => 'rule.add'),
  ]);
  assert.equal(owner.resyncs, 1, 'one re-sync');
  assert.equal(transport.open.size, 0);
});

test('a queued host.addresses is replaced by a newer one', () => {
  const { transport, channel } = setup();
  transport.full = true;
  channel.send({ type: 'host.addresses', addresses: [1] });
  channel.send(attach('in0'), [5]);
  channel.send({ type: 'host.addresses', addresses: [2] });
  transport.drain();
  assert.deepEqual(transport.types(), ['input.attach', 'host.addresses']);
  assert.deepEqual((transport.delivered[1]!.message as { addresses: number[] }).addresses, [2]);
});

test('past the hard limit the queue says overflow (the worker is to be replaced); closing releases every copy', () => {
  const { transport, channel } = setup();
  transport.full = true;
  const outcomes = Array.from({ length: 13 }, (_, i) => channel.send(attach(`in${i}`), [5]));
  assert.deepEqual(
    outcomes.slice(0, 12),
    Array.from({ length: 12 }, () => 'queued'),
  );
  assert.equal(outcomes[12], 'overflow');
  channel.close();
  assert.equal(transport.open.size, 0);
  assert.equal(channel.send(attach('x'), [5]), 'gone');
});

test('a worker that is gone (EPIPE) ends the queue quietly and releases its copies', () => {
  const { transport, owner, channel } = setup();
  transport.full = true;
  channel.send(ruleAdd('r-1'), [5, 6]);
  transport.gone = true;
  transport.drain();
  assert.equal(transport.open.size, 0);
  assert.equal(channel.send(ruleAdd('r-2')), 'gone');
  assert.deepEqual(owner.failures, []);
});

test('descriptors are counted towards coalescing as well as messages', () => {
  const transport = new FakeTransport();
  const owner = new Owner();
  const channel = new WorkerChannel(transport, owner, { ...limits, coalesceMessages: 100, coalesceFds: 5 });
  transport.full = true;
  channel.send(ruleAdd('r-1'), [1, 2, 3]);
  assert.equal(channel.send(ruleAdd('r-2'), [4, 5, 6]), 'coalesced');
  assert.deepEqual(owner.coalescings, [2]);
  assert.equal(transport.open.size, 0);
});
