import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RuleView } from '../../src/protocol/control-api.js';
import { waitFor } from '../helpers/processes.js';
import {
  expectPackets,
  receiverReport,
  RelayHost,
  send,
  startReceiver,
  workerTotals,
} from '../helpers/relay-host.js';
import { DATA_PATHS, named, onPath, preparePath } from '../helpers/data-paths.js';
import { BIN, ip, Topology } from '../helpers/topology.js';

// Every change of a link a rule uses, input or output, is followed without re-adding the rule.

const ruleOf = (relay: RelayHost, id: string): RuleView =>
  relay.mcrctlJson<{ rules: RuleView[] }>(['list']).rules.find((r) => r.id === id)!;

for (const path of DATA_PATHS) {
  test(
    named(
      'an output link created later (down, then an address, then up) starts receiving; one that loses its address shows it',
      path,
    ),
    async () => {
      const topo = new Topology({ net: 94 });
      try {
        preparePath(topo, path);
        const relay = await RelayHost.start(topo, ['--workers', '1']);
        const rule = relay.addRule(
          '239.1.1.1',
          5000,
          onPath('239.2.2.1:6000:out0,239.2.2.2:6000:out1', path),
        );
        // (A new veth link may show "down" for a moment: its carrier comes up a little later.)
        const added = await waitFor('the rule to show its missing output', () => {
          const view = ruleOf(relay, rule.id);
          return view.state === 'degraded' ? view : undefined;
        });
        assert.equal(added.reason, 'waiting for out1');
        assert.deepEqual(
          added.outputs.map((o) => [o.state, o.path]),
          [
            ['active', path],
            ['waiting', null],
          ],
        );

        // The link appears down, gets its address, then comes up: three separate changes.
        ip([
          '-n',
          topo.relay,
          'link',
          'add',
          'out1',
          'type',
          'veth',
          'peer',
          'name',
          'eth1',
          'netns',
          topo.receiver,
        ]);
        // On the XDP path the new link's far end needs NAPI to take redirected frames, as eth0 has.
        if (path === 'xdp')
          assert.equal(topo.exec(topo.receiver, 'ethtool', ['-K', 'eth1', 'gro', 'on']).code, 0);
        ip(['-n', topo.receiver, 'addr', 'add', `10.${topo.net}.11.2/24`, 'dev', 'eth1']);
        ip(['-n', topo.receiver, 'link', 'set', 'eth1', 'up']);
        // (The output's own reason: on the XDP path the rule's may first say that out1's far end
        // had no NAPI when the link appeared, until out1's next change is seen.)
        const out1Reason = (): string | null => ruleOf(relay, rule.id).outputs[1]!.reason;
        await waitFor('out1 seen', () => (out1Reason() === 'out1 has no IPv4 address' ? true : undefined));
        ip(['-n', topo.relay, 'addr', 'add', `10.${topo.net}.11.1/24`, 'dev', 'out1']);
        await waitFor('out1 address seen', () => (out1Reason() === 'out1 is down' ? true : undefined));
        ip(['-n', topo.relay, 'link', 'set', 'out1', 'up']);
        await waitFor('the rule to be active', () =>
          ruleOf(relay, rule.id).state === 'active' ? true : undefined,
        );
        assert.deepEqual(
          ruleOf(relay, rule.id).outputs.map((o) => o.path),
          [path, path],
        );
        // What operators see at a glance: each output's mode and path in use, TTL, DSCP and state.
        assert.match(
          relay.mcrctl(['list']).stdout,
          path === 'xdp'
            ? /-> 239\.2\.2\.2:6000 out1 +xdp +≤16 +keep +active/
            : /-> 239\.2\.2\.2:6000 out1 +auto: raw +≤16 +keep +active/,
        );

        const both = await Promise.all([
          expectPackets(topo, 'eth0', '239.2.2.1', 6000, 500),
          expectPackets(topo, 'eth1', '239.2.2.2', 6000, 500),
        ]);
        send(topo, '239.1.1.1', 5000, { rate: 2000, size: 300, count: 500 });
        for (const recv of both) assert.equal((await receiverReport(recv)).code, 0, recv.stderr);

        // out1 loses its address: the output stops (it would send from an address the host no
        // longer has) and says why; the other output goes on.
        ip(['-n', topo.relay, 'addr', 'flush', 'dev', 'out1']);
        await waitFor('the rule to show the lost address', () =>
          ruleOf(relay, rule.id).state === 'degraded' ? true : undefined,
        );
        const degraded = ruleOf(relay, rule.id);
        assert.equal(degraded.reason, 'out1 has no IPv4 address');
        assert.deepEqual(degraded.outputs[1], {
          ...degraded.outputs[1],
          state: 'waiting',
          path: null,
          reason: 'out1 has no IPv4 address',
        });
        const list = relay.mcrctl(['list']);
        assert.match(list.stdout, /degraded \(out1 has no IPv4 address\)/);
        assert.match(
          list.stdout,
          path === 'xdp'
            ? /-> 239\.2\.2\.2:6000 out1 +xdp: none yet .*waiting \(out1 has no IPv4 address\)/
            : /-> 239\.2\.2\.2:6000 out1 +auto: none yet .*waiting \(out1 has no IPv4 address\)/,
        );
        const first = await expectPackets(topo, 'eth0', '239.2.2.1', 6000, 300);
        send(topo, '239.1.1.1', 5000, { rate: 2000, size: 300, count: 300 });
        assert.equal((await receiverReport(first)).code, 0, first.stderr);
        const stats = await relay.statsAfter((s) => s.rules[0]!.counters.outputs[0]!.packets === 800);
        assert.deepEqual(
          stats.rules[0]!.counters.outputs.map((o) => o.packets),
          [800, 500],
          'the detached output sent nothing more, and its counters stayed',
        );
      } finally {
        topo.destroy();
      }
    },
  );
}

test('XDP: an output whose far end loses and regains NAPI is followed without any event on the link itself', async () => {
  const topo = new Topology({ net: 94, outputLinks: 2 });
  try {
    preparePath(topo, 'xdp');
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    const rule = relay.addRule('239.1.1.1', 5000, onPath('239.2.2.1:6000:out0,239.2.2.2:6000:out1', 'xdp'));
    assert.equal(rule.state, 'active', JSON.stringify(rule));
    // GRO off at the far end of out1 (another namespace): out1 no longer takes redirected frames,
    // and the broadcast would skip it without a trace. Only the netdev family tells mcrd.
    const gro = (on: boolean): void =>
      assert.equal(topo.exec(topo.receiver, 'ethtool', ['-K', 'eth1', 'gro', on ? 'on' : 'off']).code, 0);
    gro(false);
    const waiting = await waitFor('the rule to wait for out1', () => {
      const view = ruleOf(relay, rule.id);
      return view.state === 'waiting' ? view : undefined;
    });
    assert.match(waiting.reason ?? '', /out1: the veth's peer has no NAPI/);
    gro(true);
    await waitFor('the rule to be active again', () =>
      ruleOf(relay, rule.id).state === 'active' ? true : undefined,
    );
    const both = await Promise.all([
      expectPackets(topo, 'eth0', '239.2.2.1', 6000, 500),
      expectPackets(topo, 'eth1', '239.2.2.2', 6000, 500),
    ]);
    send(topo, '239.1.1.1', 5000, { rate: 2000, size: 300, count: 500 });
    for (const recv of both) assert.equal((await receiverReport(recv)).code, 0, recv.stderr);
  } finally {
    topo.destroy();
  }
});

// With two workers the input's sockets are a fanout group, and the handover opens a second group
// beside it: four flows (so both workers have some) must each reach the same worker in both
// groups for as long as both exist, or a frame is relayed twice (worker/ring-handover.ts).
for (const workers of [1, 2]) {
  test(`an input MTU raised while attached, ${workers} worker(s): larger frames are relayed, and flows across the change arrive exactly once`, async () => {
    const topo = new Topology({ net: 95 });
    try {
      const relay = await RelayHost.start(topo, ['--workers', String(workers)]);
      for (const group of ['239.1.1.1', '239.1.1.2', '239.1.1.3', '239.1.1.4'])
        relay.addRule(group, 5000, '239.2.2.1:6000:out0');
      // Four flows, 3000 probes in all at 1000 pps, run while every link on the path goes to
      // MTU 9000.
      const across = await expectPackets(topo, 'eth0', '239.2.2.1', 6000, 3000);
      const flow = topo.start(topo.sender, BIN('mcrgen'), [
        ...['send', '--interface', 'eth0', '--group', '239.1.1.1', '--streams', '4', '--port', '5000'],
        ...['--rate', '1000', '--size', '1000', '--count', '3000'],
      ]);
      await waitFor('the flow to be forwarded', () =>
        workerTotals(relay.stats()).forwarded > 500 ? true : undefined,
      );
      for (const [ns, link] of [
        [topo.sender, 'eth0'],
        [topo.relay, 'in0'],
        [topo.relay, 'out0'],
        [topo.receiver, 'eth0'],
      ] as const) {
        ip(['-n', ns, 'link', 'set', link, 'mtu', '9000']);
      }
      assert.equal((await flow.exited).code, 0, flow.stderr);
      const { code, report } = await receiverReport(across);
      assert.equal(code, 0, `${across.stderr}\n${JSON.stringify(report.totals)}`);
      assert.equal(report.totals.duplicates, 0);

      const big = await startReceiver(topo, topo.receiver, [
        ...['--interface', 'eth0', '--group', '239.2.2.1', '--port', '6000', '--max-size', '9000'],
        ...['--count', '500', '--timeout', '30', '--expect', '500'],
      ]);
      send(topo, '239.1.1.1', 5000, { rate: 1000, size: 8000, count: 500 });
      assert.equal((await receiverReport(big)).code, 0, big.stderr);
      const stats = await relay.statsAfter((s) => workerTotals(s).forwarded >= 3500);
      const worker = workerTotals(stats);
      assert.equal(worker.dropsByReason.oversize ?? 0, 0);
      assert.equal(worker.forwarded, 3500);
      assert.equal(
        stats.rules.reduce((n, r) => n + r.counters.packetsIn, 0),
        3500,
      );
    } finally {
      topo.destroy();
    }
  });
}
