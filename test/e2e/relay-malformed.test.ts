import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { MALFORMED_KINDS, type MalformedKind } from '../helpers/inject-frames.js';
import { expectPackets, receiverReport, RelayHost, send, workerTotals } from '../helpers/relay-host.js';
import { DATA_PATHS, named, onPath, preparePath, workerForwarded } from '../helpers/data-paths.js';
import { ROOT, Topology } from '../helpers/topology.js';

// On both data paths: the XDP program passes every frame it cannot parse to the kernel, where the
// workers count it exactly as without XDP; the good flow is relayed by XDP and no worker sees it.
for (const path of DATA_PATHS) {
  test(named('malformed frames are counted by reason and do not disturb a good flow', path), async () => {
    const topo = new Topology();
    try {
      preparePath(topo, path);
      const relay = await RelayHost.start(topo);
      relay.addRule('239.1.1.1', 5000, onPath('239.2.2.2:6000:out0', path));
      const recv = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, 3000);
      // The good flow runs for 1.5 s while every kind of bad frame is injected alongside it, aimed
      // at the same group and port so only the parser can tell them apart.
      const injector = join(ROOT, 'dist/test/helpers/inject-frames.js');
      const perKind = 150;
      const injections = (Object.keys(MALFORMED_KINDS) as MalformedKind[]).map((kind) =>
        topo.start(topo.sender, process.execPath, [
          injector,
          'eth0',
          '239.1.1.1',
          '5000',
          kind,
          String(perKind),
        ]),
      );
      send(topo, '239.1.1.1', 5000, { rate: 2000, size: 1000, count: 3000 });
      for (const injection of injections) {
        const { code } = await injection.exited;
        assert.equal(code, 0, injection.stderr);
      }
      const { code, report } = await receiverReport(recv);
      assert.equal(code, 0, recv.stderr);
      assert.equal(report.totals.unique, 3000);

      const total = perKind * injections.length;
      const stats = await relay.statsAfter(
        (s) => workerTotals(s).malformed + workerTotals(s).fragments >= total,
      );
      const worker = workerTotals(stats);
      for (const reason of Object.values(MALFORMED_KINDS)) {
        assert.equal(worker.dropsByReason[reason], perKind, `drops for ${reason}`);
      }
      assert.equal(worker.fragments, perKind);
      assert.equal(worker.malformed, perKind * (injections.length - 1));
      assert.equal(worker.forwarded, workerForwarded(3000, path));
      assert.equal(stats.rules[0]!.counters.outputs[0]!.packets, 3000);
      assert.equal(stats.rules[0]!.counters.packetsIn, 3000);
    } finally {
      topo.destroy();
    }
  });
}
