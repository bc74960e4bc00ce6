import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ip, RunningProcess, trackForInterrupt, untrack } from './topology.js';

let counter = 0;

/**
 * Test hosts of any shape: network namespaces joined by veth pairs and bridges, for the setups the
 * fixed sender → relay → receiver Topology cannot make (loops, two relays). Names are unique per
 * process and call; destroy() removes every namespace and process and is safe to call twice.
 * Each host gets a loopback that is up.
 */
export class Lab {
  readonly dir: string;
  private readonly tag: string;
  private readonly namespaces: string[] = [];
  private readonly processes = new Set<ChildProcess>();
  private destroyed = false;

  constructor() {
    this.tag = `mcrl${process.pid}x${counter++}`;
    this.dir = mkdtempSync(join(tmpdir(), `${this.tag}-`));
    trackForInterrupt(this);
  }

  /** Makes a host (namespace) and returns its full name. */
  host(name: string): string {
    const ns = `${this.tag}-${name}`;
    ip(['netns', 'add', ns]);
    this.namespaces.push(ns);
    ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /** A veth pair between two hosts, both ends up, each with its address (CIDR) if given. */
  link(a: string, aName: string, b: string, bName: string, aAddress?: string, bAddress?: string): void {
    ip(['-n', a, 'link', 'add', aName, 'type', 'veth', 'peer', 'name', bName, 'netns', b]);
    for (const [ns, name, address] of [
      [a, aName, aAddress],
      [b, bName, bAddress],
    ] as const) {
      if (address) ip(['-n', ns, 'addr', 'add', address, 'dev', name]);
      ip(['-n', ns, 'link', 'set', name, 'up']);
    }
  }

  /** A bridge in `ns` with the given ports (interfaces already in `ns`); no IGMP snooping, so it floods groups. */
  bridge(ns: string, name: string, ports: string[]): void {
    ip(['-n', ns, 'link', 'add', name, 'type', 'bridge', 'mcast_snooping', '0']);
    for (const port of ports) ip(['-n', ns, 'link', 'set', port, 'master', name]);
    ip(['-n', ns, 'link', 'set', name, 'up']);
  }

  socketPath(name: string): string {
    return join(this.dir, `${name}.sock`);
  }

  exec(ns: string, command: string, args: string[]): { code: number; stdout: string; stderr: string } {
    const r = spawnSync('ip', ['netns', 'exec', ns, command, ...args], { encoding: 'utf8', timeout: 60000 });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  start(ns: string, command: string, args: string[]): RunningProcess {
    const child = spawn('ip', ['netns', 'exec', ns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.processes.add(child);
    child.once('exit', () => this.processes.delete(child));
    return new RunningProcess(child);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    untrack(this);
    for (const child of this.processes) child.kill('SIGKILL');
    for (const ns of this.namespaces)
      if (existsSync(`/run/netns/${ns}`)) spawnSync('ip', ['netns', 'del', ns]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
