import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { DeniedOperation, ResultOf, WorkerView } from '../../src/protocol/control-api.js';
import { ControlClient } from '../../src/protocol/control-client.js';
import { seccompSupported } from '../../src/sys/seccomp.js';
import { processStatus } from '../helpers/processes.js';
import { expectPackets, receiverReport, RelayHost, workerTotals, type Flow } from '../helpers/relay-host.js';
import { BIN, Topology } from '../helpers/topology.js';

// A worker's system-call filter (seccomp), proven in real workers: every thread is in filter
// mode, mcrctl workers says so, and what a compromised worker would try (a new socket, moving
// its ingress socket to another interface, running a program, signalling another process of its
// account) fails with EPERM, while the worker keeps forwarding a flow, exactly.

const workers = (relay: RelayHost): WorkerView[] =>
  relay.mcrctlJson<{ workers: WorkerView[] }>(['workers']).workers;

/** Fault injection (mcrd --debug-methods): worker `worker` attempts `operation`; its errno name. */
async function attempt(
  relay: RelayHost,
  worker: number,
  operation: DeniedOperation,
  pid?: number,
): Promise<ResultOf<'debug.tryDenied'>> {
  const client = await ControlClient.open(relay.socketPath);
  try {
    return await client.call('debug.tryDenied', { worker, operation, ...(pid === undefined ? {} : { pid }) });
  } finally {
    client.close();
  }
}

/** Seccomp mode of every thread of a process (2: filter). */
function threadModes(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map(
    (tid) => /^Seccomp:\s*(\d)/m.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))?.[1] ?? '?',
  );
}

/** Sends `flow` to 239.1.1.1:5000 from the sender, in the background. */
function startSending(topo: Topology, flow: Flow): ReturnType<Topology['start']> {
  return topo.start(topo.sender, BIN('mcrgen'), [
    ...['send', '--interface', 'eth0', '--group', '239.1.1.1', '--port', '5000'],
    ...['--rate', String(flow.rate), '--size', String(flow.size), '--count', String(flow.count)],
  ]);
}

test(
  'workers are confined: seccomp on every thread, shown by mcrctl workers, denied calls get EPERM while a flow is forwarded exactly',
  { skip: !seccompSupported() && 'the filter knows x64 system call numbers only' },
  async () => {
    const topo = new Topology();
    try {
      const relay = await RelayHost.start(topo, ['--workers', '2', '--debug-methods']);
      relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0');
      const flow: Flow = { rate: 1000, size: 300, count: 3000 };
      let expected = 0;

      // Before: exact.
      let recv = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, flow.count);
      assert.equal((await startSending(topo, flow).exited).code, 0);
      assert.equal((await receiverReport(recv)).code, 0, recv.stderr);
      expected += flow.count;

      const before = workers(relay);
      for (const w of before) {
        const status = processStatus(w.pid!);
        assert.equal(status.Seccomp, '2', `worker ${w.id} is in seccomp filter mode`);
        assert.equal(status.NoNewPrivs, '1');
        const modes = threadModes(w.pid!);
        assert.ok(modes.length > 1, 'a Node process has several threads');
        assert.deepEqual(new Set(modes), new Set(['2']), `every thread of worker ${w.id} (TSYNC)`);
        assert.equal(w.confined, true, `workers.list says worker ${w.id} is confined`);
      }
      const table = relay.mcrctl(['workers']).stdout.split('\n');
      assert.match(table[0]!, /\bCONFINED\b/);
      const column = table[0]!.indexOf('CONFINED');
      for (const row of table.slice(1).filter(Boolean))
        assert.equal(row.slice(column, column + 3), 'yes', row);

      // During: every denied operation in both workers, while the flow runs.
      recv = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, flow.count);
      const sender = startSending(topo, flow);
      for (const w of before) {
        const other = before.find((o) => o.id !== w.id)!;
        for (const operation of ['socket', 'bind', 'bind-egress', 'exec', 'spawn'] as const) {
          const result = await attempt(relay, w.id, operation);
          assert.equal(result.outcome, 'EPERM', `worker ${w.id} ${operation}: ${result.message}`);
        }
        // Another worker runs as the same account: without the filter the kernel would allow it.
        const result = await attempt(relay, w.id, 'kill', other.pid!);
        assert.equal(result.outcome, 'EPERM', `worker ${w.id} kill: ${result.message}`);
      }
      assert.equal((await sender.exited).code, 0);
      assert.equal((await receiverReport(recv)).code, 0, recv.stderr);
      expected += flow.count;

      // After: the same processes, never restarted, still exact.
      const after = workers(relay);
      assert.deepEqual(
        after.map((w) => [w.pid, w.state, w.restarts]),
        before.map((w) => [w.pid, 'running', 0]),
      );
      recv = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, flow.count);
      assert.equal((await startSending(topo, flow).exited).code, 0);
      assert.equal((await receiverReport(recv)).code, 0, recv.stderr);
      expected += flow.count;
      const stats = await relay.statsAfter((s) => workerTotals(s).forwarded === expected);
      assert.equal(workerTotals(stats).forwarded, expected);
      assert.equal(workerTotals(stats).egressErrors, 0);
    } finally {
      topo.destroy();
    }
  },
);

test('debug.tryDenied exists only with --debug-methods', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    await assert.rejects(attempt(relay, 0, 'socket'), /unknown method debug.tryDenied/);
  } finally {
    topo.destroy();
  }
});
