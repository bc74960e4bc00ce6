// The relays under test, each started inside the relay namespace with its process on the relay
// core: mcr (raw or socket egress on the worker path, or the XDP path), Linux kernel multicast
// forwarding with routes from smcroute, and socat (one process per output, as an operator would
// chain it).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkerProcessHealth } from '../src/protocol/control-api.js';
import { ControlClient } from '../src/protocol/control-client.js';
import { XDP_REFUSED } from '../src/supervisor/xdp-counters.js';
import { RelayHost } from '../test/helpers/relay-host.js';
import { sleep, type RunningProcess, type Topology } from '../test/helpers/topology.js';
import { RELAY_CPU } from './placement.js';
import { INPUT_PORT, inputGroup, OUTPUT_PORT, type Scenario } from './scenarios.js';

export const SYSTEMS = ['mcr-raw', 'mcr-socket', 'mcr-xdp', 'kernel', 'socat'] as const;
export type SystemName = (typeof SYSTEMS)[number];

export const SYSTEM_LABELS: Record<SystemName, string> = {
  'mcr-raw': 'mcr, raw egress',
  'mcr-socket': 'mcr, socket egress',
  'mcr-xdp': 'mcr, XDP',
  kernel: 'kernel (smcroute)',
  socat: 'socat',
};

export interface RelayUnderTest {
  /** Processes the relay runs in (mcr workers, socat); the kernel has none. */
  readonly pids: number[];
  /** Its control processes on the relay core (mcrd, smcrouted); socat has none. */
  readonly controlPids: number[];
  /** mcr's workers and outputs, from one stats request; null for the others. */
  workerStats(): Promise<WorkerSnapshot | null>;
  stop(): Promise<void>;
}

export interface WorkerSnapshot {
  /** Memory and garbage collection, per worker. */
  health: WorkerProcessHealth[];
  /** Packet-socket ring drops summed over workers. */
  ringDrops: number;
  /** XDP copies the output links' drivers did not send (xdp_refused), summed over rules and outputs. */
  xdpRefused: number;
}

export interface SystemSettings {
  workers: number;
  qdiscBypass: boolean;
  mcrdArgs: string[];
}

/** Why `system` cannot run `scenario`, or undefined when it can. */
export function unsupportedReason(system: SystemName, scenario: Scenario): string | undefined {
  if (system === 'kernel' && scenario.fanout > scenario.outputLinks)
    return 'the kernel forwards a group to interfaces, not to other groups on one link';
  if (system === 'socat' && scenario.streams * scenario.fanout > 5)
    return `socat needs a process per output (${scenario.streams * scenario.fanout} here)`;
  return undefined;
}

export async function startRelay(
  system: SystemName,
  topo: Topology,
  scenario: Scenario,
  settings: SystemSettings,
): Promise<RelayUnderTest> {
  prepareEndHosts(topo, scenario);
  switch (system) {
    case 'mcr-raw':
    case 'mcr-socket':
      return startMcr(topo, scenario, settings, system === 'mcr-raw' ? 'raw' : 'socket');
    case 'mcr-xdp':
      return startMcr(topo, scenario, settings, 'xdp');
    case 'kernel':
      return startKernel(topo, scenario);
    case 'socat':
      return startSocat(topo, scenario);
  }
}

async function startMcr(
  topo: Topology,
  scenario: Scenario,
  settings: SystemSettings,
  mode: 'raw' | 'socket' | 'xdp',
): Promise<RelayUnderTest> {
  const args = ['--workers', String(settings.workers), '--log-level', 'warn'];
  if (!settings.qdiscBypass) args.push('--no-qdisc-bypass');
  args.push(...settings.mcrdArgs);
  // One worker shares the relay core with mcrd; more workers take the next CPUs mcrd may use.
  const relay = await RelayHost.start(
    topo,
    args,
    settings.workers === 1 ? ['taskset', '-c', String(RELAY_CPU)] : [],
  );
  const client = await ControlClient.open(topo.socketPath);
  try {
    for (let s = 1; s <= scenario.streams; s++) {
      const outputs = Array.from({ length: scenario.fanout }, (_, k) => {
        const o = scenario.output(s, k);
        return { group: o.group, port: OUTPUT_PORT, interface: `out${o.link}`, mode };
      });
      await client.call('rules.add', {
        inputInterface: 'in0',
        inputGroup: inputGroup(s),
        inputPort: INPUT_PORT,
        outputs,
      });
    }
    const { workers } = await client.call('workers.list', {});
    const pids = workers.map((w) => w.pid).filter((p): p is number => p !== null);
    return {
      pids,
      controlPids: [relay.daemon.child.pid!],
      workerStats: async () => {
        const { workers: stats, rules } = await client.call('stats.get', {});
        return {
          health: stats.map((w) => w.health).filter(isHealth),
          ringDrops: stats.reduce((n, w) => n + w.counters.ringDrops, 0),
          xdpRefused: rules
            .flatMap((r) => r.counters.outputs)
            .reduce((n, o) => n + (o.errors[XDP_REFUSED] ?? 0), 0),
        };
      },
      stop: async () => {
        client.close();
        await relay.stop();
      },
    };
  } catch (err) {
    client.close();
    await relay.stop();
    throw err;
  }
}

/**
 * The sender and the receiver host as every system meets them, set up as hosts with NICs are:
 * the receiver's ends run NAPI with GRO, as a NIC's driver always does (and a veth must, to take
 * a frame redirected into it at all), and the sender's frames carry complete UDP checksums, as a
 * frame from a wire does (a local sender on a veth leaves them partial unless tx offload is off).
 * The same for every system, so the receiver's work, which veth runs on the relay core, costs
 * each system's copies the same way.
 */
function prepareEndHosts(topo: Topology, scenario: Scenario): void {
  const run = (ns: string, args: string[]): void => {
    const r = topo.exec(ns, 'ethtool', args);
    if (r.code !== 0) throw new Error(`ethtool ${args.join(' ')} in ${ns}: ${r.stderr}`);
  };
  for (let i = 0; i < scenario.outputLinks; i++) run(topo.receiver, ['-K', `eth${i}`, 'gro', 'on']);
  run(topo.sender, ['-K', 'eth0', 'tx', 'off']);
}

function isHealth(h: WorkerProcessHealth | null | undefined): h is WorkerProcessHealth {
  return h !== null && h !== undefined;
}

/**
 * Kernel forwarding: smcrouted installs a route per stream from in0 to the output links. The
 * kernel cannot translate groups, so each output carries the input group (the receiver counts
 * packets at its interfaces, whatever their group).
 */
async function startKernel(topo: Topology, scenario: Scenario): Promise<RelayUnderTest> {
  const conf = join(topo.dir, 'smcroute.conf');
  const routes = Array.from({ length: scenario.streams }, (_, i) => {
    const links = [
      ...new Set(Array.from({ length: scenario.fanout }, (__, k) => scenario.output(i + 1, k).link)),
    ];
    return `mroute from in0 group ${inputGroup(i + 1)} to ${links.map((l) => `out${l}`).join(' ')}`;
  });
  writeFileSync(conf, `${routes.join('\n')}\n`);
  const daemon = topo.start(topo.relay, 'taskset', [
    ...['-c', String(RELAY_CPU), 'smcrouted', '-n', '-f', conf, '-l', 'err'],
    ...[
      '-u',
      join(topo.dir, 'smcroute.sock'),
      '-P',
      join(topo.dir, 'smcroute.pid'),
      '-i',
      `mcrbench${process.pid}`,
    ],
  ]);
  await waitForInterfaces(topo, scenario.outputLinks + 1, daemon);
  return {
    pids: [],
    controlPids: [daemon.child.pid!],
    workerStats: () => Promise.resolve(null),
    stop: () => stopProcess(daemon),
  };
}

/**
 * Waits until smcrouted has made the interfaces multicast-routing interfaces (VIFs). Its (*,G)
 * routes become kernel routes on the first packet of a group, which the warm-up trial sends.
 */
async function waitForInterfaces(topo: Topology, count: number, daemon: RunningProcess): Promise<void> {
  const deadline = Date.now() + 10000;
  for (;;) {
    const vifs = topo.exec(topo.relay, 'cat', ['/proc/net/ip_mr_vif']).stdout.trim().split('\n').length - 1;
    if (vifs >= count) return;
    if (daemon.child.exitCode !== null) throw new Error(`smcrouted exited: ${daemon.stderr}`);
    if (Date.now() > deadline) throw new Error(`smcrouted set up ${vifs} of ${count} interfaces in 10 s`);
    await sleep(100);
  }
}

/**
 * socat: one process per output, each joining the input group on in0 and sending every datagram
 * to its output group through its output link's address (socat cannot fan out).
 */
async function startSocat(topo: Topology, scenario: Scenario): Promise<RelayUnderTest> {
  const processes: RunningProcess[] = [];
  for (let s = 1; s <= scenario.streams; s++) {
    for (let k = 0; k < scenario.fanout; k++) {
      const o = scenario.output(s, k);
      const linkAddress = `10.${topo.net}.${10 + o.link}.1`;
      processes.push(
        topo.start(topo.relay, 'taskset', [
          ...['-c', String(RELAY_CPU), 'socat', '-u', '-b', '65536'],
          `UDP4-RECV:${INPUT_PORT},bind=${inputGroup(s)},reuseaddr,ip-add-membership=${inputGroup(s)}:in0`,
          `UDP4-SENDTO:${o.group}:${OUTPUT_PORT},ip-multicast-if=${linkAddress},ip-multicast-loop=0,ip-multicast-ttl=16`,
        ]),
      );
    }
  }
  await sleep(500);
  for (const p of processes) if (p.child.exitCode !== null) throw new Error(`socat exited: ${p.stderr}`);
  return {
    // `ip netns exec` and taskset exec the command, so the child's pid is socat's own.
    pids: processes.map((p) => p.child.pid!),
    controlPids: [],
    workerStats: () => Promise.resolve(null),
    stop: async () => {
      for (const p of processes) await stopProcess(p);
    },
  };
}

async function stopProcess(p: RunningProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  await p.exited;
}
