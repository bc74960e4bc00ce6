import { spawnSync } from 'node:child_process';
import type { RuleView, StatsView, WorkerCounters } from '../../src/protocol/control-api.js';
import { addWorkerCounters, emptyWorkerCounters } from '../../src/protocol/counters.js';
import { ControlClient } from '../../src/protocol/control-client.js';
import type { RecvReport } from '../../src/gen/report.js';
import { BIN, sleep, Topology, type RunningProcess } from './topology.js';

/** Where an mcrd runs: a namespace of some set of test hosts, and its control socket. */
export interface RelayPlace {
  ns: string;
  socketPath: string;
  hosts: { start(ns: string, command: string, args: string[]): RunningProcess };
}

/**
 * The mcrd each control socket path was last given to. A test that fails before it stops its
 * mcrd leaves it serving the topology's socket; the next test on that topology would then fail
 * too (E_ALREADY_RUNNING) and hide which test really failed, so start() ends it first.
 */
const running = new Map<string, RelayHost>();

/** mcrd running in a namespace (by default the relay namespace of a topology), and the tools that drive it. */
export class RelayHost {
  readonly socketPath: string;
  readonly daemon: RunningProcess;

  private constructor(socketPath: string, daemon: RunningProcess) {
    this.socketPath = socketPath;
    this.daemon = daemon;
  }

  /** `wrapper` runs mcrd through another command, e.g. ['taskset', '-c', '0'] to pin it. */
  static async start(
    topology: Topology | RelayPlace,
    extraArgs: string[] = [],
    wrapper: string[] = [],
  ): Promise<RelayHost> {
    const place: RelayPlace =
      topology instanceof Topology
        ? { ns: topology.relay, socketPath: topology.socketPath, hosts: topology }
        : topology;
    const command = [
      ...wrapper,
      BIN('mcrd'),
      '--socket',
      place.socketPath,
      '--log-level',
      'info',
      ...extraArgs,
    ];
    const left = running.get(place.socketPath);
    if (left && left.daemon.child.exitCode === null && left.daemon.child.signalCode === null) {
      left.daemon.child.kill('SIGKILL');
      await left.daemon.exited;
    }
    const daemon = place.hosts.start(place.ns, command[0]!, command.slice(1));
    const host = new RelayHost(place.socketPath, daemon);
    running.set(place.socketPath, host);
    const deadline = Date.now() + 15000;
    while (!(await host.answersPing())) {
      if (daemon.child.exitCode !== null) throw new Error(`mcrd exited at start:\n${daemon.stderr}`);
      if (Date.now() > deadline) throw new Error(`mcrd did not answer within 15 s:\n${daemon.stderr}`);
      await sleep(100);
    }
    // Its log reaches this process through a pipe read between awaits: have everything it logged
    // while starting, so tests can look at it (when it logs at info: the benchmark asks for less).
    const levelAt = command.lastIndexOf('--log-level');
    if (['trace', 'debug', 'info'].includes(command[levelAt + 1]!))
      await daemon.waitForStderr('mcrd ready', 5000);
    return host;
  }

  /** Runs the real mcrctl against this daemon (from the host namespace: the socket is a file). */
  mcrctl(args: string[]): { code: number; stdout: string; stderr: string } {
    const r = spawnSync(BIN('mcrctl'), ['--socket', this.socketPath, ...args], {
      encoding: 'utf8',
      timeout: 30000,
    });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  /** mcrctl that must succeed; returns its parsed --json output. */
  mcrctlJson<T>(args: string[]): T {
    const r = this.mcrctl(['--json', ...args]);
    if (r.code !== 0) throw new Error(`mcrctl ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
    return JSON.parse(r.stdout) as T;
  }

  /** Adds a rule (on in0, the topology's input link, unless `more` names another); throws with mcrctl's message if refused. */
  addRule(group: string, port: number, outputs: string, more: string[] = []): RuleView {
    const input = more.includes('-i') ? [] : ['-i', 'in0'];
    const args = ['add', ...input, '-g', group, '-p', String(port), '-o', outputs, ...more];
    return this.mcrctlJson<{ rule: RuleView }>(args).rule;
  }

  stats(): StatsView {
    return this.mcrctlJson<StatsView>(['stats']);
  }

  /**
   * Waits until `predicate` holds for mcrd's stats (traffic already sent may still be in a ring
   * for a moment), or `timeoutMs` passed; returns the last stats read. It polls on a connection
   * of its own: the same stats.get answer `mcrctl --json stats` prints, without starting Node
   * for every poll, which on a busy machine took the CPU the relay under test needed.
   */
  async statsAfter(predicate: (s: StatsView) => boolean, timeoutMs = 5000): Promise<StatsView> {
    const deadline = Date.now() + timeoutMs;
    const client = await ControlClient.open(this.socketPath);
    try {
      for (;;) {
        const s = await client.call('stats.get');
        if (predicate(s) || Date.now() > deadline) return s;
        await sleep(100);
      }
    } finally {
      client.close();
    }
  }

  /** Whether mcrd answers a ping yet (polled while it starts, in-process for the reason above). */
  private async answersPing(): Promise<boolean> {
    let client: ControlClient;
    try {
      client = await ControlClient.open(this.socketPath, 1000);
    } catch {
      return false; // no socket yet, or nobody accepting on it: mcrd is still starting
    }
    try {
      await client.call('ping', {}, 1000);
      return true;
    } catch {
      return false; // accepted but not answered in time: still starting
    } finally {
      client.close();
    }
  }

  /** SIGTERM, then wait for a clean exit. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.daemon.child.kill('SIGTERM');
    return this.daemon.exited;
  }
}

/** Worker counters summed over every worker (frames are spread over them by the kernel). */
export function workerTotals(stats: StatsView): WorkerCounters {
  return stats.workers.reduce((total, w) => addWorkerCounters(total, w.counters), emptyWorkerCounters());
}

/** Starts `mcrgen recv` in a namespace and waits until it has joined. */
export async function startReceiver(topology: Topology, ns: string, args: string[]): Promise<RunningProcess> {
  const recv = topology.start(ns, BIN('mcrgen'), ['recv', '--json', ...args]);
  await recv.waitForStderr('listening on');
  return recv;
}

/** A receiver that passes only if exactly `count` intact, unique packets arrive (30 s deadline). */
export function expectPackets(
  topology: Topology,
  iface: string,
  group: string,
  port: number,
  count: number,
  ns = topology.receiver,
): Promise<RunningProcess> {
  return startReceiver(topology, ns, [
    '--interface',
    iface,
    '--group',
    group,
    '--port',
    String(port),
    '--count',
    String(count),
    '--timeout',
    '30',
    '--expect',
    String(count),
  ]);
}

/**
 * A receiver that listens until stopAndReport() ends it, and then reports whatever arrived. It
 * has no duration of its own: on a loaded machine the tools a test starts meanwhile (each a Node
 * start-up) can outlast any fixed one, and the traffic would come after it stopped listening.
 */
export function listen(
  topology: Topology,
  iface: string,
  group: string,
  port: number,
  ns = topology.receiver,
): Promise<RunningProcess> {
  return startReceiver(topology, ns, [
    '--interface',
    iface,
    '--group',
    group,
    '--port',
    String(port),
    '--duration',
    String(LISTEN_LIMIT_SECONDS),
  ]);
}

/** A listener nobody stops (a test that failed first) ends by itself after this. */
const LISTEN_LIMIT_SECONDS = 120;
/** From the last send to a listener's report: what the relay still holds arrives well within it. */
const REPORT_SETTLE_MS = 1000;

/** Stops a receiver started by listen() once what was sent before this call had time to arrive. */
export async function stopAndReport(
  recv: RunningProcess,
  settleMs = REPORT_SETTLE_MS,
): Promise<{ code: number | null; report: RecvReport }> {
  await sleep(settleMs);
  recv.child.kill('SIGINT'); // mcrgen recv ends with its report
  return receiverReport(recv);
}

export async function receiverReport(
  recv: RunningProcess,
): Promise<{ code: number | null; report: RecvReport }> {
  const { code } = await recv.exited;
  try {
    return { code, report: JSON.parse(recv.stdout) as RecvReport };
  } catch {
    throw new Error(`mcrgen recv printed no report (exit ${code}):\n${recv.stdout}\n${recv.stderr}`);
  }
}

export interface Flow {
  rate: number;
  size: number;
  count: number;
}

/** Runs `mcrgen send` from the sender's eth0 to completion. */
export function send(topology: Topology, group: string, port: number, flow: Flow): void {
  const args = [
    '--group',
    group,
    '--port',
    String(port),
    '--rate',
    String(flow.rate),
    '--size',
    String(flow.size),
    '--count',
    String(flow.count),
  ];
  const r = topology.exec(topology.sender, BIN('mcrgen'), ['send', '--interface', 'eth0', '--json', ...args]);
  if (r.code !== 0) throw new Error(`mcrgen send exited ${r.code}: ${r.stderr}${r.stdout}`);
}
