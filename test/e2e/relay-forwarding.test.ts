import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  expectPackets,
  listen,
  receiverReport,
  RelayHost,
  send,
  workerTotals,
  stopAndReport,
} from '../helpers/relay-host.js';
import {
  DATA_PATHS,
  named,
  onPath,
  pathCopies,
  preparePath,
  workerForwarded,
} from '../helpers/data-paths.js';
import { Topology } from '../helpers/topology.js';

// End to end: sender → mcrd → receiver in network namespaces, real binaries, real traffic.
// veth pairs at these rates are lossless, so every count is exact. Each test runs on both data
// paths: the workers' (raw egress) and the XDP path (xdp outputs).

for (const path of DATA_PATHS) {
  test(named('1:1 relay with group and port translation delivers every packet intact', path), async () => {
    const topo = new Topology();
    try {
      preparePath(topo, path);
      const relay = await RelayHost.start(topo);
      const add = relay.mcrctl([
        'add',
        '--input-interface',
        'in0',
        '--input-group',
        '239.1.1.1',
        '--input-port',
        '5000',
        '--outputs',
        onPath('239.2.2.2:6000:out0', path),
        '--name',
        'cam1',
      ]);
      assert.equal(add.code, 0, add.stderr);
      assert.match(add.stdout, /added rule r-[0-9a-f]{12} \(cam1\)/);

      const recv = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, 3000);
      send(topo, '239.1.1.1', 5000, { rate: 5000, size: 1316, count: 3000 });
      const { code, report } = await receiverReport(recv);
      assert.equal(code, 0, recv.stderr);
      assert.equal(report.totals.unique, 3000);
      assert.equal(report.totals.corrupted, 0);
      assert.equal(report.totals.duplicates, 0);

      const stats = await relay.statsAfter((s) => s.rules[0]?.counters.packetsIn === 3000);
      const rule = stats.rules[0]!;
      assert.equal(rule.name, 'cam1');
      assert.equal(rule.counters.packetsIn, 3000);
      assert.equal(rule.counters.bytesIn, 3000 * 1316);
      assert.equal(rule.counters.outputs[0]!.packets, 3000);
      assert.deepEqual(rule.counters.outputs[0]!.errors, {});
      assert.deepEqual(
        { raw: rule.counters.outputs[0]!.raw, xdp: rule.counters.outputs[0]!.xdp },
        pathCopies(path, 3000),
      );
      const worker = workerTotals(stats);
      assert.equal(worker.forwarded, workerForwarded(3000, path));
      assert.equal(worker.egressErrors, 0);
      assert.equal(worker.ringDrops, 0);
    } finally {
      topo.destroy();
    }
  });

  // Unicast outputs stay on the worker path: on the XDP path the rule has the three groups only.
  test(
    named(
      path === 'xdp'
        ? 'fan-out to three groups on one link'
        : 'fan-out to three groups and one unicast output',
      path,
    ),
    async () => {
      const topo = new Topology();
      try {
        preparePath(topo, path);
        const relay = await RelayHost.start(topo);
        const unicast = topo.receiverAddress(0);
        const groups = onPath('239.3.0.1:7001:out0,239.3.0.2:7002:out0,239.3.0.3:7003:out0', path);
        relay.addRule('239.1.1.1', 5000, path === 'xdp' ? groups : `${groups},${unicast}:7004:out0`);
        const receivers = await Promise.all([
          expectPackets(topo, 'eth0', '239.3.0.1', 7001, 2000),
          expectPackets(topo, 'eth0', '239.3.0.2', 7002, 2000),
          expectPackets(topo, 'eth0', '239.3.0.3', 7003, 2000),
          ...(path === 'xdp' ? [] : [expectPackets(topo, 'eth0', unicast, 7004, 2000)]),
        ]);
        send(topo, '239.1.1.1', 5000, { rate: 4000, size: 512, count: 2000 });
        for (const recv of receivers) {
          const { code, report } = await receiverReport(recv);
          assert.equal(code, 0, `${report.group}:${report.port}: ${recv.stderr}`);
          assert.equal(report.totals.unique, 2000);
        }
        const stats = await relay.statsAfter((s) => s.rules[0]?.counters.packetsIn === 2000);
        assert.deepEqual(
          stats.rules[0]!.counters.outputs.map((o) => o.packets),
          path === 'xdp' ? [2000, 2000, 2000] : [2000, 2000, 2000, 2000],
        );
      } finally {
        topo.destroy();
      }
    },
  );

  test(
    named('relays a source with no route back while strict rp_filter makes the kernel drop it', path),
    async () => {
      const topo = new Topology();
      try {
        preparePath(topo, path);
        // The sender uses an address the relay has no route to; strict reverse-path filtering on the
        // relay's input then drops the traffic in the IP stack. AF_PACKET sees it below that check.
        const n = topo.net;
        topo.exec(topo.sender, 'ip', ['addr', 'flush', 'dev', 'eth0']);
        topo.exec(topo.sender, 'ip', ['addr', 'add', `10.${n}.99.1/32`, 'dev', 'eth0']);
        topo.sysctl(topo.relay, 'net.ipv4.conf.all.rp_filter', '1');
        topo.sysctl(topo.relay, 'net.ipv4.conf.in0.rp_filter', '1');
        const route = topo.exec(topo.relay, 'ip', ['route', 'get', `10.${n}.99.1`]);
        assert.notEqual(route.code, 0, `the relay must have no route back to the source: ${route.stdout}`);

        const relay = await RelayHost.start(topo);
        relay.addRule('239.1.1.1', 5000, onPath('239.2.2.2:6000:out0', path));
        // A plain socket on the relay host, joined to the input group, stands for what the kernel delivers.
        const kernelPath = await listen(topo, 'in0', '239.1.1.1', 5000, topo.relay);
        const relayed = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, 1000);
        send(topo, '239.1.1.1', 5000, { rate: 2000, size: 200, count: 1000 });
        const out = await receiverReport(relayed);
        assert.equal(out.code, 0, relayed.stderr);
        assert.equal(out.report.totals.unique, 1000);
        const kernel = await stopAndReport(kernelPath);
        assert.equal(
          kernel.report.totals.datagrams,
          0,
          'the kernel should have dropped the unroutable source',
        );
      } finally {
        topo.destroy();
      }
    },
  );
}
