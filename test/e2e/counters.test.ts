import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expectPackets, receiverReport, RelayHost, workerTotals } from '../helpers/relay-host.js';
import { BIN, sleep, Topology } from '../helpers/topology.js';

// What stats say about a stream, against what was sent: packets and bytes in and out, rates on
// a monotonic clock that fall to 0 once the stream stops, the time of the last packet, and the
// kernel's own counters for the interfaces next to the relay's.

test('a steady stream: exact packets and bytes, its rate while it flows, 0 within two intervals of its end', async () => {
  const topo = new Topology({ net: 66 });
  try {
    const relay = await RelayHost.start(topo, ['--workers', '2']);
    relay.addRule('239.1.1.1', 5000, '239.2.2.1:6000:out0', ['-n', 'video']);
    const [size, rate, count] = [300, 1000, 4000];
    const recv = await expectPackets(topo, 'eth0', '239.2.2.1', 6000, count);
    const sender = topo.start(topo.sender, BIN('mcrgen'), [
      ...['send', '--interface', 'eth0', '--group', '239.1.1.1', '--port', '5000'],
      ...['--rate', String(rate), '--size', String(size), '--count', String(count)],
    ]);
    await sleep(2500);
    const flowing = relay.stats().rules[0]!;
    // A second's worth of a 1000 pps stream, give or take the host's scheduling.
    assert.ok(Math.abs(flowing.rates.packetsIn - rate) < rate * 0.25, `in ${flowing.rates.packetsIn}/s`);
    assert.ok(Math.abs(flowing.rates.outputs[0]! - rate) < rate * 0.25, `out ${flowing.rates.outputs[0]}/s`);
    assert.ok(Math.abs(flowing.rates.outputBytes[0]! - rate * size) < rate * size * 0.25);
    assert.equal((await sender.exited).code, 0, sender.stderr);
    assert.equal((await receiverReport(recv)).code, 0, recv.stderr);

    const done = await relay.statsAfter((s) => s.rules[0]!.counters.outputs[0]!.packets === count);
    const { counters } = done.rules[0]!;
    assert.equal(counters.packetsIn, count);
    assert.equal(counters.bytesIn, count * size);
    assert.deepEqual(counters.outputs[0], {
      packets: count,
      bytes: count * size,
      raw: count,
      xdp: 0,
      errors: {},
      ttlExpired: 0,
    });
    const last = Date.parse(counters.lastPacketAt!);
    assert.ok(Math.abs(Date.now() - last) < 10_000, counters.lastPacketAt!);

    // Any view taken two sample intervals (2 s) after the last packet shows the stream stopped.
    await sleep(last + 2000 - Date.now());
    const stopped = relay.stats();
    const view = stopped.rules[0]!;
    assert.ok(Date.parse(stopped.time) - last >= 2000);
    assert.deepEqual(
      [view.rates.packetsIn, view.rates.bytesIn, view.rates.outputs[0], view.rates.outputBytes[0]],
      [0, 0, 0, 0],
      `rates ${JSON.stringify(view.rates)} at ${stopped.time}, last packet ${counters.lastPacketAt}`,
    );
    assert.equal(view.counters.lastPacketAt, counters.lastPacketAt, 'no packet since');
    for (const w of stopped.workers) assert.equal(w.rates.framesSeen, 0);

    // The kernel's counters for the rule's interfaces, next to the relay's: nothing dropped here.
    const links = new Map(stopped.interfaces.map((i) => [i.name, i]));
    assert.deepEqual([...links.keys()], ['in0', 'out0']);
    assert.ok(links.get('in0')!.rxPackets >= count);
    assert.ok(links.get('out0')!.txPackets >= count);
    assert.equal(links.get('in0')!.rxDropped, 0);
    assert.equal(workerTotals(stopped).ringDrops, 0);
  } finally {
    topo.destroy();
  }
});

test('the supervisor keeps the counters: a worker killed and restarted, they go on from where they were', async () => {
  const topo = new Topology({ net: 67 });
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    relay.addRule('239.1.1.1', 5000, '239.2.2.1:6000:out0');
    const sendBatch = async (n: number): Promise<void> => {
      const recv = await expectPackets(topo, 'eth0', '239.2.2.1', 6000, n);
      const sender = topo.start(topo.sender, BIN('mcrgen'), [
        ...['send', '--interface', 'eth0', '--group', '239.1.1.1', '--port', '5000'],
        ...['--rate', '2000', '--size', '100', '--count', String(n)],
      ]);
      assert.equal((await sender.exited).code, 0, sender.stderr);
      assert.equal((await receiverReport(recv)).code, 0, recv.stderr);
    };
    await sendBatch(1000);
    const before = await relay.statsAfter((s) => s.rules[0]!.counters.outputs[0]!.packets === 1000);
    const victim = before.workers[0]!.pid!;
    process.kill(victim, 'SIGKILL');
    await relay.statsAfter((s) => s.workers[0]!.state === 'running' && s.workers[0]!.pid !== victim, 10_000);
    // An idle worker's death loses no count; its successor adds to the same counters.
    const between = relay.stats();
    assert.equal(between.rules[0]!.counters.packetsIn, 1000);
    assert.equal(workerTotals(between).forwarded, workerTotals(before).forwarded);
    await sendBatch(500);
    const after = await relay.statsAfter((s) => s.rules[0]!.counters.outputs[0]!.packets === 1500);
    assert.equal(after.rules[0]!.counters.packetsIn, 1500);
    assert.equal(after.rules[0]!.counters.bytesIn, 150_000);
    assert.equal(workerTotals(after).forwarded - workerTotals(before).forwarded, 500);
    assert.equal(after.workers[0]!.restarts, 1);
  } finally {
    topo.destroy();
  }
});
