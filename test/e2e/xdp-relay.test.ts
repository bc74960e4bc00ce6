import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MALFORMED_KINDS } from '../helpers/inject-frames.js';
import { BIN, sleep } from '../helpers/topology.js';
import { INJECT_FRAMES, OUTPUT_LINKS, SEND_FRAMES, XdpLab } from '../helpers/xdp-lab.js';

// The XDP path end to end: XdpInput on a veth (native), real traffic from mcrgen send, exact
// counts at every receiver and in the per-CPU counters.

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (namespaces, CAP_BPF, CAP_NET_ADMIN)';
const NET = 94;
const COUNT = 1000;
const SIZE = 64;

interface Counters {
  key: { group: number; port: number; vlan: number };
  counts: { packets: number; bytes: number; ownSource: number; ttlExpired: number; noOutput: number };
  outputs: {
    id: string;
    counts: { packets: number; bytes: number; ttlExpired: number; refused: number; refusedBytes: number };
  }[];
}

describe('the XDP path', { skip }, () => {
  let x: XdpLab;

  before(async () => {
    x = new XdpLab(NET);
    await x.up();
    const opened = await x.openRelay();
    assert.equal(opened.opened, true, JSON.stringify(opened));
  });

  after(() => x?.destroy());

  async function counters(group: string): Promise<Counters> {
    const answer = (await x.ask({ counters: true })) as { counters: Counters[] };
    const [a, b, c, d] = group.split('.').map(Number) as [number, number, number, number];
    const value = ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
    const found = answer.counters.find((r) => r.key.group === value);
    assert.ok(found, `no counters for ${group}`);
    return found;
  }

  const out = (i: number, group: string, port = 6000, extra: Record<string, unknown> = {}) => ({
    id: `o${i}-${group}`,
    interface: `out${i}`,
    group,
    port,
    sourcePort: 40100 + i,
    ttl: 16,
    ...extra,
  });

  test('1:1 with translation: every packet arrives once, with the new group and port', async () => {
    await x.ask({
      set: { key: { group: `239.${NET}.0.1`, port: 5000 }, outputs: [out(0, `239.${NET}.1.1`)] },
    });
    const receiver = await x.receive(x.receivers[0]!, 'eth0', `239.${NET}.1.1`, 6000);
    x.send(`239.${NET}.0.1`, 5000, COUNT, { size: SIZE });
    const report = await x.report(receiver);
    assert.deepEqual([report.unique, report.lost, report.duplicates, report.corrupted], [COUNT, 0, 0, 0]);
    const c = await counters(`239.${NET}.0.1`);
    assert.deepEqual(c.counts, {
      packets: COUNT,
      bytes: COUNT * SIZE,
      ownSource: 0,
      ttlExpired: 0,
      noOutput: 0,
    });
    assert.deepEqual(c.outputs[0]!.counts, {
      packets: COUNT,
      bytes: COUNT * SIZE,
      ttlExpired: 0,
      refused: 0,
      refusedBytes: 0,
    });
  });

  test('1:5 over five links: each receiver gets every packet once', async () => {
    const group = `239.${NET}.0.2`;
    const outputs = Array.from({ length: OUTPUT_LINKS }, (_, i) => out(i, `239.${NET}.2.1`));
    await x.ask({ set: { key: { group, port: 5000 }, outputs } });
    const receivers = await Promise.all(
      x.receivers.map((ns) => x.receive(ns, 'eth0', `239.${NET}.2.1`, 6000)),
    );
    x.send(group, 5000, COUNT, { size: SIZE });
    for (const [i, receiver] of receivers.entries()) {
      const report = await x.report(receiver);
      assert.deepEqual(
        [report.unique, report.lost, report.duplicates, report.corrupted],
        [COUNT, 0, 0, 0],
        `rcv${i}`,
      );
    }
    const c = await counters(group);
    assert.equal(c.counts.packets, COUNT);
    for (const o of c.outputs)
      assert.deepEqual(
        o.counts,
        { packets: COUNT, bytes: COUNT * SIZE, ttlExpired: 0, refused: 0, refusedBytes: 0 },
        o.id,
      );
  });

  test('one group to five groups on one link: five devmap entries for one interface', async () => {
    const group = `239.${NET}.0.3`;
    const groups = Array.from({ length: 5 }, (_, i) => `239.${NET}.3.${i + 1}`);
    await x.ask({ set: { key: { group, port: 5000 }, outputs: groups.map((g) => out(0, g)) } });
    const receivers = await Promise.all(groups.map((g) => x.receive(x.receivers[0]!, 'eth0', g, 6000)));
    x.send(group, 5000, COUNT, { size: SIZE });
    for (const [i, receiver] of receivers.entries()) {
      const report = await x.report(receiver);
      assert.deepEqual(
        [report.unique, report.lost, report.duplicates, report.corrupted],
        [COUNT, 0, 0, 0],
        groups[i],
      );
    }
    const c = await counters(group);
    for (const o of c.outputs) assert.deepEqual([o.counts.packets, o.counts.refused], [COUNT, 0], o.id);
  });

  test('TTL 1 at the input: nothing relayed, counted ttl_expired for the rule and its output', async () => {
    const group = `239.${NET}.0.4`;
    await x.ask({ set: { key: { group, port: 5000 }, outputs: [out(1, `239.${NET}.4.1`)] } });
    const receiver = await x.receive(x.receivers[1]!, 'eth0', `239.${NET}.4.1`, 6000);
    x.run(x.sender, process.execPath, [SEND_FRAMES, 'eth0', group, '5000', '300', 'ttl=1', 'size=64']);
    x.run(x.sender, process.execPath, [
      SEND_FRAMES,
      'eth0',
      group,
      '5000',
      '200',
      'ttl=2',
      'size=64',
      'stream=8',
    ]);
    const report = await x.report(receiver);
    assert.deepEqual([report.datagrams, report.unique], [200, 200], 'only the TTL-2 frames, with TTL 1');
    const c = await counters(group);
    assert.deepEqual(c.counts, { packets: 500, bytes: 500 * 64, ownSource: 0, ttlExpired: 300, noOutput: 0 });
    assert.deepEqual(c.outputs[0]!.counts, {
      packets: 200,
      bytes: 200 * 64,
      ttlExpired: 300,
      refused: 0,
      refusedBytes: 0,
    });
  });

  test('unmatched and malformed frames reach the kernel; matched ones do not', async () => {
    const ruleGroup = `239.${NET}.0.7`;
    await x.ask({ set: { key: { group: ruleGroup, port: 5000 }, outputs: [out(2, `239.${NET}.7.1`)] } });
    const capture = x.lab.start(x.relay, 'tshark', [
      ...['-i', 'in0', '-f', 'inbound and ether proto 0x0800', '-w', `${x.lab.dir}/in0.pcap`],
    ]);
    await capture.waitForStderr('Capturing on');
    const captured = (): number =>
      x
        .run(x.relay, 'tshark', ['-r', `${x.lab.dir}/in0.pcap`, '-T', 'fields', '-e', 'frame.number'])
        .trim()
        .split('\n')
        .filter(Boolean).length;
    // tshark says "Capturing on" before it captures: probe until a frame shows in the file.
    let warmUp = 0;
    for (let tries = 0; tries < 50 && captured() === 0; tries++) {
      x.send(`239.${NET}.0.8`, 5999, 1);
      warmUp++;
      await sleep(200);
    }
    warmUp = captured();
    const listener = await x.receive(x.relay, 'in0', `239.${NET}.0.9`, 5000);
    const kinds = Object.keys(MALFORMED_KINDS);
    for (const kind of kinds)
      x.run(x.sender, process.execPath, [INJECT_FRAMES, 'eth0', ruleGroup, '5000', kind, '20']);
    x.send(`239.${NET}.0.9`, 5000, 200, { size: SIZE }); // no rule
    x.send(ruleGroup, 5000, 200, { size: SIZE }); // relayed: never seen by the kernel
    const report = await x.report(listener);
    assert.equal(report.unique, 200, 'a plain socket on the relay gets the unmatched group');
    await sleep(300);
    capture.child.kill('SIGINT');
    await capture.exited;
    const summary = x.run(x.relay, 'tshark', [
      '-r',
      `${x.lab.dir}/in0.pcap`,
      '-T',
      'fields',
      '-e',
      'ip.dst',
      '-e',
      'ip.hdr_len',
      '-e',
      'ip.flags.mf',
      '-e',
      'udp.length',
      '-e',
      'frame.len',
    ]);
    assert.equal(captured() - warmUp, kinds.length * 20 + 200, summary);
    assert.equal(
      (await counters(ruleGroup)).counts.packets,
      200,
      'malformed frames are not counted by the rule',
    );
  });

  test('rule removed: its traffic goes to the kernel again; another rule, updated meanwhile, loses nothing', async () => {
    const removed = `239.${NET}.0.5`;
    const kept = `239.${NET}.0.6`;
    await x.ask({ set: { key: { group: removed, port: 5000 }, outputs: [out(0, `239.${NET}.5.1`)] } });
    const keptOutputs = Array.from({ length: OUTPUT_LINKS }, (_, i) => out(i, `239.${NET}.6.1`));
    await x.ask({ set: { key: { group: kept, port: 5000 }, outputs: keptOutputs } });
    const receivers = await Promise.all(
      x.receivers.map((ns) => x.receive(ns, 'eth0', `239.${NET}.6.1`, 6000)),
    );
    const LONG = 3000;
    const sender = x.lab.start(x.sender, BIN('mcrgen'), [
      ...['send', '--interface', 'eth0', '--group', kept, '--port', '5000'],
      ...['--rate', '1000', '--size', String(SIZE), '--count', String(LONG)],
    ]);
    await sleep(800);
    const last = (await x.ask({ remove: { key: { group: removed, port: 5000 } } })) as { last: Counters };
    assert.equal(last.last.counts.packets, 0);
    await sleep(300);
    // A rule added meanwhile: a map update too.
    await x.ask({
      set: { key: { group: `239.${NET}.0.10`, port: 5000 }, outputs: [out(3, `239.${NET}.10.1`)] },
    });
    await sleep(300);
    // An update in place: one output gets a DSCP (a new program), the others keep theirs.
    const updated = keptOutputs.map((o, i) => (i === 4 ? { ...o, dscp: 46 } : o));
    await x.ask({ set: { key: { group: kept, port: 5000 }, outputs: updated } });
    const listener = await x.receive(x.relay, 'in0', removed, 5000);
    x.send(removed, 5000, 300, { size: SIZE });
    assert.equal(
      (await x.report(listener)).unique,
      300,
      "the removed rule's group reaches the relay's sockets",
    );
    assert.equal((await sender.exited).code, 0, sender.stderr);
    const reports = await Promise.all(receivers.map((r) => x.report(r)));
    for (const [i, report] of reports.entries()) {
      assert.deepEqual(
        [report.unique, report.lost, report.duplicates],
        [LONG, 0, 0],
        `rcv${i}: ${JSON.stringify(reports)}`,
      );
    }
    const c = await counters(kept);
    assert.equal(c.counts.packets, LONG);
    for (const o of c.outputs)
      assert.equal(o.counts.packets, LONG, `${o.id} kept its counters across the update`);
  });

  test("frames from the relay host's own addresses are loops: never relayed, counted own_source", async () => {
    const group = `239.${NET}.0.11`;
    await x.ask({ set: { key: { group, port: 5000 }, outputs: [out(4, `239.${NET}.11.1`)] } });
    await x.ask({ hosts: [`10.${NET}.1.1`] }); // the sender's address, as if it were the relay's
    const receiver = await x.receive(x.receivers[4]!, 'eth0', `239.${NET}.11.1`, 6000);
    x.send(group, 5000, 100, { size: SIZE });
    assert.equal((await x.report(receiver)).datagrams, 0);
    await x.ask({ hosts: [] });
    const c = await counters(group);
    assert.deepEqual(c.counts, {
      packets: 100,
      bytes: 100 * SIZE,
      ownSource: 100,
      ttlExpired: 0,
      noOutput: 0,
    });
    assert.equal(c.outputs[0]!.counts.packets, 0);
  });
});
