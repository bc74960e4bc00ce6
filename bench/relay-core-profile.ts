// Where the relay core's time goes, per input frame, for each system: the forwarding benchmark's
// topology and placement (input receive on the relay core, coalesced as the benchmark does it),
// a trial at a fixed rate or at the generator's full load, and a cpu-clock profile of the relay
// core (perf record -g) over the middle of the trial. Each sample is put in one activity by its
// call chain (core-profile.ts): the input's receive, mcr's XDP programs, replication and
// transmit, the relay's processes, and the receiver host's receive work, which on veth runs on
// the relay core in the relay's sending context and on real NICs runs on another host.
//
// Usage (root): node dist/bench/relay-core-profile.js [--scenarios 1to5-links,1to1]
//   [--systems mcr-xdp,kernel] [--loads max,50000] [--seconds 3] [--size 64] [--repeat 3]
//   [--top N: the N leaf functions with most samples under each activity]
// Repetitions are interleaved (every case once, then again); a summary of medians and ranges
// ends the output. A cpu-clock sample in a VM lands where the timer interrupt could be taken, so
// a single function's share moves between runs more than an activity's.
// It builds its own namespaces per case and removes them. Needs perf (Debian's linux-perf).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawn, spawnSync } from 'node:child_process';
import { Topology } from '../test/helpers/topology.js';
import {
  CORE_ACTIVITIES,
  CORE_ACTIVITY_LABELS,
  parseSamples,
  profileSamples,
  topFunctions,
  type CoreActivity,
  type CoreProfile,
  type Sample,
} from './core-profile.js';
import { placeInputReceive, RELAY_CPU } from './placement.js';
import { parseScenarioList, type Scenario } from './scenarios.js';
import { startRelay, SYSTEMS, unsupportedReason, type SystemName } from './systems.js';
import { runTrial, type Trial, type TrialSetup } from './trial.js';

const { values } = parseArgs({
  options: {
    scenarios: { type: 'string', default: '1to5-links,1to1' },
    systems: { type: 'string', default: 'mcr-xdp,kernel' },
    loads: { type: 'string', default: 'max,50000' },
    seconds: { type: 'string', default: '3' },
    size: { type: 'string', default: '64' },
    'input-coalesce': { type: 'string', default: '50' },
    top: { type: 'string', default: '0' },
    repeat: { type: 'string', default: '3' },
  },
});
const repeat = Number(values.repeat);
const seconds = Number(values.seconds);
const size = Number(values.size);
const coalesceUs = Number(values['input-coalesce']);
const top = Number(values.top);
const loads = values.loads.split(',').map((l) => (l === 'max' ? ('max' as const) : Number(l)));
const scenarios = parseScenarioList(values.scenarios);
const systems = values.systems.split(',').map((name) => {
  if (!(SYSTEMS as readonly string[]).includes(name))
    throw new Error(`unknown system "${name}": one of ${SYSTEMS.join(', ')}`);
  return name as SystemName;
});
if (!(seconds >= 2))
  throw new Error('--seconds must be at least 2: the profile leaves out the first and last half second');

/** Samples per second of the core's clock: each sample stands for this share of a second. */
const SAMPLE_HZ = 4000;

interface Profiled {
  trial: Trial;
  profile: CoreProfile;
  samples: Sample[];
  relayPids: Set<number>;
  /** Frames in0 received while the profile was recorded: the trial's input rate over its span. */
  inputFrames: number;
  /** Wall-clock seconds the samples cover (samples / SAMPLE_HZ). */
  profiledSeconds: number;
}

/** A trial, with the relay core profiled from half a second in to half a second before its end. */
async function profiledTrial(
  setup: TrialSetup,
  load: number | 'max',
  relayPids: Set<number>,
  dir: string,
): Promise<Profiled> {
  const data = join(dir, 'perf.data');
  const trial = runTrial(setup, load);
  await new Promise((r) => setTimeout(r, 500));
  const perf = spawn(
    'perf',
    [
      'record',
      '-C',
      String(RELAY_CPU),
      '-e',
      'cpu-clock',
      '-F',
      String(SAMPLE_HZ),
      '-g',
      '-o',
      data,
      '--',
      'sleep',
      String(seconds - 1),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let perfErr = '';
  perf.stderr.on('data', (c: Buffer) => (perfErr += c.toString()));
  perf.on('error', (err) => (perfErr += err.message)); // 'close' follows with a null code
  const code = await new Promise<number | null>((r) => perf.on('close', r));
  const result = await trial;
  if (code !== 0) throw new Error(`perf record exited ${code}: ${perfErr}`);
  const script = spawnSync('perf', ['script', '-i', data, '-F', 'comm,pid,ip,sym'], {
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  if (script.status !== 0) throw new Error(`perf script exited ${script.status}: ${script.stderr}`);
  const samples = parseSamples(script.stdout);
  // perf's own start and stop fall outside its samples, so the frames in their span are the
  // trial's steady input rate times the span rather than a counter read around perf.
  const profiledSeconds = samples.length / SAMPLE_HZ;
  return {
    trial: result,
    profile: profileSamples(samples, relayPids),
    samples,
    relayPids,
    inputFrames: result.inputPps * profiledSeconds,
    profiledSeconds,
  };
}

/** µs of the relay core per input frame, per activity, plus busy time with and without the receivers. */
type CaseFigures = Record<CoreActivity | 'busy' | 'relay', number> & { forwardedPps: number };

function report(scenario: Scenario, system: SystemName, load: number | 'max', p: Profiled): CaseFigures {
  const k = (n: number) => `${(n / 1000).toFixed(0)}k`;
  const total = Math.max(1, p.samples.length);
  const busy = total - p.profile.idle;
  const withoutReceivers = busy - p.profile.receivers;
  const usPerFrame = (n: number) => ((n / SAMPLE_HZ) * 1e6) / Math.max(1, p.inputFrames);
  const lines = CORE_ACTIVITIES.map((a) => {
    const n = p.profile[a];
    const share = `${((n / total) * 100).toFixed(1).padStart(5)} %`;
    const per = a === 'idle' ? '' : `  ${usPerFrame(n).toFixed(2).padStart(6)} µs per input frame`;
    let line = `    ${a.padEnd(16)} ${share}${per}   ${CORE_ACTIVITY_LABELS[a]}`;
    if (top > 0 && a !== 'idle' && n > 0)
      for (const f of topFunctions(p.samples, p.relayPids, a, top))
        line += `\n        ${((f.samples / total) * 100).toFixed(1).padStart(5)} %  ${f.name}`;
    return line;
  });
  process.stdout.write(
    `  ${scenario.name}, ${system}, ${load === 'max' ? 'full load' : `${k(load)} pps`}: ` +
      `${k(p.trial.sentPps)} pps offered, ${k(p.trial.forwardedPps)} forwarded, loss ${(p.trial.loss * 100).toFixed(2)} %; ` +
      `${p.samples.length} samples over ${p.profiledSeconds.toFixed(2)} s, ${k(p.trial.inputPps)} input frames/s; ` +
      `core busy ${((busy / total) * 100).toFixed(1)} % in the profile, ${(p.trial.relayCoreBusy * 100).toFixed(1)} % by /proc/stat over the trial\n` +
      `${lines.join('\n')}\n` +
      `    busy ${usPerFrame(busy).toFixed(2)} µs per input frame; without the receivers' work ${usPerFrame(withoutReceivers).toFixed(2)} µs\n`,
  );
  const figures = Object.fromEntries(
    CORE_ACTIVITIES.map((a) => [a, usPerFrame(p.profile[a])]),
  ) as CaseFigures;
  figures.busy = usPerFrame(busy);
  figures.relay = usPerFrame(withoutReceivers);
  figures.forwardedPps = p.trial.forwardedPps;
  return figures;
}

const loadLabel = (load: number | 'max'): string =>
  load === 'max' ? 'full load' : `${(load / 1000).toFixed(0)}k pps`;

/** Every repetition's figures, by case. */
const results = new Map<string, CaseFigures[]>();

async function measure(scenario: Scenario, system: SystemName, dir: string): Promise<void> {
  const topo = new Topology({ outputLinks: scenario.outputLinks });
  try {
    const receiveThreadPid = placeInputReceive(topo, 'relay-core', coalesceUs);
    const relay = await startRelay(system, topo, scenario, { workers: 1, qdiscBypass: true, mcrdArgs: [] });
    try {
      const setup: TrialSetup = {
        generator: 'raw',
        topo,
        scenario,
        size,
        seconds,
        relayPids: relay.pids,
        receiveThreadPid,
      };
      await runTrial(setup, 25_000, 1); // warm-up: ARP, IGMP, routes and maps' first entries
      const relayPids = new Set([...relay.pids, ...relay.controlPids]);
      for (const load of loads) {
        const figures = report(scenario, system, load, await profiledTrial(setup, load, relayPids, dir));
        const key = `${scenario.name}, ${system}, ${loadLabel(load)}`;
        results.set(key, [...(results.get(key) ?? []), figures]);
      }
    } finally {
      await relay.stop();
    }
  } finally {
    topo.destroy();
  }
}

if (spawnSync('perf', ['--version']).status !== 0)
  throw new Error('relay-core-profile needs perf: apt-get install linux-perf');
process.stdout.write(
  `relay-core-profile: where the relay core's time goes, ${size}-byte payloads, ${seconds}-s trials profiled over their middle ${seconds - 1} s at ${SAMPLE_HZ} samples/s, input receive on the relay core (coalescing ${coalesceUs} µs)\n`,
);
const dir = mkdtempSync(join(tmpdir(), 'mcr-core-profile-'));
try {
  for (let r = 1; r <= repeat; r++) {
    process.stdout.write(`repetition ${r} of ${repeat}\n`);
    for (const scenario of scenarios)
      for (const system of systems) {
        const reason = unsupportedReason(system, scenario);
        if (reason) process.stdout.write(`  ${scenario.name}, ${system}: not run: ${reason}\n`);
        else await measure(scenario, system, dir);
      }
  }
  printSummary();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

function printSummary(): void {
  const columns = ['forwardedPps', ...CORE_ACTIVITIES.filter((a) => a !== 'idle'), 'busy', 'relay'] as const;
  const heads = columns.map((c) =>
    c === 'forwardedPps' ? 'FORWARDED' : c === 'relay' ? 'BUSY WITHOUT RECEIVERS' : c.toUpperCase(),
  );
  const rows = [...results].map(([key, runs]) => [
    key,
    ...columns.map((c) => {
      const v = runs.map((f) => f[c]).sort((a, b) => a - b);
      const med = v[Math.floor((v.length - 1) / 2)]!;
      const fmt = (n: number) => (c === 'forwardedPps' ? `${(n / 1000).toFixed(0)}k` : n.toFixed(2));
      return v.length > 1 ? `${fmt(med)} [${fmt(v[0]!)}-${fmt(v[v.length - 1]!)}]` : fmt(med);
    }),
  ]);
  const table = [['CASE', ...heads], ...rows];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  process.stdout.write(
    `\nrelay core, µs per input frame by activity (medians [min-max] of ${repeat}); FORWARDED: input frames per second forwarded\n`,
  );
  for (const row of table)
    process.stdout.write(
      `${row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd()}\n`,
    );
}
