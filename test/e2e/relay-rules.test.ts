import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RuleView } from '../../src/protocol/control-api.js';
import {
  expectPackets,
  listen,
  receiverReport,
  RelayHost,
  send,
  workerTotals,
  stopAndReport,
} from '../helpers/relay-host.js';
import { DATA_PATHS, named, onPath, preparePath } from '../helpers/data-paths.js';
import { Topology } from '../helpers/topology.js';

// The first two run on both data paths: the workers' and XDP (whose program passes what no rule
// matches on to the kernel, and whose rule changes are map updates).
for (const path of DATA_PATHS) {
  test(named('traffic for a group with no rule is counted as no rule and not forwarded', path), async () => {
    const topo = new Topology();
    try {
      preparePath(topo, path);
      const relay = await RelayHost.start(topo);
      relay.addRule('239.1.1.1', 5000, onPath('239.2.2.2:6000:out0', path));
      const before = topo.linkStats(topo.relay, 'out0').txPackets;
      // Same group, other port; and another group: neither has a rule.
      send(topo, '239.1.1.1', 5001, { rate: 2000, size: 100, count: 300 });
      send(topo, '239.1.1.9', 5000, { rate: 2000, size: 100, count: 200 });
      const stats = await relay.statsAfter((s) => workerTotals(s).noRule >= 500);
      assert.equal(workerTotals(stats).noRule, 500);
      assert.equal(workerTotals(stats).forwarded, 0);
      assert.equal(stats.rules[0]!.counters.packetsIn, 0);
      assert.equal(stats.rules[0]!.counters.outputs[0]!.packets, 0);
      // Nothing left the output link beyond what the kernel itself sends (IGMP, ND): far fewer than 500.
      assert.ok(topo.linkStats(topo.relay, 'out0').txPackets - before < 10);
    } finally {
      topo.destroy();
    }
  });

  test(
    named('removing a rule stops its flow, re-adding resumes it, other rules are untouched', path),
    async () => {
      const topo = new Topology();
      try {
        preparePath(topo, path);
        const relay = await RelayHost.start(topo);
        const ruleA = relay.addRule('239.1.1.1', 5000, onPath('239.2.2.1:6000:out0', path), ['-n', 'flow-a']);
        const ruleB = relay.addRule('239.1.1.2', 5000, onPath('239.2.2.2:6000:out0', path), ['-n', 'flow-b']);

        // One phase: both flows send 400 packets; what did each output's receiver get?
        const phase = async (): Promise<[number, number]> => {
          const recvA = await listen(topo, 'eth0', '239.2.2.1', 6000);
          const recvB = await listen(topo, 'eth0', '239.2.2.2', 6000);
          send(topo, '239.1.1.1', 5000, { rate: 2000, size: 200, count: 400 });
          send(topo, '239.1.1.2', 5000, { rate: 2000, size: 200, count: 400 });
          const [a, b] = await Promise.all([stopAndReport(recvA), stopAndReport(recvB)]);
          return [a.report.totals.unique, b.report.totals.unique];
        };

        assert.deepEqual(await phase(), [400, 400]);

        const removed = relay.mcrctlJson<{ removed: RuleView }>(['remove', '--name', 'flow-a']).removed;
        assert.equal(removed.id, ruleA.id);
        assert.deepEqual(await phase(), [0, 400]);
        const middle = await relay.statsAfter((s) => workerTotals(s).noRule === 400);
        assert.equal(workerTotals(middle).noRule, 400, 'flow A is now "no rule"');

        const again = relay.addRule('239.1.1.1', 5000, onPath('239.2.2.1:6000:out0', path), ['-n', 'flow-a']);
        assert.equal(again.id, ruleA.id, 'the id derives from the input, so it is the same again');
        assert.deepEqual(await phase(), [400, 400]);

        const stats = await relay.statsAfter(
          (s) => s.rules.find((r) => r.id === ruleB.id)?.counters.packetsIn === 1200,
        );
        const b = stats.rules.find((r) => r.id === ruleB.id)!;
        assert.equal(b.counters.packetsIn, 1200, 'rule B kept counting through the remove and re-add of A');
        assert.equal(b.counters.outputs[0]!.packets, 1200);
        const a = stats.rules.find((r) => r.id === ruleA.id)!;
        assert.equal(a.counters.packetsIn, 400, 'the re-added rule A counts from zero');
      } finally {
        topo.destroy();
      }
    },
  );
}

/** mcrctl add arguments for input in0 GROUP:5000 with the given outputs. */
const add = (group: string, outputs: string, ...more: string[]): string[] => [
  'add',
  '-i',
  'in0',
  '-g',
  group,
  '-p',
  '5000',
  '-o',
  outputs,
  ...more,
];

test('bad mcrctl input gets a clear error and a non-zero exit; the daemon keeps running', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo);
    relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0', ['-n', 'cam1']);
    const out = '239.2.2.2:6000:out0';
    const cases: [string[], number, RegExp][] = [
      [add('239.1.1', out), 2, /E_INVALID_ADDRESS: input-group "239\.1\.1"/],
      [['add', '-i', 'in0', '-g', '239.1.1.2', '-p', '0', '-o', out], 2, /E_INVALID_PORT: input-port 0/],
      [add('10.1.1.1', out), 2, /E_NOT_MULTICAST: input-group 10\.1\.1\.1/],
      [add('239.1.1.3', '239.1.1.3:5000:in0'), 2, /E_LOOP: outputs\[0\]/],
      [add('239.1.1.3', `${out},${out}`), 2, /E_DUPLICATE_OUTPUT: outputs\[1\].*outputs\[0\]/],
      [add('239.1.1.3', '239.2.2.2:x:out0'), 2, /E_INVALID_PORT: outputs\[0\]\.port "x"/],
      [add('239.1.1.3', '239.2.2.2:6000'), 2, /E_INVALID_INTERFACE: outputs\[0\]\.interface is required/],
      [add('239.1.1.3', '239.2.2.2:6000:out0:dscp=xx'), 2, /E_INVALID_DSCP: outputs\[0\]\.dscp "xx"/],
      [add('239.1.1.3', '239.2.2.2:6000:out0:ttl=0'), 2, /E_INVALID_TTL: outputs\[0\]\.ttl must be 1-255/],
      [add('239.1.1.3', '10.9.9.9:6000::xdp'), 2, /E_XDP_UNSUPPORTED: outputs\[0\]\.mode xdp.*unicast/],
      [add('239.1.1.3', `${out}:xdp,239.2.2.3:6000:out0:raw`), 2, /E_XDP_UNSUPPORTED: .*outputs\[1\].*raw/],
      [[...add('239.1.1.3', out), '--input-vlan', '4095'], 2, /E_INVALID_VLAN: input-vlan 4095/],
      [
        add('239.1.1.1', '239.9.9.9:6000:out0'),
        1,
        /E_RULE_EXISTS: input in0 239\.1\.1\.1:5000 is already relayed by rule r-[0-9a-f]{12} \(cam1\)/,
      ],
      [add('239.1.1.4', out, '-n', 'cam1'), 1, /E_NAME_TAKEN: name cam1/],
      [['remove', '--name', 'nope'], 1, /E_RULE_NOT_FOUND: no rule with name nope/],
      [['remove'], 2, /give --rule-id ID or --name NAME/],
      [['add', '-i', 'in0'], 2, /required option/],
      [['frobnicate'], 2, /unknown command/],
    ];
    for (const [args, code, pattern] of cases) {
      const r = relay.mcrctl(args);
      assert.equal(r.code, code, `mcrctl ${args.join(' ')} → ${r.code}: ${r.stderr}`);
      assert.match(r.stderr, pattern, `mcrctl ${args.join(' ')}`);
    }
    const json = relay.mcrctl(['--json', ...add('239.1.1', out)]);
    assert.equal(json.code, 2);
    const error = (JSON.parse(json.stdout) as { error: { code: string; field: string } }).error;
    assert.deepEqual([error.code, error.field], ['E_INVALID_ADDRESS', 'input-group']);

    // An interface that does not exist (yet) is not an error: the rule waits for it.
    const waiting = relay.mcrctl([
      'add',
      '-i',
      'nosuch0',
      '-g',
      '239.1.1.3',
      '-p',
      '5000',
      '-o',
      out,
      '-n',
      'later',
    ]);
    assert.equal(waiting.code, 0, waiting.stderr);
    assert.match(waiting.stdout, /waiting \(waiting for nosuch0\)/);
    assert.equal(relay.mcrctl(['remove', '--name', 'later']).code, 0);

    // The daemon is alive, still has exactly its one rule, and still forwards.
    assert.equal(relay.mcrctl(['ping']).code, 0);
    const list = relay.mcrctlJson<{ rules: RuleView[] }>(['list']).rules;
    assert.deepEqual(
      list.map((r) => r.name),
      ['cam1'],
    );
    const recv = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, 100);
    send(topo, '239.1.1.1', 5000, { rate: 1000, size: 100, count: 100 });
    assert.equal((await receiverReport(recv)).code, 0, recv.stderr);

    // mcrctl against a socket nobody serves: a clear error, exit 1.
    const r = relay.mcrctl(['--socket', `${topo.dir}/absent.sock`, 'list']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /E_NOT_RUNNING/);
  } finally {
    topo.destroy();
  }
});
