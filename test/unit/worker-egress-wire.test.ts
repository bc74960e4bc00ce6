import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { EGRESS_HEADER_SIZE, writeEgressTemplate } from '../../src/packet/egress-header.js';
import { DropReason, ParsedFrame, parseFrame } from '../../src/packet/frame.js';
import { parseIpv4 } from '../../src/packet/ipv4-address.js';
import { IPPROTO_IP, IP_MULTICAST_TTL, IP_TOS, IP_TTL } from '../../src/sys/constants.js';
import { allocateNative } from '../../src/sys/libc.js';
import { interfaceIndex } from '../../src/sys/interfaces.js';
import { openIngressSocket, openRawEgressSocket } from '../../src/sys/packet-socket.js';
import { ringGeometryFor, RxRing, TP_STATUS_KERNEL, TP_STATUS_USER } from '../../src/sys/rx-ring.js';
import {
  closeFd,
  connectIpv4,
  getIntOption,
  openUdpSocket,
  setMulticastInterface,
  setMulticastLoop,
} from '../../src/sys/socket.js';
import { OutputPath } from '../../src/worker/output-path.js';
import { WorkerCounterSet } from '../../src/worker/worker-counters.js';
import { Sink, workerOutput } from './kernel-fixtures.js';
import { inPrivateNetns, isRoot, rerunInPrivateNetns } from './private-netns.js';

// What leaves on the wire: each copy's TTL and TOS on both egress paths, with a valid header
// checksum, captured with a packet socket on loopback (in a network namespace of its own).

const ip = (text: string): number => parseIpv4(text)!;

interface Seen {
  dst: number;
  port: number;
  ttl: number;
  tos: number;
}

/** A capture of every IPv4 frame lo receives. */
class Capture {
  private readonly fd: number;
  private readonly ring: RxRing;
  private cursor = 0;

  constructor(lo: number) {
    this.fd = openIngressSocket(lo, 'lo');
    this.ring = RxRing.attach(this.fd, ringGeometryFor(65536, 8 << 20));
  }

  /** Frames to `port` since the last call, in order; broken headers fail the test. */
  take(port: number): Seen[] {
    const seen: Seen[] = [];
    const parsed = new ParsedFrame();
    const { words, halfWords, bytes, frameSize, frameCount } = this.ring;
    for (;;) {
      const at = this.cursor * frameSize;
      if ((Atomics.load(words, at >>> 2) & TP_STATUS_USER) === 0) return seen;
      const reason = parseFrame(bytes, at + halfWords[(at + 12) >>> 1]!, words[(at + 8) >>> 2]!, parsed);
      assert.equal(reason, DropReason.OK, 'a copy with a broken header');
      if (parsed.dstPort === port)
        seen.push({ dst: parsed.dstAddr, port, ttl: parsed.ttl, tos: (parsed.dscp << 2) | parsed.ecn });
      Atomics.store(words, at >>> 2, TP_STATUS_KERNEL);
      this.cursor = (this.cursor + 1) % frameCount;
    }
  }

  close(): void {
    this.ring.detach();
    closeFd(this.fd);
  }
}

const pairs = (seen: Seen[]): [number, number][] => seen.map((s) => [s.ttl, s.tos]);

function tests(): void {
  const lo = interfaceIndex('lo')!;
  const payload = allocateNative(64);

  /** Queues one copy per (ttl, tos) and flushes them as one batch. */
  function send(output: OutputPath, copies: [number, number][]): void {
    copies.forEach(([ttl, tos], frame) => output.queue(payload.region, 0, 64, ttl, tos, frame));
    output.flush(new Int32Array(copies.length).fill(1));
  }

  test('socket path, unicast: every copy as queued; the socket follows a flow that moved', async () => {
    const capture = new Capture(lo);
    const sink = new Sink();
    const fd = sink.connectedSocket();
    const output = new OutputPath(workerOutput('sink', { ttl: 16 }), 64, new WorkerCounterSet());
    try {
      output.attach(fd, undefined);
      const option = (name: number): number => getIntOption(fd, IPPROTO_IP, name, 'test');
      assert.deepEqual(
        [option(IP_TTL), option(IP_MULTICAST_TTL), option(IP_TOS)],
        [16, 16, 0],
        'set on attach',
      );
      const batches: [number, number][][] = [
        [
          [16, 0],
          [16, 0],
          [5, 0x2e],
        ], // one copy differs: it carries options, the socket stays
        [
          [5, 0x2e],
          [5, 0x2e],
          [5, 0x2e],
        ], // the flow moved
        [
          [5, 0x2e],
          [16, 0],
          [9, 0xb9],
        ],
      ];
      send(output, batches[0]!);
      assert.deepEqual([option(IP_TTL), option(IP_TOS)], [16, 0]);
      send(output, batches[1]!);
      assert.deepEqual([option(IP_TTL), option(IP_MULTICAST_TTL), option(IP_TOS)], [5, 5, 0x2e], 'followed');
      send(output, batches[2]!);
      assert.deepEqual([option(IP_TTL), option(IP_TOS)], [5, 0x2e], 'most copies match: stays');
      // The flow moves again, but the socket moved 1 batch ago: 7 more before it may follow.
      const moved: [number, number][] = [[9, 0xb9]];
      for (let i = 0; i < 7; i++) {
        send(output, moved);
        assert.deepEqual([option(IP_TTL), option(IP_TOS)], [5, 0x2e], `batch ${i} of the pause`);
      }
      send(output, moved);
      assert.deepEqual([option(IP_TTL), option(IP_TOS)], [9, 0xb9], 'followed after the pause');
      assert.deepEqual(pairs(capture.take(sink.port)), [
        ...batches.flat(),
        ...Array<[number, number]>(8).fill([9, 0xb9]),
      ]);
      assert.equal(sink.readAll().length, 17);
    } finally {
      output.close();
      sink.close();
      capture.close();
    }
  });

  test('socket path, multicast: IP_MULTICAST_TTL and control messages alike', async () => {
    const capture = new Capture(lo);
    const fd = openUdpSocket('test multicast output');
    setMulticastInterface(fd, lo);
    setMulticastLoop(fd, false);
    connectIpv4(fd, ip('239.5.5.5'), 6000);
    const output = new OutputPath(
      workerOutput('239.5.5.5:6000:lo', { ttl: 8, dscp: 46 }),
      64,
      new WorkerCounterSet(),
    );
    try {
      output.attach(fd, undefined);
      const copies: [number, number][] = [
        [8, 0xb8],
        [3, 0xb9],
        [8, 0xbb],
        [1, 0xb8],
      ];
      send(output, copies);
      const seen = capture.take(6000);
      assert.deepEqual(pairs(seen), copies);
      assert.ok(seen.every((s) => s.dst === ip('239.5.5.5')));
    } finally {
      output.close();
      capture.close();
    }
  });

  test('raw path: TTL and TOS written into each header, the checksum right', async () => {
    const capture = new Capture(lo);
    const template = new Uint8Array(EGRESS_HEADER_SIZE);
    writeEgressTemplate(template, 0, {
      sourceMac: new Uint8Array(6),
      sourceAddress: ip('127.0.0.1'),
      sourcePort: 40000,
      group: ip('239.6.6.6'),
      port: 6001,
      ttl: 99, // placeholders: never on the wire
      dscp: 63,
    });
    const spec = { template: Buffer.from(template).toString('hex'), mtu: 65536 };
    const sink = new Sink();
    const output = new OutputPath(workerOutput('raw', { ttl: 16, egress: spec }), 64, new WorkerCounterSet());
    try {
      output.attach(sink.connectedSocket(), { fd: openRawEgressSocket(lo, 'lo', true), spec });
      const copies: [number, number][] = [
        [16, 0],
        [1, 3],
        [255, 0xff],
        [64, 0xb9],
      ];
      send(output, copies);
      assert.deepEqual(pairs(capture.take(6001)), copies);
      assert.equal(output.snapshot().raw, 4);
    } finally {
      output.close();
      sink.close();
      capture.close();
    }
  });
}

if (isRoot && !inPrivateNetns) {
  test('egress on the wire, in a network namespace of its own', () => {
    const r = rerunInPrivateNetns(fileURLToPath(import.meta.url));
    assert.equal(r.status, 0, r.output);
  });
} else if (!isRoot) {
  test('egress on the wire', { skip: 'needs root for AF_PACKET' }, () => {});
} else {
  // Loopback has no multicast flag by default; this namespace is ours.
  spawnSync('ip', ['link', 'set', 'lo', 'multicast', 'on']);
  tests();
}
