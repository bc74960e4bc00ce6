import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RuleView } from '../../src/protocol/control-api.js';
import { RelayHost, receiverReport, send, startReceiver } from '../helpers/relay-host.js';
import { Topology } from '../helpers/topology.js';

test('traffic for a group with no rule is counted as no rule and not forwarded', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo);
    assert.equal(
      relay.mcrctl(['add', '-i', 'in0', '-g', '239.1.1.1', '-p', '5000', '-o', '239.2.2.2:6000:out0']).code,
      0,
    );
    const before = topo.linkStats(topo.relay, 'out0').txPackets;
    // Same group, other port; and another group: neither has a rule.
    send(topo, [
      '--group',
      '239.1.1.1',
      '--port',
      '5001',
      '--rate',
      '2000',
      '--size',
      '100',
      '--count',
      '300',
    ]);
    send(topo, [
      '--group',
      '239.1.1.9',
      '--port',
      '5000',
      '--rate',
      '2000',
      '--size',
      '100',
      '--count',
      '200',
    ]);
    const stats = await relay.statsAfter((s) => s.workers[0]!.counters.noRule >= 500);
    assert.equal(stats.workers[0]!.counters.noRule, 500);
    assert.equal(stats.workers[0]!.counters.forwarded, 0);
    assert.equal(stats.rules[0]!.counters.packetsIn, 0);
    assert.equal(stats.rules[0]!.counters.outputs[0]!.packets, 0);
    // Nothing left the output link beyond what the kernel itself sends (IGMP, ND): far fewer than 500.
    assert.ok(topo.linkStats(topo.relay, 'out0').txPackets - before < 10);
  } finally {
    topo.destroy();
  }
});

test('removing a rule stops its flow, re-adding resumes it, other rules are untouched', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo);
    const add = (name: string, group: string, out: string) =>
      relay.mcrctlJson<{ rule: RuleView }>([
        'add',
        '-i',
        'in0',
        '-g',
        group,
        '-p',
        '5000',
        '-o',
        out,
        '-n',
        name,
      ]).rule;
    const ruleA = add('flow-a', '239.1.1.1', '239.2.2.1:6000:out0');
    const ruleB = add('flow-b', '239.1.1.2', '239.2.2.2:6000:out0');

    // One phase: both senders send 400 packets; report what each output receiver got.
    const phase = async (): Promise<[number, number]> => {
      const recvA = await startReceiver(topo, topo.receiver, [
        '--interface',
        'eth0',
        '--group',
        '239.2.2.1',
        '--port',
        '6000',
        '--duration',
        '2.5',
      ]);
      const recvB = await startReceiver(topo, topo.receiver, [
        '--interface',
        'eth0',
        '--group',
        '239.2.2.2',
        '--port',
        '6000',
        '--duration',
        '2.5',
      ]);
      send(topo, [
        '--group',
        '239.1.1.1',
        '--port',
        '5000',
        '--rate',
        '2000',
        '--size',
        '200',
        '--count',
        '400',
      ]);
      send(topo, [
        '--group',
        '239.1.1.2',
        '--port',
        '5000',
        '--rate',
        '2000',
        '--size',
        '200',
        '--count',
        '400',
      ]);
      const [a, b] = await Promise.all([receiverReport(recvA), receiverReport(recvB)]);
      return [a.report.totals.unique, b.report.totals.unique];
    };

    assert.deepEqual(await phase(), [400, 400]);

    const removed = relay.mcrctlJson<{ removed: RuleView }>(['remove', '--name', 'flow-a']).removed;
    assert.equal(removed.id, ruleA.id);
    assert.deepEqual(await phase(), [0, 400]);
    const middle = await relay.statsAfter((s) => s.workers[0]!.counters.noRule === 400);
    assert.equal(middle.workers[0]!.counters.noRule, 400, 'flow A is now "no rule"');

    const again = add('flow-a', '239.1.1.1', '239.2.2.1:6000:out0');
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
});

test('bad mcrctl input gets a clear error and a non-zero exit; the daemon keeps running', async () => {
  const topo = new Topology();
  try {
    const relay = await RelayHost.start(topo);
    assert.equal(
      relay.mcrctl([
        'add',
        '-i',
        'in0',
        '-g',
        '239.1.1.1',
        '-p',
        '5000',
        '-o',
        '239.2.2.2:6000:out0',
        '-n',
        'cam1',
      ]).code,
      0,
    );
    const cases: { args: string[]; code: number; pattern: RegExp }[] = [
      {
        args: ['add', '-i', 'in0', '-g', '239.1.1', '-p', '5000', '-o', '239.2.2.2:6000:out0'],
        code: 1,
        pattern: /E_INVALID_ADDRESS: input-group "239\.1\.1"/,
      },
      {
        args: ['add', '-i', 'in0', '-g', '239.1.1.2', '-p', '0', '-o', '239.2.2.2:6000:out0'],
        code: 2,
        pattern: /E_INVALID_PORT: input-port 0/,
      },
      {
        args: ['add', '-i', 'in0', '-g', '10.1.1.1', '-p', '5000', '-o', '239.2.2.2:6000:out0'],
        code: 1,
        pattern: /E_NOT_MULTICAST: input-group 10\.1\.1\.1/,
      },
      {
        args: ['add', '-i', 'nosuch0', '-g', '239.1.1.3', '-p', '5000', '-o', '239.2.2.2:6000:out0'],
        code: 1,
        pattern: /E_UNKNOWN_INTERFACE: input-interface nosuch0/,
      },
      {
        args: ['add', '-i', 'in0', '-g', '239.1.1.3', '-p', '5000', '-o', '239.2.2.2:6000:nosuch1'],
        code: 1,
        pattern: /E_UNKNOWN_INTERFACE: outputs\[0\]\.interface nosuch1/,
      },
      {
        args: ['add', '-i', 'in0', '-g', '239.1.1.3', '-p', '5000', '-o', '239.1.1.3:5000:in0'],
        code: 1,
        pattern: /E_LOOP: outputs\[0\]/,
      },
      {
        args: [
          'add',
          '-i',
          'in0',
          '-g',
          '239.1.1.3',
          '-p',
          '5000',
          '-o',
          '239.2.2.2:6000:out0,239.2.2.2:6000:out0',
        ],
        code: 1,
        pattern: /E_DUPLICATE_OUTPUT: outputs\[1\].*outputs\[0\]/,
      },
      {
        args: ['add', '-i', 'in0', '-g', '239.1.1.3', '-p', '5000', '-o', '239.2.2.2:x:out0'],
        code: 2,
        pattern: /E_INVALID_PORT: outputs\[0\]\.port "x"/,
      },
      {
        args: ['add', '-i', 'in0', '-g', '239.1.1.3', '-p', '5000', '-o', '239.2.2.2:6000'],
        code: 1,
        pattern: /E_INVALID_INTERFACE: outputs\[0\]\.interface is required/,
      },
      {
        args: ['add', '-i', 'in0', '-g', '239.1.1.1', '-p', '5000', '-o', '239.9.9.9:6000:out0'],
        code: 1,
        pattern: /E_RULE_EXISTS: rule r-[0-9a-f]{12} \(cam1\) already relays in0 239\.1\.1\.1:5000/,
      },
      {
        args: [
          'add',
          '-i',
          'in0',
          '-g',
          '239.1.1.4',
          '-p',
          '5000',
          '-o',
          '239.2.2.2:6000:out0',
          '-n',
          'cam1',
        ],
        code: 1,
        pattern: /E_NAME_TAKEN: name cam1/,
      },
      { args: ['remove', '--name', 'nope'], code: 1, pattern: /E_RULE_NOT_FOUND: no rule with name nope/ },
      { args: ['remove'], code: 2, pattern: /give --rule-id ID or --name NAME/ },
      { args: ['add', '-i', 'in0'], code: 2, pattern: /required option/ },
      { args: ['frobnicate'], code: 2, pattern: /unknown command/ },
    ];
    for (const c of cases) {
      const r = relay.mcrctl(c.args);
      assert.equal(r.code, c.code, `mcrctl ${c.args.join(' ')} → ${r.code}: ${r.stderr}`);
      assert.match(r.stderr, c.pattern, `mcrctl ${c.args.join(' ')}`);
    }
    const json = relay.mcrctl([
      '--json',
      'add',
      '-i',
      'in0',
      '-g',
      '239.1.1',
      '-p',
      '5000',
      '-o',
      '239.2.2.2:6000:out0',
    ]);
    assert.equal(json.code, 1);
    assert.deepEqual(JSON.parse(json.stdout).error.code, 'E_INVALID_ADDRESS');
    assert.equal(JSON.parse(json.stdout).error.field, 'input-group');

    // The daemon is alive, still has exactly its one rule, and still forwards.
    assert.equal(relay.mcrctl(['ping']).code, 0);
    const list = relay.mcrctlJson<{ rules: RuleView[] }>(['list']).rules;
    assert.deepEqual(
      list.map((r) => r.name),
      ['cam1'],
    );
    const recv = await startReceiver(topo, topo.receiver, [
      '--interface',
      'eth0',
      '--group',
      '239.2.2.2',
      '--port',
      '6000',
      '--count',
      '100',
      '--timeout',
      '20',
      '--expect',
      '100',
    ]);
    send(topo, [
      '--group',
      '239.1.1.1',
      '--port',
      '5000',
      '--rate',
      '1000',
      '--size',
      '100',
      '--count',
      '100',
    ]);
    assert.equal((await receiverReport(recv)).code, 0, recv.stderr);

    // mcrctl against a socket nobody serves: a clear error, exit 1.
    const r = relay.mcrctl(['--socket', `${topo.dir}/absent.sock`, 'list']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /E_NOT_RUNNING/);
  } finally {
    topo.destroy();
  }
});
