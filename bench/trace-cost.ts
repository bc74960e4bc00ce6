// Micro-benchmark: what tracing costs the worker's data path, in ns per frame of InputPath.drain,
// on frames that end before anything is sent (so no kernel send cost hides it):
//   off         no trace takes this input (the usual state: `trace` is undefined in drain), in a
//               copy of the data path that never traced
//   off, traced before  the same, in the copy the "on" variants run (a worker after a trace)
//   on, idle    a trace of another rule of this input runs: each frame's outcome is read and the
//               frame decoded, none recorded
//   on, record  a trace takes every frame: each is decoded and written into its buffer
//   before      (with --before DIR) the same frames through the data path of another build, e.g.
//               the commit before tracing existed: "off" against it is what tracing costs when off
// Every variant runs in this one process, interleaved sample by sample, so a neighbour's load
// falls on all of them alike; the minimum of many short samples is the figure least disturbed.
//
// Usage (root, for the AF_PACKET ring):
//   node dist/bench/trace-cost.js [--samples N] [--batches N] [--before DIR]
// DIR is a checkout built with tsc (its dist/src/worker/*.js are loaded). The ring's socket is
// never bound and nothing is sent: no traffic anywhere.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildUdpFrame } from '../src/packet/build.js';
import { parseIpv4 } from '../src/packet/ipv4-address.js';
import type { WorkerOutput } from '../src/protocol/worker-messages.js';
import { allowedCpus, pinToCpu } from '../src/sys/affinity.js';
import { AF_PACKET, SOCK_RAW } from '../src/sys/constants.js';
import { ringGeometryFor, RxRing, TP_STATUS_USER } from '../src/sys/rx-ring.js';
import { openSocket, openUdpSocket } from '../src/sys/socket.js';
import * as forwardingRule from '../src/worker/forwarding-rule.js';
import * as hostAddresses from '../src/worker/host-addresses.js';
import * as inputPath from '../src/worker/input-path.js';
import { InputTrace, TraceSession } from '../src/worker/input-trace.js';
import * as outputPath from '../src/worker/output-path.js';
import * as workerCounters from '../src/worker/worker-counters.js';

const ip = (text: string): number => parseIpv4(text)!;
const SETTINGS = {
  ringBytes: 4 << 20,
  batchSize: 64,
  batchesPerWakeup: 16,
  coalesceUs: 0,
  statsIntervalMs: 1000,
};
const GROUP = '239.1.1.1';
const PORT = 5000;
const TP_MAC_AT = 80;
const RULE = 'r-000000000001';

/** The data path's classes, from this build or another. */
interface Build {
  InputPath: typeof inputPath.InputPath;
  ForwardingRule: typeof forwardingRule.ForwardingRule;
  OutputPath: typeof outputPath.OutputPath;
  WorkerCounterSet: typeof workerCounters.WorkerCounterSet;
  HostAddresses: typeof hostAddresses.HostAddresses;
}

const THIS_BUILD: Build = {
  InputPath: inputPath.InputPath,
  ForwardingRule: forwardingRule.ForwardingRule,
  OutputPath: outputPath.OutputPath,
  WorkerCounterSet: workerCounters.WorkerCounterSet,
  HostAddresses: hostAddresses.HostAddresses,
};

/**
 * The data path's classes from the build in `dir`, as a copy of their own (`copy` makes the module
 * URLs unique): V8 optimises drain() per copy, from what that copy alone has run.
 */
async function loadBuild(dir: string, copy: string): Promise<Build> {
  const load = async <T>(file: string): Promise<T> =>
    (await import(`${pathToFileURL(resolve(dir, 'dist/src/worker', file)).href}?${copy}`)) as T;
  return {
    InputPath: (await load<typeof inputPath>('input-path.js')).InputPath,
    ForwardingRule: (await load<typeof forwardingRule>('forwarding-rule.js')).ForwardingRule,
    OutputPath: (await load<typeof outputPath>('output-path.js')).OutputPath,
    WorkerCounterSet: (await load<typeof workerCounters>('worker-counters.js')).WorkerCounterSet,
    HostAddresses: (await load<typeof hostAddresses>('host-addresses.js')).HostAddresses,
  };
}

type Mode = 'before' | 'off' | 'off, traced before' | 'on, idle' | 'on, record';

interface Case {
  label: string;
  dst: string;
  ttl: number;
  outputs: number;
}

const CASES: Case[] = [
  { label: 'no_rule', dst: '239.9.9.9', ttl: 64, outputs: 1 },
  { label: 'ttl_expired, 1 output', dst: GROUP, ttl: 1, outputs: 1 },
  { label: 'ttl_expired, 8 outputs', dst: GROUP, ttl: 1, outputs: 8 },
];

/** One input with one rule, frames of `c` in every slot; `run(n)` times n batches. */
function rig(c: Case, mode: Mode, build: Build): { run(batches: number): number; close(): void } {
  const counters = new build.WorkerCounterSet();
  const fd = openSocket(AF_PACKET, SOCK_RAW, 0, 'bench ring');
  const ring = RxRing.attach(fd, ringGeometryFor(1500, SETTINGS.ringBytes));
  const input = new build.InputPath(fd, 'bench', 1500, SETTINGS, counters, new build.HostAddresses(), {
    watch: () => ({ stop() {} }),
  });
  const specs: WorkerOutput[] = Array.from({ length: c.outputs }, (_, i) => ({
    label: `o${i}`,
    ttl: 16,
    ttlFixed: false,
    dscp: null,
    attached: false,
    egress: null,
  }));
  const outputs = specs.map((s) => {
    const o = new build.OutputPath(s, SETTINGS.batchSize, counters);
    o.attach(openUdpSocket('bench output'), undefined); // never sent to: every frame ends before
    return o;
  });
  const rule = new build.ForwardingRule(
    {
      id: RULE,
      inputInterface: 'bench',
      inputVlan: 0,
      inputSource: 0,
      inputGroup: ip(GROUP),
      inputPort: PORT,
      outputs: specs,
    },
    outputs,
  );
  input.addRule(rule);
  let session: TraceSession | undefined;
  if (mode === 'on, idle' || mode === 'on, record') {
    const selection = {
      interface: 'bench',
      rule: mode === 'on, idle' ? 'r-000000000002' : null,
      group: null,
      port: null,
    };
    session = new TraceSession(1, selection, 1_000_000, false);
    input.trace = new InputTrace(input.batchCapacity);
    input.trace.sessions = [session];
  }
  const bytes = buildUdpFrame({
    src: ip('198.51.100.1'),
    dst: ip(c.dst),
    srcPort: 4000,
    dstPort: PORT,
    payload: 64,
    ttl: c.ttl,
  });
  for (let slot = 0; slot < ring.frameCount; slot++) {
    const at = slot * ring.frameSize;
    ring.bytes.set(bytes, at + TP_MAC_AT);
    ring.words[(at >>> 2) + 1] = bytes.length;
    ring.words[(at >>> 2) + 2] = bytes.length;
    ring.halfWords[(at + 12) >>> 1] = TP_MAC_AT;
  }
  let slot = 0;
  const ready = (): void => {
    for (let i = 0; i < SETTINGS.batchSize; i++) {
      Atomics.store(ring.words, (slot * ring.frameSize) >>> 2, TP_STATUS_USER);
      slot = (slot + 1) % ring.frameCount;
    }
  };
  // The worker's timer takes the records every 50 ms; here, between timed batches, so the buffer
  // never fills (a full buffer records nothing and would flatter the figure).
  const emptyBuffer = (): void => {
    if (session !== undefined && session.buffer.size > SETTINGS.batchSize * 8) {
      session.buffer.take(Number.MAX_SAFE_INTEGER);
      session.recorded = 0;
    }
  };
  return {
    run(batches) {
      let ns = 0;
      for (let b = 0; b < batches; b++) {
        ready();
        const started = process.hrtime.bigint();
        input.drain();
        ns += Number(process.hrtime.bigint() - started);
        emptyBuffer();
      }
      return ns / (batches * SETTINGS.batchSize);
    },
    close() {
      input.close();
      ring.detach();
      rule.close();
    },
  };
}

function argument(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

async function main(): Promise<void> {
  const samples = Number(argument('--samples') ?? 100);
  const batches = Number(argument('--batches') ?? 500);
  const beforeDir = argument('--before');
  const before = beforeDir === undefined ? undefined : await loadBuild(beforeDir, 'before');
  // "off": a copy of this build's data path that never traced, as in a worker no trace has
  // reached. "off, traced before": the copy the "on" variants run, whose drain() V8 optimised
  // with tracing taken (a worker after a trace ended).
  const untraced = await loadBuild(resolve(import.meta.dirname, '..', '..'), 'untraced');
  const cpus = allowedCpus();
  pinToCpu(cpus[cpus.length - 1]!);
  const modes: Mode[] = [
    ...(before ? (['before'] as const) : []),
    'off',
    'off, traced before',
    'on, idle',
    'on, record',
  ];
  const buildOf = (mode: Mode): Build =>
    mode === 'before' ? before! : mode === 'off' ? untraced : THIS_BUILD;
  console.log(
    `InputPath.drain, batches of ${SETTINGS.batchSize}, ns per frame: min and median of ${samples} samples of ${batches} batches, interleaved`,
  );
  for (const c of CASES) {
    const rigs = modes.map((mode) => rig(c, mode, buildOf(mode)));
    for (const r of rigs) r.run(2000); // warm up: optimised code before the first sample
    const taken = modes.map((): number[] => []);
    // Each round starts with the next variant: none always runs right after the same neighbour.
    for (let s = 0; s < samples; s++) {
      for (let k = 0; k < rigs.length; k++) {
        const i = (s + k) % rigs.length;
        taken[i]!.push(rigs[i]!.run(batches));
      }
    }
    for (const r of rigs) r.close();
    modes.forEach((mode, i) => {
      const sorted = taken[i]!.sort((a, b) => a - b);
      const median = sorted[Math.floor(sorted.length / 2)]!;
      console.log(
        `  ${`${c.label}, ${mode}`.padEnd(36)} ${sorted[0]!.toFixed(1).padStart(6)} ${median.toFixed(1).padStart(7)}`,
      );
    });
  }
}

await main();
