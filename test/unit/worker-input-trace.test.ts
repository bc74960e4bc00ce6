import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { buildUdpFrame, type UdpFrameOptions } from '../../src/packet/build.js';
import { parseIpv4 } from '../../src/packet/ipv4-address.js';
import type { TraceRecord, TraceSelection } from '../../src/protocol/trace.js';
import type { WorkerOutput } from '../../src/protocol/worker-messages.js';
import { AF_PACKET, SOCK_RAW } from '../../src/sys/constants.js';
import { ringGeometryFor, RxRing } from '../../src/sys/rx-ring.js';
import { openSocket, openUdpSocket } from '../../src/sys/socket.js';
import { ForwardingRule } from '../../src/worker/forwarding-rule.js';
import { HostAddresses } from '../../src/worker/host-addresses.js';
import { InputPath } from '../../src/worker/input-path.js';
import { InputTrace, TraceSession } from '../../src/worker/input-trace.js';
import { OutputPath } from '../../src/worker/output-path.js';
import { WorkerCounterSet } from '../../src/worker/worker-counters.js';
import { Sink, workerOutput, writeSlot } from './kernel-fixtures.js';
import { inPrivateNetns, isRoot, rerunInPrivateNetns } from './private-netns.js';

// What a trace records of each frame, on the real data path (InputPath.drain over a ring the test
// writes, copies sent to a UDP sink on loopback): the outcome the counters counted, the rule, each
// copy's fate, and the parser's view of malformed frames; and that tracing changes no counter.

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
const RULE = 'r-0123456789ab';

/** A frame as buildUdpFrame makes it from `frame`, then cut short or edited. */
interface FrameSpec {
  frame?: Partial<UdpFrameOptions>;
  cut?: number;
  edit?: (bytes: Uint8Array) => void;
}

interface Rig {
  input: InputPath;
  counters: WorkerCounterSet;
  outputs: OutputPath[];
  send(frames: FrameSpec[]): void;
  close(): void;
}

/**
 * An input with one rule (RULE, G:PORT) and outputs as given: `refusing` outputs get a UDP socket
 * that is not connected, so the kernel refuses every copy (EDESTADDRREQ).
 */
function rig(specs: (WorkerOutput & { refusing?: boolean })[]): Rig {
  const counters = new WorkerCounterSet();
  const sink = new Sink();
  const fd = openSocket(AF_PACKET, SOCK_RAW, 0, 'test ring');
  const ring = RxRing.attach(fd, ringGeometryFor(1500, SETTINGS.ringBytes));
  const input = new InputPath(fd, 'test', 1500, SETTINGS, counters, new HostAddresses(), {
    watch: () => ({ stop() {} }),
  });
  const outputs = specs.map((spec) => {
    const o = new OutputPath({ ...spec, attached: false }, SETTINGS.batchSize, counters);
    if (spec.attached)
      o.attach(spec.refusing ? openUdpSocket('unconnected') : sink.connectedSocket(), undefined);
    return o;
  });
  const rule = new ForwardingRule(
    {
      id: RULE,
      inputInterface: 'test',
      inputVlan: 0,
      inputSource: 0,
      inputGroup: ip(G),
      inputPort: PORT,
      outputs: specs,
    },
    outputs,
  );
  input.addRule(rule);
  let slot = 0;
  return {
    input,
    counters,
    outputs,
    send(frames) {
      for (const { frame, cut, edit } of frames) {
        const bytes = buildUdpFrame({
          src: ip('10.63.1.1'),
          dst: ip(G),
          srcPort: 40000,
          dstPort: PORT,
          payload: 100,
          ...frame,
        });
        edit?.(bytes);
        writeSlot(ring, slot, cut === undefined ? bytes : bytes.subarray(0, cut));
        slot = (slot + 1) % ring.frameCount;
      }
      input.drain();
    },
    close() {
      input.close();
      ring.detach();
      rule.close();
      sink.close();
    },
  };
}

function trace(
  input: InputPath,
  selection: Partial<TraceSelection>,
  count = 100,
  dropsOnly = false,
): TraceSession {
  const session = new TraceSession(
    1,
    { interface: 'test', rule: null, group: null, port: null, ...selection },
    count,
    dropsOnly,
  );
  input.trace = new InputTrace(input.batchCapacity);
  input.trace.sessions = [session];
  return session;
}

/** Good, unmatched, TTL 1, bad checksum, cut short: one of each. */
const MIXED: FrameSpec[] = [
  {},
  { frame: { dst: ip('239.9.9.9') } },
  { frame: { ttl: 1 } },
  { edit: (b) => (b[14 + 10] = b[14 + 10]! ^ 0xff) }, // the IPv4 header checksum
  { cut: 30 },
];

function summary(r: TraceRecord): string {
  const copies = r.copies.map(
    (c) => `${c.output}:${c.status}${c.path ? `/${c.path}` : ''}${c.errno ? `/${c.errno}` : ''}`,
  );
  return `${r.outcome} ${r.rule ?? '-'} ${r.group === null ? '-' : r.group.toString(16)}:${r.port ?? '-'} ${copies.join(',')}`;
}

function tests(): void {
  test('an input trace records each frame with the outcome the counters counted', () => {
    const r = rig([workerOutput('a'), workerOutput('b', { attached: false })]);
    try {
      const session = trace(r.input, {});
      r.send(MIXED);
      const records = session.buffer.take(100);
      assert.deepEqual(records.map(summary), [
        `forwarded ${RULE} ef010101:5000 0:sent/socket,1:detached`,
        'no_rule - ef090909:5000 ',
        `ttl_expired ${RULE} ef010101:5000 0:ttl_expired,1:detached`,
        'bad_ipv4_checksum - -:- ',
        'truncated_ipv4 - -:- ',
      ]);
      const first = records[0]!;
      assert.equal(first.source, ip('10.63.1.1'));
      assert.equal(first.sourcePort, 40000);
      assert.equal(first.payloadLength, 100);
      assert.equal(first.ttl, 64);
      assert.equal(first.vlan, null);
      assert.ok(first.timeUs >= 0);
      assert.equal(records[4]!.frameLength, 30);
      assert.equal(records[4]!.payloadLength, null);
      assert.equal(session.recorded, 5);
    } finally {
      r.close();
    }
  });

  test('a refused copy shows its errno, and a frame with every copy refused is egress_failed', () => {
    const r = rig([
      workerOutput('a'),
      workerOutput('b', { refusing: true } as Partial<WorkerOutput & { refusing: boolean }>),
    ]);
    const alone = rig([
      workerOutput('c', { refusing: true } as Partial<WorkerOutput & { refusing: boolean }>),
    ]);
    try {
      const session = trace(r.input, { rule: RULE });
      r.send([{}]);
      assert.deepEqual(session.buffer.take(10).map(summary), [
        `forwarded ${RULE} ef010101:5000 0:sent/socket,1:refused/socket/EDESTADDRREQ`,
      ]);
      const failed = trace(alone.input, { rule: RULE }, 100, true);
      alone.send([{}, {}]);
      assert.deepEqual(failed.buffer.take(10).map(summary), [
        `egress_failed ${RULE} ef010101:5000 0:refused/socket/EDESTADDRREQ`,
        `egress_failed ${RULE} ef010101:5000 0:refused/socket/EDESTADDRREQ`,
      ]);
      assert.equal(alone.counters.snapshot().dropsByReason.egress_failed, 2);
    } finally {
      r.close();
      alone.close();
    }
  });

  test('selections: a rule, a group and port; drops only; at most the count', () => {
    const r = rig([workerOutput('a')]);
    try {
      const byRule = trace(r.input, { rule: RULE });
      r.send([{}, { frame: { dst: ip('239.9.9.9') } }, {}]);
      assert.deepEqual(
        byRule.buffer.take(10).map((x) => x.outcome),
        ['forwarded', 'forwarded'],
      );

      const byPort = trace(r.input, { group: ip('239.9.9.9'), port: 5000 });
      r.send([{}, { frame: { dst: ip('239.9.9.9') } }, { frame: { dst: ip('239.9.9.9'), dstPort: 5001 } }]);
      assert.deepEqual(byPort.buffer.take(10).map(summary), ['no_rule - ef090909:5000 ']);

      const drops = trace(r.input, {}, 2, true);
      r.send([{}, {}, { frame: { ttl: 1 } }, {}, { frame: { dst: ip('239.9.9.9') } }]);
      r.send([{ frame: { dst: ip('239.9.9.8') } }]);
      assert.deepEqual(
        drops.buffer.take(10).map((x) => x.outcome),
        ['ttl_expired', 'no_rule'],
      );
      assert.ok(drops.done);
      assert.equal(drops.buffer.size, 0, 'forwarded frames took no room');
    } finally {
      r.close();
    }
  });

  test('tracing changes no counter: the same frames count the same with a trace running', () => {
    const counts = [false, true].map((traced) => {
      const r = rig([workerOutput('a'), workerOutput('b')]);
      try {
        if (traced) trace(r.input, {}, 10_000);
        for (let i = 0; i < 20; i++) r.send(MIXED.slice(0, 3).concat(MIXED.slice(4)));
        return r.counters.snapshot();
      } finally {
        r.close();
      }
    });
    assert.deepEqual(counts[1], counts[0]);
    assert.equal(counts[0]!.forwarded, 20);
  });
}

if (isRoot && !inPrivateNetns) {
  test('input tracing, in a network namespace of its own', () => {
    const r = rerunInPrivateNetns(fileURLToPath(import.meta.url));
    assert.equal(r.status, 0, r.output);
  });
} else if (!isRoot) {
  test('input tracing', { skip: 'needs root for AF_PACKET' }, () => {});
} else {
  tests();
}
