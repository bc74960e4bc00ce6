// A relay host for the XDP path's end-to-end tests, built from namespaces:
//   snd (eth0) ── in0 [relay] out0…out4 ── eth0 (rcv0…rcv4)
// The relay runs test/helpers/xdp-relay.js (XdpInput on in0). Addresses are 10.<net>.x.y inside
// the namespaces only; destroy() removes everything, also after a failure.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Lab } from './lab.js';
import { waitFor } from './processes.js';
import { BIN, sleep, type RunningProcess } from './topology.js';

const RELAY_HELPER = new URL('./xdp-relay.js', import.meta.url).pathname;
/** A receiver nobody asks for its report (a test that failed first) ends by itself after this. */
const RECEIVE_LIMIT_SECONDS = 120;
/** From the last send to a receiver's report: in-flight copies arrive well within it. */
const REPORT_SETTLE_MS = 500;
export const SEND_FRAMES = new URL('./send-frames.js', import.meta.url).pathname;
export const INJECT_FRAMES = new URL('./inject-frames.js', import.meta.url).pathname;
export const OUTPUT_LINKS = 5;

export interface ReceiveReport {
  datagrams: number;
  good: number;
  unique: number;
  lost: number;
  duplicates: number;
  corrupted: number;
}

/** test/helpers/xdp-relay.js running in a namespace (XdpInput on one of its interfaces). */
export class XdpRelayProcess {
  private readonly child: ChildProcess;
  private readonly lines: string[] = [];
  private stderr = '';

  constructor(ns: string, ifname: string) {
    this.child = spawn('ip', ['netns', 'exec', ns, process.execPath, RELAY_HELPER, ifname, 'native'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => this.lines.push(line));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
  }

  /** Its next line: the first says {"opened":true,…} or {"error":…}. */
  async next(): Promise<Record<string, unknown>> {
    const child = this.child;
    const line = await waitFor(
      `a line from the XDP relay (stderr: ${this.stderr})`,
      () => this.lines.shift() ?? (child.exitCode === null ? undefined : `{"exited":${child.exitCode}}`),
      10000,
    );
    return JSON.parse(line) as Record<string, unknown>;
  }

  /** Sends one command and returns its answer; an error answer fails. */
  async ask(command: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.child.stdin!.write(`${JSON.stringify(command)}\n`);
    const answer = await this.next();
    assert.equal(answer.error, undefined, JSON.stringify(answer));
    return answer;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

export class XdpLab {
  readonly lab = new Lab();
  readonly sender: string;
  readonly relay: string;
  readonly receivers: string[] = [];
  private helper: XdpRelayProcess | undefined;

  constructor(readonly net: number) {
    this.sender = this.lab.host('snd');
    this.relay = this.lab.host('relay');
    this.lab.link(this.sender, 'eth0', this.relay, 'in0', `10.${net}.1.1/24`, `10.${net}.1.2/24`);
    for (let i = 0; i < OUTPUT_LINKS; i++) {
      const rcv = this.lab.host(`rcv${i}`);
      this.receivers.push(rcv);
      this.lab.link(
        this.relay,
        `out${i}`,
        rcv,
        'eth0',
        `10.${net}.${10 + i}.1/24`,
        `10.${net}.${10 + i}.2/24`,
      );
      // A frame redirected into a veth is delivered only if the peer has NAPI: GRO gives it one.
      this.run(rcv, 'ethtool', ['-K', 'eth0', 'gro', 'on']);
    }
    // Full UDP checksums from the sender (no offload): a redirected frame carries no "checksum
    // still to be completed" mark, so what the sender leaves partial would arrive wrong.
    this.run(this.sender, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
  }

  run(ns: string, command: string, args: string[]): string {
    const r = this.lab.exec(ns, command, args);
    assert.equal(r.code, 0, `${command} ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  async up(): Promise<void> {
    const ends: [string, string][] = [
      [this.sender, 'eth0'],
      [this.relay, 'in0'],
      ...this.receivers.flatMap((r, i): [string, string][] => [
        [r, 'eth0'],
        [this.relay, `out${i}`],
      ]),
    ];
    for (const [ns, ifname] of ends) {
      await waitFor(`carrier on ${ifname}`, () =>
        this.lab.exec(ns, 'cat', [`/sys/class/net/${ifname}/operstate`]).stdout.trim() === 'up'
          ? true
          : undefined,
      );
    }
  }

  /** Starts XdpInput on the relay's in0; resolves with its first line. */
  async openRelay(): Promise<Record<string, unknown>> {
    this.helper = new XdpRelayProcess(this.relay, 'in0');
    return this.helper.next();
  }

  /** Sends one command to the relay helper and returns its answer; an error answer fails. */
  ask(command: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.helper!.ask(command);
  }

  /**
   * mcrgen recv on a host's interface until report() is asked for; resolves once it listens.
   * It has no time of its own to run out of: on a loaded machine the tools a test starts
   * meanwhile (each a Node start-up) can take longer than any fixed duration would allow.
   */
  async receive(ns: string, ifname: string, group: string, port: number): Promise<RunningProcess> {
    const receiver = this.lab.start(ns, BIN('mcrgen'), [
      ...['recv', '--interface', ifname, '--group', group, '--port', String(port)],
      ...['--duration', String(RECEIVE_LIMIT_SECONDS), '--json'],
    ]);
    await receiver.waitForStderr('listening on');
    return receiver;
  }

  /**
   * The report of a receiver started with receive(): what arrived until everything sent before
   * this call had time to cross the relay (`settleMs`), when it is stopped (SIGINT ends
   * mcrgen recv with its report).
   */
  async report(receiver: RunningProcess, settleMs = REPORT_SETTLE_MS): Promise<ReceiveReport> {
    await sleep(settleMs);
    receiver.child.kill('SIGINT');
    const { code } = await receiver.exited;
    assert.ok(code === 0 || code === 1, `mcrgen recv exited ${code}: ${receiver.stderr}`);
    const report = JSON.parse(receiver.stdout) as { totals: ReceiveReport };
    return report.totals;
  }

  /** mcrgen send from the sender: `count` probes of `size` bytes at `rate`. */
  send(
    group: string,
    port: number,
    count: number,
    options: { rate?: number | 'max'; size?: number; ttl?: number } = {},
  ): void {
    this.run(this.sender, BIN('mcrgen'), [
      ...['send', '--interface', 'eth0', '--group', group, '--port', String(port)],
      ...['--rate', String(options.rate ?? 5000), '--size', String(options.size ?? 64)],
      ...['--count', String(count), '--ttl', String(options.ttl ?? 16)],
    ]);
  }

  destroy(): void {
    this.helper?.kill();
    this.lab.destroy();
  }
}
