// The benchmark's smoke mode, as CI runs it: every system relays real traffic through the
// relay-core placement and the results file holds every figure the full run reports. It checks
// that the benchmark works, not how fast anything is.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { CaseRun, CaseSummary } from '../../bench/results.js';
import { ROOT } from '../helpers/topology.js';

test('npm run bench -- --smoke measures mcr (both paths), kernel forwarding and socat and writes its results', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mcr-bench-smoke-'));
  try {
    const results = join(dir, 'results.json');
    const r = spawnSync(
      'node',
      [join(ROOT, 'dist/bench/forwarding-rate.js'), '--smoke', '--results', results],
      {
        encoding: 'utf8',
        timeout: 300_000,
      },
    );
    assert.equal(r.status, 0, `bench exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /LOSSLESS IN PPS/);
    const file = JSON.parse(readFileSync(results, 'utf8')) as { runs: CaseRun[]; summaries: CaseSummary[] };
    assert.deepEqual(file.runs.map((run) => run.system).sort(), [
      'kernel',
      'mcr-raw',
      'mcr-socket',
      'mcr-xdp',
      'socat',
    ]);
    for (const run of file.runs) {
      assert.equal(run.failed, undefined, `${run.system}: ${run.failed}`);
      assert.equal(run.placement, 'relay-core');
      // Every system forwarded traffic in every phase, and the CPU figures were read.
      assert.ok(run.fixedLoad!.outputPps > 0, `${run.system} forwarded nothing at the fixed load`);
      assert.ok(run.fullLoad!.outputPps > 0, `${run.system} forwarded nothing at full load`);
      const { relayCoreBusy, receiveThreadCpu } = run.fixedLoad!;
      assert.ok(
        relayCoreBusy > 0 && receiveThreadCpu > 0,
        `${run.system} CPU: core ${relayCoreBusy}, receive thread ${receiveThreadCpu}`,
      );
      assert.ok(run.lossless, `${run.system}: no lossless rate found`);
      assert.ok(
        run.withinOnePercent && run.withinOnePercent.sentPps >= run.lossless.sentPps,
        `${run.system}: the rate at ≤1% loss is at least the lossless one`,
      );
      assert.ok(run.overload!.sentPps > run.lossless.sentPps, `${run.system}: overload offered no more`);
      if (run.system.startsWith('mcr')) {
        assert.ok(run.health && run.health.rssMb > 0, 'worker health reported');
        assert.equal(run.ringDrops !== null, true);
      }
    }
    assert.equal(file.summaries.length, 5);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
