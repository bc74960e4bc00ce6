// Forwarding rate of mcr, measured with mcrgen (paced) and trafgen (netsniff-ng, unpaced):
//   sender (generator, CPU 1) → relay (mcrd + workers) → receiver (counted at the interfaces)
// One worker is pinned to CPU 0; with --workers 2 the second shares CPU 1 with the generator.
// For each scenario it offers fixed rates, counts what arrives, and reports the highest offered
// rate with loss ≤ 0.1 % (the maximum lossless rate) and the output at full offered load.
// Usage (root): node dist/bench/forwarding-rate.js [--seconds 3] [--size 64] [--workers 1]
//   [--system mcr|kernel] [--mode auto|raw|socket] [--qdisc-bypass on|off] [--scenarios 1to1,1to5-groups,1to5-links,1to1-8flows]
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildUdpFrame } from '../src/packet/build.js';
import { parseIpv4 } from '../src/packet/ipv4-address.js';
import { RelayHost, workerTotals } from '../test/helpers/relay-host.js';
import { BIN, sleep, Topology } from '../test/helpers/topology.js';

interface Scenario {
  name: string;
  outputLinks: number;
  /** The outputs of flow f's rule (flows use groups 239.1.1.1, .2, …). */
  outputs: (flow: number) => string;
  fanout: number;
  /** Distinct input flows, one rule each (the kernel spreads flows over workers). */
  flows: number;
}

const SCENARIOS: Record<string, Scenario> = {
  '1to1': { name: '1:1', outputLinks: 1, fanout: 1, flows: 1, outputs: () => '239.2.2.1:6000:out0' },
  '1to1-8flows': {
    name: '1:1, eight flows',
    outputLinks: 1,
    fanout: 1,
    flows: 8,
    outputs: (flow) => `239.2.2.${flow}:6000:out0`,
  },
  '1to5-groups': {
    name: '1:5, five groups on one link',
    outputLinks: 1,
    fanout: 5,
    flows: 1,
    outputs: () => [1, 2, 3, 4, 5].map((i) => `239.2.2.${i}:6000:out0`).join(','),
  },
  '1to5-links': {
    name: '1:5, five links',
    outputLinks: 5,
    fanout: 5,
    flows: 1,
    outputs: () => [0, 1, 2, 3, 4].map((i) => `239.2.2.${i + 1}:6000:out${i}`).join(','),
  },
};

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2)
  args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const seconds = Number(args.get('seconds') ?? 3);
const size = Number(args.get('size') ?? 64);
const workerCount = Number(args.get('workers') ?? 1);
/** Egress path for every output: auto (raw where it applies), raw or socket. */
const mode = args.get('mode') ?? 'auto';
const qdiscBypass = (args.get('qdisc-bypass') ?? 'on') === 'on';
/** What relays: mcr, or Linux kernel multicast forwarding (routes installed by smcroute). */
const system = args.get('system') ?? 'mcr';
/** Above this mcrgen (64-byte payloads, one core) cannot offer more: the search stops there. */
const MCRGEN_MAX_RATE = 260_000;
const scenarioNames = (args.get('scenarios') ?? '1to1,1to5-groups,1to5-links').split(',');

/** trafgen's config: one frame per flow as a list of bytes (checksums already right); trafgen cycles them. */
function trafgenConfig(dir: string, flows: number): string {
  const packets = Array.from({ length: flows }, (_, f) => {
    const frame = buildUdpFrame({
      src: parseIpv4('10.90.1.1')!,
      dst: parseIpv4(`239.1.1.${f + 1}`)!,
      srcPort: 40000 + f,
      dstPort: 5000,
      payload: size,
      ttl: 16,
    });
    // cpu(1): trafgen pins its sender processes to CPUs 0..n-1 itself (taskset does not hold it);
    // only the process on CPU 1 sends these, so the relay keeps CPU 0 to itself.
    return `cpu(1): { ${[...frame].map((b) => `0x${b.toString(16).padStart(2, '0')}`).join(', ')} }`;
  });
  const path = join(dir, 'frame.cfg');
  writeFileSync(path, `${packets.join('\n')}\n`);
  return path;
}

function counter(topo: Topology, ns: string, ifname: string, which: 'rx_packets' | 'tx_packets'): number {
  return Number(topo.exec(ns, 'cat', [`/sys/class/net/${ifname}/statistics/${which}`]).stdout.trim());
}

/** CPU 0's busy and total jiffies from /proc/stat (the relay's core, whoever works on it). */
function relayCoreTicks(): { busy: number; total: number } {
  const line = spawnSync('cat', ['/proc/stat'], { encoding: 'utf8' })
    .stdout.split('\n')
    .find((l) => l.startsWith('cpu0 '))!;
  const v = line.split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - v[3]! - v[4]!, total };
}

function cpuTicks(pid: number): number {
  const r = spawnSync('cat', [`/proc/${pid}/stat`], { encoding: 'utf8' });
  const fields = r.stdout.slice(r.stdout.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

interface Trial {
  offered: number;
  sent: number;
  delivered: number;
  loss: number;
  outputPps: number;
  workerCpu: number;
  /** CPU 0 busy (worker, its receive and send work, softirq), as a fraction. */
  relayCpu: number;
}

/**
 * One trial. A number offers that rate with mcrgen (paced per millisecond, bursts of at most a few
 * hundred packets, which the ring absorbs); 'max' offers what trafgen can push unpaced. trafgen's
 * own rate option sends a second's worth in one burst, and its gap option tops out near 58k pps,
 * so neither serves for a paced search.
 */
async function trial(
  topo: Topology,
  config: string,
  scenario: Scenario,
  rate: number | 'max',
  workerPids: number[],
): Promise<Trial> {
  const before = sumOutputs(topo, scenario);
  const inputBefore = counter(topo, topo.relay, 'in0', 'rx_packets');
  const cpuBefore = workerPids.map(cpuTicks);
  const coreBefore = relayCoreTicks();
  const started = process.hrtime.bigint();
  if (rate === 'max') {
    const trafgen = [
      '-c',
      '0-1',
      'trafgen',
      '--dev',
      'eth0',
      '--conf',
      config,
      '--cpus',
      '2',
      '-n',
      '2000000',
      '-q',
    ];
    const r = topo.exec(topo.sender, 'taskset', trafgen);
    if (r.code !== 0) throw new Error(`trafgen failed: ${r.stderr}`);
  } else {
    // One paced mcrgen per flow, each at its share of the rate, all on the generator's CPU.
    const senders = Array.from({ length: scenario.flows }, (_, f) =>
      topo.start(topo.sender, 'taskset', [
        ...[
          '-c',
          '1',
          BIN('mcrgen'),
          'send',
          '--interface',
          'eth0',
          '--group',
          `239.1.1.${f + 1}`,
          '--port',
          '5000',
        ],
        ...['--rate', String(rate / scenario.flows), '--size', String(size), '--duration', String(seconds)],
      ]),
    );
    for (const sender of senders) {
      const { code } = await sender.exited;
      if (code !== 0) throw new Error(`mcrgen failed: ${sender.stderr}`);
    }
  }
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  await sleep(300); // let the rings drain
  const cpu = workerPids.reduce((sum, pid, i) => sum + (cpuTicks(pid) - cpuBefore[i]!), 0) / 100 / elapsed;
  const coreAfter = relayCoreTicks();
  const relayCpu = (coreAfter.busy - coreBefore.busy) / Math.max(1, coreAfter.total - coreBefore.total);
  const sent = counter(topo, topo.relay, 'in0', 'rx_packets') - inputBefore;
  const delivered = sumOutputs(topo, scenario) - before;
  const expected = sent * scenario.fanout;
  return {
    offered: sent / elapsed,
    sent,
    delivered,
    loss: Math.max(0, (expected - delivered) / expected),
    outputPps: delivered / elapsed,
    workerCpu: cpu,
    relayCpu,
  };
}

function sumOutputs(topo: Topology, scenario: Scenario): number {
  let total = 0;
  for (let i = 0; i < scenario.outputLinks; i++)
    total += counter(topo, topo.receiver, `eth${i}`, 'rx_packets');
  // Kernel chatter (IGMP reports, IPv6 ND) is a handful of packets, negligible against the flow.
  return total;
}

async function runScenario(scenario: Scenario): Promise<void> {
  const topo = new Topology({ outputLinks: scenario.outputLinks });
  try {
    const config = trafgenConfig(topo.dir, scenario.flows);
    if (system === 'kernel') return await runKernelScenario(topo, config, scenario);
    // The relay host: mcrd and its worker pinned to CPU 0, the generator to CPU 1.
    // Worker i is pinned to the i-th CPU mcrd may use: CPU 0 for one worker, CPUs 0 and 1 for two.
    const relay = await RelayHost.start(
      topo,
      ['--workers', String(workerCount), ...(qdiscBypass ? [] : ['--no-qdisc-bypass'])],
      workerCount === 1 ? ['taskset', '-c', '0'] : [],
    );
    for (let f = 1; f <= scenario.flows; f++) {
      const outputs = scenario
        .outputs(f)
        .split(',')
        .map((o) => `${o}:${mode}`)
        .join(',');
      relay.addRule(`239.1.1.${f}`, 5000, outputs);
    }
    const workerPids = relay
      .mcrctlJson<{ workers: { pid: number }[] }>(['workers'])
      .workers.map((w) => w.pid);
    await trial(topo, config, scenario, 50_000, workerPids); // warm-up: JIT, ring pages

    const atMax = await trial(topo, config, scenario, 'max', workerPids);
    const { best, bound } = await searchLossless(topo, config, scenario, atMax, workerPids);
    const stats = relay.stats();
    const w = workerTotals(stats);
    const perWorker = stats.workers.map((x) => x.counters.forwarded).join(' / ');
    console.log(
      `\n${scenario.name}, ${size}-byte payload, ${seconds}-s trials, ${workerCount} worker(s), egress ${mode}${qdiscBypass ? '' : ' (through the qdisc)'}`,
    );
    report(best, bound, atMax, scenario);
    console.log(
      `  worker totals: frames ${w.framesSeen}, forwarded ${w.forwarded}, ring drops ${w.ringDrops}, egress errors ${w.egressErrors}; forwarded per worker ${perWorker}`,
    );
    const health = stats.workers.map((x) => x.health);
    console.log(
      `  worker memory and GC: ${health.map((h) => (h ? `RSS ${(h.rssBytes / 1048576).toFixed(0)} MB, ${h.gcCount} collections, longest pause ${h.gcMaxPauseMs.toFixed(2)} ms` : 'no report')).join('; ')}`,
    );
  } finally {
    topo.destroy();
  }
}

/**
 * The same scenario relayed by the kernel: smcroute installs (S,G)-independent routes from in0 to
 * the output links. The kernel cannot translate groups, so each link gets the input group; it
 * cannot send one group to five groups on one link, so that scenario has no kernel row.
 */
async function runKernelScenario(topo: Topology, config: string, scenario: Scenario): Promise<void> {
  if (scenario.outputLinks < scenario.fanout) {
    console.log(
      `\n${scenario.name}: kernel forwarding cannot do this (one group to several groups on a link)`,
    );
    return;
  }
  const conf = join(topo.dir, 'smcroute.conf');
  const routes = Array.from({ length: scenario.flows }, (_, f) => {
    const links = Array.from({ length: scenario.outputLinks }, (__, i) => `out${i}`).join(' ');
    return `mroute from in0 group 239.1.1.${f + 1} to ${links}`;
  });
  writeFileSync(conf, `${routes.join('\n')}\n`);
  const daemon = topo.start(topo.relay, 'taskset', [
    ...['-c', '0', 'smcrouted', '-n', '-f', conf, '-l', 'err'],
    ...[
      '-u',
      join(topo.dir, 'smcroute.sock'),
      '-P',
      join(topo.dir, 'smcroute.pid'),
      '-i',
      `mcrbench${process.pid}`,
    ],
  ]);
  await sleep(1500);
  if (daemon.child.exitCode !== null) throw new Error(`smcrouted exited: ${daemon.stderr}`);
  await trial(topo, config, scenario, 50_000, []);
  const atMax = await trial(topo, config, scenario, 'max', []);
  const best = await searchLossless(topo, config, scenario, atMax, []);
  console.log(
    `\n${scenario.name}, ${size}-byte payload, ${seconds}-s trials, Linux kernel forwarding (smcroute)`,
  );
  report(best.best, best.bound, atMax, scenario);
}

async function searchLossless(
  topo: Topology,
  config: string,
  scenario: Scenario,
  atMax: Trial,
  workerPids: number[],
): Promise<{ best: Trial | undefined; bound: string }> {
  let lo = 0;
  let hi = Math.min(MCRGEN_MAX_RATE, Math.ceil(atMax.offered / 10000) * 10000);
  let best: Trial | undefined;
  // Bisection over offered rates (10k pps resolution) for loss ≤ 0.1 %.
  const top = await trial(topo, config, scenario, hi, workerPids);
  if (top.loss <= 0.001) {
    lo = hi;
    best = top;
  }
  while (hi - lo > 10000) {
    const mid = Math.round((lo + hi) / 2 / 10000) * 10000;
    const t = await trial(topo, config, scenario, mid, workerPids);
    if (t.loss <= 0.001) {
      lo = mid;
      best = t;
    } else hi = mid;
  }
  return {
    best,
    bound: lo === Math.min(MCRGEN_MAX_RATE, hi) ? ' (generator-bound: the highest rate tried)' : '',
  };
}

function report(best: Trial | undefined, bound: string, atMax: Trial, scenario: Scenario): void {
  if (best) {
    console.log(
      `  max lossless input rate: ${fmt(best.offered)} pps${bound} (output ${fmt(best.outputPps)} pps, loss ${(best.loss * 100).toFixed(3)} %, ${cpuText(best)})`,
    );
  } else console.log('  no offered rate was lossless');
  console.log(
    `  at full offered load ${fmt(atMax.offered)} pps: output ${fmt(atMax.outputPps)} pps (${fmt(atMax.outputPps / scenario.fanout)} input pps forwarded), loss ${(atMax.loss * 100).toFixed(1)} %, ${cpuText(atMax)}`,
  );
}

/** Relay core load, and the worker processes' own share of it when there are workers. */
function cpuText(t: Trial): string {
  const core = `relay core busy ${(t.relayCpu * 100).toFixed(0)} %`;
  return system === 'mcr' ? `worker CPU ${(t.workerCpu * 100).toFixed(0)} %, ${core}` : core;
}

function fmt(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)}k` : n.toFixed(0);
}

for (const name of scenarioNames) {
  const scenario = SCENARIOS[name];
  if (!scenario) throw new Error(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  await runScenario(scenario);
}
