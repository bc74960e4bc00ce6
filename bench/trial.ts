// One trial: the generator offers a rate for a fixed time; what arrives is counted at the
// receiver's interfaces, and CPU is read from /proc for the relay core, the relay's processes and
// the input's receive thread.
//
// The generator is mcrgen send on the generator core: --raw (whole frames on a packet socket,
// the fastest; see docs/PERFORMANCE.md) or the UDP socket path. Raw frames go through the
// sender's qdisc like the datagrams (--no-qdisc-bypass: its 1000 frames of buffer stay part of
// the set-up), and one the qdisc has no room for is given up (--drop-when-full): it was offered
// and is lost, as a datagram dropped there always was.
import { readdirSync, readFileSync } from 'node:fs';
import type { SendReport } from '../src/gen/sender.js';
import { BIN, sleep, type Topology } from '../test/helpers/topology.js';
import { GENERATOR_CPU, RELAY_CPU } from './placement.js';
import { INPUT_PORT, inputGroup, type Scenario } from './scenarios.js';

export const GENERATORS = ['raw', 'socket'] as const;
export type Generator = (typeof GENERATORS)[number];

export interface Trial {
  /** The rate asked of the generator, or 'max' (as fast as it goes). */
  target: number | 'max';
  /**
   * Packets per second the generator offered: those its kernel accepted, plus (raw generator)
   * those refused because the relay's input was full.
   */
  sentPps: number;
  /** Share of the offered packets the sender's device refused (raw generator; 0 for UDP). */
  refused: number;
  /** Packets per second that reached the relay's input interface. */
  inputPps: number;
  /** Packets per second counted at the receiver, over all output links. */
  outputPps: number;
  /** Input packets per second that were forwarded (output / fan-out). */
  forwardedPps: number;
  /** Share of expected output packets (sent × fan-out) that never arrived. */
  loss: number;
  /** The relay core's busy share (1 − idle share): relay process, receive thread, softirq, everything. */
  relayCoreBusy: number;
  /** CPU of the relay's own processes (mcr workers, socat), in cores. */
  relayProcessCpu: number;
  /** CPU of the input's NAPI thread, in cores. */
  receiveThreadCpu: number;
  /** Context switches per input packet: relay processes and NAPI thread, each way counted. */
  switchesPerPacket: number;
}

export interface TrialSetup {
  generator: Generator;
  topo: Topology;
  scenario: Scenario;
  size: number;
  seconds: number;
  relayPids: number[];
  receiveThreadPid: number;
}

/** Runs the generator at `rate` (or unpaced) and measures what the relay made of it. */
export async function runTrial(
  setup: TrialSetup,
  rate: number | 'max',
  seconds = setup.seconds,
): Promise<Trial> {
  const { topo, scenario } = setup;
  const outputBefore = receivedAtReceiver(topo, scenario);
  const inputBefore = topo.linkStats(topo.relay, 'in0').rxPackets;
  const processBefore = cpuSeconds(setup.relayPids);
  const threadBefore = cpuSeconds([setup.receiveThreadPid]);
  const switchesBefore = contextSwitches([...setup.relayPids, setup.receiveThreadPid]);
  const idleBefore = idleSeconds(RELAY_CPU);
  const started = process.hrtime.bigint();
  const report = await generate(setup, rate, seconds);
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  const idle = idleSeconds(RELAY_CPU) - idleBefore;
  const processSeconds = cpuSeconds(setup.relayPids) - processBefore;
  const threadSeconds = cpuSeconds([setup.receiveThreadPid]) - threadBefore;
  const switches = contextSwitches([...setup.relayPids, setup.receiveThreadPid]) - switchesBefore;
  await sleep(300); // what is still in rings and queues arrives
  const input = topo.linkStats(topo.relay, 'in0').rxPackets - inputBefore;
  const output = receivedAtReceiver(topo, scenario) - outputBefore;
  const elapsed = report.elapsedSeconds;
  const offered = report.packets + report.refused;
  const expected = offered * scenario.fanout;
  return {
    target: rate,
    sentPps: offered / elapsed,
    refused: offered > 0 ? report.refused / offered : 0,
    inputPps: input / elapsed,
    outputPps: output / elapsed,
    forwardedPps: output / scenario.fanout / elapsed,
    loss: expected > 0 ? Math.max(0, (expected - output) / expected) : 0,
    relayCoreBusy: Math.min(1, Math.max(0, 1 - idle / wall)),
    relayProcessCpu: processSeconds / wall,
    receiveThreadCpu: threadSeconds / wall,
    switchesPerPacket: input > 0 ? switches / input : 0,
  };
}

/** One mcrgen on the generator core sends every stream, round robin. */
async function generate(setup: TrialSetup, rate: number | 'max', seconds: number): Promise<SendReport> {
  const { topo, scenario } = setup;
  const sender = topo.start(topo.sender, 'taskset', [
    ...['-c', String(GENERATOR_CPU), BIN('mcrgen'), 'send', '--interface', 'eth0', '--json'],
    ...['--group', inputGroup(1), '--streams', String(scenario.streams), '--port', String(INPUT_PORT)],
    ...['--rate', rate === 'max' ? 'max' : String(Math.round(rate)), '--size', String(setup.size)],
    ...['--duration', String(seconds)],
    ...(setup.generator === 'raw' ? ['--raw', '--no-qdisc-bypass', '--drop-when-full'] : []),
  ]);
  const { code } = await sender.exited;
  if (code !== 0) throw new Error(`mcrgen send exited ${code}: ${sender.stderr}`);
  return JSON.parse(sender.stdout) as SendReport;
}

function receivedAtReceiver(topo: Topology, scenario: Scenario): number {
  let total = 0;
  // Kernel chatter (IGMP reports, IPv6 neighbour discovery) is a handful of packets per trial.
  for (let i = 0; i < scenario.outputLinks; i++) total += topo.linkStats(topo.receiver, `eth${i}`).rxPackets;
  return total;
}

/**
 * A CPU's idle time in seconds. The busy columns of /proc/stat are sampled at the timer tick, and
 * a tickless kernel stops the tick on an idle CPU: short bursts of work between idle periods
 * (a receive thread at a few percent) are then mostly missed, and a core doing 11 % of work
 * read as 1 %. Idle time is measured, not sampled (nanoseconds from idle entry to exit), so the
 * busy share is what is left of the wall clock.
 */
function idleSeconds(cpu: number): number {
  const line = readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`cpu${cpu} `));
  if (!line) throw new Error(`/proc/stat has no cpu${cpu} line`);
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  return ((v[3] ?? 0) + (v[4] ?? 0)) / USER_HZ; // idle + iowait
}

/** /proc/stat's unit: USER_HZ is 100 on every Linux architecture mcr runs on. */
const USER_HZ = 100;

/** Context switches (voluntary and not) of processes, every thread included. */
function contextSwitches(pids: number[]): number {
  let total = 0;
  forEachThread(pids, (path) => {
    for (const m of readFileSync(`${path}/status`, 'utf8').matchAll(/ctxt_switches:\s+(\d+)/g))
      total += Number(m[1]);
  });
  return total;
}

/**
 * CPU time of processes, every thread included, in seconds. From each thread's schedstat (the
 * scheduler's own nanosecond count), not /proc/PID/stat: those are 10-ms ticks, and a thread
 * using a few percent of a core over a 1-s trial could read as zero.
 */
function cpuSeconds(pids: number[]): number {
  let nanoseconds = 0;
  forEachThread(pids, (path) => {
    nanoseconds += Number(readFileSync(`${path}/schedstat`, 'utf8').split(' ')[0]);
  });
  return nanoseconds / 1e9;
}

/** Calls `read` with /proc/PID/task/TID of every thread; a thread that ended meanwhile is skipped. */
function forEachThread(pids: number[], read: (path: string) => void): void {
  for (const pid of pids) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      throw new Error(`process ${pid} (relay or receive thread) ended during the trial`);
    }
    for (const tid of tids) {
      try {
        read(`/proc/${pid}/task/${tid}`);
      } catch (err) {
        // A thread that ended between the listing and the read (a Node helper thread).
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ESRCH') throw err;
      }
    }
  }
}
