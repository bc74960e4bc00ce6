import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ReloadResult, RuleView } from '../../src/protocol/control-api.js';
import { waitFor } from '../helpers/processes.js';
import { expectPackets, receiverReport, RelayHost, workerTotals } from '../helpers/relay-host.js';
import { BIN, sleep, Topology } from '../helpers/topology.js';

// mcrd run from a config file: rules in the Rust MCR's shape, a hitless reload that applies only
// the difference, runtime rules that survive a restart, the running rules saved as a file.

/** A rule of the config document: GROUP on in0 port 5000 to each "GROUP:out0" output. */
function rule(name: string, group: string, outputs: string[]): string {
  const outs = outputs.map((o) => `{ group: "${o}", port: 6000, interface: "out0" },`).join(' ');
  return `{ name: "${name}", input: { interface: "in0", group: "${group}", port: 5000 }, outputs: [ ${outs} ] },`;
}

function document(rules: string[], extra = ''): string {
  return `{\n  // written by the test\n  ${extra}\n  rules: [\n    ${rules.join('\n    ')}\n  ],\n}\n`;
}

const list = (relay: RelayHost): RuleView[] => relay.mcrctlJson<{ rules: RuleView[] }>(['list']).rules;

/** What must be the same across a save and a restart (not when it was made or where from). */
const essence = (rules: RuleView[]) =>
  rules.map((r) => ({ id: r.id, name: r.name, input: r.input, outputs: r.outputs, state: r.state }));

test('SIGHUP under traffic applies only the difference: untouched rules and outputs lose nothing', async () => {
  const topo = new Topology({ net: 87 });
  try {
    const config = join(topo.dir, 'mcr.json5');
    const before = [
      rule('steady', '239.1.1.1', ['239.2.2.1']),
      rule('grows', '239.1.1.2', ['239.2.2.2']),
      rule('goes', '239.1.1.3', ['239.2.2.3']),
    ];
    writeFileSync(config, document(before));
    const relay = await RelayHost.start(topo, ['--workers', '2', '--config', config]);
    assert.deepEqual(
      list(relay).map((r) => [r.name, r.origin]),
      [
        ['steady', 'config'],
        ['grows', 'config'],
        ['goes', 'config'],
      ],
    );
    // Three flows of 6000 probes at 2000 pps; the reload lands in the middle of them.
    const receivers = await Promise.all([
      expectPackets(topo, 'eth0', '239.2.2.1', 6000, 6000),
      expectPackets(topo, 'eth0', '239.2.2.2', 6000, 6000),
    ]);
    const added = await expectPackets(topo, 'eth0', '239.2.2.9', 6000, 1000);
    const senders = ['239.1.1.1', '239.1.1.2', '239.1.1.3'].map((group) =>
      topo.start(topo.sender, BIN('mcrgen'), [
        ...['send', '--interface', 'eth0', '--group', group, '--port', '5000'],
        ...['--rate', '2000', '--size', '200', '--count', '6000'],
      ]),
    );
    await sleep(1000);
    // "grows" gains an output, "goes" goes, "new" comes; "steady" is left alone.
    writeFileSync(
      config,
      document([
        rule('steady', '239.1.1.1', ['239.2.2.1']),
        rule('grows', '239.1.1.2', ['239.2.2.2', '239.2.2.22']),
        rule('new', '239.1.1.9', ['239.2.2.9']),
      ]),
    );
    relay.daemon.child.kill('SIGHUP');
    await waitFor('the reload', () => (/config applied/.test(relay.daemon.stderr) ? true : undefined));
    const newFlow = topo.start(topo.sender, BIN('mcrgen'), [
      ...['send', '--interface', 'eth0', '--group', '239.1.1.9', '--port', '5000'],
      ...['--rate', '1000', '--size', '200', '--count', '1000'],
    ]);
    for (const sender of [...senders, newFlow]) assert.equal((await sender.exited).code, 0);
    for (const recv of [...receivers, added]) assert.equal((await receiverReport(recv)).code, 0, recv.stderr);

    const rules = list(relay);
    assert.deepEqual(
      rules.map((r) => r.name),
      ['steady', 'grows', 'new'],
    );
    const stats = relay.stats();
    const steady = stats.rules.find((r) => r.name === 'steady')!;
    const grows = stats.rules.find((r) => r.name === 'grows')!;
    assert.equal(
      steady.counters.packetsIn,
      6000,
      'the untouched rule counted every packet, across the reload',
    );
    assert.equal(
      grows.counters.outputs[0]!.packets,
      6000,
      'the output that stayed kept its counters and lost nothing',
    );
    assert.ok(grows.counters.outputs[1]!.packets > 0, 'the new output forwards');
    assert.equal(workerTotals(stats).workerRestart, 0);
  } finally {
    topo.destroy();
  }
});

test('a file with problems changes nothing, and says every problem', async () => {
  const topo = new Topology({ net: 86 });
  try {
    const config = join(topo.dir, 'mcr.json5');
    writeFileSync(config, document([rule('a', '239.1.1.1', ['239.2.2.1'])]));
    const relay = await RelayHost.start(topo, ['--workers', '1', '--config', config]);
    const before = essence(list(relay));
    writeFileSync(
      config,
      document(
        [rule('a', '239.1.1.1', ['239.2.2.1', '239.2.2.300']), rule('b', '239.1.1', ['239.2.2.2'])],
        'wrokers: 2,',
      ),
    );
    const reload = relay.mcrctl(['config', 'reload']);
    assert.equal(reload.code, 1);
    assert.match(reload.stderr, /E_CONFIG_INVALID: .*3 problems; nothing was changed/);
    assert.match(reload.stderr, /wrokers is not a setting mcr knows; did you mean workers\?/);
    assert.match(reload.stderr, /rules\[0\]\.outputs\[1\]\.group "239\.2\.2\.300" is not an IPv4 address/);
    assert.match(reload.stderr, /rules\[1\]\.input\.group "239\.1\.1"/);
    relay.daemon.child.kill('SIGHUP');
    await waitFor('the refused SIGHUP in the log', () =>
      /nothing was changed/.test(relay.daemon.stderr) ? true : undefined,
    );
    assert.deepEqual(essence(list(relay)), before);
    // mcrd --check-config says the same, without a daemon.
    const check = topo.exec(topo.relay, BIN('mcrd'), ['--check-config', config]);
    assert.equal(check.code, 1);
    assert.equal(check.stderr.split('\n').filter((l) => l.startsWith(config)).length, 3);
  } finally {
    topo.destroy();
  }
});

test('runtime rules survive a restart through the state directory; a save reproduces the same rules', async () => {
  const topo = new Topology({ net: 85 });
  try {
    const state = join(topo.dir, 'state');
    const config = join(topo.dir, 'mcr.json5');
    writeFileSync(config, document([rule('from-file', '239.1.1.1', ['239.2.2.1'])]));
    const args = ['--workers', '1', '--config', config, '--state-directory', state];
    let relay = await RelayHost.start(topo, args);
    relay.addRule('239.1.1.2', 5000, '239.2.2.2:6000:out0:fixed-ttl=4:dscp=ef', ['-n', 'by-hand']);
    relay.addRule('239.1.1.3', 5000, '239.2.2.3:6000:out0', ['--input-vlan', '100']);
    const running = list(relay);
    assert.deepEqual(
      running.map((r) => r.origin),
      ['config', 'runtime', 'runtime'],
    );
    assert.equal((await relay.stop()).code, 0);

    // A crash in the middle of the next write leaves a temporary file beside the state file.
    writeFileSync(join(state, 'runtime-rules.json5.new-9999'), '{ rules: [ { inp');
    relay = await RelayHost.start(topo, args);
    assert.deepEqual(essence(list(relay)), essence(running), 'the same rules after a restart');
    assert.deepEqual(readdirSync(state), ['runtime-rules.json5'], 'the leftover of the crash is gone');

    // Saved to another file, then mcrd started from that file alone: the same rules again.
    const saved = join(topo.dir, 'saved.json5');
    assert.equal(relay.mcrctl(['config', 'save', saved]).code, 0);
    assert.match(readFileSync(saved, 'utf8'), /fixed_ttl: 4/);
    assert.equal((await relay.stop()).code, 0);
    relay = await RelayHost.start(topo, ['--workers', '1', '--config', saved]);
    assert.deepEqual(essence(list(relay)), essence(running));
  } finally {
    topo.destroy();
  }
});

test('mcrctl config load adds only the difference and keeps runtime rules unless --replace', async () => {
  const topo = new Topology({ net: 84 });
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    relay.addRule('239.1.1.1', 5000, '239.2.2.1:6000:out0', ['-n', 'manual']);
    const file = join(topo.dir, 'more.json5');
    writeFileSync(file, document([rule('loaded', '239.1.1.5', ['239.2.2.5'])]));
    const load = relay.mcrctlJson<ReloadResult>(['config', 'load', file]);
    assert.equal(load.added.length, 1);
    assert.deepEqual(
      list(relay).map((r) => [r.name, r.origin]),
      [
        ['manual', 'runtime'],
        ['loaded', 'config'],
      ],
    );
    const replaced = relay.mcrctlJson<ReloadResult>(['config', 'load', file, '--replace']);
    assert.equal(replaced.removed.length, 1);
    assert.deepEqual(
      list(relay).map((r) => r.name),
      ['loaded'],
    );
  } finally {
    topo.destroy();
  }
});

test('a Rust-MCR-shaped file with comments, trailing commas and a unicast input loads and relays', async () => {
  const topo = new Topology({ net: 83 });
  try {
    const config = join(topo.dir, 'rust-mcr.json5');
    writeFileSync(
      config,
      `{
  // MCR configuration, as the Rust MCR's users write it
  rules: [
    {
      name: "video-feed",  // optional
      input: { interface: "in0", group: "239.1.1.1", port: 5000 },
      outputs: [
        { group: "239.2.2.2", port: 6000, interface: "out0" },
      ],
    },
    {
      name: "tunnel-endpoint",  // unicast input, told by its address
      input: { interface: "in0", group: "10.83.1.2", port: 5002 },
      outputs: [{ group: "239.1.1.3", port: 5002, interface: "out0" }],
    },
  ],
  pinning: { "in0": [0], },
}
`,
    );
    const relay = await RelayHost.start(topo, ['--workers', '1', '--config', config]);
    assert.match(relay.daemon.stderr, /pinning is read but has no effect/);
    const rules = list(relay);
    assert.deepEqual(
      rules.map((r) => [r.name, r.input.unicast]),
      [
        ['video-feed', false],
        ['tunnel-endpoint', true],
      ],
    );
    const recv = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, 500);
    const r = topo.exec(topo.sender, BIN('mcrgen'), [
      ...['send', '--interface', 'eth0', '--group', '239.1.1.1', '--port', '5000'],
      ...['--rate', '1000', '--size', '200', '--count', '500'],
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await receiverReport(recv)).code, 0, recv.stderr);
  } finally {
    topo.destroy();
  }
});

test('config save where nothing can be written: E_CONFIG_WRITE naming the file and what to do; nothing left behind', async () => {
  const topo = new Topology({ net: 85 });
  try {
    const etc = join(topo.dir, 'etc');
    mkdirSync(etc);
    const config = join(etc, 'mcr.json5');
    writeFileSync(config, document([rule('from-file', '239.1.1.1', ['239.2.2.1'])]));
    const relay = await RelayHost.start(topo, ['--workers', '1', '--config', config]);
    // Its directory gone, mcrd (root here) cannot write the file, as mcrd under the unit cannot
    // write /etc/mcr.
    rmSync(etc, { recursive: true });
    const bySupervisor = relay.mcrctl(['config', 'save']);
    assert.equal(bySupervisor.code, 1);
    assert.match(
      bySupervisor.stderr,
      /^mcrctl: E_CONFIG_WRITE: mcrd cannot write .*mcr\.json5 \(ENOENT\);.*mcrctl config save FILE/,
    );

    const byClient = relay.mcrctl(['config', 'save', join(etc, 'copy.json5')]);
    assert.equal(byClient.code, 1);
    assert.match(
      byClient.stderr,
      /^mcrctl: E_CONFIG_WRITE: cannot write .*copy\.json5 \(ENOENT\): choose a file/,
    );
    assert.doesNotMatch(byClient.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(list(relay).length, 1, 'the rules are as they were');
  } finally {
    topo.destroy();
  }
});

test('--help into a pipe whose reader has already gone ends quietly', () => {
  // `true` exits before the program writes: its write fails with EPIPE.
  const programs = ['mcrctl', 'mcrgen', 'mcrd'] as const;
  const r = spawnSync('sh', ['-c', programs.map((p) => `${BIN(p)} --help | true`).join('; ')], {
    encoding: 'utf8',
  });
  assert.equal(r.stderr, '', 'no EPIPE stack trace');
});
