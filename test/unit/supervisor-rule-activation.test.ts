import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rule, setup } from './activation-fakes.js';

// Rule activation against fakes of the interfaces, the socket opener and the workers: which
// sockets are taken and released, which commands reach the workers, and what the rule shows.

test('a rule whose input and outputs are there is active at once: each worker gets its input socket, then the rule', () => {
  const { links, sockets, workers, activation } = setup();
  links.add('in0');
  links.add('out0');
  const r = rule({
    outputs: [
      { group: '239.2.2.2', port: 6000, interface: 'out0' },
      { group: '10.9.9.9', port: 7000 },
    ],
  });
  activation.add(r);
  const sent = workers.take();
  assert.deepEqual(
    sent.map((s) => [s.id, s.message.type]),
    [
      [0, 'input.attach'],
      [0, 'rule.add'],
      [1, 'input.attach'],
      [1, 'rule.add'],
    ],
  );
  assert.notEqual(sent[0]!.fds[0], sent[2]!.fds[0], 'each worker has its own ingress socket');
  const add = sent[1]!;
  assert.equal(add.message.type, 'rule.add');
  if (add.message.type !== 'rule.add') return;
  assert.deepEqual(
    add.message.rule.outputs.map((o) => [o.label, o.attached, o.egress !== null]),
    [
      ['239.2.2.2:6000:out0', true, true],
      ['10.9.9.9:7000', true, false],
    ],
  );
  assert.equal(add.fds.length, 3, 'two UDP sockets, then the one raw socket');
  assert.deepEqual(activation.view(r.id), {
    state: 'active',
    reason: null,
    path: 'worker',
    pathReason: null,
    outputs: [
      { path: 'raw', state: 'active', reason: null },
      { path: 'socket', state: 'active', reason: null },
    ],
  });
  assert.equal(sockets.open.size, 2 + 3);
});

test('a rule whose input interface is missing waits, holds nothing, and starts when it appears up', () => {
  const { links, sockets, workers, activation } = setup();
  links.add('out0');
  const r = rule();
  activation.add(r);
  assert.deepEqual(
    [activation.view(r.id).state, activation.view(r.id).reason],
    ['waiting', 'waiting for in0'],
  );
  assert.equal(sockets.open.size, 0);
  assert.equal(workers.take('rule.add').length, 0);

  links.add('in0', { up: false });
  activation.linkChanged('in0', 'appeared');
  assert.equal(activation.view(r.id).reason, 'waiting for in0 to come up');
  links.links.get('in0')!.up = true;
  links.links.get('in0')!.running = true;
  activation.linkChanged('in0', 'link');
  assert.equal(activation.view(r.id).state, 'active');
  assert.equal(workers.take('rule.add').length, 2);
});

test('an output link created later, down and without an address, is attached once it is up with an address', () => {
  const { links, workers, activation } = setup(1);
  links.add('in0');
  links.add('out1');
  const r = rule({
    outputs: [
      { group: '239.2.2.2', port: 6000, interface: 'out1' },
      { group: '239.2.2.3', port: 6000, interface: 'out2' },
    ],
  });
  activation.add(r);
  const added = workers.take('rule.add')[0]!.message;
  assert.ok(added.type === 'rule.add');
  assert.deepEqual(
    added.rule.outputs.map((o) => o.attached),
    [true, false],
  );
  assert.deepEqual(
    [activation.view(r.id).state, activation.view(r.id).reason],
    ['degraded', 'waiting for out2'],
  );

  links.add('out2', { up: false, address: null });
  activation.linkChanged('out2', 'appeared');
  assert.equal(activation.view(r.id).outputs[1]!.reason, 'out2 has no IPv4 address');
  links.links.get('out2')!.addresses.add(0x0a0a0a01);
  activation.linkChanged('out2', 'addresses');
  assert.equal(activation.view(r.id).outputs[1]!.reason, 'out2 is down');
  assert.equal(workers.take('output.attach').length, 0, 'not attached while the link is down');

  links.links.get('out2')!.up = true;
  links.links.get('out2')!.running = true;
  activation.linkChanged('out2', 'link');
  const attach = workers.take('output.attach');
  assert.equal(attach.length, 1);
  assert.deepEqual(attach[0]!.message, {
    type: 'output.attach',
    ruleId: r.id,
    index: 1,
    egress: { template: '00', mtu: 1500 },
  });
  assert.equal(attach[0]!.fds.length, 2);
  assert.equal(activation.view(r.id).state, 'active');
});

test('an output link that loses its address is detached and shown; it comes back with the address', () => {
  const { links, sockets, workers, activation } = setup(1);
  links.add('in0');
  links.add('out0');
  const r = rule();
  activation.add(r);
  const before = sockets.open.size;
  workers.take();

  links.links.get('out0')!.addresses.clear();
  activation.linkChanged('out0', 'addresses');
  assert.deepEqual(
    workers.take('output.detach').map((s) => s.message),
    [{ type: 'output.detach', ruleId: r.id, index: 0 }],
  );
  assert.equal(sockets.open.size, before - 2, 'its UDP and raw sockets are closed');
  assert.deepEqual(
    [activation.view(r.id).state, activation.view(r.id).reason],
    ['waiting', 'out0 has no IPv4 address'],
  );

  links.links.get('out0')!.addresses.add(0x0a000099);
  activation.linkChanged('out0', 'addresses');
  assert.equal(workers.take('output.attach').length, 1);
  assert.equal(activation.view(r.id).state, 'active');
});

test('a new address on an output link renews its sockets; the old ones are closed after the workers have the new', () => {
  const { links, sockets, workers, activation } = setup(2);
  links.add('in0');
  links.add('out0');
  const r = rule();
  activation.add(r);
  const first = workers.take('rule.add')[0]!.fds;
  links.links.get('out0')!.addresses.add(0x0a000077);
  activation.linkChanged('out0', 'addresses');
  const attach = workers.take('output.attach');
  assert.equal(attach.length, 2, 'every worker');
  for (const fd of first) assert.equal(sockets.open.has(fd), false, `old fd ${fd} closed`);
  for (const fd of attach[0]!.fds) assert.equal(sockets.open.has(fd), true);
});

test('all or nothing: an add whose output cannot be opened is refused and leaves no socket open', () => {
  const { links, sockets, workers, activation, counters } = setup();
  links.add('in0');
  links.add('out0');
  links.add('out1');
  sockets.failingOutputs.add('out1');
  const r = rule({
    outputs: [
      { group: '239.2.2.2', port: 6000, interface: 'out0' },
      { group: '239.2.2.3', port: 6000, interface: 'out1' },
    ],
  });
  assert.throws(() => activation.add(r), /cannot open out1/);
  assert.equal(sockets.open.size, 0);
  assert.equal(workers.take().length, 0);
  // Three refused adds in a row leave nothing behind either.
  for (let i = 0; i < 3; i++) assert.throws(() => activation.add(r));
  assert.equal(sockets.open.size, 0);
  assert.equal(counters.held.size, 0, 'nor any counter slot');
});

test('after the add, an output that fails to open waits with the reason and is tried again on the next change', () => {
  const { links, sockets, workers, activation } = setup(1);
  links.add('out0');
  links.add('out1');
  sockets.failingOutputs.add('out1');
  const r = rule({
    outputs: [
      { group: '239.2.2.2', port: 6000, interface: 'out0' },
      { group: '239.2.2.3', port: 6000, interface: 'out1' },
    ],
  });
  activation.add(r);
  links.add('in0');
  activation.linkChanged('in0', 'appeared');
  const view = activation.view(r.id);
  assert.equal(view.state, 'degraded');
  assert.match(view.outputs[1]!.reason!, /could not open its sockets: cannot open out1/);
  workers.take();
  sockets.failingOutputs.clear();
  links.links.get('out1')!.up = true;
  activation.linkChanged('out1', 'link');
  assert.equal(workers.take('output.attach').length, 1);
  assert.equal(activation.view(r.id).state, 'active');
});

test('an input interface that vanishes takes the rule out of the workers; it comes back when the interface does', () => {
  const { links, sockets, workers, activation } = setup(2);
  links.add('in0');
  links.add('out0');
  const r = rule();
  activation.add(r);
  workers.take();
  links.links.delete('in0');
  activation.linkChanged('in0', 'vanished');
  assert.deepEqual(
    workers
      .take()
      .filter((s) => s.message.type !== 'host.addresses')
      .map((s) => [s.id, s.message.type]),
    [
      [0, 'rule.remove'],
      [1, 'rule.remove'],
      [0, 'input.detach'],
      [1, 'input.detach'],
    ],
  );
  assert.equal(sockets.open.size, 0);
  assert.equal(activation.view(r.id).reason, 'waiting for in0');
  links.add('in0');
  activation.linkChanged('in0', 'appeared');
  assert.equal(activation.view(r.id).state, 'active');
});

test('an input whose MTU grows past the ring slot gets new sockets; within the slot nothing changes', () => {
  const { links, sockets, workers, activation } = setup(2);
  links.add('in0');
  links.add('out0');
  activation.add(rule());
  const first = workers.take('input.attach');
  assert.deepEqual(
    first.map((s) => s.message.type === 'input.attach' && s.message.ring),
    ['fresh', 'fresh'],
  );
  const old = first.map((s) => s.fds[0]!);
  links.links.get('in0')!.mtu = 1600; // still fits a 2-KiB slot
  activation.linkChanged('in0', 'mtu');
  assert.equal(workers.take('input.attach').length, 0);
  links.links.get('in0')!.mtu = 9000;
  activation.linkChanged('in0', 'mtu');
  const again = workers.take('input.attach');
  assert.deepEqual(
    again.map((s) => [s.id, s.message]),
    [
      [0, { type: 'input.attach', interface: 'in0', ifindex: 10, mtu: 9000, ring: 'fresh' }],
      [1, { type: 'input.attach', interface: 'in0', ifindex: 10, mtu: 9000, ring: 'fresh' }],
    ],
  );
  assert.notDeepEqual(
    again.map((s) => s.fds[0]),
    old,
  );
  // The old sockets stay open (and in their fanout group) until every worker handed over.
  activation.inputHandedOver(1, 'in0');
  activation.inputHandedOver(1, 'in0'); // said twice: counts once
  assert.ok(old.every((fd) => sockets.open.has(fd)));
  activation.inputHandedOver(0, 'in0');
  assert.ok(
    old.every((fd) => !sockets.open.has(fd)),
    'closed once both handed over',
  );
});

test('an MTU that grows again during a handover is followed once the handover ends', () => {
  const { links, workers, activation } = setup(2);
  links.add('in0');
  links.add('out0');
  activation.add(rule());
  workers.take();
  links.links.get('in0')!.mtu = 4000;
  activation.linkChanged('in0', 'mtu');
  assert.equal(workers.take('input.attach').length, 2);
  links.links.get('in0')!.mtu = 9000;
  activation.linkChanged('in0', 'mtu');
  assert.equal(workers.take('input.attach').length, 0, 'not while the first handover is under way');
  activation.inputHandedOver(0, 'in0');
  activation.inputHandedOver(1, 'in0');
  assert.deepEqual(
    workers.take('input.attach').map((s) => s.message.type === 'input.attach' && [s.id, s.message.mtu]),
    [
      [0, 9000],
      [1, 9000],
    ],
  );
});

test('a worker restarted mid-handover gets its old socket, then its new one switched for it', () => {
  const { links, sockets, workers, activation } = setup(2);
  links.add('in0');
  links.add('out0');
  activation.add(rule());
  const old = workers.take('input.attach').map((s) => s.fds[0]!);
  links.links.get('in0')!.mtu = 9000;
  activation.linkChanged('in0', 'mtu');
  const fresh = workers.take('input.attach').map((s) => s.fds[0]!);
  activation.inputHandedOver(0, 'in0');
  activation.syncWorker(1); // worker 1 died before it handed over
  assert.deepEqual(sockets.switchedFor, ['in0:1']);
  assert.deepEqual(
    workers.take('input.attach').map((s) => s.message.type === 'input.attach' && [s.message.ring, s.fds[0]]),
    [
      ['in-use', old[1]],
      ['in-use', fresh[1]],
    ],
  );
  activation.syncWorker(0); // done with its handover: only the new socket
  assert.deepEqual(
    workers.take('input.attach').map((s) => s.message.type === 'input.attach' && [s.message.ring, s.fds[0]]),
    [['in-use', fresh[0]]],
  );
  activation.inputHandedOver(1, 'in0');
  assert.ok(old.every((fd) => !sockets.open.has(fd)));
});

test('the host addresses go to the workers when they change, and with every sync', () => {
  const { links, workers, activation } = setup(1);
  links.add('in0', { address: 0x0a000001 });
  activation.linkChanged('in0', 'appeared');
  assert.deepEqual(
    workers.take('host.addresses').map((s) => s.message),
    [{ type: 'host.addresses', addresses: [0x0a000001] }],
  );
  activation.linkChanged('in0', 'link');
  activation.linkChanged('in0', 'addresses');
  assert.equal(workers.take('host.addresses').length, 0, 'unchanged: not sent again');
  links.add('out0', { address: 0x0a000002 });
  activation.add(rule());
  activation.syncWorker(0);
  assert.deepEqual(
    workers.take().map((s) => s.message.type),
    ['input.attach', 'rule.add', 'host.addresses', 'input.attach', 'rule.add'],
  );
});

test('a unicast input waits until the host has its address', () => {
  const { links, workers, activation } = setup(1);
  links.add('in0', { address: 0x0a000001 });
  links.add('out0');
  const r = rule({ inputGroup: '10.0.0.9', unicastInput: true });
  activation.add(r);
  assert.equal(activation.view(r.id).reason, 'waiting for 10.0.0.9 to be an address of this host');
  links.links.get('in0')!.addresses.add(0x0a000009);
  activation.linkChanged('in0', 'addresses');
  assert.equal(activation.view(r.id).state, 'active');
  workers.take();
  links.links.get('in0')!.addresses.delete(0x0a000009);
  activation.linkChanged('in0', 'addresses');
  assert.equal(activation.view(r.id).state, 'waiting');
  assert.equal(workers.take('rule.remove').length, 1);
});

test('removing rules releases everything; the last rule of an input detaches it from the workers', () => {
  const { links, sockets, workers, activation, counters } = setup(1);
  links.add('in0');
  links.add('out0');
  const a = rule();
  const b = rule({ inputGroup: '239.1.1.2' });
  activation.add(a);
  activation.add(b);
  workers.take();
  activation.remove(a.id);
  assert.deepEqual(
    workers.take().map((s) => s.message.type),
    ['rule.remove'],
  );
  activation.remove(b.id);
  assert.deepEqual(
    workers.take().map((s) => s.message.type),
    ['rule.remove', 'input.detach'],
  );
  assert.equal(sockets.open.size, 0);
  assert.equal(counters.held.size, 0, 'and their counter slots');
});

test('a rule counts in the same slots for its whole life: through waiting, resyncs and updates that keep an output', () => {
  const { links, workers, activation, counters } = setup(1);
  links.add('in0');
  links.add('out0');
  links.add('out1');
  const r = rule({
    outputs: [
      { group: '239.2.2.1', port: 6000, interface: 'out0' },
      { group: '239.2.2.2', port: 6000, interface: 'out1' },
    ],
  });
  activation.add(r);
  const slots = activation.counterSlots(r.id);
  const added = workers.take('rule.add')[0]!.message;
  assert.ok(added.type === 'rule.add');
  assert.deepEqual(added.counters, slots);
  // The input goes and comes back: the rule is sent again, with the same slots.
  links.links.delete('in0');
  activation.linkChanged('in0', 'vanished');
  links.add('in0');
  activation.linkChanged('in0', 'appeared');
  const again = workers.take('rule.add')[0]!.message;
  assert.ok(again.type === 'rule.add');
  assert.deepEqual(again.counters, slots);
  activation.syncWorker(0);
  const synced = workers.take('rule.add')[0]!.message;
  assert.ok(synced.type === 'rule.add');
  assert.deepEqual(synced.counters, slots);
  // An update keeps output 1's slot, gives the new output a fresh one, frees output 0's.
  activation.update(
    rule({
      outputs: [
        { group: '239.2.2.2', port: 6000, interface: 'out1' },
        { group: '239.2.2.3', port: 6000, interface: 'out0' },
      ],
    }),
    [1, -1],
  );
  const updated = activation.counterSlots(r.id);
  assert.deepEqual(updated.rule, slots.rule);
  assert.deepEqual(updated.outputs[0], slots.outputs[1]);
  assert.ok(updated.outputs[1]!.tag > slots.outputs[1]!.tag, 'a new tag for the new output');
  assert.equal(counters.held.has(`output:${slots.outputs[0]!.slot}`), false);
  const message = workers.take('rule.update')[0]!.message;
  assert.ok(message.type === 'rule.update');
  assert.deepEqual(message.counters, updated);
  activation.remove(r.id);
  assert.equal(counters.held.size, 0);
});

test('the expected ruleset hash follows what the workers hold, attachments included', () => {
  const { links, activation } = setup(1);
  links.add('in0');
  links.add('out0');
  const empty = activation.expectedHash();
  activation.add(rule());
  const active = activation.expectedHash();
  assert.notEqual(active, empty);
  links.links.get('out0')!.addresses.clear();
  activation.linkChanged('out0', 'addresses');
  assert.notEqual(activation.expectedHash(), active, 'a detached output changes it');
});

test('an update keeps the outputs that stay (same sockets, no gap), opens the new ones, closes the rest after the workers', () => {
  const { links, sockets, workers, activation } = setup(2);
  links.add('in0');
  links.add('out0');
  links.add('out1');
  const before = rule({
    outputs: [
      { group: '239.2.2.1', port: 6000, interface: 'out0' },
      { group: '239.2.2.2', port: 6000, interface: 'out1' },
    ],
  });
  activation.add(before);
  const added = workers.take('rule.add')[0]!;
  // UDP sockets in output order, then the raw ones: output 0 goes, output 1 stays.
  const [droppedSocket, keptSocket] = added.fds;
  const after = rule({
    outputs: [
      { group: '239.2.2.2', port: 6000, interface: 'out1' },
      { group: '239.2.2.3', port: 6000, interface: 'out0', mode: 'socket' },
    ],
  });
  activation.update(after, [1, -1]);
  const sent = workers.take();
  assert.deepEqual(
    sent.map((s) => [s.id, s.message.type, s.fds.length]),
    [
      [0, 'rule.update', 1],
      [1, 'rule.update', 1],
    ],
    'only the new output travels, with its one UDP socket',
  );
  const message = sent[0]!.message;
  assert.ok(message.type === 'rule.update');
  assert.deepEqual(message.previous, [1, -1]);
  assert.deepEqual(
    message.rule.outputs.map((o) => [o.label, o.attached]),
    [
      ['239.2.2.2:6000:out1', true],
      ['239.2.2.3:6000:out0:socket', true],
    ],
  );
  assert.equal(sockets.open.has(droppedSocket!), false, 'the output that went is closed');
  assert.equal(sockets.open.has(keptSocket!), true, 'the output that stays keeps its socket');
  assert.deepEqual(
    activation.view(after.id).outputs.map((o) => o.path),
    ['raw', 'socket'],
  );
});
