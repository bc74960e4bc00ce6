import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RelayHost, send, workerTotals } from '../helpers/relay-host.js';
import { BIN, Topology } from '../helpers/topology.js';

// The relay never takes what its own host sends out of an input interface: its IGMP reports
// for the groups it joins, or datagrams a program on the relay host sends there. A socket
// alone ignores them (PACKET_IGNORE_OUTGOING), but once sockets share a fanout group the
// group's own hook decides, so it must be told too; with one worker and with two, the
// workers see exactly the frames that arrived.

for (const workers of [1, 2]) {
  test(`${workers} worker(s): the host's own transmissions on an input are never taken`, async () => {
    const topo = new Topology({ net: 71 + workers });
    try {
      const relay = await RelayHost.start(topo, ['--workers', String(workers)]);
      relay.addRule('239.1.1.1', 5000, '239.2.2.1:6000:out0');
      // The relay host itself sends to the rule's group out of in0 (and joins three more
      // groups there, each an IGMP report or two).
      for (const group of ['239.1.1.5', '239.1.1.6', '239.1.1.7'])
        relay.addRule(group, 5000, '239.2.2.9:6000:out0');
      const own = topo.exec(topo.relay, BIN('mcrgen'), [
        'send',
        ...['--interface', 'in0', '--group', '239.1.1.1', '--port', '5000'],
        ...['--rate', '2000', '--size', '100', '--count', '500', '--json'],
      ]);
      assert.equal(own.code, 0, own.stderr);
      send(topo, '239.1.1.1', 5000, { rate: 2000, size: 100, count: 300 });

      const stats = await relay.statsAfter((s) => workerTotals(s).forwarded >= 300);
      const w = workerTotals(stats);
      assert.equal(w.forwarded, 300, JSON.stringify(w));
      assert.equal(w.dropsByReason.own_source ?? 0, 0, JSON.stringify(w));
      assert.equal(w.notIpv4Udp, 0, `no IGMP report of the relay's own: ${JSON.stringify(w)}`);
      assert.equal(w.framesSeen, 300, JSON.stringify(w));
      assert.equal((await relay.stop()).code, 0, relay.daemon.stderr);
    } finally {
      topo.destroy();
    }
  });
}
