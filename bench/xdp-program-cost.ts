// What mcr's XDP programs cost on live frames. The forwarding benchmark's topology (sender →
// relay → receiver, input receive on the relay core) runs mcr with XDP outputs; while the
// generator offers a fixed rate and then its full load, the kernel's run-time statistics
// (BPF_ENABLE_STATS) time every run of mcr's programs: the ingress program once per input
// frame, the egress program once per copy, the refusal program once per bulk a driver is handed.
// The time is each program's own; the redirect's queueing, the driver's transmission and the
// receivers' work are not in it, which the relay core's busy time per packet (measured in the
// same trial and, as a reference, in one with the statistics off) puts beside it.
//
// Usage (root): node dist/bench/xdp-program-cost.js [--rate PPS] [--seconds S] [--size BYTES]
//   [--scenarios 1to1,1to5-links,1to5-groups]
// It builds its own namespaces per scenario and removes them.
import { parseArgs } from 'node:util';
import {
  enableProgramRunStats,
  programRunStats,
  type ProgramRunStats,
} from '../src/sys/bpf-program-stats.js';
import { Topology } from '../test/helpers/topology.js';
import { placeInputReceive } from './placement.js';
import { parseScenarioList, type Scenario } from './scenarios.js';
import { startRelay } from './systems.js';
import { runTrial, type Trial, type TrialSetup } from './trial.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '50000' },
    seconds: { type: 'string', default: '2' },
    size: { type: 'string', default: '64' },
    scenarios: { type: 'string', default: '1to1,1to5-links,1to5-groups' },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const size = Number(values.size);
const scenarios = parseScenarioList(values.scenarios);

/** mcr's programs by name, their runs and run time summed over inputs (one input here). */
type ProgramTotals = Map<string, { runs: number; runTimeNs: number }>;

function totals(list: ProgramRunStats[]): ProgramTotals {
  const byName: ProgramTotals = new Map();
  for (const p of list) {
    const t = byName.get(p.name) ?? { runs: 0, runTimeNs: 0 };
    byName.set(p.name, { runs: t.runs + p.runs, runTimeNs: t.runTimeNs + p.runTimeNs });
  }
  return byName;
}

interface Measured {
  trial: Trial;
  programs: ProgramTotals;
  /** Frames in0 received while the programs were timed: the same window as their runs. */
  inputFrames: number;
}

/** One trial with run-time statistics on; the programs' runs and time during it. */
async function timedTrial(setup: TrialSetup, load: number | 'max'): Promise<Measured> {
  const received = (): number => setup.topo.linkStats(setup.topo.relay, 'in0').rxPackets;
  const stats = enableProgramRunStats();
  try {
    const before = totals(programRunStats('mcr_'));
    const receivedBefore = received();
    const trial = await runTrial(setup, load);
    const inputFrames = received() - receivedBefore;
    const after = totals(programRunStats('mcr_'));
    const programs: ProgramTotals = new Map();
    for (const [name, end] of after) {
      const start = before.get(name) ?? { runs: 0, runTimeNs: 0 };
      programs.set(name, { runs: end.runs - start.runs, runTimeNs: end.runTimeNs - start.runTimeNs });
    }
    return { trial, programs, inputFrames };
  } finally {
    stats.close();
  }
}

function report(scenario: Scenario, label: string, m: Measured, reference: Trial | null): void {
  const { inputFrames } = m;
  const k = (n: number) => `${(n / 1000).toFixed(0)}k`;
  const coreNsPerPacket = (t: Trial) => (t.relayCoreBusy * 1e9) / Math.max(1, t.inputPps);
  let programNsPerFrame = 0;
  const lines: string[] = [];
  for (const [name, p] of [...m.programs].sort()) {
    const perRun = p.runs > 0 ? p.runTimeNs / p.runs : 0;
    const perFrame = inputFrames > 0 ? p.runTimeNs / inputFrames : 0;
    programNsPerFrame += perFrame;
    lines.push(
      `    ${name.padEnd(14)} ${String(p.runs).padStart(10)} runs  ${(p.runs / Math.max(1, inputFrames)).toFixed(2).padStart(6)} per input frame  ${perRun.toFixed(1).padStart(7)} ns per run  ${perFrame.toFixed(1).padStart(7)} ns per input frame`,
    );
  }
  const core = coreNsPerPacket(m.trial);
  const off = reference ? `; with statistics off ${(coreNsPerPacket(reference) / 1000).toFixed(2)} µs` : '';
  process.stdout.write(
    `  ${scenario.name}, ${label}: ${k(m.trial.sentPps)} pps offered, ${k(m.trial.forwardedPps)} forwarded, loss ${(m.trial.loss * 100).toFixed(2)} %\n` +
      `${lines.join('\n')}\n` +
      `    programs ${programNsPerFrame.toFixed(0)} ns per input frame; relay core busy ${(core / 1000).toFixed(2)} µs per input frame${off} (programs ${((programNsPerFrame / core) * 100).toFixed(0)} % of it)\n`,
  );
}

async function measure(scenario: Scenario): Promise<void> {
  const topo = new Topology({ outputLinks: scenario.outputLinks });
  try {
    const receiveThreadPid = placeInputReceive(topo, 'relay-core');
    const relay = await startRelay('mcr-xdp', topo, scenario, {
      workers: 1,
      qdiscBypass: true,
      mcrdArgs: [],
    });
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
      await runTrial(setup, rate / 2, 1); // warm-up: ARP, IGMP, the maps' first entries
      const reference = await runTrial(setup, rate);
      report(scenario, `${rate} pps`, await timedTrial(setup, rate), reference);
      report(scenario, 'full load', await timedTrial(setup, 'max'), null);
    } finally {
      await relay.stop();
    }
  } finally {
    topo.destroy();
  }
}

process.stdout.write(
  `xdp-program-cost: mcr's XDP programs timed by the kernel on live frames, ${size}-byte payloads, ${seconds}-s trials, input receive on the relay core\n`,
);
for (const scenario of scenarios) await measure(scenario);
