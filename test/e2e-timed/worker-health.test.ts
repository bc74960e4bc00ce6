import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { McrEvent, WorkerView } from '../../src/protocol/control-api.js';
import { ControlClient } from '../../src/protocol/control-client.js';
import { waitFor } from '../helpers/processes.js';
import type { RecvReport } from '../../src/gen/report.js';
import { expectPackets, receiverReport, RelayHost, workerTotals } from '../helpers/relay-host.js';
import { BIN, sleep, Topology } from '../helpers/topology.js';
import { flood, workerChannelOf } from '../helpers/worker-channel-forgery.js';

// A worker is judged by what it does, not by the supervisor's own delays: rule churn that fills
// its channel, a supervisor that stalls, and workers killed one after another must neither
// replace a healthy worker nor keep the relay down.

const workers = (relay: RelayHost): WorkerView[] =>
  relay.mcrctlJson<{ workers: WorkerView[] }>(['workers']).workers;

/** mcrd's JSON log lines (pino), from its stderr. */
function logLines(relay: RelayHost): { time: number; msg: string; [key: string]: unknown }[] {
  return relay.daemon.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { time: number; msg: string });
}

/** mcrd's warnings and errors, for a failure's message. */
function problems(relay: RelayHost): string {
  return logLines(relay)
    .filter((l) => Number(l.level) >= 40)
    .map((l) => JSON.stringify(l))
    .join('\n');
}

interface ChurnResult {
  ops: number;
  opsPerSecond: number;
  report: RecvReport;
  code: number | null;
  recvStderr: string;
}

/**
 * 10 s of rule churn at full speed (four connections, each adding and removing its own rule as
 * fast as mcrd answers) while a sequence-numbered 20k pps flow runs on a rule that stays. Checks
 * that no worker was replaced and returns what arrived.
 */
async function churnUnderFlow(topo: Topology, mode: 'raw' | 'socket' | undefined): Promise<ChurnResult> {
  const relay = await RelayHost.start(topo, ['--workers', '2']);
  relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0');
  const pids = workers(relay).map((w) => w.pid);
  const rate = 20_000;
  const packets = rate * 12;
  const recv = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, packets);
  const sender = topo.start(topo.sender, BIN('mcrgen'), [
    ...['send', '--interface', 'eth0', '--group', '239.1.1.1', '--port', '5000'],
    ...['--rate', String(rate), '--size', '200', '--count', String(packets)],
  ]);
  await sleep(500);
  const churnMs = 10_000;
  const until = Date.now() + churnMs;
  let ops = 0;
  const churn = async (lane: number): Promise<void> => {
    const client = await ControlClient.open(topo.socketPath);
    try {
      while (Date.now() < until) {
        const output = { group: `239.4.${lane}.1`, port: 7000, interface: 'out0' };
        const { rule } = await client.call('rules.add', {
          inputInterface: 'in0',
          inputGroup: `239.3.${lane}.1`,
          inputPort: 7000,
          outputs: [mode ? { ...output, mode } : output],
        });
        await client.call('rules.remove', { id: rule.id });
        ops += 2;
      }
    } finally {
      client.close();
    }
  };
  const started = Date.now();
  await Promise.all([0, 1, 2, 3].map(churn));
  const flowOutlastedChurn = sender.child.exitCode === null;
  const opsPerSecond = Math.round(ops / ((Date.now() - started) / 1000));
  assert.equal((await sender.exited).code, 0, sender.stderr);
  const { code, report } = await receiverReport(recv);
  const after = workers(relay);
  console.log(
    `churn (${mode ?? 'default'} outputs): ${ops} rule operations, ${opsPerSecond}/s; restarts ${after.map((w) => w.restarts).join(',')}; ` +
      `flow: ${report.totals.unique} of ${packets} arrived, ${report.totals.lost} lost, ${report.totals.reordered} reordered`,
  );
  assert.deepEqual(
    after.map((w) => [w.pid, w.restarts]),
    pids.map((pid) => [pid, 0]),
    `the same workers, never restarted:\n${problems(relay)}`,
  );
  // That the churn happened at all, and under the flow throughout: how fast it went is the
  // machine's (450 to 1700 operations/s on this VM), and a test does not judge speed.
  assert.ok(ops >= 1000, `only ${ops} rule operations in ${churnMs} ms: the churn did not load mcrd`);
  assert.ok(flowOutlastedChurn, 'the flow was still running when the churn ended');
  return { ops, opsPerSecond, report, code, recvStderr: recv.stderr };
}

test('rule churn at full speed under a 20k pps flow: no worker replaced, the flow complete and in order', async () => {
  const topo = new Topology();
  try {
    // Socket-path outputs: what churn costs the workers is their channel alone (see the next test).
    const result = await churnUnderFlow(topo, 'socket');
    assert.equal(result.code, 0, `${result.recvStderr}\n${JSON.stringify(result.report.totals)}`);
    assert.equal(result.report.totals.reordered, 0);
  } finally {
    topo.destroy();
  }
});

// With raw outputs (the default on Ethernet links) each removed rule leaves the worker an
// AF_PACKET socket to close, and that close waits for an RCU grace period (~7 ms measured) on the
// worker's data-path thread: at full-speed churn a worker can lose frames to its ring meanwhile.
// That cost is the worker's (it should close off its data path); what the channel owes is checked
// here: no worker replaced, nothing duplicated or reordered.
test('rule churn at full speed with raw outputs: no worker replaced, nothing duplicated or reordered', async () => {
  const topo = new Topology();
  try {
    const result = await churnUnderFlow(topo, undefined);
    assert.equal(result.report.totals.duplicates, 0);
    assert.equal(result.report.totals.reordered, 0);
    assert.ok(result.report.totals.unique > 0);
  } finally {
    topo.destroy();
  }
});

test('a supervisor stalled for 1.9 s judges its workers by their answers, not by its own delay', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '2']);
    relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0');
    const before = workers(relay);
    const daemonPid = relay.mcrctlJson<{ pid: number }>(['ping']).pid;
    for (let round = 0; round < 3; round++) {
      // SIGSTOP stops every thread of mcrd: its timers fire late, its workers' answers wait.
      process.kill(daemonPid, 'SIGSTOP');
      await sleep(1900);
      process.kill(daemonPid, 'SIGCONT');
      await sleep(600);
    }
    const after = workers(relay);
    assert.deepEqual(
      after.map((w) => [w.pid, w.restarts]),
      before.map((w) => [w.pid, 0]),
      `the same workers, never restarted:\n${problems(relay)}`,
    );
    assert.doesNotMatch(relay.daemon.stderr, /stopped answering/);
  } finally {
    topo.destroy();
  }
});

test('15 workers killed at 1/s: each is back, answering heartbeats, well under a second after its kill', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '2']);
    relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0');
    const kills = 15;
    let last = 0;
    for (let i = 0; i < kills; i++) {
      // A worker that runs: killing one still starting would test the start-up backoff instead.
      const victim = await waitFor('a running worker to kill', () => {
        const w = workers(relay)[i % 2]!;
        return w.state === 'running' && w.pid !== last ? w : undefined;
      });
      last = victim.pid!;
      process.kill(victim.pid!, 'SIGKILL');
      await sleep(1000);
    }
    await waitFor('every worker back', () =>
      workers(relay).every((w) => w.state === 'running') ? true : undefined,
    );
    // The daemon's own clock: from the exit it saw to the new worker's first heartbeat answer.
    const lines = logLines(relay);
    const recoveries = lines
      .map((l) => l.event as McrEvent | undefined)
      .filter((e) => e?.type === 'worker.restarted')
      .map((e) => e!.worker!.downMs!);
    console.log(`kill storm: recoveries (ms) ${recoveries.join(', ')}`);
    assert.equal(recoveries.length, kills, `one recovery per kill:\n${relay.daemon.stderr.slice(-4000)}`);
    for (const ms of recoveries) assert.ok(ms < 1000, `a worker was down ${ms} ms`);
    assert.equal(
      workers(relay).reduce((n, w) => n + w.restarts, 0),
      kills,
    );
    // And it forwards.
    const recv = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, 500);
    topo.exec(topo.sender, BIN('mcrgen'), [
      ...['send', '--interface', 'eth0', '--group', '239.1.1.1', '--port', '5000'],
      ...['--rate', '1000', '--size', '200', '--count', '500'],
    ]);
    assert.equal((await receiverReport(recv)).code, 0, recv.stderr);
    assert.ok(workerTotals(relay.stats()).forwarded >= 500);
  } finally {
    topo.destroy();
  }
});

// A compromised worker writes what it likes on its channel. The test takes a worker's end with
// pidfd_getfd and writes forged messages on it, as such a worker would.
for (const [what, data, count, reason] of [
  ['20,000 forged ready messages', JSON.stringify({ type: 'ready', pid: 1 }), 20_000, /said ready/],
  [
    'a health report that is null',
    JSON.stringify({ type: 'health', health: null }),
    1,
    /health must be object/,
  ],
  ['bytes that are not JSON', '{"type":"heartbeat","seq":', 1, /is not JSON/],
] as const) {
  test(`a worker that sends ${what} is replaced; mcrd keeps serving and forwarding`, async () => {
    const topo = new Topology();
    try {
      const relay = await RelayHost.start(topo, ['--workers', '2']);
      relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0');
      const before = workers(relay);
      const victim = before[0]!;
      const channel = workerChannelOf(victim.pid!);
      try {
        const sent = flood(channel, new TextEncoder().encode(data), count);
        assert.ok(sent >= 1);
      } finally {
        channel.close();
      }
      const replaced = await waitFor('the worker to be replaced', () => {
        const w = workers(relay)[0]!;
        return w.state === 'running' && w.pid !== victim.pid ? w : undefined;
      });
      assert.equal(replaced.restarts, 1);
      assert.equal(workers(relay)[1]!.pid, before[1]!.pid, 'the other worker is untouched');
      // mcrd's log reaches this process through a pipe that is read between awaits: wait for it.
      await waitFor('the verdict in the log', () =>
        logLines(relay).some((l) => l.code === 'E_WORKER_MISBEHAVED') ? true : undefined,
      );
      await sleep(300); // a second verdict, if there were one, would be in by now
      const verdicts = logLines(relay).filter((l) => l.code === 'E_WORKER_MISBEHAVED');
      assert.equal(verdicts.length, 1, `one verdict, logged once:\n${problems(relay)}`);
      assert.match(verdicts[0]!.msg, reason);
      // Still serving: stats answer, and the flow goes through every worker.
      assert.equal(relay.stats().workers.length, 2);
      const recv = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, 1000);
      topo.exec(topo.sender, BIN('mcrgen'), [
        ...['send', '--interface', 'eth0', '--group', '239.1.1.1', '--port', '5000'],
        ...['--rate', '2000', '--size', '200', '--count', '1000'],
      ]);
      assert.equal((await receiverReport(recv)).code, 0, recv.stderr);
    } finally {
      topo.destroy();
    }
  });
}
