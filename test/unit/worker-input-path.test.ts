import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { buildUdpFrame, type UdpFrameOptions } from '../../src/packet/build.js';
import { parseIpv4 } from '../../src/packet/ipv4-address.js';
import type { WorkerOutput } from '../../src/protocol/worker-messages.js';
import { AF_PACKET, SOCK_RAW } from '../../src/sys/constants.js';
import type { Region } from '../../src/sys/libc.js';
import { PACKET_OTHERHOST, ringGeometryFor, RxRing } from '../../src/sys/rx-ring.js';
import { openSocket } from '../../src/sys/socket.js';
import { ForwardingRule } from '../../src/worker/forwarding-rule.js';
import { HostAddresses } from '../../src/worker/host-addresses.js';
import { InputPath } from '../../src/worker/input-path.js';
import { OutputPath } from '../../src/worker/output-path.js';
import { WorkerCounterSet } from '../../src/worker/worker-counters.js';
import { Sink, workerOutput, writeSlot } from './kernel-fixtures.js';
import { inPrivateNetns, isRoot, rerunInPrivateNetns } from './private-netns.js';

// What the data path decides per frame: VLAN, rule lookup, loops, TTL and TOS per copy,
// outputs that come and go, and the counters that say so. Frames are written into a ring by the
// test (the packet socket is never bound); copies go to a UDP sink on loopback.

const ip = (text: string): number => parseIpv4(text)!;
const SETTINGS = {
  ringBytes: 1 << 20,
  batchSize: 64,
  batchesPerWakeup: 16,
  coalesceUs: 0,
  statsIntervalMs: 1000,
};
const G = '239.1.1.1';
const PORT = 5000;

/** An output that notes each copy's TTL and TOS, then sends it as usual. */
class RecordingOutput extends OutputPath {
  readonly copies: { ttl: number; tos: number }[] = [];
  override queue(
    ring: Region,
    payloadOffset: number,
    payloadLength: number,
    ttl: number,
    tos: number,
    frame: number,
  ): void {
    this.copies.push({ ttl, tos });
    super.queue(ring, payloadOffset, payloadLength, ttl, tos, frame);
  }
}

interface Rig {
  input: InputPath;
  counters: WorkerCounterSet;
  hosts: HostAddresses;
  sink: Sink;
  rule(
    id: string,
    vlan: number,
    group: string,
    outputs: WorkerOutput[],
  ): { rule: ForwardingRule; outputs: RecordingOutput[] };
  /** Writes frames into the ring and drains it once. `tci`: the tag the kernel stripped. */
  send(frames: { frame: Partial<UdpFrameOptions>; tci?: number; pktType?: number }[]): void;
  close(): void;
}

function rig(): Rig {
  const counters = new WorkerCounterSet();
  const hosts = new HostAddresses();
  const sink = new Sink();
  const fd = openSocket(AF_PACKET, SOCK_RAW, 0, 'test ring');
  const ring = RxRing.attach(fd, ringGeometryFor(1500, SETTINGS.ringBytes)); // the test's view
  const input = new InputPath(fd, 'test', 1500, SETTINGS, counters, hosts, { watch: () => ({ stop() {} }) });
  const rules: ForwardingRule[] = [];
  let slot = 0;
  return {
    input,
    counters,
    hosts,
    sink,
    rule(id, vlan, group, specs) {
      const outputs = specs.map((spec) => {
        const o = new RecordingOutput({ ...spec, attached: false }, SETTINGS.batchSize, counters);
        if (spec.attached) o.attach(sink.connectedSocket(), undefined);
        return o;
      });
      const r = new ForwardingRule(
        {
          id,
          inputInterface: 'test',
          inputVlan: vlan,
          inputSource: 0,
          inputGroup: ip(group),
          inputPort: PORT,
          outputs: specs,
        },
        outputs,
      );
      rules.push(r);
      input.addRule(r);
      return { rule: r, outputs };
    },
    send(frames) {
      for (const { frame, tci, pktType } of frames) {
        const bytes = buildUdpFrame({
          src: ip('198.51.100.7'),
          dst: ip(G),
          srcPort: 4000,
          dstPort: PORT,
          payload: 32,
          ...frame,
        });
        writeSlot(ring, slot, bytes, tci, pktType);
        slot = (slot + 1) % ring.frameCount;
      }
      input.drain();
    },
    close() {
      input.close();
      ring.detach();
      for (const r of rules) r.close();
      sink.close();
    },
  };
}

/** The snapshot's buckets add up to framesSeen; returns the drops by reason. */
function checkedDrops(counters: WorkerCounterSet): Record<string, number> {
  const s = counters.snapshot();
  assert.equal(
    s.forwarded + s.noRule + s.notIpv4Udp + s.malformed + s.fragments + s.filtered + s.workerRestart,
    s.framesSeen,
  );
  return s.dropsByReason;
}

function tests(): void {
  test('VLAN: the stripped tag, or an inline one, picks the rule; VLAN 0 is untagged', () => {
    const r = rig();
    try {
      const untagged = r.rule('untagged', 0, G, [workerOutput('a')]);
      const vlan100 = r.rule('vlan100', 100, G, [workerOutput('b')]);
      r.rule('vlan300', 300, '239.3.3.3', [workerOutput('c')]);
      r.send([
        { frame: {} }, // untagged
        { frame: {}, tci: 100 }, // the kernel stripped VLAN 100
        { frame: {}, tci: 0x6000 | 100 }, // VLAN 100 with priority 3
        { frame: {}, tci: 0x6000 }, // a priority tag: VLAN 0, untagged
        { frame: { vlanTags: [{ id: 100 }] } }, // a tag the kernel left in the frame
        { frame: { vlanTags: [{ id: 0, priority: 5 }] } },
        { frame: {}, tci: 200 }, // no rule of this input names VLAN 200
        { frame: {}, tci: 300 }, // VLAN 300 is named, but not for this group
        { frame: { dst: ip('239.9.9.9') } }, // no rule for this group
        { frame: { vlanTags: [{ id: 5 }] }, tci: 100 }, // QinQ: stripped outer tag and an inner one
        { frame: { vlanTags: [{ id: 5 }, { id: 6 }] } }, // QinQ, both inline
        // An ETH_P_IP socket's view of a VLAN-100 frame: tag cleared, marked for another host.
        { frame: {}, pktType: PACKET_OTHERHOST },
        // A unicast frame for another host (promiscuous mode) is no VLAN matter.
        {
          frame: { dst: ip('10.1.1.1'), dstMac: Uint8Array.of(2, 0, 0, 0, 0, 2) },
          pktType: PACKET_OTHERHOST,
        },
      ]);
      assert.equal(untagged.rule.packetsIn, 3);
      assert.equal(vlan100.rule.packetsIn, 3);
      const drops = checkedDrops(r.counters);
      assert.deepEqual(drops, { other_vlan: 2, no_rule: 3, too_many_vlan_tags: 2 });
      assert.equal(r.counters.forwarded, 6);
    } finally {
      r.close();
    }
  });

  test('own source: frames from a host address are dropped, by the address list of the moment', () => {
    const r = rig();
    try {
      const { rule } = r.rule('r', 0, G, [workerOutput('a')]);
      const host = '192.168.9.1'; // above 2^31
      const frames = [
        { frame: {} },
        { frame: { src: ip(host) } },
        { frame: { src: ip(host) } },
        { frame: {} },
      ];
      r.send(frames);
      assert.deepEqual(checkedDrops(r.counters), {}, 'no address known yet');
      r.hosts.replace([ip('10.0.0.1'), ip(host)]);
      r.send(frames);
      assert.deepEqual(checkedDrops(r.counters), { own_source: 2 });
      assert.deepEqual(rule.snapshot().drops, { own_source: 2 });
      r.hosts.replace([ip('10.0.0.1')]);
      r.send(frames);
      assert.deepEqual(checkedDrops(r.counters), { own_source: 2 }, 'replaced wholesale');
      assert.equal(rule.packetsIn, 12, 'every matched frame is counted in');
      assert.equal(r.counters.forwarded, 10);
    } finally {
      r.close();
    }
  });

  test('TTL per copy: one less than the input, capped per output, or fixed; 0 is not sent', () => {
    const r = rig();
    try {
      const { rule, outputs } = r.rule('r', 0, G, [
        workerOutput('capped 16', { ttl: 16 }),
        workerOutput('capped 3', { ttl: 3 }),
        workerOutput('fixed 7', { ttl: 7, ttlFixed: true }),
      ]);
      r.send([64, 10, 3, 2, 1, 0].map((ttl) => ({ frame: { ttl } })));
      assert.deepEqual(
        outputs.map((o) => o.copies.map((c) => c.ttl)),
        [
          [16, 9, 2, 1],
          [3, 3, 2, 1],
          [7, 7, 7, 7, 7, 7],
        ],
      );
      assert.deepEqual(
        outputs.map((o) => o.snapshot().ttlExpired),
        [2, 2, 0],
      );
      assert.equal(r.counters.forwarded, 6, 'the fixed output always sends');
      const { rule: capped, outputs: cappedOutputs } = r.rule('capped', 0, '239.2.2.2', [
        workerOutput('a', { ttl: 16 }),
        workerOutput('b', { ttl: 64 }),
      ]);
      r.send([1, 0, 2].map((ttl) => ({ frame: { ttl, dst: ip('239.2.2.2') } })));
      assert.deepEqual(checkedDrops(r.counters), { ttl_expired: 2 });
      assert.deepEqual(capped.snapshot().drops, { ttl_expired: 2 });
      assert.deepEqual(
        capped.snapshot().outputs.map((o) => o.ttlExpired),
        [2, 2],
      );
      assert.deepEqual(
        cappedOutputs.map((o) => o.copies),
        [[{ ttl: 1, tos: 0 }], [{ ttl: 1, tos: 0 }]],
      );
      assert.deepEqual(rule.snapshot().drops, {});
    } finally {
      r.close();
    }
  });

  test("TOS per copy: the input's DSCP or the output's, the input's ECN always", () => {
    const r = rig();
    try {
      const { outputs } = r.rule('r', 0, G, [workerOutput('keep'), workerOutput('ef', { dscp: 46 })]);
      r.send([
        { frame: { dscp: 10, ecn: 0 } },
        { frame: { dscp: 10, ecn: 1 } },
        { frame: { dscp: 63, ecn: 3 } },
        { frame: { dscp: 0, ecn: 2 } },
      ]);
      assert.deepEqual(
        outputs[0]!.copies.map((c) => c.tos),
        [40, 41, 255, 2],
      );
      assert.deepEqual(
        outputs[1]!.copies.map((c) => c.tos),
        [184, 185, 187, 186],
      );
    } finally {
      r.close();
    }
  });

  test('outputs that come and go: no_output while none is attached, counters carry on', () => {
    const r = rig();
    try {
      const { rule, outputs } = r.rule('r', 0, G, [
        workerOutput('a', { attached: false }),
        workerOutput('b', { attached: false }),
      ]);
      r.send([{ frame: {} }, { frame: {} }]);
      assert.deepEqual(checkedDrops(r.counters), { no_output: 2 });
      assert.deepEqual(rule.snapshot().drops, { no_output: 2 });
      assert.deepEqual(
        rule.fingerprint().outputs.map((o) => o.attached),
        [false, false],
      );
      outputs[1]!.attach(r.sink.connectedSocket(), undefined);
      rule.refreshLive();
      r.send([{ frame: {} }]);
      assert.deepEqual(
        rule.snapshot().outputs.map((o) => o.packets),
        [0, 1],
      );
      outputs[1]!.attach(r.sink.connectedSocket(), undefined); // replaced: counters carry on
      outputs[0]!.attach(r.sink.connectedSocket(), undefined);
      rule.refreshLive();
      r.send([{ frame: {} }]);
      assert.deepEqual(
        rule.snapshot().outputs.map((o) => o.packets),
        [1, 2],
      );
      outputs[0]!.detach();
      outputs[1]!.detach();
      rule.refreshLive();
      r.send([{ frame: {} }]);
      assert.deepEqual(checkedDrops(r.counters), { no_output: 3 });
      assert.deepEqual(
        rule.snapshot().outputs.map((o) => o.packets),
        [1, 2],
        'kept while detached',
      );
      assert.equal(rule.packetsIn, 5);
      assert.equal(r.sink.readAll().length, 3);
    } finally {
      r.close();
    }
  });
}

if (isRoot && !inPrivateNetns) {
  test('data path decisions, in a network namespace of its own', () => {
    const r = rerunInPrivateNetns(fileURLToPath(import.meta.url));
    assert.equal(r.status, 0, r.output);
  });
} else if (!isRoot) {
  test('data path decisions', { skip: 'needs root for AF_PACKET' }, () => {});
} else {
  tests();
}
