import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (dist/test/helpers → ../../..). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BIN = (name: 'mcrd' | 'mcrctl' | 'mcrgen'): string => join(ROOT, 'bin', name);

let counter = 0;

/** Test hosts not yet destroyed: removed if the process is interrupted (Ctrl-C, kill). */
const live = new Set<{ destroy(): void }>();
let handlersInstalled = false;

/** Has `hosts` destroyed if the test process is interrupted; untrack() once it is destroyed. */
export function trackForInterrupt(hosts: { destroy(): void }): void {
  live.add(hosts);
  destroyOnInterrupt();
}

export function untrack(hosts: { destroy(): void }): void {
  live.delete(hosts);
}

function destroyOnInterrupt(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const topology of live) topology.destroy();
      process.exit(130);
    });
  }
}

export interface TopologyOptions {
  /** Output links from the relay to the receiver host (out0..outN-1 ↔ eth0..ethN-1). */
  outputLinks?: number;
  /** Second octet of the 10.x addresses used inside the namespaces. */
  net?: number;
}

/**
 * Three hosts made of network namespaces: a sender, the relay and a receiver.
 *   sender eth0 10.X.1.1/24  ──  relay in0 10.X.1.2/24
 *   relay out<i> 10.X.(10+i).1/24  ──  receiver eth<i> 10.X.(10+i).2/24
 * Names are unique per process and call, so tests can run side by side; destroy() removes
 * everything and is safe to call twice.
 */
export class Topology {
  readonly sender: string;
  readonly relay: string;
  readonly receiver: string;
  readonly net: number;
  readonly outputLinks: number;
  readonly dir: string;
  readonly socketPath: string;
  private readonly processes = new Set<ChildProcess>();
  private destroyed = false;

  constructor(options: TopologyOptions = {}) {
    const tag = `mcrt${process.pid}x${counter++}`;
    this.sender = `${tag}-snd`;
    this.relay = `${tag}-rly`;
    this.receiver = `${tag}-rcv`;
    this.net = options.net ?? 90;
    this.outputLinks = options.outputLinks ?? 1;
    this.dir = mkdtempSync(join(tmpdir(), `${tag}-`));
    this.socketPath = join(this.dir, 'mcrd.sock');
    live.add(this);
    destroyOnInterrupt();
    try {
      this.build();
      this.waitForCarrier();
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  senderAddress(): string {
    return `10.${this.net}.1.1`;
  }

  receiverAddress(link: number): string {
    return `10.${this.net}.${10 + link}.2`;
  }

  private build(): void {
    const n = this.net;
    for (const ns of [this.sender, this.relay, this.receiver]) {
      ip(['netns', 'add', ns]);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    ip([
      '-n',
      this.sender,
      'link',
      'add',
      'eth0',
      'type',
      'veth',
      'peer',
      'name',
      'in0',
      'netns',
      this.relay,
    ]);
    ip(['-n', this.sender, 'addr', 'add', `10.${n}.1.1/24`, 'dev', 'eth0']);
    ip(['-n', this.relay, 'addr', 'add', `10.${n}.1.2/24`, 'dev', 'in0']);
    ip(['-n', this.sender, 'link', 'set', 'eth0', 'up']);
    ip(['-n', this.relay, 'link', 'set', 'in0', 'up']);
    for (let i = 0; i < this.outputLinks; i++) {
      ip([
        '-n',
        this.relay,
        'link',
        'add',
        `out${i}`,
        'type',
        'veth',
        'peer',
        'name',
        `eth${i}`,
        'netns',
        this.receiver,
      ]);
      ip(['-n', this.relay, 'addr', 'add', `10.${n}.${10 + i}.1/24`, 'dev', `out${i}`]);
      ip(['-n', this.receiver, 'addr', 'add', `10.${n}.${10 + i}.2/24`, 'dev', `eth${i}`]);
      ip(['-n', this.relay, 'link', 'set', `out${i}`, 'up']);
      ip(['-n', this.receiver, 'link', 'set', `eth${i}`, 'up']);
    }
  }

  /**
   * Waits until every link has its carrier: a new veth link is up at once but RUNNING only a
   * moment later, and a relay started meanwhile would rightly show its input as down.
   */
  private waitForCarrier(): void {
    const links: [string, string][] = [
      [this.sender, 'eth0'],
      [this.relay, 'in0'],
      ...Array.from({ length: this.outputLinks }, (_, i): [string, string][] => [
        [this.relay, `out${i}`],
        [this.receiver, `eth${i}`],
      ]).flat(),
    ];
    const deadline = Date.now() + 5000;
    for (const [ns, link] of links) {
      while (this.exec(ns, 'cat', [`/sys/class/net/${link}/operstate`]).stdout.trim() !== 'up') {
        if (Date.now() > deadline) throw new Error(`${link} in ${ns} has no carrier after 5 s`);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      }
    }
  }

  /** Runs a command inside a namespace and waits for it (for short commands). */
  exec(ns: string, command: string, args: string[]): { code: number; stdout: string; stderr: string } {
    const r = spawnSync('ip', ['netns', 'exec', ns, command, ...args], { encoding: 'utf8', timeout: 60000 });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  /** Starts a long-running command inside a namespace; it is killed by destroy() if still running. */
  start(ns: string, command: string, args: string[]): RunningProcess {
    const child = spawn('ip', ['netns', 'exec', ns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.processes.add(child);
    const running = new RunningProcess(child);
    child.once('exit', () => this.processes.delete(child));
    return running;
  }

  sysctl(ns: string, key: string, value: string): void {
    const r = this.exec(ns, 'sysctl', ['-qw', `${key}=${value}`]);
    if (r.code !== 0) throw new Error(`sysctl ${key}=${value} in ${ns}: ${r.stderr}`);
  }

  /** Interface counters as the kernel sees them (for exact counts on the wire). */
  linkStats(ns: string, ifname: string): { rxPackets: number; txPackets: number } {
    const r = this.exec(ns, 'cat', [
      `/sys/class/net/${ifname}/statistics/rx_packets`,
      `/sys/class/net/${ifname}/statistics/tx_packets`,
    ]);
    const [rx, tx] = r.stdout.trim().split('\n').map(Number);
    return { rxPackets: rx ?? 0, txPackets: tx ?? 0 };
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const child of this.processes) child.kill('SIGKILL');
    for (const ns of [this.sender, this.relay, this.receiver]) {
      if (existsSync(`/run/netns/${ns}`)) spawnSync('ip', ['netns', 'del', ns]);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A child process with its output collected and a promise of its exit. */
export class RunningProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(child: ChildProcess) {
    this.child = child;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Resolves once `text` has appeared on stderr (e.g. a readiness line). */
  async waitForStderr(text: string, timeoutMs = 10000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.stderr.includes(text)) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for "${text}"; stderr so far:\n${this.stderr}`);
      if (this.child.exitCode !== null)
        throw new Error(`process exited before "${text}"; stderr:\n${this.stderr}`);
      await sleep(20);
    }
  }
}

export function ip(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr.trim()}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function readText(path: string): string {
  return readFileSync(path, 'utf8');
}
