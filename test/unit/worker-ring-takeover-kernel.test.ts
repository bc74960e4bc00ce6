import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { buildUdpFrame } from '../../src/packet/build.js';
import { parseIpv4 } from '../../src/packet/ipv4-address.js';
import { interfaceIndex } from '../../src/sys/interfaces.js';
import { openFrameSender, openIngressSocket, sendFrame } from '../../src/sys/packet-socket.js';
import { ringGeometryFor, RxRing, TP_STATUS_KERNEL, TP_STATUS_USER } from '../../src/sys/rx-ring.js';
import { closeFd } from '../../src/sys/socket.js';
import { ForwardingRule } from '../../src/worker/forwarding-rule.js';
import { HostAddresses } from '../../src/worker/host-addresses.js';
import { InputPath } from '../../src/worker/input-path.js';
import { OutputPath } from '../../src/worker/output-path.js';
import { waitingRun } from '../../src/worker/ring-handover.js';
import { WORKER_RESTART } from '../../src/packet/frame-outcomes.js';
import { WorkerCounterSet } from '../../src/worker/worker-counters.js';
import { Sink, sleep, workerOutput } from './kernel-fixtures.js';
import { inPrivateNetns, isRoot, rerunInPrivateNetns } from './private-netns.js';

// A restarted worker's InputPath on the ring its predecessor left, against the kernel: frames go
// over lo in a network namespace of this test's own, each with a sequence number; the test plays
// the dead worker on the same ring (reads and releases in order, leaves a full ring, dies
// between send and release), then starts a new InputPath on the same socket. What reaches the
// sink must be exactly the frames sent after the restart, in order.

const SETTINGS = {
  ringBytes: 1 << 20, // 512 slots of 2 KiB
  batchSize: 64,
  batchesPerWakeup: 16,
  coalesceUs: 0,
  statsIntervalMs: 1000,
};
const GROUP = parseIpv4('239.1.1.1')!;
const PORT = 5000;
const NO_READINESS = { watch: () => ({ stop() {} }) };

interface Lab {
  lo: number;
  fd: number;
  sender: number;
  seq: number;
  /** Sends `count` frames with the next sequence numbers (4 bytes, first in the payload). */
  send(count: number): void;
  /** Closes the sender (the ingress socket is the new worker's to close). */
  close(): void;
}

function lab(): Lab {
  const lo = interfaceIndex('lo')!;
  const fd = openIngressSocket(lo, 'lo');
  const sender = openFrameSender(lo, 'lo');
  const l: Lab = {
    lo,
    fd,
    sender,
    seq: 0,
    send(count) {
      for (let i = 0; i < count; i++) {
        const payload = new Uint8Array(32);
        new DataView(payload.buffer).setUint32(0, l.seq++);
        sendFrame(
          sender,
          buildUdpFrame({ src: parseIpv4('127.0.0.9')!, dst: GROUP, srcPort: 4000, dstPort: PORT, payload }),
        );
      }
    },
    close() {
      closeFd(sender);
    },
  };
  return l;
}

/** Waits until `count` frames wait in `ring` from `cursor` (lo hands them over in softirq). */
async function waitForFrames(ring: RxRing, cursor: number, count: number): Promise<void> {
  for (let i = 0; i < 200 && waitingRun(ring, cursor) < count; i++) await sleep(1);
  assert.ok(waitingRun(ring, cursor) >= count, `${count} frames in the ring`);
}

/**
 * The worker that dies: reads `frames` frames from slot 0 on, releasing each batch, so that the
 * kernel's write position ends at `frames` mod the ring's size. Returns its cursor.
 */
async function readAsDeadWorker(l: Lab, ring: RxRing, frames: number): Promise<number> {
  let cursor = 0;
  for (let done = 0; done < frames;) {
    const n = Math.min(64, frames - done);
    l.send(n);
    await waitForFrames(ring, cursor, n);
    for (let i = 0; i < n; i++) {
      Atomics.store(ring.words, cursor * (ring.frameSize >>> 2), TP_STATUS_KERNEL);
      cursor = (cursor + 1) % ring.frameCount;
    }
    done += n;
  }
  return cursor;
}

/** A new worker's InputPath on the same socket, relaying the group to a sink. */
function newWorker(l: Lab): {
  input: InputPath;
  counters: WorkerCounterSet;
  sink: Sink;
  /** Drains until nothing more comes; what the sink got, by sequence number. */
  collect(): Promise<number[]>;
  close(): void;
} {
  const counters = new WorkerCounterSet();
  const sink = new Sink();
  const output = new OutputPath(workerOutput('sink'), SETTINGS.batchSize, counters);
  output.attach(sink.connectedSocket(), undefined);
  const rule = new ForwardingRule(
    {
      id: 'r',
      inputInterface: 'lo',
      inputVlan: 0,
      inputSource: 0,
      inputGroup: GROUP,
      inputPort: PORT,
      outputs: [],
    },
    [output],
  );
  const input = new InputPath(l.fd, 'lo', 1500, SETTINGS, counters, new HostAddresses(), NO_READINESS);
  input.addRule(rule);
  return {
    input,
    counters,
    sink,
    async collect() {
      let quiet = 0;
      while (quiet < 20) {
        const seen = counters.framesSeen;
        input.drain();
        quiet = counters.framesSeen === seen ? quiet + 1 : 0;
        await sleep(1);
      }
      return sink.readAll().map((b) => b.readUInt32BE(0));
    },
    close() {
      input.close(); // unmaps the ring and closes the socket
      rule.close();
      sink.close();
    },
  };
}

const range = (from: number, count: number): number[] => Array.from({ length: count }, (_, i) => from + i);

function assertIdentity(counters: WorkerCounterSet): void {
  const s = counters.snapshot();
  assert.equal(
    s.forwarded + s.noRule + s.notIpv4Udp + s.malformed + s.fragments + s.filtered + s.workerRestart,
    s.framesSeen,
  );
}

if (isRoot && !inPrivateNetns) {
  test('ring takeover against the kernel, in a network namespace of its own', () => {
    const r = rerunInPrivateNetns(fileURLToPath(import.meta.url));
    assert.equal(r.status, 0, r.output);
  });
} else if (!isRoot) {
  test('ring takeover against the kernel', { skip: 'needs root for AF_PACKET' }, () => {});
} else {
  for (const fromEnd of [1, 3, 64]) {
    test(`a full ring, the kernel's head ${fromEnd} slot(s) before its end, a batch sent and not released: only later frames, in order`, async () => {
      const l = lab();
      const dead = RxRing.attach(l.fd, ringGeometryFor(1500, SETTINGS.ringBytes));
      const N = dead.frameCount;
      const cursor = await readAsDeadWorker(l, dead, 3 * N - fromEnd);
      assert.equal(cursor, N - fromEnd);
      l.send(N + 10); // the dead worker stopped reading: the ring fills, 10 dropped
      await waitForFrames(dead, cursor, N);
      // It took a batch and sent it, and died before handing the slots back.
      const sent = range(l.seq - N - 10, 64);
      dead.detach();
      const w = newWorker(l);
      try {
        assert.equal(w.counters.outcomes[WORKER_RESTART], N, 'every frame left in the ring');
        const after = l.seq;
        l.send(40); // lands from the kernel's head on, past slot 0, before the worker looks
        const got = await w.collect();
        assert.deepEqual(got, range(after, 40));
        assert.ok(!got.some((seq) => sent.includes(seq)), 'the sent batch is not sent again');
        // Three more laps, read as they come: exact, in order.
        const next = l.seq;
        for (let i = 0; i < 3 * N; i += 64) {
          l.send(64);
          await sleep(2);
          w.input.drain();
        }
        assert.deepEqual(await w.collect(), range(next, 3 * N));
        w.input.collectRingDrops();
        assert.ok(w.counters.ringDrops >= 10, 'the full ring dropped');
        assert.equal(w.counters.forwarded, 40 + 3 * N);
        assertIdentity(w.counters);
      } finally {
        w.close();
        l.close();
      }
    });
  }

  test("an idle ring, the kernel's head near its end: the first frames after the restart come first", async () => {
    const l = lab();
    const dead = RxRing.attach(l.fd, ringGeometryFor(1500, SETTINGS.ringBytes));
    const N = dead.frameCount;
    await readAsDeadWorker(l, dead, 2 * N - 5);
    dead.detach();
    const w = newWorker(l);
    try {
      assert.equal(w.counters.outcomes[WORKER_RESTART], 0, 'nothing was left');
      const after = l.seq;
      l.send(30);
      assert.deepEqual(await w.collect(), range(after, 30));
      assertIdentity(w.counters);
    } finally {
      w.close();
      l.close();
    }
  });

  test('a ring the dead worker had never been given a frame in: read from slot 0, nothing dropped', async () => {
    const l = lab();
    const dead = RxRing.attach(l.fd, ringGeometryFor(1500, SETTINGS.ringBytes));
    dead.detach();
    const w = newWorker(l);
    try {
      l.send(300);
      assert.deepEqual(await w.collect(), range(0, 300));
      assert.equal(w.counters.outcomes[WORKER_RESTART], 0);
    } finally {
      w.close();
      l.close();
    }
  });

  test("what waited is counted, and every slot is free after the takeover, seen from the dead worker's mapping", async () => {
    const l = lab();
    const dead = RxRing.attach(l.fd, ringGeometryFor(1500, SETTINGS.ringBytes));
    const N = dead.frameCount;
    await readAsDeadWorker(l, dead, N + 7);
    l.send(5); // waiting, unread
    await waitForFrames(dead, 7, 5);
    // Seen from the dead worker's mapping: held while the new worker takes over, then free.
    const w = newWorker(l);
    try {
      assert.equal(w.counters.outcomes[WORKER_RESTART], 5);
      for (let s = 0; s < N; s++) {
        const status = Atomics.load(dead.words, s * (dead.frameSize >>> 2));
        assert.equal(status & TP_STATUS_USER, 0, `slot ${s} is free after the takeover`);
      }
    } finally {
      dead.detach();
      w.close();
      l.close();
    }
  });
}
