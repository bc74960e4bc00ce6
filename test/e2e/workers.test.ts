import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WorkerView } from '../../src/protocol/control-api.js';
import { ControlClient } from '../../src/protocol/control-client.js';
import { isAlive, processStatus, waitFor } from '../helpers/processes.js';
import { expectPackets, receiverReport, RelayHost, send, workerTotals } from '../helpers/relay-host.js';
import { BIN, Topology } from '../helpers/topology.js';
import { niceOf } from '../../src/sys/process-nice.js';

// The process model: per-core workers sharing inputs through PACKET_FANOUT, running without
// privileges, watched by heartbeats, restarted and re-synced by the supervisor.

const workers = (relay: RelayHost): WorkerView[] =>
  relay.mcrctlJson<{ workers: WorkerView[] }>(['workers']).workers;

test('2 workers and 8 flows: every packet forwarded once, both workers carry traffic', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '2']);
    for (let i = 1; i <= 8; i++) relay.addRule(`239.1.1.${i}`, 5000, `239.2.2.${i}:6000:out0`);
    // The kernel hashes each flow (addresses and ports) to a worker. Eight flows land on both
    // workers except with probability 2/256; each round uses new source ports, so a second round
    // makes a false failure practically impossible.
    let perWorker: number[] = [];
    for (let round = 1; round <= 3; round++) {
      const receivers = await Promise.all(
        Array.from({ length: 8 }, (_, i) => expectPackets(topo, 'eth0', `239.2.2.${i + 1}`, 6000, 1000)),
      );
      const senders = Array.from({ length: 8 }, (_, i) =>
        topo.start(topo.sender, BIN('mcrgen'), [
          ...['send', '--interface', 'eth0', '--group', `239.1.1.${i + 1}`, '--port', '5000'],
          ...['--rate', '1000', '--size', '200', '--count', '1000'],
        ]),
      );
      for (const sender of senders) assert.equal((await sender.exited).code, 0, sender.stderr);
      for (const recv of receivers) {
        const { code, report } = await receiverReport(recv);
        assert.equal(code, 0, `${report.group}: ${recv.stderr}`);
        assert.equal(report.totals.duplicates, 0);
      }
      const stats = await relay.statsAfter((s) => workerTotals(s).forwarded === 8000 * round);
      assert.equal(workerTotals(stats).forwarded, 8000 * round);
      perWorker = stats.workers.map((w) => w.counters.forwarded);
      if (perWorker.every((n) => n > 0)) break;
    }
    assert.ok(
      perWorker.every((n) => n > 0),
      `both workers forward: ${perWorker.join(', ')}`,
    );
  } finally {
    topo.destroy();
  }
});

test('workers run as the configured user with no capabilities while forwarding', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '2', '--user', 'nobody']);
    relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0');
    const recv = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, 1000);
    send(topo, '239.1.1.1', 5000, { rate: 2000, size: 500, count: 1000 });
    assert.equal((await receiverReport(recv)).code, 0, recv.stderr);
    for (const worker of workers(relay)) {
      assert.equal(worker.user, 'nobody');
      const status = processStatus(worker.pid!);
      assert.match(status.Uid!, /^65534\s+65534\s+65534\s+65534$/, `worker ${worker.id} uid`);
      assert.match(status.Gid!, /^65534\s+65534\s+65534\s+65534$/, `worker ${worker.id} gid`);
      for (const set of ['CapEff', 'CapPrm', 'CapInh', 'CapAmb']) {
        assert.equal(BigInt(`0x${status[set]}`), 0n, `worker ${worker.id} ${set}`);
      }
      assert.equal(status.NoNewPrivs, '1');
      assert.equal(status.Cpus_allowed_list, String(worker.cpu), `worker ${worker.id} is pinned`);
      // --worker-nice's default, taken before the privileges were dropped, and read back from /proc.
      assert.equal(worker.nice, -10, `worker ${worker.id}'s packet thread`);
      assert.equal(niceOf(worker.pid!), -10);
    }
    assert.equal(niceOf(relay.mcrctlJson<{ pid: number }>(['ping']).pid), 0, 'the supervisor keeps its own');
  } finally {
    topo.destroy();
  }
});

test('--worker-nice: every worker takes it, a replacement too, and mcrctl workers shows it', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '2', '--worker-nice', '4']);
    const niceColumn = (): string[] => {
      const [header, ...rows] = relay.mcrctl(['workers']).stdout.trim().split('\n');
      const at = header!.indexOf('NICE');
      return rows.map((row) => row.slice(at).trim().split(/\s+/)[0]!);
    };
    assert.deepEqual(niceColumn(), ['4', '4']);
    const victim = workers(relay)[1]!;
    process.kill(victim.pid!, 'SIGKILL');
    const replaced = await waitFor(
      'the worker replaced',
      () => {
        const now = workers(relay)[1]!;
        return now.pid !== victim.pid && now.state === 'running' ? now : undefined;
      },
      10000,
    );
    assert.equal(niceOf(replaced.pid!), 4);
    assert.deepEqual(niceColumn(), ['4', '4']);
  } finally {
    topo.destroy();
  }
});

test('a stopped worker (SIGSTOP) is detected by its missing heartbeats and replaced', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0');
    const victim = workers(relay)[0]!.pid!;
    process.kill(victim, 'SIGSTOP');
    const replacement = await waitFor(
      'the stopped worker to be replaced',
      () => {
        const w = workers(relay)[0]!;
        return w.state === 'running' && w.pid !== victim ? w : undefined;
      },
      6000,
    );
    assert.equal(replacement.restarts, 1);
    await waitFor('the stopped worker to be gone', () => (isAlive(victim) ? undefined : true));
    // The control socket answered throughout, and the replacement forwards.
    const recv = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, 500);
    send(topo, '239.1.1.1', 5000, { rate: 1000, size: 200, count: 500 });
    assert.equal((await receiverReport(recv)).code, 0, recv.stderr);
  } finally {
    topo.destroy();
  }
});

test('a worker whose rule set went stale is detected and re-synced', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1', '--debug-methods']);
    const rule = relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0');
    const client = await ControlClient.open(topo.socketPath);
    try {
      await client.call('debug.forgetRule', { worker: 0, id: rule.id });
    } finally {
      client.close();
    }
    const resynced = await waitFor('a re-sync', () => {
      const w = workers(relay)[0]!;
      return w.resyncs > 0 ? w : undefined;
    });
    assert.equal(resynced.resyncs, 1);
    assert.equal(resynced.restarts, 0, 're-synced, not restarted');
    const recv = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, 500);
    send(topo, '239.1.1.1', 5000, { rate: 1000, size: 200, count: 500 });
    assert.equal((await receiverReport(recv)).code, 0, recv.stderr);
    // The log says it once, as the worker.resynced event with the reason.
    assert.match(relay.daemon.stderr, /"type":"worker\.resynced".*"resync":"drift"/);
    assert.match(relay.daemon.stderr, /its rules differed from mcrd's; every rule sent again/);
  } finally {
    topo.destroy();
  }
});

// The steady state allocates nothing per packet and V8 runs no memory reducer in a worker
// (without that flag it ran two full collections 16 s after start, taking an idle worker for
// an idle process). 20 s of traffic leaves a worker with zero collections since it started.
test('a worker forwarding for 20 s runs no garbage collection', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0');
    const packets = 200_000;
    const recv = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, packets);
    send(topo, '239.1.1.1', 5000, { rate: 10_000, size: 200, count: packets });
    assert.equal((await receiverReport(recv)).code, 0, recv.stderr);
    const stats = await relay.statsAfter((s) => workerTotals(s).forwarded === packets);
    const health = stats.workers[0]!.health!;
    assert.equal(workerTotals(stats).forwarded, packets);
    assert.equal(health.gcCount, 0, `collections: ${JSON.stringify(health)}`);
  } finally {
    topo.destroy();
  }
});

test('with --coalesce 200 every packet still arrives once and in order', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1', '--coalesce', '200']);
    relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0');
    const packets = 20_000;
    const recv = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, packets);
    send(topo, '239.1.1.1', 5000, { rate: 20_000, size: 200, count: packets });
    const { code, report } = await receiverReport(recv);
    assert.equal(code, 0, recv.stderr);
    assert.equal(report.totals.reordered, 0);
    assert.equal(report.totals.duplicates, 0);
    const stats = await relay.statsAfter((s) => workerTotals(s).forwarded === packets);
    assert.equal(workerTotals(stats).forwarded, packets);
  } finally {
    topo.destroy();
  }
});
