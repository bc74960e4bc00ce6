import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { frameArgs, type FrameOptions } from '../helpers/send-frames.js';
import {
  expectPackets,
  listen,
  receiverReport,
  RelayHost,
  workerTotals,
  stopAndReport,
} from '../helpers/relay-host.js';
import { ROOT, Topology } from '../helpers/topology.js';

// A rule matches untagged frames unless it names a VLAN; frames of other VLANs, and frames with
// more tags than a rule can name (QinQ), are counted and not forwarded. Every frame the relay
// takes is in exactly one counter.

test('VLAN-tagged input: each rule relays only its VLAN; other VLANs and QinQ frames are counted, not forwarded', async () => {
  const topo = new Topology({ net: 96 });
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    relay.addRule('239.1.1.1', 5000, '239.2.2.1:6000:out0');
    relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0', ['--input-vlan', '100']);
    const untagged = await listen(topo, 'eth0', '239.2.2.1', 6000);
    const vlan100 = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, 100);

    const sendFrames = (stream: number, options: FrameOptions): void => {
      const r = topo.exec(topo.sender, process.execPath, [
        join(ROOT, 'dist/test/helpers/send-frames.js'),
        ...['eth0', '239.1.1.1', '5000', '100'],
        ...frameArgs({ ...options, stream, src: topo.senderAddress() }),
      ]);
      assert.equal(r.code, 0, r.stderr);
    };
    sendFrames(1, {});
    sendFrames(2, { vlan: '100' });
    sendFrames(3, { vlan: '200' });
    sendFrames(4, { vlan: '200/0x88a8,100' }); // 802.1ad service tag over a customer tag
    sendFrames(5, { vlan: '0' }); // priority-tagged: VLAN 0 is untagged traffic

    const { report } = await stopAndReport(untagged);
    assert.equal(report.totals.unique, 200, 'untagged and priority-tagged (VLAN 0) frames');
    assert.deepEqual(report.streams.map((s) => s.streamId).sort(), [1, 5]);
    assert.equal((await receiverReport(vlan100)).code, 0, vlan100.stderr);

    const stats = await relay.statsAfter((s) => workerTotals(s).framesSeen >= 500);
    const w = workerTotals(stats);
    assert.equal(w.framesSeen, 500);
    assert.equal(w.forwarded, 300);
    assert.equal(w.dropsByReason.other_vlan, 100);
    assert.equal(w.dropsByReason.too_many_vlan_tags, 100);
    assert.equal(w.noRule, 100);
    assert.equal(w.filtered, 100);
    assert.equal(
      w.forwarded + w.noRule + w.notIpv4Udp + w.malformed + w.fragments + w.filtered + w.workerRestart,
      w.framesSeen,
      'every frame in exactly one counter',
    );
    const [plain, tagged] = stats.rules;
    assert.equal(plain!.counters.packetsIn, 200);
    assert.equal(tagged!.counters.packetsIn, 100);
    assert.equal(tagged!.input.vlan, 100);
    assert.match(relay.mcrctl(['list']).stdout, /in0 vlan 100 239\.1\.1\.1:5000/);
  } finally {
    topo.destroy();
  }
});

test('a rule for a VLAN other than the traffic’s relays nothing', async () => {
  const topo = new Topology({ net: 97 });
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0', ['--input-vlan', '300']);
    const recv = await listen(topo, 'eth0', '239.2.2.2', 6000);
    const r = topo.exec(topo.sender, process.execPath, [
      join(ROOT, 'dist/test/helpers/send-frames.js'),
      ...['eth0', '239.1.1.1', '5000', '50'],
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await stopAndReport(recv)).report.totals.datagrams, 0);
    const w = workerTotals(await relay.statsAfter((s) => workerTotals(s).framesSeen >= 50));
    assert.equal(w.dropsByReason.no_rule, 50, 'untagged frames, and no untagged rule');
  } finally {
    topo.destroy();
  }
});
