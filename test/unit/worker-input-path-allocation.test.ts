import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { buildUdpFrame, type VlanTagOptions } from '../../src/packet/build.js';
import { EGRESS_HEADER_SIZE, writeEgressTemplate } from '../../src/packet/egress-header.js';
import { parseIpv4 } from '../../src/packet/ipv4-address.js';
import type { WorkerOutput, WorkerRule } from '../../src/protocol/worker-messages.js';
import { AF_PACKET, SOCK_RAW } from '../../src/sys/constants.js';
import { interfaceIndex } from '../../src/sys/interfaces.js';
import { openRawEgressSocket } from '../../src/sys/packet-socket.js';
import { ringGeometryFor, RxRing } from '../../src/sys/rx-ring.js';
import { openSocket } from '../../src/sys/socket.js';
import { ForwardingRule } from '../../src/worker/forwarding-rule.js';
import { HostAddresses } from '../../src/worker/host-addresses.js';
import { InputPath } from '../../src/worker/input-path.js';
import { OutputPath } from '../../src/worker/output-path.js';
import {
  FORWARDED,
  OTHER_VLAN,
  OWN_SOURCE,
  TOO_MANY_VLAN_TAGS,
  TTL_EXPIRED,
} from '../../src/packet/frame-outcomes.js';
import { WorkerCounterSet } from '../../src/worker/worker-counters.js';
import { Sink, workerOutput, writeSlot } from './kernel-fixtures.js';
import { inPrivateNetns, isRoot, rerunInPrivateNetns } from './private-netns.js';

// The worker's steady state must allocate nothing per packet: the "no GC pause" target
// rests on it. This drives the real InputPath and OutputPath over a ring the test fills itself.
// The packet socket is never bound, so the kernel writes nothing into the ring. Raw outputs send
// to the loopback interface, which drops the frames (nothing is a member of the groups); socket
// outputs send to a UDP socket nobody reads (the kernel drops what its buffer cannot hold).
// It runs in a network namespace of its own.

const PORT = 5000;
const SETTINGS = {
  ringBytes: 1 << 20,
  batchSize: 64,
  batchesPerWakeup: 16,
  coalesceUs: 0,
  statsIntervalMs: 1000,
};
const ip = (text: string): number => parseIpv4(text)!;

/** Collects what is garbage now, so that a later measurement counts only new allocation. */
const collectGarbage = ((): (() => void) => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

/** A frame as the ring holds it: its bytes, and the tag the kernel stripped (0: none). */
interface RingFrame {
  bytes: Uint8Array;
  strippedVlan: number;
}

interface Scenario {
  rules: { rule: WorkerRule; outputs: ('raw' | 'socket')[] }[];
  frames: RingFrame[];
  hostAddresses: number[];
  /** Per cycle of `frames`: how many end in each outcome (codes). */
  outcomes: Map<number, number>;
}

function frame(
  dst: string,
  options: {
    src?: string;
    ttl?: number;
    dscp?: number;
    ecn?: number;
    stripped?: number;
    inline?: VlanTagOptions[];
  } = {},
): RingFrame {
  return {
    bytes: buildUdpFrame({
      src: ip(options.src ?? '198.51.100.7'),
      dst: ip(dst),
      srcPort: 4000,
      dstPort: PORT,
      payload: 64,
      ttl: options.ttl ?? 64,
      dscp: options.dscp ?? 0,
      ecn: options.ecn ?? 0,
      vlanTags: options.inline,
    }),
    strippedVlan: options.stripped ?? 0,
  };
}

function rule(id: string, vlan: number, group: string, outputs: WorkerOutput[]): WorkerRule {
  return {
    id,
    inputInterface: 'test',
    inputVlan: vlan,
    inputSource: 0,
    inputGroup: ip(group),
    inputPort: PORT,
    outputs,
  };
}

/** Every frame forwarded by the raw path, `flows` groups interleaved: the data path at its plainest. */
function plain(flows: number): Scenario {
  const groups = Array.from({ length: flows }, (_, k) => `239.7.7.${7 + k}`);
  return {
    rules: groups.map((g, k) => ({ rule: rule(`r${k}`, 0, g, [workerOutput('lo')]), outputs: ['raw'] })),
    frames: groups.map((g) => frame(g)),
    hostAddresses: [],
    outcomes: new Map([[FORWARDED, flows]]),
  };
}

/**
 * Every outcome of the data path in one cycle of 8 frames: VLAN tags stripped and inline, a
 * source that is a host address (and the source changing every frame, so its cache misses),
 * TTLs that cap, expire and are fixed, DSCP kept and set with ECN kept, on both egress paths,
 * socket copies with per-packet control messages (two TTLs in turn: the socket cannot follow).
 */
function mixed(): Scenario {
  const host = '192.168.77.1'; // above 2^31, as most addresses are
  return {
    rules: [
      {
        rule: rule('untagged', 0, '239.7.7.7', [
          workerOutput('lo raw', { ttl: 16 }),
          workerOutput('sink', { ttl: 16, dscp: 46 }),
        ]),
        outputs: ['raw', 'socket'],
      },
      {
        rule: rule('vlan100', 100, '239.7.7.8', [
          workerOutput('sink fixed', { ttl: 8, ttlFixed: true }),
          workerOutput('lo raw', { ttl: 32, dscp: 10 }),
        ]),
        outputs: ['socket', 'raw'],
      },
    ],
    frames: [
      frame('239.7.7.7', { ttl: 64, dscp: 46, ecn: 1 }),
      frame('239.7.7.8', { ttl: 5, ecn: 2, stripped: 100, src: '203.0.113.9' }),
      frame('239.7.7.7', { src: host }),
      frame('239.7.7.7', { stripped: 200 }),
      frame('239.7.7.8', { stripped: 100, inline: [{ id: 5 }] }),
      frame('239.7.7.7', { ttl: 1, src: '203.0.113.10' }),
      frame('239.7.7.8', { ttl: 1, stripped: 100 }),
      frame('239.7.7.7', { ttl: 10, dscp: 8, src: '203.0.113.11' }),
    ],
    hostAddresses: [ip('10.1.2.3'), ip(host)],
    outcomes: new Map([
      [FORWARDED, 4],
      [OWN_SOURCE, 1],
      [OTHER_VLAN, 1],
      [TOO_MANY_VLAN_TAGS, 1],
      [TTL_EXPIRED, 1],
    ]),
  };
}

/**
 * Four sources whose copies never agree on TOS, on the socket path: three in four copies need
 * options whatever the socket is set to, so the socket is adjusted after every pause.
 */
function disagreeing(): Scenario {
  return {
    rules: [{ rule: rule('r', 0, '239.7.7.7', [workerOutput('sink')]), outputs: ['socket'] }],
    frames: [8, 16, 24, 32].map((dscp, k) => frame('239.7.7.7', { dscp, src: `203.0.113.${k + 1}` })),
    hostAddresses: [],
    outcomes: new Map([[FORWARDED, 4]]),
  };
}

function rawSpec(group: number): { template: string; mtu: number } {
  const template = new Uint8Array(EGRESS_HEADER_SIZE);
  writeEgressTemplate(template, 0, {
    sourceMac: new Uint8Array(6),
    sourceAddress: ip('127.0.0.1'),
    sourcePort: 40000,
    group,
    port: PORT,
    ttl: 1,
    dscp: 0,
  });
  return { template: Buffer.from(template).toString('hex'), mtu: 65536 };
}

function measure(name: string, scenario: Scenario): void {
  test(`${name}: allocates nothing per packet once warm`, () => {
    const counters = new WorkerCounterSet();
    const hostAddresses = new HostAddresses();
    hostAddresses.replace(scenario.hostAddresses);
    const sink = new Sink();
    const ingress = openSocket(AF_PACKET, SOCK_RAW, 0, 'test ring');
    const lo = interfaceIndex('lo')!;
    const rules = scenario.rules.map(({ rule: r, outputs: paths }) => {
      const outputs = r.outputs.map((o, i) => {
        const output = new OutputPath(o, SETTINGS.batchSize, counters);
        const raw =
          paths[i] === 'raw'
            ? { fd: openRawEgressSocket(lo, 'lo', true), spec: rawSpec(r.inputGroup) }
            : undefined;
        output.attach(sink.connectedSocket(), raw);
        return output;
      });
      return new ForwardingRule(r, outputs);
    });
    // This test's own view of the ring; the InputPath maps the same ring as an inherited one.
    const ring = RxRing.attach(ingress, ringGeometryFor(1500, SETTINGS.ringBytes));
    const input = new InputPath(ingress, 'test', 1500, SETTINGS, counters, hostAddresses, {
      watch: () => ({ stop() {} }),
    });
    for (const r of rules) input.addRule(r);
    const frames = scenario.frames;
    let slot = 0;
    let next = 0;
    const deliverBatch = (): void => {
      for (let i = 0; i < SETTINGS.batchSize; i++) {
        const f = frames[next]!;
        next = (next + 1) % frames.length;
        writeSlot(ring, slot, f.bytes, f.strippedVlan === 0 ? undefined : f.strippedVlan);
        slot = (slot + 1) % ring.frameCount;
      }
    };
    const run = (batches: number): void => {
      for (let b = 0; b < batches; b++) {
        deliverBatch();
        input.drain();
      }
    };
    try {
      assert.equal((SETTINGS.batchSize * 8) % frames.length, 0, 'whole cycles per batch');
      run(5000); // warm-up: the JIT optimises drain and the outputs' queue and flush
      collectGarbage();
      const before = process.memoryUsage().heapUsed;
      const batches = 12000;
      run(batches);
      const grown = process.memoryUsage().heapUsed - before;
      const packets = batches * SETTINGS.batchSize;
      const cycles = ((5000 + batches) * SETTINGS.batchSize) / frames.length;
      for (const [code, perCycle] of scenario.outcomes)
        assert.equal(counters.outcomes[code], perCycle * cycles, `outcome ${code}`);
      assert.equal(counters.framesSeen, (5000 + batches) * SETTINGS.batchSize, 'every frame has one outcome');
      const copies = rules.reduce(
        (sum, r) => sum + r.snapshot().outputs.reduce((n, o) => n + o.packets, 0),
        0,
      );
      assert.ok(copies >= counters.forwarded, 'every forwarded frame was sent');
      assert.equal(counters.egressErrors, 0);
      // One 16-byte heap number per packet would be 12 MB. What remains is the JIT and the
      // measurement itself: 0 to ~1 MB from run to run, 2.3 MB once in six runs while a whole
      // test suite ran beside it (3 bytes a packet, no per-packet object). 4 MB leaves room for
      // that and still catches anything allocated per packet.
      assert.ok(grown < 4 * 1024 * 1024, `${grown} bytes of heap for ${packets} packets`);
    } finally {
      input.close();
      ring.detach();
      for (const r of rules) r.close();
      sink.close();
    }
  });
}

if (isRoot && !inPrivateNetns) {
  test('data path allocation, in a network namespace of its own', () => {
    const r = rerunInPrivateNetns(fileURLToPath(import.meta.url));
    assert.equal(r.status, 0, r.output);
  });
} else if (!isRoot) {
  test('data path allocation', { skip: 'needs root for AF_PACKET' }, () => {});
} else {
  measure('one flow, raw path', plain(1));
  measure('four interleaved flows, raw path', plain(4));
  measure('VLANs, loops, TTL and TOS per copy, both paths', mixed());
  measure('socket path following flows that never agree', disagreeing());
}
