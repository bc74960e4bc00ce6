import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import type { RuleCounters, RuleView, StatsView } from '../../src/protocol/control-api.js';
import { waitFor } from '../helpers/processes.js';
import { RelayHost, workerTotals } from '../helpers/relay-host.js';
import { sleep } from '../helpers/topology.js';
import { XdpLab } from '../helpers/xdp-lab.js';

// The XDP path inside mcrd, through the real binaries: mcrctl add … :xdp, mcrgen send/recv,
// exact counts at the receivers and in mcrctl stats; what XDP passes on still reaches the
// workers; a killed mcrd leaves nothing attached; another program on the input is left alone.

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (namespaces, CAP_BPF, CAP_NET_ADMIN)';
const NET = 95;
const COUNT = 600;
const SIZE = 100;
const COUNTER = new URL('../helpers/xdp-counter.js', import.meta.url).pathname;

/** A veth's XDP transmit counter (`ethtool -S`), summed over its queues. */
function xdpTransmitCount(ethtool: string, name: string): number {
  return [...ethtool.matchAll(new RegExp(`tx_queue_\\d+_${name}: (\\d+)`, 'g'))].reduce(
    (n, m) => n + Number(m[1]),
    0,
  );
}

describe('the XDP path in mcrd', { skip }, () => {
  let x: XdpLab;
  let relay: RelayHost;
  const socketPath = (): string => x.lab.socketPath('mcrd');
  const start = (args: string[] = []): Promise<RelayHost> =>
    RelayHost.start({ ns: x.relay, socketPath: socketPath(), hosts: x.lab }, args);
  const group = (a: number, b: number): string => `239.${NET}.${a}.${b}`;
  const find = (id: string): RuleView =>
    relay.mcrctlJson<{ rules: RuleView[] }>(['list']).rules.find((r) => r.id === id)!;
  const xdpShown = (): string => x.run(x.relay, 'ip', ['-d', 'link', 'show', 'dev', 'in0']);

  before(async () => {
    x = new XdpLab(NET);
    await x.up();
    relay = await start();
  });

  after(() => x?.destroy());

  test('a forced xdp rule forwards every packet once; stats and list show the path', async () => {
    const rule = relay.addRule(
      group(0, 1),
      5000,
      `${group(1, 1)}:6000:out0:xdp,${group(1, 2)}:6001:out1:xdp`,
    );
    assert.equal(rule.path, 'xdp', JSON.stringify(rule));
    assert.deepEqual(
      rule.outputs.map((o) => o.path),
      ['xdp', 'xdp'],
    );
    assert.match(xdpShown(), /prog\/xdp id \d+/);
    assert.match(relay.mcrctl(['list']).stdout, /-> 239\.95\.1\.1:6000 out0 +xdp +≤16/);
    assert.match(
      relay.mcrctl(['stats']).stdout,
      /in0 239\.95\.0\.1:5000 \(xdp\)[\s\S]*-> 239\.95\.1\.1:6000 out0 \(xdp\)/,
    );
    const receivers = await Promise.all([
      x.receive(x.receivers[0]!, 'eth0', group(1, 1), 6000),
      x.receive(x.receivers[1]!, 'eth0', group(1, 2), 6001),
    ]);
    x.send(group(0, 1), 5000, COUNT, { size: SIZE });
    for (const receiver of receivers) {
      const report = await x.report(receiver);
      assert.deepEqual([report.unique, report.duplicates, report.corrupted], [COUNT, 0, 0]);
    }
    const stats = await relay.statsAfter((s) => s.rules[0]!.counters.outputs[1]!.packets === COUNT, 3000);
    const { counters } = stats.rules.find((r) => r.id === rule.id)!;
    assert.equal(counters.packetsIn, COUNT);
    assert.equal(counters.bytesIn, COUNT * SIZE);
    for (const output of counters.outputs) {
      assert.deepEqual(output, {
        packets: COUNT,
        bytes: COUNT * SIZE,
        raw: 0,
        xdp: COUNT,
        errors: {},
        ttlExpired: 0,
      });
    }
    assert.ok(counters.lastPacketAt !== null);
    // XDP-path frames never reach a worker.
    assert.equal(workerTotals(stats).forwarded, 0);
    // Where a copy the driver refused would show: the veth's own XDP transmit counters (summed
    // over its queues) agree with the output's count, none refused.
    for (const link of ['out0', 'out1']) {
      const ethtool = x.run(x.relay, 'ethtool', ['-S', link]);
      const sum = (name: string): number => xdpTransmitCount(ethtool, name);
      assert.deepEqual([sum('xdp_xmit'), sum('xdp_xmit_errors')], [COUNT, 0], ethtool);
    }
    // A trace cannot see what the driver relays, and says so instead of showing nothing silently.
    const trace = relay.mcrctl(['trace', '--rule', rule.id, '--count', '1', '--timeout', '0.5']);
    assert.equal(trace.code, 0, trace.stderr);
    assert.match(trace.stderr, new RegExp(`note: rule ${rule.id} runs on the XDP path: .*not traced`));
  });

  test("copies the output's driver refuses are its xdp_refused errors, not sent copies", async () => {
    const rule = relay.addRule(
      group(0, 7),
      5000,
      `${group(7, 1)}:6000:out0:xdp,${group(7, 2)}:6000:out1:xdp`,
    );
    // A veth refuses a redirected frame longer than its peer's MTU allows (veth_xdp_xmit): with
    // the peer at MTU 100, out1's driver refuses every 142-byte copy after the egress program ran.
    x.run(x.receivers[1]!, 'ip', ['link', 'set', 'dev', 'eth0', 'mtu', '100']);
    try {
      const receiver = await x.receive(x.receivers[0]!, 'eth0', group(7, 1), 6000);
      x.send(group(0, 7), 5000, COUNT, { size: SIZE });
      const report = await x.report(receiver);
      assert.deepEqual([report.unique, report.duplicates], [COUNT, 0]);
      const of = (s: StatsView): RuleCounters => s.rules.find((r) => r.id === rule.id)!.counters;
      const stats = await relay.statsAfter((s) => of(s).outputs[1]!.errors.xdp_refused === COUNT, 3000);
      const counters = of(stats);
      assert.equal(counters.packetsIn, COUNT);
      assert.deepEqual(counters.outputs, [
        { packets: COUNT, bytes: COUNT * SIZE, raw: 0, xdp: COUNT, errors: {}, ttlExpired: 0 },
        { packets: 0, bytes: 0, raw: 0, xdp: 0, errors: { xdp_refused: COUNT }, ttlExpired: 0 },
      ]);
      assert.match(relay.mcrctl(['stats']).stdout, /xdp_refused/);
      // The driver's own count agrees.
      assert.equal(xdpTransmitCount(x.run(x.relay, 'ethtool', ['-S', 'out1']), 'xdp_xmit_errors'), COUNT);
    } finally {
      x.run(x.receivers[1]!, 'ip', ['link', 'set', 'dev', 'eth0', 'mtu', '1500']);
      relay.mcrctl(['remove', '--rule-id', rule.id]);
    }
  });

  test('what XDP does not match still reaches the workers and their counters', async () => {
    const before = workerTotals(relay.stats());
    x.send(group(9, 9), 5000, 200, { size: SIZE });
    const stats = await relay.statsAfter((s) => workerTotals(s).noRule - before.noRule >= 200, 3000);
    assert.equal(workerTotals(stats).noRule - before.noRule, 200);
    assert.equal(workerTotals(stats).forwarded, 0);
  });

  test('another rule added and removed, and updated by a config load, while the first forwards: no loss', async () => {
    const receiver = await x.receive(x.receivers[0]!, 'eth0', group(1, 1), 6000);
    const sender = x.lab.start(x.sender, process.execPath, [
      new URL('../../src/cli/mcrgen.js', import.meta.url).pathname,
      ...['send', '--interface', 'eth0', '--group', group(0, 1), '--port', '5000'],
      ...['--rate', '500', '--size', String(SIZE), '--count', '2000', '--ttl', '16'],
    ]);
    const file = `${x.lab.dir}/other.json5`;
    const load = (outputs: object[]): void => {
      writeFileSync(
        file,
        JSON.stringify({ rules: [{ input: { interface: 'in0', group: group(0, 2), port: 5000 }, outputs }] }),
      );
      relay.mcrctlJson(['config', 'load', file]);
    };
    for (let i = 0; i < 3; i++) {
      const other = relay.addRule(group(0, 2), 5000, `${group(2, 1)}:6000:out2:xdp`);
      await sleep(200);
      relay.mcrctlJson(['remove', '-r', other.id]);
      await sleep(200);
      load([{ group: group(2, 1), port: 6000, interface: 'out2', mode: 'xdp' }]);
      await sleep(200);
      load([
        { group: group(2, 1), port: 6000, interface: 'out2', mode: 'xdp' },
        { group: group(2, 2), port: 6000, interface: 'out3', mode: 'xdp' },
      ]);
      await sleep(200);
      relay.mcrctlJson(['remove', '-r', other.id]);
    }
    assert.equal((await sender.exited).code, 0, sender.stderr);
    const report = await x.report(receiver);
    assert.deepEqual([report.unique, report.lost, report.duplicates], [2000, 0, 0]);
  });

  test('an output link down and up, and its address changed: the maps follow, the other output goes on', async () => {
    const rule = relay.addRule(
      group(0, 5),
      5000,
      `${group(5, 1)}:6000:out3:xdp,${group(5, 2)}:6000:out4:xdp`,
    );
    const phase = async (count: number): Promise<[number, number]> => {
      const receivers = await Promise.all([
        x.receive(x.receivers[3]!, 'eth0', group(5, 1), 6000),
        x.receive(x.receivers[4]!, 'eth0', group(5, 2), 6000),
      ]);
      x.send(group(0, 5), 5000, count, { size: SIZE });
      const [a, b] = await Promise.all(receivers.map((r) => x.report(r)));
      return [a!.unique, b!.unique];
    };
    assert.deepEqual(await phase(300), [300, 300]);
    x.run(x.relay, 'ip', ['link', 'set', 'out4', 'down']);
    await waitFor('out4 down', () => (find(rule.id).outputs[1]!.state === 'down' ? true : undefined));
    assert.equal(find(rule.id).path, 'xdp');
    assert.deepEqual(await phase(300), [300, 0]);
    x.run(x.relay, 'ip', ['link', 'set', 'out4', 'up']);
    await waitFor('out4 up', () => (find(rule.id).state === 'active' ? true : undefined));
    await sleep(500); // the receiver's end gets its carrier back
    assert.deepEqual(await phase(300), [300, 300]);
    // A new address: the output leaves the maps while it has none, and comes back with the new one.
    x.run(x.relay, 'ip', ['addr', 'flush', 'dev', 'out4']);
    await waitFor('out4 without address', () =>
      find(rule.id).outputs[1]!.state === 'waiting' ? true : undefined,
    );
    x.run(x.relay, 'ip', ['addr', 'add', `10.${NET}.14.9/24`, 'dev', 'out4']);
    await waitFor('out4 with its new address', () => (find(rule.id).state === 'active' ? true : undefined));
    assert.deepEqual(await phase(300), [300, 300]);
    const stats = await relay.statsAfter(
      (s) => s.rules.find((r) => r.id === rule.id)!.counters.outputs[0]!.packets === 1200,
      3000,
    );
    const counters = stats.rules.find((r) => r.id === rule.id)!.counters;
    assert.deepEqual(
      counters.outputs.map((o) => o.packets),
      [1200, 900],
      'copies to a down link are not counted as sent',
    );
    relay.mcrctlJson(['remove', '-r', rule.id]);
  });

  test('the input link down and up, then gone and back: the rule follows, attached again, forwarding', async () => {
    const rule = relay.addRule(group(0, 6), 5000, `${group(6, 1)}:6000:out0:xdp`);
    // Down and up first: the program stays attached, and the rule forwards again.
    x.run(x.relay, 'ip', ['link', 'set', 'in0', 'down']);
    await waitFor('the rule down', () => (find(rule.id).state === 'down' ? true : undefined));
    assert.match(xdpShown(), /prog\/xdp id \d+/);
    x.run(x.relay, 'ip', ['link', 'set', 'in0', 'up']);
    await x.up();
    await waitFor('the rule active', () => (find(rule.id).state === 'active' ? true : undefined));
    const first = await x.receive(x.receivers[0]!, 'eth0', group(6, 1), 6000);
    x.send(group(0, 6), 5000, COUNT, { size: SIZE });
    assert.equal((await x.report(first)).unique, COUNT);
    x.run(x.relay, 'ip', ['link', 'del', 'in0']);
    await waitFor('the rule waiting for in0', () => (find(rule.id).state === 'waiting' ? true : undefined));
    assert.equal(find(rule.id).reason, 'waiting for in0');
    x.lab.link(x.sender, 'eth0', x.relay, 'in0', `10.${NET}.1.1/24`, `10.${NET}.1.2/24`);
    x.run(x.sender, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
    await x.up();
    await waitFor('the rule active again', () => (find(rule.id).state === 'active' ? true : undefined));
    assert.equal(find(rule.id).path, 'xdp');
    assert.match(xdpShown(), /prog\/xdp id \d+/);
    const receiver = await x.receive(x.receivers[0]!, 'eth0', group(6, 1), 6000);
    x.send(group(0, 6), 5000, COUNT, { size: SIZE });
    assert.equal((await x.report(receiver)).unique, COUNT);
    relay.mcrctlJson(['remove', '-r', rule.id]);
  });

  test('mcrd killed: nothing stays attached; restarted with its config file, it forwards again', async () => {
    const config = `${x.lab.dir}/mcrd.json5`;
    writeFileSync(
      config,
      JSON.stringify({
        rules: [
          {
            input: { interface: 'in0', group: group(0, 3), port: 5000 },
            outputs: [{ group: group(3, 1), port: 6000, interface: 'out0', mode: 'xdp' }],
          },
        ],
      }),
    );
    relay.daemon.child.kill('SIGKILL');
    await relay.daemon.exited;
    await waitFor('the program detached', () => (/prog\/xdp/.test(xdpShown()) ? undefined : true), 5000);
    relay = await start(['--config', config]);
    const [rule] = relay.mcrctlJson<{ rules: RuleView[] }>(['list']).rules;
    assert.equal(rule!.path, 'xdp', JSON.stringify(rule));
    assert.match(xdpShown(), /prog\/xdp id \d+/);
    const receiver = await x.receive(x.receivers[0]!, 'eth0', group(3, 1), 6000);
    x.send(group(0, 3), 5000, COUNT, { size: SIZE });
    const report = await x.report(receiver);
    assert.equal(report.unique, COUNT);
    relay.mcrctlJson(['remove', '-r', rule!.id]);
    await waitFor(
      'the last XDP rule gone, the program too',
      () => (/prog\/xdp/.test(xdpShown()) ? undefined : true),
      5000,
    );
  });

  test('another XDP program on the input is left alone: auto stays on the worker path, xdp is refused', async () => {
    const foreign = spawn(
      'ip',
      ['netns', 'exec', x.relay, process.execPath, COUNTER, 'in0', '5999', 'native'],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    try {
      const lines: string[] = [];
      createInterface({ input: foreign.stdout! }).on('line', (l) => lines.push(l));
      const first = await waitFor('the foreign program', () => lines.shift(), 10000);
      const { programId } = JSON.parse(first) as { programId: number };
      const refused = relay.mcrctl([
        '--json',
        'add',
        '-i',
        'in0',
        '-g',
        group(0, 4),
        '-p',
        '5000',
        '-o',
        `${group(4, 1)}:6000:out0:xdp`,
      ]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stdout + refused.stderr, /E_XDP_UNAVAILABLE/);
      assert.match(refused.stdout + refused.stderr, /already has an XDP program/);
      const auto = relay.addRule(group(0, 4), 5000, `${group(4, 1)}:6000:out0`);
      assert.equal(auto.path, 'worker');
      assert.ok(auto.pathReason !== null);
      assert.equal(find(auto.id).outputs[0]!.path, 'raw');
      assert.match(xdpShown(), new RegExp(`prog/xdp id ${programId}\\b`));
      relay.mcrctlJson(['remove', '-r', auto.id]);
    } finally {
      foreign.kill('SIGKILL');
    }
  });
});
