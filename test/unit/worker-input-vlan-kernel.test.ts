import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { buildUdpFrame, type VlanTagOptions } from '../../src/packet/build.js';
import { parseIpv4 } from '../../src/packet/ipv4-address.js';
import { AF_PACKET, ETH_P_ALL, ETH_P_IP, SOCK_RAW } from '../../src/sys/constants.js';
import { interfaceIndex } from '../../src/sys/interfaces.js';
import {
  bindPacketSocket,
  openFrameSender,
  openIngressSocket,
  sendFrame,
} from '../../src/sys/packet-socket.js';
import {
  ringGeometryFor,
  RxRing,
  PACKET_OTHERHOST,
  TP2_SLL_PKTTYPE,
  TP2_VLAN_TCI,
  TP2_VLAN_TPID,
  TP_STATUS_USER,
  TP_STATUS_VLAN_TPID_VALID,
  TP_STATUS_VLAN_VALID,
} from '../../src/sys/rx-ring.js';
import { closeFd, openSocket } from '../../src/sys/socket.js';
import { ForwardingRule } from '../../src/worker/forwarding-rule.js';
import { HostAddresses } from '../../src/worker/host-addresses.js';
import { InputPath } from '../../src/worker/input-path.js';
import { OutputPath } from '../../src/worker/output-path.js';
import { WorkerCounterSet } from '../../src/worker/worker-counters.js';
import { Sink, sleep, workerOutput } from './kernel-fixtures.js';
import { inPrivateNetns, isRoot, rerunInPrivateNetns } from './private-netns.js';

// What the kernel does with VLAN tags before a packet socket sees a frame, and what the worker
// makes of it: frames sent into one end of a veth pair, read at the other (own namespace).

const GROUP = parseIpv4('239.8.8.8')!;
const PORT = 5000;
const SETTINGS = {
  ringBytes: 1 << 20,
  batchSize: 64,
  batchesPerWakeup: 16,
  coalesceUs: 0,
  statsIntervalMs: 1000,
};

/** A packet socket bound to IPv4 only, as mcr's ingress once was. */
function ipOnlySocket(ifindex: number): number {
  const fd = openSocket(AF_PACKET, SOCK_RAW, 0, 'test ip only');
  bindPacketSocket(fd, ifindex, ETH_P_IP, 'v1');
  return fd;
}

function tagged(tags: VlanTagOptions[]): Uint8Array {
  return buildUdpFrame({
    src: parseIpv4('10.9.9.1')!,
    dst: GROUP,
    srcPort: 4000,
    dstPort: PORT,
    payload: 20,
    vlanTags: tags,
  });
}

interface Slot {
  status: number;
  tci: number;
  tpid: number;
  /** The EtherType right after the MAC addresses, as the socket sees the frame. */
  etherType: number;
  pktType: number;
}

function slots(ring: RxRing): Slot[] {
  const out: Slot[] = [];
  for (let slot = 0; slot < ring.frameCount; slot++) {
    const at = slot * ring.frameSize;
    const status = Atomics.load(ring.words, at >>> 2);
    if ((status & TP_STATUS_USER) === 0) break;
    const mac = at + ring.halfWords[(at + 12) >>> 1]!;
    out.push({
      status,
      tci: ring.halfWords[(at + TP2_VLAN_TCI) >>> 1]!,
      tpid: ring.halfWords[(at + TP2_VLAN_TPID) >>> 1]!,
      etherType: (ring.bytes[mac + 12]! << 8) | ring.bytes[mac + 13]!,
      pktType: ring.bytes[at + TP2_SLL_PKTTYPE]!,
    });
  }
  return out;
}

function tests(): void {
  for (const args of [
    ['link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1'],
    ['link', 'set', 'v0', 'up'],
    ['link', 'set', 'v1', 'up'],
  ])
    assert.equal(spawnSync('ip', args).status, 0, `ip ${args.join(' ')}`);
  const v0 = interfaceIndex('v0')!;
  const v1 = interfaceIndex('v1')!;
  const frames = [
    tagged([{ id: 100, priority: 3 }]),
    tagged([]),
    tagged([{ id: 0, priority: 5 }]),
    tagged([
      { id: 10, tpid: 0x88a8 },
      { id: 100, tpid: 0x8100 },
    ]),
  ];

  test('the kernel strips the outer tag and reports it to ETH_P_ALL sockets; ETH_P_IP ones lose it', async () => {
    const ipOnly = ipOnlySocket(v1);
    const all = openSocket(AF_PACKET, SOCK_RAW, 0, 'test all');
    bindPacketSocket(all, v1, ETH_P_ALL, 'v1');
    const ingress = openIngressSocket(v1, 'v1');
    const ipRing = RxRing.attach(ipOnly, ringGeometryFor(1500, SETTINGS.ringBytes));
    const allRing = RxRing.attach(all, ringGeometryFor(1500, SETTINGS.ringBytes));
    const ingressRing = RxRing.attach(ingress, ringGeometryFor(1500, SETTINGS.ringBytes));
    const sender = openFrameSender(v0, 'v0');
    try {
      for (const f of frames) sendFrame(sender, f);
      await sleep(100);
      const valid = TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID;
      // ETH_P_ALL (a tap, delivered first): the outer tag is in the slot header.
      const seen = slots(allRing).filter((s) => s.etherType !== 0x86dd); // IPv6 noise of a new link
      assert.equal(seen.length, 4);
      assert.equal(seen[0]!.status & valid, valid);
      assert.deepEqual([seen[0]!.tci, seen[0]!.tpid, seen[0]!.etherType], [(3 << 13) | 100, 0x8100, 0x0800]);
      assert.equal(seen[1]!.status & valid, 0, 'untagged');
      assert.equal(seen[2]!.status & valid, valid, 'a priority tag is a tag too');
      assert.equal(seen[2]!.tci, 5 << 13);
      assert.deepEqual(
        [seen[3]!.tpid, seen[3]!.tci & 0xfff, seen[3]!.etherType],
        [0x88a8, 10, 0x8100],
        'QinQ',
      );
      // mcr's ingress socket (every protocol, filtered): the same four frames, nothing else.
      assert.deepEqual(
        slots(ingressRing).map((s) => [s.status & valid, s.tci, s.etherType]),
        seen.map((s) => [s.status & valid, s.tci, s.etherType]),
      );
      // ETH_P_IP (a protocol handler, delivered after the kernel looked for a VLAN device and
      // found none): the tag is gone from the header, and a frame of VLAN 100 is marked as for
      // another host. The QinQ frame is not IPv4 once its outer tag is off: never delivered.
      const ip = slots(ipRing);
      assert.equal(ip.length, 3);
      assert.ok(ip.every((s) => (s.status & valid) === 0 && s.etherType === 0x0800));
      assert.deepEqual(
        ip.map((s) => s.pktType === PACKET_OTHERHOST),
        [true, false, false],
      );
    } finally {
      closeFd(sender);
      ipRing.detach();
      allRing.detach();
      ingressRing.detach();
      closeFd(ipOnly);
      closeFd(all);
      closeFd(ingress);
    }
  });

  for (const binding of ['ETH_P_ALL', 'ETH_P_IP'] as const) {
    test(`the worker over an ${binding} socket: VLAN rules by the stripped tag, or other_vlan`, async () => {
      const counters = new WorkerCounterSet();
      const sink = new Sink();
      // ETH_P_ALL is mcr's ingress socket (filtered to IPv4 and stacked tags); ETH_P_IP shows the
      // safety net for a socket that loses the tag.
      const fd = binding === 'ETH_P_IP' ? ipOnlySocket(v1) : openIngressSocket(v1, 'v1');
      const input = new InputPath(fd, 'v1', 1500, SETTINGS, counters, new HostAddresses(), {
        watch: () => ({ stop() {} }),
      });
      const rules = [0, 100].map((vlan) => {
        const output = new OutputPath(workerOutput(`vlan ${vlan}`), 64, counters);
        output.attach(sink.connectedSocket(), undefined);
        const rule = new ForwardingRule(
          {
            id: `v${vlan}`,
            inputInterface: 'v1',
            inputVlan: vlan,
            inputSource: 0,
            inputGroup: GROUP,
            inputPort: PORT,
            outputs: [],
          },
          [output],
        );
        input.addRule(rule);
        return rule;
      });
      const sender = openFrameSender(v0, 'v0');
      try {
        for (const f of frames) sendFrame(sender, f);
        await sleep(100);
        input.drain();
        const s = counters.snapshot();
        if (binding === 'ETH_P_ALL') {
          assert.deepEqual(
            rules.map((r) => r.packetsIn),
            [2, 1],
            'untagged and priority-tagged; VLAN 100',
          );
          assert.equal(s.dropsByReason.too_many_vlan_tags, 1);
          assert.equal(s.forwarded, 3);
        } else {
          // The VLAN is lost on this binding: the frame is not relayed as untagged, at least.
          assert.deepEqual(
            rules.map((r) => r.packetsIn),
            [2, 0],
          );
          assert.equal(s.dropsByReason.other_vlan, 1);
          assert.equal(s.forwarded, 2);
        }
        assert.equal(sink.readAll().length, s.forwarded);
      } finally {
        closeFd(sender);
        input.close();
        for (const r of rules) r.close();
        sink.close();
      }
    });
  }
}

if (isRoot && !inPrivateNetns) {
  test('VLAN tags against the kernel, in a network namespace of its own', () => {
    const r = rerunInPrivateNetns(fileURLToPath(import.meta.url));
    assert.equal(r.status, 0, r.output);
  });
} else if (!isRoot) {
  test('VLAN tags against the kernel', { skip: 'needs root (veth, AF_PACKET)' }, () => {});
} else {
  tests();
}
