// The benchmark's smoke mode, as CI runs it: every system relays real traffic through the
// relay-core placement and the results file holds every figure the full run reports. It checks
// that the benchmark works, not how fast anything is.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CORE_ACTIVITIES } from '../../bench/core-profile.js';
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

test("the XDP program cost benchmark times each of mcr's programs on live frames, as often as they run", () => {
  const r = spawnSync(
    'node',
    [
      join(ROOT, 'dist/bench/xdp-program-cost.js'),
      ...['--scenarios', '1to5-links', '--rate', '20000', '--seconds', '0.5'],
    ],
    { encoding: 'utf8', timeout: 120_000 },
  );
  assert.equal(r.status, 0, `bench exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  // At the fixed rate nothing is lost: each input frame runs the ingress program once and the
  // egress program once per output (IGMP and ARP frames reach the input too, a few per trial).
  const fixed = r.stdout.split('full load')[0]!;
  const perFrame = (name: string): number => {
    const line = new RegExp(`${name} +(\\d+) runs +([\\d.]+) per input frame +([\\d.]+) ns per run`).exec(
      fixed,
    );
    assert.ok(line, `a line for ${name}:\n${r.stdout}`);
    assert.ok(Number(line[1]) > 0 && Number(line[3]) > 0, `${name} ran and was timed`);
    return Number(line[2]);
  };
  const ingress = perFrame('mcr_ingress');
  assert.ok(ingress > 0.95 && ingress <= 1, `ingress runs per input frame: ${ingress}`);
  const egress = perFrame('mcr_egress');
  assert.ok(egress > 4.75 && egress <= 5, `egress runs per input frame: ${egress}`);
  assert.ok(perFrame('mcr_refusals') > 0, 'the refusal program ran on the bulks');
  assert.match(
    r.stdout,
    /1:5, five links, full load: .*\n(.*\n){3} +programs \d+ ns per input frame; relay core busy/,
  );
});

test("the relay-core profile puts the core's time under the relay's activities, mcr's programs among them", () => {
  const r = spawnSync(
    'node',
    [
      join(ROOT, 'dist/bench/relay-core-profile.js'),
      ...[
        '--scenarios',
        '1to5-links',
        '--systems',
        'mcr-xdp',
        '--loads',
        'max',
        '--seconds',
        '2',
        '--repeat',
        '1',
      ],
    ],
    { encoding: 'utf8', timeout: 120_000 },
  );
  assert.equal(r.status, 0, `bench exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  const share = (activity: string): number => {
    const line = new RegExp(`^ +${activity} +([\\d.]+) %`, 'm').exec(r.stdout);
    assert.ok(line, `a line for ${activity}:\n${r.stdout}`);
    return Number(line[1]);
  };
  const total = CORE_ACTIVITIES.reduce((sum, a) => sum + share(a), 0);
  assert.ok(Math.abs(total - 100) < 0.5, `the shares add up to the core's time: ${total} %`);
  // At full load the core is busy with the relay: the call chains through the JIT-compiled
  // programs, the devmap and the receivers' NAPI were unwound and recognised.
  for (const a of ['receivers', 'xdp-programs', 'replication', 'input'])
    assert.ok(share(a) > 1, `${a}: ${share(a)} % of the core\n${r.stdout}`);
  assert.ok(share('other') < 20, `little is left unrecognised: ${share('other')} %`);
  assert.match(r.stdout, /BUSY WITHOUT RECEIVERS\n1:5, five links, mcr-xdp, full load +\d+k/);
});
