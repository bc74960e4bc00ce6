import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { Lab } from '../helpers/lab.js';
import { isAlive, waitFor } from '../helpers/processes.js';
import { BIN, sleep } from '../helpers/topology.js';

// An XDP program assembled in TypeScript, loaded with bpf(2) and attached to a veth in native
// mode through a bpf_link: it sees every frame the veth receives (exact count), `ip link` shows
// it while the link is open, and it is gone once the link closes — by close(), or because the
// process holding it was killed.

const COUNTER = new URL('../helpers/xdp-counter.js', import.meta.url).pathname;
const PORT = 5999;
const GROUP = '239.93.0.1';

/** The counter helper running in a namespace, spoken to one JSON line at a time. */
class XdpCounter {
  readonly child: ChildProcess;
  private readonly lines: string[] = [];
  private stderr = '';

  constructor(ns: string, ifname: string) {
    this.child = spawn(
      'ip',
      ['netns', 'exec', ns, process.execPath, COUNTER, ifname, String(PORT), 'native'],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    createInterface({ input: this.child.stdout! }).on('line', (line) => this.lines.push(line));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
  }

  /** The next JSON line it prints. */
  async next(): Promise<Record<string, unknown>> {
    const line = await waitFor(
      `a line from the XDP counter (stderr: ${this.stderr})`,
      () =>
        this.lines.shift() ??
        (this.child.exitCode === null ? undefined : `{"exited":${this.child.exitCode}}`),
      10000,
    );
    return JSON.parse(line) as Record<string, unknown>;
  }

  async ask(command: 'count' | 'detach'): Promise<Record<string, unknown>> {
    this.child.stdin!.write(`${command}\n`);
    return this.next();
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** `ip -d link show` of an interface: the program id when an XDP program is attached, else undefined. */
function attachedProgram(lab: Lab, ns: string, ifname: string): { id: number; mode: string } | undefined {
  const r = lab.exec(ns, 'ip', ['-d', 'link', 'show', 'dev', ifname]);
  assert.equal(r.code, 0, r.stderr);
  const id = /prog\/xdp id (\d+)/.exec(r.stdout);
  const mode = /\bmtu \d+ (xdp\w*)/.exec(r.stdout);
  return id ? { id: Number(id[1]), mode: mode?.[1] ?? '' } : undefined;
}

async function waitForCarrier(lab: Lab, ns: string, ifname: string): Promise<void> {
  await waitFor(`carrier on ${ifname}`, () =>
    lab.exec(ns, 'cat', [`/sys/class/net/${ifname}/operstate`]).stdout.trim() === 'up' ? true : undefined,
  );
}

test('XDP through a bpf_link on a veth: exact count, shown while attached, a second refused, gone after close and after SIGKILL', async () => {
  const lab = new Lab();
  const counters: XdpCounter[] = [];
  try {
    const sender = lab.host('snd');
    const receiver = lab.host('rcv');
    lab.link(sender, 'eth0', receiver, 'in0', '10.93.1.1/24', '10.93.1.2/24');
    await waitForCarrier(lab, sender, 'eth0');
    await waitForCarrier(lab, receiver, 'in0');

    const counter = new XdpCounter(receiver, 'in0');
    counters.push(counter);
    const attached = await counter.next();
    assert.equal(attached.attached, true, JSON.stringify(attached));
    assert.deepEqual(attachedProgram(lab, receiver, 'in0'), { id: attached.programId, mode: 'xdp' });

    const intruder = new XdpCounter(receiver, 'in0');
    counters.push(intruder);
    const refused = await intruder.next();
    assert.equal(refused.error, 'E_BPF_ATTACH', JSON.stringify(refused));
    assert.equal(refused.errnoName, 'EBUSY');
    assert.match(refused.message as string, /in0 already has an XDP program/);
    assert.equal(attachedProgram(lab, receiver, 'in0')?.id, attached.programId, 'the first program stays');

    const COUNT = 500;
    const sent = lab.exec(sender, BIN('mcrgen'), [
      ...['send', '--interface', 'eth0', '--group', GROUP, '--port', String(PORT)],
      ...['--rate', '5000', '--size', '64', '--count', String(COUNT)],
    ]);
    assert.equal(sent.code, 0, sent.stderr);
    // Frames arrive in the veth's NAPI poll shortly after the send returns; then nothing more.
    const deadline = Date.now() + 5000;
    while ((await counter.ask('count')).count !== COUNT && Date.now() < deadline) await sleep(50);
    await sleep(300);
    assert.deepEqual(await counter.ask('count'), { count: COUNT }, 'exactly the frames sent, no more');

    assert.deepEqual(await counter.ask('detach'), { detached: true });
    assert.equal(attachedProgram(lab, receiver, 'in0'), undefined, 'closing the link detached the program');

    const doomed = new XdpCounter(receiver, 'in0');
    counters.push(doomed);
    const second = await doomed.next();
    assert.equal(second.attached, true, 'the interface is free again: a new link attaches');
    assert.equal(attachedProgram(lab, receiver, 'in0')?.id, second.programId);
    process.kill(second.pid as number, 'SIGKILL');
    await waitFor('the killed process to exit', () => (isAlive(second.pid as number) ? undefined : true));
    await waitFor('the program to be detached', () =>
      attachedProgram(lab, receiver, 'in0') === undefined ? true : undefined,
    );
  } finally {
    for (const counter of counters) counter.kill();
    lab.destroy();
  }
});
