import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { buildUdpFrame } from '../../src/packet/build.js';
import { EGRESS_HEADER_SIZE, writeEgressTemplate } from '../../src/packet/egress-header.js';
import { parseIpv4 } from '../../src/packet/ipv4-address.js';
import type { RawEgressSpec } from '../../src/protocol/worker-messages.js';
import { AF_PACKET, SOCK_RAW } from '../../src/sys/constants.js';
import { interfaceIndex } from '../../src/sys/interfaces.js';
import { openRawEgressSocket } from '../../src/sys/packet-socket.js';
import { ringGeometryFor, RxRing, TP_STATUS_USER } from '../../src/sys/rx-ring.js';
import { openSocket, openUdpSocket } from '../../src/sys/socket.js';
import { ForwardingRule } from '../../src/worker/forwarding-rule.js';
import { InputPath } from '../../src/worker/input-path.js';
import { OutputPath } from '../../src/worker/output-path.js';
import { WorkerCounterSet } from '../../src/worker/worker-counters.js';

// The worker's steady state must allocate nothing per packet: the "no GC pause" target
// rests on it. This drives the real InputPath and OutputPath over a ring the test fills itself.
// The packet socket is never bound, so the kernel writes nothing into the ring. The raw outputs
// send to the loopback interface, which drops the frames (nothing is a member of the groups).

const GROUP = parseIpv4('239.7.7.7')!;
const PORT = 5000;
const SETTINGS = {
  ringBytes: 1 << 20,
  batchSize: 64,
  batchesPerWakeup: 16,
  coalesceUs: 0,
  statsIntervalMs: 1000,
};
const TP_MAC_AT = 80; // where this test puts each frame in its slot, as the kernel would
const isRoot = process.getuid?.() === 0;

/** Collects what is garbage now, so that a later measurement counts only new allocation. */
const collectGarbage = ((): (() => void) => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

function rawOutput(
  counters: WorkerCounterSet,
  lo: number,
  group: number,
): { output: OutputPath; spec: RawEgressSpec } {
  const template = new Uint8Array(EGRESS_HEADER_SIZE);
  writeEgressTemplate(template, 0, {
    sourceMac: new Uint8Array(6),
    sourceAddress: parseIpv4('127.0.0.1')!,
    sourcePort: 40000,
    group,
    port: PORT,
    ttl: 1,
    dscp: 0,
  });
  const spec = { template: Buffer.from(template).toString('hex'), mtu: 65536 };
  const raw = { fd: openRawEgressSocket(lo, 'lo', true), spec };
  return {
    output: new OutputPath(openUdpSocket('test output'), raw, 'lo', SETTINGS.batchSize, counters),
    spec,
  };
}

for (const flows of [1, 5]) {
  test(
    `forwarding ${flows} interleaved flow(s) allocates nothing per packet once warm`,
    { skip: !isRoot && 'needs root for AF_PACKET' },
    () => {
      const counters = new WorkerCounterSet();
      const ingress = openSocket(AF_PACKET, SOCK_RAW, 0, 'test ring');
      const lo = interfaceIndex('lo')!;
      const groups = Array.from({ length: flows }, (_, k) => GROUP + k);
      const rules = groups.map((group, k) => {
        const { output, spec } = rawOutput(counters, lo, group);
        const rule = {
          id: `r${k}`,
          inputInterface: 'test',
          inputGroup: group,
          inputPort: PORT,
          outputs: ['lo'],
          egress: [spec],
        };
        return new ForwardingRule(rule, [output]);
      });
      // This test's own view of the ring; the InputPath maps the same ring as an inherited one.
      const ring = RxRing.attach(ingress, ringGeometryFor(1500, SETTINGS.ringBytes));
      const input = new InputPath(ingress, 'test', 1500, SETTINGS, counters, {
        watch: () => ({ stop() {} }),
      });
      for (const rule of rules) input.addRule(rule);
      const frames = groups.map((dst) =>
        buildUdpFrame({ src: parseIpv4('192.0.2.1')!, dst, srcPort: 4000, dstPort: PORT, payload: 64 }),
      );
      let slot = 0;
      let next = 0;
      const deliverBatch = (): void => {
        for (let i = 0; i < SETTINGS.batchSize; i++) {
          const frame = frames[next]!;
          next = (next + 1) % frames.length;
          const at = slot * ring.frameSize;
          ring.bytes.set(frame, at + TP_MAC_AT);
          ring.words[(at >>> 2) + 1] = frame.length; // tp_len
          ring.words[(at >>> 2) + 2] = frame.length; // tp_snaplen
          ring.halfWords[(at + 12) >>> 1] = TP_MAC_AT;
          Atomics.store(ring.words, at >>> 2, TP_STATUS_USER);
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
        run(5000); // warm-up: the JIT optimises drain and the outputs' queue and flush
        collectGarbage();
        const before = process.memoryUsage().heapUsed;
        const batches = 3000;
        run(batches);
        const grown = process.memoryUsage().heapUsed - before;
        const packets = batches * SETTINGS.batchSize;
        assert.equal(counters.forwarded, 8000 * SETTINGS.batchSize, 'every frame was forwarded');
        const sent = rules.reduce((sum, rule) => sum + rule.snapshot().outputs[0]!.raw, 0);
        assert.equal(sent, counters.forwarded, 'every copy left by the raw path');
        // One 16-byte heap number per packet would be 3 MB. What remains (0 to ~400 KB from run to
        // run, as much with the drain left out) is the JIT and the measurement itself.
        assert.ok(grown < 1024 * 1024, `${grown} bytes of heap for ${packets} packets`);
      } finally {
        input.close();
        ring.detach();
        for (const rule of rules) rule.close();
      }
    },
  );
}
