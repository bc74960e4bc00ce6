import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WorkerView } from '../../src/protocol/control-api.js';
import { waitFor } from '../helpers/processes.js';
import { listen, RelayHost, stopAndReport, workerTotals } from '../helpers/relay-host.js';
import { BIN, Topology } from '../helpers/topology.js';

// How long traffic stops when a worker is killed: judged by the packets lost at a known rate, so
// this file runs alone (scripts/test.sh), where nothing else takes the CPU a restart needs.

const workers = (relay: RelayHost): WorkerView[] =>
  relay.mcrctlJson<{ workers: WorkerView[] }>(['workers']).workers;

test('a worker killed with SIGKILL under traffic is back and forwarding within a second', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    const before = relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0');
    const recv = await listen(topo, 'eth0', '239.2.2.2', 6000);
    const sender = topo.start(topo.sender, BIN('mcrgen'), [
      ...['send', '--interface', 'eth0', '--group', '239.1.1.1', '--port', '5000'],
      ...['--rate', '1000', '--size', '200', '--count', '4000'],
    ]);
    await waitFor('traffic to flow', () => (workerTotals(relay.stats()).forwarded > 500 ? true : undefined));
    const beforeKill = relay.stats();
    const victim = workers(relay)[0]!.pid!;
    process.kill(victim, 'SIGKILL');
    const replacement = await waitFor('a new worker', () => {
      const w = workers(relay)[0]!;
      return w.state === 'running' && w.pid !== victim ? w : undefined;
    });
    // mcrd keeps the counters, not the worker: none of them went backwards with it.
    const afterKill = relay.stats();
    const [was, is] = [workerTotals(beforeKill), workerTotals(afterKill)];
    for (const name of ['framesSeen', 'forwarded'] as const) assert.ok(is[name] >= was[name], name);
    const [ruleWas, ruleIs] = [beforeKill.rules[0]!.counters, afterKill.rules[0]!.counters];
    assert.ok(ruleIs.packetsIn >= ruleWas.packetsIn);
    assert.ok(ruleIs.outputs[0]!.packets >= ruleWas.outputs[0]!.packets);
    await waitFor('the new worker to forward', () =>
      workerTotals(relay.stats()).forwarded > is.forwarded ? true : undefined,
    );
    assert.equal(replacement.restarts, 1);
    assert.equal((await sender.exited).code, 0);
    const { report } = await stopAndReport(recv);
    // The gap is measured on the wire, not by polling with mcrctl (whose start-up on a busy host
    // would be measured too): at 1000 pps, under a second's worth of loss is under a second down.
    assert.ok(report.totals.lost < 1000, `lost ${report.totals.lost}`);
    assert.ok(report.totals.unique > 3000, `received ${report.totals.unique}`);
    assert.equal(report.totals.duplicates, 0);
    const rules = relay.mcrctlJson<{ rules: { id: string; state: string }[] }>(['list']).rules;
    assert.deepEqual(
      rules.map((r) => [r.id, r.state]),
      [[before.id, 'active']],
    );
  } finally {
    topo.destroy();
  }
});
