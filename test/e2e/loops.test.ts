import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StatsView } from '../../src/protocol/control-api.js';
import { Lab } from '../helpers/lab.js';
import {
  expectPackets,
  listen,
  receiverReport,
  RelayHost,
  workerTotals,
  stopAndReport,
} from '../helpers/relay-host.js';
import { DATA_PATHS, named, onPath, preparePath, workerForwarded } from '../helpers/data-paths.js';
import { BIN, sleep, Topology } from '../helpers/topology.js';

// A relay must never let a packet circulate: copies carry a lower TTL than their input, a copy
// whose TTL would reach 0 is not sent, and frames from the host's own addresses are dropped.
// Each test seeds a loop with one packet and counts, exactly, what became of it.

/** Sends `count` probes with mcrgen from `iface` in `ns`. */
function seed(lab: Lab, ns: string, iface: string, group: string, ttl: number, count = 1): void {
  const r = lab.exec(ns, BIN('mcrgen'), [
    ...['send', '--interface', iface, '--group', group, '--port', '5000'],
    ...['--rate', '100', '--size', '100', '--count', String(count), '--ttl', String(ttl)],
  ]);
  assert.equal(r.code, 0, r.stderr);
}

/** Stats once they have not changed for 600 ms: a loop that went on would keep changing them. */
async function settled(relay: RelayHost): Promise<StatsView> {
  let last = '';
  for (let i = 0; i < 50; i++) {
    const stats = relay.stats();
    const key = JSON.stringify([stats.rules.map((r) => r.counters), workerTotals(stats)]);
    if (key === last) return stats;
    last = key;
    await sleep(600);
  }
  throw new Error(`counters still changing after 30 s: a loop is running\n${last}`);
}

test('two links of one relay looped through a switch: the copy that comes back is dropped as own_source', async () => {
  const lab = new Lab();
  try {
    const sender = lab.host('snd');
    const sw = lab.host('sw');
    const relayNs = lab.host('rly');
    lab.link(sender, 'eth0', sw, 'p0', '10.91.1.1/24');
    lab.link(relayNs, 'in0', sw, 'p1', '10.91.1.2/24');
    lab.link(relayNs, 'out0', sw, 'p2', '10.91.1.3/24');
    lab.bridge(sw, 'br0', ['p0', 'p1', 'p2']);
    const relay = await RelayHost.start({ ns: relayNs, socketPath: lab.socketPath('rly'), hosts: lab }, [
      '--workers',
      '1',
    ]);
    // The output is the input's own group and port, on a link that the switch joins to the input.
    const rule = relay.addRule('239.1.1.1', 5000, '239.1.1.1:5000:out0');
    seed(lab, sender, 'eth0', '239.1.1.1', 64);

    const stats = await settled(relay);
    const counters = stats.rules[0]!.counters;
    assert.equal(stats.rules[0]!.id, rule.id);
    assert.equal(counters.packetsIn, 2, 'the seed, and its copy coming back');
    assert.equal(counters.outputs[0]!.packets, 1, 'one copy was sent, once');
    assert.deepEqual(counters.drops, { own_source: 1 });
    const worker = workerTotals(stats);
    assert.equal(worker.forwarded, 1);
    assert.equal(worker.dropsByReason.own_source, 1);
    assert.equal(worker.filtered, 1);
  } finally {
    lab.destroy();
  }
});

test('two relays whose rules feed each other: the TTL ends the loop, and each hop is counted', async () => {
  const lab = new Lab();
  try {
    const sender = lab.host('snd');
    const sw = lab.host('sw');
    const a = lab.host('a');
    const b = lab.host('b');
    // sender, A's input and B's output share one LAN; A's output is B's input.
    lab.link(sender, 'eth0', sw, 'p0', '10.92.1.1/24');
    lab.link(a, 'in0', sw, 'p1', '10.92.1.2/24');
    lab.link(b, 'out0', sw, 'p2', '10.92.1.3/24');
    lab.bridge(sw, 'br0', ['p0', 'p1', 'p2']);
    lab.link(a, 'out0', b, 'in0', '10.92.2.1/24', '10.92.2.2/24');
    const [relayA, relayB] = await Promise.all([
      RelayHost.start({ ns: a, socketPath: lab.socketPath('a'), hosts: lab }, ['--workers', '1']),
      RelayHost.start({ ns: b, socketPath: lab.socketPath('b'), hosts: lab }, ['--workers', '1']),
    ]);
    relayA.addRule('239.1.1.1', 5000, '239.2.2.2:5000:out0');
    relayB.addRule('239.2.2.2', 5000, '239.1.1.1:5000:out0');
    // TTL 5 in: A sends 4, B 3, A 2, B 1; A gets it with TTL 1 and sends nothing.
    seed(lab, sender, 'eth0', '239.1.1.1', 5);

    const [statsA, statsB] = [await settled(relayA), await settled(relayB)];
    const ruleA = statsA.rules[0]!.counters;
    const ruleB = statsB.rules[0]!.counters;
    assert.equal(ruleA.packetsIn, 3);
    assert.equal(ruleA.outputs[0]!.packets, 2);
    assert.equal(ruleA.outputs[0]!.ttlExpired, 1);
    assert.deepEqual(ruleA.drops, { ttl_expired: 1 });
    assert.equal(ruleB.packetsIn, 2);
    assert.equal(ruleB.outputs[0]!.packets, 2);
    assert.deepEqual(ruleB.drops, {});
    assert.equal(workerTotals(statsA).dropsByReason.ttl_expired, 1);
    assert.equal(workerTotals(statsA).forwarded, 2);
    assert.equal(workerTotals(statsB).forwarded, 2);
  } finally {
    lab.destroy();
  }
});

// On both data paths: the XDP programs drop a copy whose TTL would be 0 in the egress program,
// and a frame no output could send at the input, counted the same way.
for (const path of DATA_PATHS) {
  test(
    named(
      'a TTL-1 source is relayed only by outputs with a fixed TTL; the others count it as ttl_expired',
      path,
    ),
    async () => {
      const topo = new Topology({ outputLinks: 2, net: 93 });
      try {
        preparePath(topo, path);
        const relay = await RelayHost.start(topo, ['--workers', '1']);
        relay.addRule('239.1.1.1', 5000, onPath('239.2.2.1:6000:out0,239.2.2.2:6000:out1:fixed-ttl=4', path));
        relay.addRule('239.1.1.2', 5000, onPath('239.2.2.3:6000:out0', path));
        const capped = await listen(topo, 'eth0', '239.2.2.1', 6000);
        const fixed = await expectPackets(topo, 'eth1', '239.2.2.2', 6000, 50);
        for (const group of ['239.1.1.1', '239.1.1.2']) {
          const r = topo.exec(topo.sender, BIN('mcrgen'), [
            ...['send', '--interface', 'eth0', '--group', group, '--port', '5000'],
            ...['--rate', '1000', '--size', '100', '--count', '50', '--ttl', '1'],
          ]);
          assert.equal(r.code, 0, r.stderr);
        }
        assert.equal((await receiverReport(fixed)).code, 0, fixed.stderr);
        assert.equal((await stopAndReport(capped)).report.totals.datagrams, 0);
        const stats = await relay.statsAfter((s) => s.rules.every((r) => r.counters.packetsIn >= 50));
        const [both, cappedOnly] = stats.rules;
        assert.equal(both!.counters.outputs[0]!.ttlExpired, 50);
        assert.equal(cappedOnly!.counters.outputs[0]!.ttlExpired, 50);
        assert.equal(both!.counters.outputs[1]!.packets, 50);
        assert.deepEqual(both!.counters.drops, {}, 'relayed by one output: forwarded');
        assert.deepEqual(cappedOnly!.counters.drops, { ttl_expired: 50 });
        const worker = workerTotals(stats);
        assert.equal(worker.forwarded, workerForwarded(50, path));
        assert.equal(worker.dropsByReason.ttl_expired, path === 'xdp' ? undefined : 50);
      } finally {
        topo.destroy();
      }
    },
  );
}
