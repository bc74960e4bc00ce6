import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { MALFORMED_KINDS, type MalformedKind } from '../helpers/inject-frames.js';
import { expectPackets, receiverReport, RelayHost, send, workerTotals } from '../helpers/relay-host.js';
import { frameArgs } from '../helpers/send-frames.js';
import { ip, ROOT, Topology } from '../helpers/topology.js';

// Every frame a worker takes ends in exactly one counter, and the counters say exactly what
// happened: a mixed load of good, unmatched, other-VLAN, malformed and fragmented frames, and a
// flow whose every copy the kernel refuses (its output link is down).

test('the counter identity holds exactly under a mixed load, a refused flow included', async () => {
  const topo = new Topology({ outputLinks: 2, net: 82 });
  try {
    const relay = await RelayHost.start(topo, ['--workers', '2']);
    relay.addRule('239.1.1.1', 5000, '239.2.2.1:6000:out0', ['-n', 'good']);
    relay.addRule('239.1.1.2', 5000, '239.2.2.2:6000:out1', ['-n', 'refused']);
    // out1 goes down: the output keeps its sockets (shown down), and every copy fails.
    ip(['-n', topo.relay, 'link', 'set', 'out1', 'down']);

    const good = await expectPackets(topo, 'eth0', '239.2.2.1', 6000, 2000);
    send(topo, '239.1.1.1', 5000, { rate: 2000, size: 300, count: 2000 });
    send(topo, '239.1.1.2', 5000, { rate: 2000, size: 300, count: 700 });
    send(topo, '239.1.1.9', 5000, { rate: 2000, size: 300, count: 300 }); // no rule
    const frames = topo.exec(topo.sender, process.execPath, [
      join(ROOT, 'dist/test/helpers/send-frames.js'),
      ...['eth0', '239.1.1.1', '5000', '200'],
      ...frameArgs({ vlan: '42', src: topo.senderAddress() }), // a VLAN no rule names
    ]);
    assert.equal(frames.code, 0, frames.stderr);
    const perKind = 100;
    const kinds = Object.keys(MALFORMED_KINDS) as MalformedKind[];
    for (const kind of kinds) {
      const r = topo.exec(topo.sender, process.execPath, [
        join(ROOT, 'dist/test/helpers/inject-frames.js'),
        ...['eth0', '239.1.1.1', '5000', kind, String(perKind)],
      ]);
      assert.equal(r.code, 0, r.stderr);
    }
    assert.equal((await receiverReport(good)).code, 0, good.stderr);

    const expected = 2000 + 700 + 300 + 200 + perKind * kinds.length;
    const stats = await relay.statsAfter((s) => workerTotals(s).framesSeen >= expected);
    const w = workerTotals(stats);
    // Exactly what the test sent: the relay's own IGMP reports on in0 are never taken.
    assert.equal(w.notIpv4Udp, 0, JSON.stringify(w));
    assert.equal(w.framesSeen, expected, JSON.stringify(w));
    assert.equal(
      w.forwarded +
        w.noRule +
        w.notIpv4Udp +
        w.malformed +
        w.fragments +
        w.filtered +
        w.unsent +
        w.workerRestart,
      w.framesSeen,
      'every frame in exactly one bucket',
    );
    assert.equal(w.forwarded, 2000);
    assert.equal(w.unsent, 700, 'a frame none of whose copies went out is not forwarded');
    assert.equal(w.noRule, 300 + 200);
    assert.equal(w.dropsByReason.other_vlan, 200);
    assert.equal(w.fragments, perKind);
    assert.equal(w.malformed, perKind * (kinds.length - 1));
    const sum = Object.values(w.dropsByReason).reduce((a, b) => a + b, 0);
    assert.equal(sum + w.forwarded, w.framesSeen, 'the reasons add up too');

    const refused = stats.rules.find((r) => r.name === 'refused')!;
    assert.equal(refused.state, 'degraded');
    assert.equal(refused.counters.packetsIn, 700);
    assert.deepEqual(refused.counters.drops, { egress_failed: 700 });
    const errors = refused.counters.outputs[0]!.errors;
    assert.equal(
      Object.values(errors).reduce((a, b) => a + b, 0),
      700,
      `every copy refused, by errno: ${JSON.stringify(errors)}`,
    );
    assert.equal(refused.counters.outputs[0]!.packets, 0);
  } finally {
    topo.destroy();
  }
});
