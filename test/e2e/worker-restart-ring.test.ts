import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StatsView, WorkerView } from '../../src/protocol/control-api.js';
import type { RecvReport, StreamReport } from '../../src/gen/report.js';
import { isAlive, waitFor } from '../helpers/processes.js';
import { receiverReport, RelayHost, startReceiver, workerTotals } from '../helpers/relay-host.js';
import { BIN, sleep, Topology, type RunningProcess } from '../helpers/topology.js';

// A restarted worker takes over the ring its predecessor left on the same socket: whatever the
// dead worker left there is dropped (worker_restart), never forwarded twice, and the new worker
// reads from exactly where the kernel writes, so later traffic arrives complete and in order.
// Every flow carries sequence numbers (mcrgen probes) under its own stream ids; the receiver of
// a flow started after a restart must see that flow alone, complete, in order.

const STREAMS = 8;
const workers = (relay: RelayHost): WorkerView[] =>
  relay.mcrctlJson<{ workers: WorkerView[] }>(['workers']).workers;

/** One rule per stream: 239.1.1.k:5000 → 239.2.2.k:6000 on out0. */
function addRules(relay: RelayHost): void {
  for (let k = 1; k <= STREAMS; k++) relay.addRule(`239.1.1.${k}`, 5000, `239.2.2.${k}:6000:out0`);
}

/** Receives every stream at the receiver, for `seconds` or until `count` probes arrived. */
function receive(topo: Topology, stop: ['--duration' | '--count', string]): Promise<RunningProcess> {
  return startReceiver(topo, topo.receiver, [
    ...['--interface', 'eth0', '--group', '239.2.2.1', '--streams', String(STREAMS), '--port', '6000'],
    ...stop,
    ...(stop[0] === '--count' ? ['--timeout', '30'] : []),
  ]);
}

/** Sends STREAMS streams (ids streamId .. streamId + 7) round-robin from the sender. */
function sendFlow(topo: Topology, streamId: number, rate: number, count: number): RunningProcess {
  return topo.start(topo.sender, BIN('mcrgen'), [
    ...['send', '--interface', 'eth0', '--group', '239.1.1.1', '--streams', String(STREAMS)],
    ...['--port', '5000', '--rate', String(rate), '--size', '64', '--count', String(count)],
    ...['--stream-id', String(streamId)],
  ]);
}

/** Kills worker `id` (SIGKILL by its pid) and waits until its replacement runs. */
async function restartWorker(relay: RelayHost, id: number, stopFirstMs = 0): Promise<void> {
  const victim = workers(relay)[id]!.pid!;
  if (stopFirstMs > 0) {
    // Stopped, the worker reads nothing: its ring fills and the kernel drops at the full ring.
    process.kill(victim, 'SIGSTOP');
    await sleep(stopFirstMs);
  }
  process.kill(victim, 'SIGKILL');
  await waitFor('the worker to die', () => (isAlive(victim) ? undefined : true));
  await waitFor(
    'a new worker',
    () => {
      const w = workers(relay)[id]!;
      return w.state === 'running' && w.pid !== victim ? true : undefined;
    },
    20_000, // the restart backoff doubles, and a worker starts slowly on a busy machine
  );
}

/** framesSeen is the sum of the buckets, for every worker. */
function assertCounterIdentity(stats: StatsView): void {
  for (const w of stats.workers) {
    const c = w.counters;
    const buckets =
      c.forwarded + c.noRule + c.notIpv4Udp + c.malformed + c.fragments + c.filtered + c.workerRestart;
    assert.equal(buckets, c.framesSeen, `worker ${w.id}: buckets ${buckets}, framesSeen ${c.framesSeen}`);
  }
}

/**
 * Every frame sent was counted once: by the worker that took it, as worker_restart by the one
 * that dropped it when it took a dead worker's ring over (a frame its predecessor had counted is
 * not counted again), or as a ring drop; what the kernel dropped before any ring (the input
 * link's rx_dropped) aside. The sender sends nothing else, and the relay never takes its own
 * IGMP reports, so every frame seen is the flow's.
 */
async function assertEveryFrameCountedOnce(relay: RelayHost, sent: number, since?: StatsView): Promise<void> {
  const total = (s: StatsView): number =>
    s.workers.reduce((n, w) => n + w.counters.framesSeen + w.counters.ringDrops, 0);
  const inputDrops = (s: StatsView): number => s.interfaces.find((i) => i.name === 'in0')?.rxDropped ?? 0;
  const counted = (s: StatsView): number => total(s) - (since ? total(since) : 0);
  const droppedBefore = (s: StatsView): number => inputDrops(s) - (since ? inputDrops(since) : 0);
  // Ring drops are read from the kernel once a second.
  const stats = await relay.statsAfter((s) => counted(s) + droppedBefore(s) >= sent, 10_000);
  const detail = JSON.stringify(stats.workers.map((w) => w.counters));
  assert.ok(
    counted(stats) <= sent,
    `${counted(stats)} frames counted of ${sent} sent: some twice; ${detail}`,
  );
  assert.ok(
    counted(stats) + droppedBefore(stats) >= sent,
    `${counted(stats)} frames counted and ${droppedBefore(stats)} dropped before the ring, of ${sent} sent; ${detail}`,
  );
}

/** The flow's own streams, as the receiver saw them; fails on any stream of another flow. */
function ownStreams(report: RecvReport, streamId: number): StreamReport[] {
  const foreign = report.streams.filter((s) => s.streamId < streamId || s.streamId >= streamId + STREAMS);
  assert.deepEqual(
    foreign.map((s) => `${s.streamId}: ${s.received} packets, highest seq ${s.highestSeq}`),
    [],
    'packets of an earlier flow arrived',
  );
  return report.streams;
}

/** A flow that ran across restarts: whatever of it arrived, arrived once and in order. */
function assertAtMostOnceInOrder(report: RecvReport, streamId: number): void {
  const streams = ownStreams(report, streamId);
  for (const s of streams) {
    assert.equal(s.duplicates, 0, `stream ${s.streamId}: ${s.duplicates} duplicates`);
    assert.equal(s.reordered, 0, `stream ${s.streamId}: ${s.reordered} reordered`);
    assert.equal(s.corrupted, 0, `stream ${s.streamId}: ${s.corrupted} corrupted`);
  }
}

/** A flow sent after the restarts, at a rate the relay forwards without loss: all of it, in order, alone. */
async function assertNewFlowExact(
  topo: Topology,
  relay: RelayHost,
  streamId: number,
  count: number,
): Promise<void> {
  const before = workerTotals(relay.stats()).forwarded;
  const recv = await receive(topo, ['--count', String(count)]);
  const sender = sendFlow(topo, streamId, 5000, count);
  assert.equal((await sender.exited).code, 0, sender.stderr);
  const { report } = await receiverReport(recv);
  const streams = ownStreams(report, streamId);
  assert.equal(streams.length, STREAMS);
  const wrong = streams.filter(
    (s) => s.unique !== count / STREAMS || s.lost !== 0 || s.duplicates !== 0 || s.reordered !== 0,
  );
  if (wrong.length > 0) {
    // What the relay says, for a failure that the receiver alone cannot explain.
    const log = relay.daemon.stderr
      .split('\n')
      .filter((line) => /exit|error|fatal|kill|restart|heartbeat/i.test(line))
      .slice(-20);
    assert.fail(
      `expected ${count / STREAMS} per stream, once and in order: ${JSON.stringify(
        wrong.map((s) => ({ ...s, latencyUs: undefined })),
      )}\nworkers: ${JSON.stringify(relay.stats().workers.map((w) => [w.restarts, w.counters]))}\n${log.join('\n')}`,
    );
  }
  assert.equal(report.totals.datagrams, count, 'nothing else arrived');
  const stats = await relay.statsAfter((s) => workerTotals(s).forwarded - before === count);
  assert.equal(workerTotals(stats).forwarded - before, count, 'forwarded exactly the new flow');
  assertCounterIdentity(stats);
}

/** Frames in a 1 MiB ring (mcrd --ring-size 1) of 2 KiB slots. */
const RING_SLOTS = 512;

/** Sends `count` probes of one stream to 239.1.1.1 and waits for them to be sent. */
async function sendOne(topo: Topology, streamId: number, rate: number, count: number): Promise<void> {
  const sender = topo.start(topo.sender, BIN('mcrgen'), [
    ...['send', '--interface', 'eth0', '--group', '239.1.1.1', '--port', '5000', '--source-port', '4000'],
    ...['--rate', String(rate), '--size', '64', '--count', String(count), '--stream-id', String(streamId)],
  ]);
  assert.equal((await sender.exited).code, 0, sender.stderr);
}

/**
 * Sends single-stream probes until worker `target` has taken `slot` frames modulo the ring's
 * size: its ring's read position, and the kernel's write position with it, are then at `slot`.
 */
async function placeWritePosition(
  topo: Topology,
  relay: RelayHost,
  target: number,
  slot: number,
): Promise<void> {
  for (let round = 0; round < 5; round++) {
    await sleep(300);
    const seen = relay.stats().workers[target]!.counters.framesSeen;
    const missing = (slot - (seen % RING_SLOTS) + RING_SLOTS) % RING_SLOTS;
    if (missing === 0) return;
    await sendOne(topo, 60 + round, 5000, missing);
  }
  assert.fail(`could not bring worker ${target}'s ring to slot ${slot}`);
}

for (const workerCount of [1, 2]) {
  test(`--workers ${workerCount}: a worker restarted while idle, then a new flow arrives complete and in order`, async () => {
    const topo = new Topology();
    try {
      const relay = await RelayHost.start(topo, ['--workers', String(workerCount)]);
      addRules(relay);
      const recv = await receive(topo, ['--count', '4000']);
      const first = sendFlow(topo, 100, 5000, 4000);
      assert.equal((await first.exited).code, 0, first.stderr);
      assert.equal((await receiverReport(recv)).code, 0, recv.stderr);
      for (let id = 0; id < workerCount; id++) await restartWorker(relay, id);
      await assertNewFlowExact(topo, relay, 200, 4000);
      await assertNewFlowExact(topo, relay, 300, 4000);
    } finally {
      topo.destroy();
    }
  });

  test(`--workers ${workerCount}: a worker stopped until its ring overflowed, then killed: no stale or repeated packet, order kept`, async () => {
    const topo = new Topology();
    try {
      const relay = await RelayHost.start(topo, ['--workers', String(workerCount)]);
      addRules(relay);
      // 20k pps for 3 s: a stopped worker's 2048-slot ring is full within a fraction of a second.
      const recv = await receive(topo, ['--duration', '5']);
      const first = sendFlow(topo, 100, 20_000, 60_000);
      await sleep(500);
      await restartWorker(relay, 0, 600);
      assert.equal((await first.exited).code, 0, first.stderr);
      const { report } = await receiverReport(recv);
      assertAtMostOnceInOrder(report, 100);
      const stats = relay.stats();
      assert.ok(workerTotals(stats).workerRestart > 0, 'the full ring was dropped as worker_restart');
      assert.ok(workerTotals(stats).ringDrops > 0, 'the full ring dropped frames meanwhile');
      assertCounterIdentity(stats);
      await assertNewFlowExact(topo, relay, 200, 4000);
      await assertNewFlowExact(topo, relay, 300, 4000);
    } finally {
      topo.destroy();
    }
  });

  test(`--workers ${workerCount}: workers killed under load, mid-batch included: every packet at most once, in order`, async () => {
    const topo = new Topology();
    try {
      const relay = await RelayHost.start(topo, ['--workers', String(workerCount)]);
      addRules(relay);
      // A worker spends most of its time inside sendmmsg; a SIGKILL takes effect when the call
      // returns, before the slots go back: the killed worker has sent frames it never released.
      const recv = await receive(topo, ['--duration', '8']);
      const first = sendFlow(topo, 100, 50_000, 300_000);
      for (let round = 0; round < 3; round++) {
        await sleep(700);
        for (let id = 0; id < workerCount; id++) await restartWorker(relay, id);
      }
      assert.equal((await first.exited).code, 0, first.stderr);
      const { report } = await receiverReport(recv);
      assertAtMostOnceInOrder(report, 100);
      assert.ok(report.totals.unique > 0);
      assertCounterIdentity(relay.stats());
      await assertEveryFrameCountedOnce(relay, 300_000);
      await assertNewFlowExact(topo, relay, 200, 8000);
    } finally {
      topo.destroy();
    }
  });

  // The kernel's write position is where the dead worker stopped reading. Put it 8 slots before
  // the end of the ring: the kernel then wraps to slot 0 a moment after the new worker freed the
  // ring, while older frames still wait at the ring's end.
  test(`--workers ${workerCount}: a full ring whose write position is near its end: the new worker reads in the kernel's order`, async () => {
    const topo = new Topology();
    try {
      const relay = await RelayHost.start(topo, ['--workers', String(workerCount), '--ring-size', '1']);
      addRules(relay);
      // One flow (fixed ports) lands on one worker; find which.
      await sendOne(topo, 50, 5000, 100);
      const stats = await relay.statsAfter((s) => s.workers.some((w) => w.counters.forwarded === 100));
      const target = stats.workers.findIndex((w) => w.counters.forwarded === 100);
      assert.ok(target >= 0, `one worker took the whole flow: ${JSON.stringify(stats.workers)}`);
      await placeWritePosition(topo, relay, target, RING_SLOTS - 1);
      const before = relay.stats();
      const recv = await receive(topo, ['--duration', '4']);
      const flow = topo.start(topo.sender, BIN('mcrgen'), [
        ...['send', '--interface', 'eth0', '--group', '239.1.1.1', '--port', '5000', '--source-port', '4000'],
        ...['--rate', '100000', '--size', '64', '--duration', '2.5', '--stream-id', '100', '--json'],
      ]);
      await sleep(300);
      // Stopped while busy, most likely mid-batch: killed, it leaves frames it counted in its ring.
      await restartWorker(relay, target, 400);
      assert.equal((await flow.exited).code, 0, flow.stderr);
      const { report } = await receiverReport(recv);
      assertAtMostOnceInOrder(report, 100);
      assertCounterIdentity(relay.stats());
      const sent = (JSON.parse(flow.stdout) as { packets: number }).packets;
      await assertEveryFrameCountedOnce(relay, sent, before);
      await assertNewFlowExact(topo, relay, 200, 4000);
      await assertNewFlowExact(topo, relay, 300, 4000);
    } finally {
      topo.destroy();
    }
  });
}
