import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ReloadResult, RtpCounters, RuleStatsView } from '../../src/protocol/control-api.js';
import type { SendReport } from '../../src/gen/sender.js';
import { receiverReport, RelayHost, startReceiver } from '../helpers/relay-host.js';
import { BIN, Topology } from '../helpers/topology.js';

// A rule with the rtp option counts its input's RTP stream health. mcrgen sends an RTP stream
// with a known set of impairments (gaps of known sizes, duplicates, packets sent late) across the
// 16-bit wrap of the sequence number; mcrd's counters must show exactly those, while the relay
// still delivers every datagram exactly once (each carries its own probe, checked by the
// receiver). A rule without the option has no RTP counters.

const COUNT = 3000;
const GAPS = '100,700:3,1500:10,2200:2'; // 4 gaps, 16 numbers
const SENDER_ARGS = [
  '--rtp',
  '--rtp-first-sequence',
  '65000',
  '--rtp-gaps',
  GAPS,
  '--rtp-duplicate-every',
  '250',
  '--rtp-reorder-every',
  '400',
];

function sendRtp(topo: Topology, group: string, port: number, count: number, extra: string[]): SendReport {
  const r = topo.exec(topo.sender, BIN('mcrgen'), [
    'send',
    '--interface',
    'eth0',
    '--json',
    // One source port for every run: one flow, which the fanout keeps on one worker (a new
    // source port could land on the other worker, which would see a new stream there).
    ...['--source-port', '40000'],
    ...[
      '--group',
      group,
      '--port',
      String(port),
      '--rate',
      '2000',
      '--size',
      '200',
      '--count',
      String(count),
    ],
    ...extra,
  ]);
  assert.equal(r.code, 0, `mcrgen send: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as SendReport;
}

const ruleOf = (rules: RuleStatsView[], id: string): RuleStatsView => rules.find((r) => r.id === id)!;

test('RTP stream health: the gaps, duplicates and late packets the sender injected, exactly, across the wrap', async () => {
  const topo = new Topology({ net: 65 });
  try {
    // Two workers: the flow stays on one of them (fanout by flow hash); the counts add up.
    const relay = await RelayHost.start(topo, ['--workers', '2']);
    const withRtp = relay.addRule('239.1.1.1', 5004, '239.2.2.1:6004:out0', ['--rtp', '-n', 'cam-rtp']);
    const without = relay.addRule('239.1.1.2', 5006, '239.2.2.2:6006:out0');
    assert.equal(withRtp.input.rtp, true);
    assert.equal(without.input.rtp, false);
    assert.match(relay.mcrctl(['list']).stdout, /in0 239\.1\.1\.1:5004 rtp/);
    const shown = relay.mcrctlJson<{ text: string }>(['config', 'show']).text;
    assert.match(shown, /port: 5004,\s*\},\s*outputs: \[[^\]]*\],\s*rtp: true/, shown);

    const recv = await startReceiver(topo, topo.receiver, [
      ...['--interface', 'eth0', '--group', '239.2.2.1', '--port', '6004', '--rtp'],
      ...['--count', String(COUNT), '--timeout', '30', '--expect', String(COUNT)],
    ]);
    const sent = sendRtp(topo, '239.1.1.1', 5004, COUNT, SENDER_ARGS);
    // What the sender says it injected, worked out from the options by hand: duplicates of
    // packets 249, 499, … (11 fit in 3,000 datagrams), packets 399, 799, … 2799 late (7).
    const expected: RtpCounters = {
      packets: COUNT,
      notRtp: 0,
      lost: 16,
      gaps: 4,
      duplicates: 11,
      reordered: 7,
      ssrcChanges: 0,
      resyncs: 0,
    };
    assert.equal(sent.packets, COUNT);
    assert.deepEqual(sent.rtp?.injected, { gaps: 4, lost: 16, duplicates: 11, reordered: 7 });
    assert.equal(sent.rtp?.firstSequence, 65000);
    assert.equal(sent.rtp?.lastSequence, (65000 + COUNT - 11 - 1 + 16) % 65536, 'the sequence wrapped');

    const delivered = await receiverReport(recv);
    assert.equal(delivered.code, 0, `every datagram delivered once: ${recv.stderr}`);
    assert.equal(delivered.report.totals.unique, COUNT);

    // The last holes are judged once they have waited (settle, on the worker's stats timer).
    const stats = await relay.statsAfter((s) => ruleOf(s.rules, withRtp.id).counters.rtp?.lost === 16, 8000);
    const rule = ruleOf(stats.rules, withRtp.id);
    assert.equal(rule.counters.packetsIn, COUNT);
    assert.equal(
      rule.counters.outputs[0]!.packets,
      COUNT,
      'every datagram relayed, duplicates and late ones too',
    );
    assert.deepEqual(rule.counters.rtp, expected);
    assert.equal(ruleOf(stats.rules, without.id).counters.rtp, null);

    // The text view has a line for the RTP stream.
    const text = relay.mcrctl(['stats']).stdout;
    assert.match(text, /RTP STREAM\s+NAME\s+RTP\s+LOST\s+GAPS\s+DUPLICATES\s+LATE/);
    assert.match(text, new RegExp(`${withRtp.id}\\s+cam-rtp\\s+3000\\s+16\\s+4\\s+11\\s+7\\s+0\\s+0\\s+0`));

    // Payloads that are not RTP (plain probes start with "MCR1": version 1) are counted as such;
    // a new sender (another SSRC, starting anywhere) on the same flow is an SSRC change, not a gap.
    sendRtp(topo, '239.1.1.1', 5004, 50, []);
    sendRtp(topo, '239.1.1.1', 5004, 100, ['--rtp', '--rtp-first-sequence', '12', '--stream-id', '77']);
    // The rule without the option relays RTP like anything else, and counts none.
    sendRtp(topo, '239.1.1.2', 5006, 100, ['--rtp']);
    const after = await relay.statsAfter(
      (s) =>
        ruleOf(s.rules, withRtp.id).counters.packetsIn === COUNT + 150 &&
        ruleOf(s.rules, without.id).counters.packetsIn === 100,
    );
    assert.deepEqual(ruleOf(after.rules, withRtp.id).counters.rtp, {
      ...expected,
      packets: COUNT + 100,
      notRtp: 50,
      ssrcChanges: 1,
    });
    assert.equal(ruleOf(after.rules, without.id).counters.rtp, null);
  } finally {
    topo.destroy();
  }
});

test('turning rtp on and off by a config reload keeps the rule forwarding; counters appear and go', async () => {
  const topo = new Topology({ net: 65 });
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    const doc = (rtp: boolean): string =>
      `{ rules: [{ name: "feed", input: { interface: "in0", group: "239.1.1.3", port: 5008 }, ${rtp ? 'rtp: true, ' : ''}outputs: [{ group: "239.2.2.3", port: 6008, interface: "out0" }] }] }`;
    const file = join(topo.dir, 'rtp.json5');
    const load = (rtp: boolean): ReloadResult => {
      writeFileSync(file, doc(rtp));
      return relay.mcrctlJson<ReloadResult>(['config', 'load', file]);
    };
    load(false);
    const id = relay.stats().rules[0]!.id;
    assert.equal(relay.stats().rules[0]!.counters.rtp, null);
    assert.deepEqual(load(true).updated, [id]);
    sendRtp(topo, '239.1.1.3', 5008, 200, ['--rtp', '--rtp-gaps', '50:2']);
    const on = await relay.statsAfter((s) => s.rules[0]!.counters.rtp?.packets === 200);
    assert.equal(on.rules[0]!.input.rtp, true);
    assert.equal(on.rules[0]!.counters.rtp?.lost, 2);
    assert.equal(on.rules[0]!.counters.outputs[0]!.packets, 200);
    assert.equal(load(true).unchanged, 1, 'the same file again changes nothing');
    assert.deepEqual(load(false).updated, [id]);
    const off = relay.stats().rules[0]!;
    assert.equal(off.input.rtp, false);
    assert.equal(off.counters.rtp, null);
    assert.equal(off.counters.packetsIn, 200, 'the rule kept its other counters');
  } finally {
    topo.destroy();
  }
});
