// Forwarding-rate benchmark: mcr (raw and socket egress) against Linux kernel multicast
// forwarding (smcroute) and socat, in namespaces built per case:
//   sender (mcrgen, CPU 1) → relay (relay process on CPU 0) → receiver (counted at its interfaces)
// Repetitions are interleaved (every case once, then every case again) so drift on the machine
// spreads over all systems alike. Prints a table of medians and ranges, writes JSON results.
// Usage (root): npm run bench -- [--help] [--smoke] [--scenarios …] [--systems …] [--repeat 3]
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { Topology } from '../test/helpers/topology.js';
import { parseBenchOptions, type BenchOptions } from './options.js';
import { PLACEMENT_LABELS, placeInputReceive } from './placement.js';
import {
  formatComparisons,
  formatSummary,
  summarize,
  writeResults,
  type CaseKey,
  type CaseRun,
  type SteadyStateHealth,
} from './results.js';
import { SCENARIOS } from './scenarios.js';
import { findMaxRate, GENERATOR_BOUND, generatorBound, LOSSLESS, WITHIN_ONE_PERCENT } from './search.js';
import { startRelay, SYSTEM_LABELS, unsupportedReason } from './systems.js';
import { runTrial, type TrialSetup } from './trial.js';
import type { WorkerProcessHealth } from '../src/protocol/control-api.js';

const options = parseBenchOptions(process.argv);

function cases(o: BenchOptions): CaseKey[] {
  const list: CaseKey[] = [];
  for (const placement of o.placements)
    for (const scenario of o.scenarios)
      for (const size of o.sizes)
        for (const system of o.systems) list.push({ scenario, size, placement, system });
  return list;
}

async function runCase(key: CaseKey, repetition: number): Promise<CaseRun> {
  const scenario = SCENARIOS[key.scenario]!;
  const skipped = unsupportedReason(key.system, scenario);
  if (skipped) return { ...key, repetition, skipped };
  const topo = new Topology({ outputLinks: scenario.outputLinks });
  try {
    const receiveThreadPid = placeInputReceive(topo, key.placement, options.inputCoalesce);
    const relay = await startRelay(key.system, topo, scenario, {
      workers: options.workers,
      qdiscBypass: options.qdiscBypass,
      mcrdArgs: options.mcrdArgs,
    });
    try {
      const setup: TrialSetup = {
        generator: options.generator,
        topo,
        scenario,
        size: key.size,
        seconds: options.seconds,
        relayPids: relay.pids,
        receiveThreadPid,
      };
      await runTrial(setup, options.fixedRate / 2, 1); // warm-up: JIT, ring pages, ARP and IGMP
      const fixedLoad = await runTrial(setup, options.fixedRate);
      const before = await relay.workerStats();
      const fullLoad = await runTrial(setup, 'max');
      const trial = (rate: number) => runTrial(setup, rate);
      const search = await findMaxRate(trial, fullLoad, options.resolution, LOSSLESS);
      const onePercent = await findMaxRate(trial, fullLoad, options.resolution, WITHIN_ONE_PERCENT, [
        fullLoad,
        ...search.trials,
      ]);
      const overload = search.best ? await runTrial(setup, search.best.sentPps * 2) : null;
      const soak = options.soak > 0 ? await runTrial(setup, 'max', options.soak) : null;
      const after = await relay.workerStats();
      return {
        ...key,
        repetition,
        fixedLoad,
        fullLoad,
        lossless: search.best,
        generatorBound: search.generatorBound,
        withinOnePercent: onePercent.best,
        withinOnePercentGeneratorBound: onePercent.generatorBound,
        fullLoadGeneratorBound: generatorBound(fullLoad.forwardedPps, fullLoad.sentPps),
        overloadGeneratorBound: overload !== null && generatorBound(overload.forwardedPps, fullLoad.sentPps),
        overload,
        soak,
        search: [...search.trials, ...onePercent.trials],
        health: before && after ? steadyState(before.health, after.health) : null,
        ringDrops: before && after ? after.ringDrops - before.ringDrops : null,
        xdpRefused: before && after ? after.xdpRefused - before.xdpRefused : null,
      };
    } finally {
      await relay.stop();
    }
  } catch (err) {
    return { ...key, repetition, failed: err instanceof Error ? err.message : String(err) };
  } finally {
    topo.destroy();
  }
}

/** Collections during the saturated trials, summed over workers; RSS at the end. */
function steadyState(before: WorkerProcessHealth[], after: WorkerProcessHealth[]): SteadyStateHealth | null {
  if (before.length !== after.length || after.length === 0) return null;
  const sum = (list: WorkerProcessHealth[], f: (h: WorkerProcessHealth) => number) =>
    list.reduce((n, h) => n + f(h), 0);
  return {
    rssMb: Math.max(...after.map((h) => h.rssBytes)) / 1048576,
    collections: sum(after, (h) => h.gcCount) - sum(before, (h) => h.gcCount),
    pausesOver1Ms: sum(after, (h) => h.gcPausesOver1Ms) - sum(before, (h) => h.gcPausesOver1Ms),
    maxPauseSinceStartMs: Math.max(...after.map((h) => h.gcMaxPauseMs)),
  };
}

function progressLine(run: CaseRun): string {
  const head = `[${run.repetition}/${options.repeat}] ${SCENARIOS[run.scenario]!.name}, ${run.size} B, ${PLACEMENT_LABELS[run.placement]}, ${SYSTEM_LABELS[run.system]}:`;
  if (run.skipped) return `${head} not run (${run.skipped})`;
  if (run.failed) return `${head} FAILED: ${run.failed}`;
  const k = (n: number) => `${(n / 1000).toFixed(0)}k`;
  const lossless = run.lossless
    ? `${run.generatorBound ? '≥' : ''}${k(run.lossless.sentPps)} pps lossless`
    : 'nothing lossless';
  const overload =
    run.overload && run.lossless
      ? `, at ${k(run.overload.sentPps)} offered ${run.overloadGeneratorBound ? '≥' : ''}${((run.overload.forwardedPps / run.lossless.sentPps) * 100).toFixed(0)}% of it forwarded`
      : '';
  const soak = run.soak
    ? `; ${options.soak}-s soak ${k(run.soak.forwardedPps)} forwarded` +
      (run.health
        ? `, ${run.health.collections} collection(s), ${run.health.pausesOver1Ms} over 1 ms, RSS ${run.health.rssMb.toFixed(0)} MB`
        : '')
    : '';
  const onePercent = run.withinOnePercent
    ? `, ${run.withinOnePercentGeneratorBound ? '≥' : ''}${k(run.withinOnePercent.sentPps)} at ≤1% loss`
    : '';
  const refused = run.xdpRefused ? `; ${run.xdpRefused} XDP copies refused by output drivers` : '';
  return `${head} ${lossless}${onePercent}${overload}, full load ${k(run.fullLoad!.sentPps)} offered → ${run.fullLoadGeneratorBound ? '≥' : ''}${k(run.fullLoad!.forwardedPps)} forwarded${soak}${refused}`;
}

const plan = cases(options);
console.log(
  `forwarding-rate: ${plan.length} cases × ${options.repeat} repetition(s), ${options.seconds}-s trials, ${options.workers} worker(s)${options.qdiscBypass ? '' : ', raw egress through the qdisc'}${options.mcrdArgs.length ? `, mcrd ${options.mcrdArgs.join(' ')}` : ''}; relay on CPU 0, generator (mcrgen send${options.generator === 'raw' ? ' --raw' : ', UDP socket'}) on CPU 1, input coalescing ${options.inputCoalesce > 0 ? `${options.inputCoalesce} µs` : 'off'}`,
);
const runs: CaseRun[] = [];
for (let repetition = 1; repetition <= options.repeat; repetition++) {
  for (const key of plan) {
    const run = await runCase(key, repetition);
    runs.push(run);
    console.log(progressLine(run));
  }
}
const summaries = summarize(runs);
console.log(`\n${formatSummary(summaries)}`);
console.log(
  '\nLOSSLESS: highest offered rate with loss <= 0.1 %. AT 2× LOSSLESS: input forwarded at twice that rate, as a share of it.',
);
console.log(
  `≥: generator-bound: the figure is at least ${GENERATOR_BOUND * 100} % of the most the generator offered in that case (its full-load rate), so the generator, not the system, set it; the system may do more.`,
);
console.log(
  `µS/PKT at ${options.fixedRate} pps offered: relay core busy time / relay processes (worker, socat) / input receive thread, per input packet.`,
);
console.log(
  `GC >1MS: collections pausing over 1 ms of all collections during the saturated trials${options.soak > 0 ? `, the ${options.soak}-s soak included` : ''} (mcr).`,
);
const comparisons = formatComparisons(summaries);
if (comparisons.length) console.log(`\nLossless rate ratios (medians):\n  ${comparisons.join('\n  ')}`);
writeResults(options.results, {
  date: new Date().toISOString(),
  machine: {
    kernel: spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim(),
    cpu: cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
    node: process.version,
  },
  options,
  summaries,
  runs,
});
console.log(`\nresults: ${options.results}`);
const failed = runs.filter((r) => r.failed);
if (failed.length) {
  console.error(`${failed.length} case run(s) failed`);
  process.exitCode = 1;
}
