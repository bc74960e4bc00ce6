import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { frameArgs } from '../helpers/send-frames.js';
import { listen, RelayHost, stopAndReport, workerTotals } from '../helpers/relay-host.js';
import { ROOT, Topology } from '../helpers/topology.js';

// A rule may take a group from one sender only (input.source, --input-source): the relay joins
// (S,G) with IGMPv3, and a frame of that group from that sender goes to that rule, while the same
// group from any other sender goes to a rule without a source, or nowhere.

/** The relay's source-specific joins on in0, as "group source" in dotted quads. */
function sourceJoins(topo: Topology): string[] {
  const r = topo.exec(topo.relay, 'cat', ['/proc/net/mcfilter']);
  assert.equal(r.code, 0, r.stderr);
  const quad = (hex: string): string => {
    const n = Number.parseInt(hex, 16);
    return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
  };
  return r.stdout
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[1] === 'in0' && f[4] === '1')
    .map((f) => `${quad(f[2]!)} ${quad(f[3]!)}`);
}

test('a source-specific rule takes its sender only; the same group from another sender goes to the any-source rule', async () => {
  const topo = new Topology({ net: 91 });
  try {
    const chosen = topo.senderAddress();
    const other = `10.${topo.net}.1.7`;
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    const specific = relay.addRule('232.1.1.1', 5000, '239.2.2.1:6000:out0', ['--input-source', chosen]);
    relay.addRule('232.1.1.1', 5000, '239.2.2.2:6000:out0');
    assert.deepEqual(sourceJoins(topo), [`232.1.1.1 ${chosen}`], 'joined (S,G) with IGMPv3');
    assert.match(relay.mcrctl(['list']).stdout, new RegExp(`in0 232\\.1\\.1\\.1:5000 from ${chosen}`));

    const fromChosen = await listen(topo, 'eth0', '239.2.2.1', 6000);
    const fromAny = await listen(topo, 'eth0', '239.2.2.2', 6000);
    const sendFrom = (src: string, stream: number): void => {
      const r = topo.exec(topo.sender, process.execPath, [
        join(ROOT, 'dist/test/helpers/send-frames.js'),
        ...['eth0', '232.1.1.1', '5000', '100'],
        ...frameArgs({ stream, src }),
      ]);
      assert.equal(r.code, 0, r.stderr);
    };
    sendFrom(chosen, 1);
    sendFrom(other, 2);

    const chosenReport = (await stopAndReport(fromChosen)).report;
    assert.equal(chosenReport.totals.unique, 100);
    assert.deepEqual(
      chosenReport.streams.map((s) => s.streamId),
      [1],
    );
    const anyReport = (await stopAndReport(fromAny)).report;
    assert.equal(anyReport.totals.unique, 100);
    assert.deepEqual(
      anyReport.streams.map((s) => s.streamId),
      [2],
      'the chosen sender’s frames go to its own rule only',
    );
    const stats = await relay.statsAfter((s) => workerTotals(s).framesSeen >= 200);
    assert.equal(workerTotals(stats).forwarded, 200);
    const bySource = stats.rules.find((r) => r.id === specific.id)!;
    assert.equal(bySource.input.source, chosen);
    assert.equal(bySource.counters.packetsIn, 100);

    assert.equal(relay.mcrctl(['remove', '--rule-id', specific.id]).code, 0);
    assert.deepEqual(sourceJoins(topo), [], 'the (S,G) join is left with its last rule');
  } finally {
    topo.destroy();
  }
});

test('with only a source-specific rule, the group from other senders is counted as without a rule', async () => {
  const topo = new Topology({ net: 91 });
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    relay.addRule('232.1.1.1', 5000, '239.2.2.1:6000:out0', ['--input-source', `10.${topo.net}.1.9`]);
    const recv = await listen(topo, 'eth0', '239.2.2.1', 6000);
    const r = topo.exec(topo.sender, process.execPath, [
      join(ROOT, 'dist/test/helpers/send-frames.js'),
      ...['eth0', '232.1.1.1', '5000', '50'],
      ...frameArgs({ src: topo.senderAddress() }),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await stopAndReport(recv)).report.totals.datagrams, 0);
    const w = workerTotals(await relay.statsAfter((s) => workerTotals(s).framesSeen >= 50));
    assert.equal(w.noRule, 50);
    assert.equal(w.forwarded, 0);
  } finally {
    topo.destroy();
  }
});

test('more sources of a group than one socket may join (igmp_max_msf) are spread over sockets', async () => {
  const topo = new Topology({ net: 91 });
  try {
    topo.sysctl(topo.relay, 'net.ipv4.igmp_max_msf', '2');
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    const sources = [1, 2, 3, 4, 5].map((i) => `10.${topo.net}.1.${100 + i}`);
    const rules = sources.map((s, i) =>
      relay.addRule('232.1.1.1', 5000, `239.2.2.${i + 1}:6000:out0`, ['--input-source', s]),
    );
    assert.deepEqual(sourceJoins(topo).sort(), sources.map((s) => `232.1.1.1 ${s}`).sort());
    for (const rule of rules) assert.equal(relay.mcrctl(['remove', '--rule-id', rule.id]).code, 0);
    assert.deepEqual(sourceJoins(topo), []);
  } finally {
    topo.destroy();
  }
});
