import { test } from 'node:test';
import assert from 'node:assert/strict';

import { validateRule } from '../../src/rules/validate-rule.js';
import { parseConfig, type ConfigProblem, type ConfigResult } from '../../src/supervisor/config-file.js';
import { renderRules } from '../../src/supervisor/config-render.js';

const FILE = '/etc/mcr/mcr.json5';

function problems(result: ConfigResult): ConfigProblem[] {
  assert.equal(result.ok, false, 'expected the file to be refused');
  return result.ok ? [] : result.problems;
}

/** [code, path] of each problem, in the order reported. */
function summary(result: ConfigResult): [string, string][] {
  return problems(result).map((p) => [p.code, p.path]);
}

test('a Rust-MCR-shaped file with comments and trailing commas loads unchanged', () => {
  const result = parseConfig(
    `{
      // MCR configuration
      rules: [
        {
          name: "video-feed",  // optional
          input: { interface: "eth0", group: "239.1.1.1", port: 5000 },
          outputs: [
            { group: "239.2.2.2", port: 6000, interface: "eth1" },
          ],
        },
        {
          name: "legacy-unicast",
          input: { interface: "eth0", group: "239.1.1.3", port: 5002 },
          outputs: [{ group: "10.0.0.100", port: 6003, interface: "eth1" }],
        },
        {
          name: "tunnel-endpoint",  // unicast input, by its address alone
          input: { interface: "eth1", group: "10.0.0.50", port: 5002 },
          outputs: [{ group: "239.1.1.3", port: 5002, interface: "eth0" }],
        },
      ],
      multicast_ttl: 8,
      pinning: { "eth0": [0, 1], },
    }`,
    FILE,
  );
  assert.ok(result.ok, JSON.stringify(result));
  const { rules, warnings, settings } = result.config;
  assert.deepEqual(settings, {});
  assert.equal(rules.length, 3);
  assert.equal(rules[0]!.outputs[0]!.ttl, 8, 'multicast_ttl caps multicast outputs without a ttl');
  assert.equal(rules[1]!.outputs[0]!.ttl, undefined, 'not unicast ones');
  assert.equal(rules[2]!.unicastInput, true);
  for (const r of rules) assert.doesNotThrow(() => validateRule(r));
  assert.match(warnings[0]!, /pinning is read but has no effect/);
});

test('a syntax error names the file, the line and the column', () => {
  const result = parseConfig('{\n  rules: [\n    { input: ,\n  ]\n}', FILE);
  const [p] = problems(result);
  assert.equal(p!.code, 'E_CONFIG_SYNTAX');
  assert.equal(p!.path, 'line 3, column 14');
  assert.match(p!.message, /^\/etc\/mcr\/mcr\.json5: line 3, column 14: invalid character ','/);
});

test('unknown keys are errors, each with the nearest known key and what is allowed', () => {
  const result = parseConfig(
    `{ wrokers: 2, log: { levle: "info" },
       rules: [{ input: { interface: "eth0", group: "239.1.1.1", port: 5000, sorce: "10.1.1.1" },
                 outputs: [{ group: "239.2.2.2", port: 6000, interface: "eth1", multicastTtl: 4 }] }] }`,
    FILE,
  );
  const found = problems(result);
  assert.deepEqual(
    found.map((p) => [p.code, p.path]),
    [
      ['E_CONFIG_UNKNOWN_KEY', 'wrokers'],
      ['E_CONFIG_UNKNOWN_KEY', 'log.levle'],
      ['E_CONFIG_UNKNOWN_KEY', 'rules[0].input.sorce'],
      ['E_CONFIG_UNKNOWN_KEY', 'rules[0].outputs[0].multicastTtl'],
    ],
  );
  assert.match(found[0]!.message, /wrokers is not a setting mcr knows; did you mean workers\?/);
  assert.match(found[1]!.message, /did you mean level\? \(allowed here: level, format\)/);
  assert.match(found[2]!.message, /did you mean source\?/);
  assert.doesNotMatch(found[3]!.message, /did you mean/, 'multicast_ttl is a global, not an output key');
});

test('wrong types name the path, the value and what is expected', () => {
  const result = parseConfig(
    `{ workers: "two", qdisc_bypass: 1, fanout: "round-robin", ring_size_mib: 5000, socket: { mode: "rw" },
       rules: [{ input: { interface: "eth0", group: "239.1.1.1", port: "5000" }, outputs: {} }] }`,
    FILE,
  );
  const found = problems(result);
  assert.deepEqual(
    found.map((p) => [p.path, p.value]),
    [
      ['workers', 'two'],
      ['qdisc_bypass', 1],
      ['fanout', 'round-robin'],
      ['ring_size_mib', 5000],
      ['socket.mode', 'rw'],
      ['rules[0].input.port', '5000'],
      ['rules[0].outputs', {}],
    ],
  );
  const messages = found.map((p) => p.message).join('\n');
  assert.match(messages, /workers "two" is not a whole number/);
  assert.match(messages, /fanout "round-robin" is not one of "hash", "cpu"/);
  assert.match(messages, /ring_size_mib 5000 is out of range \(allowed: 1-1024\)/);
  assert.match(messages, /rules\[0\]\.outputs \{\} is not a list/);
});

test('invalid addresses and bad outputs: every error of every rule, with its path and value', () => {
  const result = parseConfig(
    `{ rules: [
        { input: { interface: "eth0", group: "239.1.1", port: 5000 },
          outputs: [{ group: "239.2.2.2", port: 70000, interface: "eth1" }] },
        { input: { interface: "eth0", group: "239.1.1.2", port: 5000 },
          outputs: [{ group: "239.2.2.2", port: 6000 }, { group: "239.2.2.3", port: 6000, interface: "eth1", dscp: "fast", mode: "turbo" }] },
        { input: { interface: "eth0", group: "239.1.1.3", port: 5000, vlan: 5000 }, outputs: [] },
      ] }`,
    FILE,
  );
  assert.deepEqual(summary(result), [
    ['E_INVALID_ADDRESS', 'rules[0].input.group'],
    ['E_INVALID_PORT', 'rules[0].outputs[0].port'],
    ['E_INVALID_INTERFACE', 'rules[1].outputs[0].interface'],
    ['E_INVALID_DSCP', 'rules[1].outputs[1].dscp'],
    ['E_INVALID_VLAN', 'rules[2].input.vlan'],
    ['E_NO_OUTPUTS', 'rules[2].outputs'],
  ]);
  const first = problems(result)[0]!;
  assert.equal(first.value, '239.1.1');
  assert.match(
    first.message,
    /^\/etc\/mcr\/mcr\.json5: rules\[0\]\.input\.group "239\.1\.1" is not an IPv4 address/,
  );
  assert.match(
    problems(result)[1]!.message,
    /rules\[0\]\.outputs\[0\]\.port 70000 is not a UDP port \(1-65535\)/,
  );
});

test('two rules for one input, or one name twice, are refused naming both', () => {
  const rule = (name: string, group: string): string =>
    `{ name: "${name}", input: { interface: "eth0", group: "${group}", port: 5000 }, outputs: [{ group: "239.9.9.9", port: 6000, interface: "eth1" }] }`;
  const result = parseConfig(
    `{ rules: [${rule('a', '239.1.1.1')}, ${rule('b', '239.1.1.1')}, ${rule('a', '239.1.1.2')}] }`,
    FILE,
  );
  assert.deepEqual(summary(result), [
    ['E_RULE_EXISTS', 'rules[1].input'],
    ['E_NAME_TAKEN', 'rules[2].name'],
  ]);
  assert.match(problems(result)[0]!.message, /is already relayed by rules\[0\] \(a\)/);
});

test('daemon settings come out in the daemon’s terms', () => {
  const result = parseConfig(
    `{ workers: 2, fanout: "cpu", user: "mcr", socket: { path: "/run/mcr/mcrd.sock", mode: "0660", group: "mcr" },
       log: { level: "debug", format: "text" }, state_directory: "/var/lib/mcr", ring_size_mib: 8,
       batch_size: 32, batch_budget: 8, coalesce_us: 50, qdisc_bypass: false }`,
    FILE,
  );
  assert.ok(result.ok);
  assert.deepEqual(result.config.settings, {
    workers: 2,
    fanout: 'cpu',
    user: 'mcr',
    socketPath: '/run/mcr/mcrd.sock',
    socketMode: 0o660,
    socketGroup: 'mcr',
    logLevel: 'debug',
    logFormat: 'text',
    stateDirectory: '/var/lib/mcr',
    ringSizeMiB: 8,
    batchSize: 32,
    batchBudget: 8,
    coalesceUs: 50,
    qdiscBypass: false,
  });
});

test('rules written back as a document read again as the same rules, names and ids', () => {
  const rules = [
    validateRule({
      name: 'cam1',
      inputInterface: 'eth0',
      inputGroup: '239.1.1.1',
      inputPort: 5000,
      inputVlan: 100,
      outputs: [
        { group: '239.2.2.2', port: 6000, interface: 'eth1', dscp: 'ef', mode: 'raw' },
        { group: '10.0.9.7', port: 7000, fixedTtl: 8 },
      ],
    }),
    validateRule({
      inputInterface: 'eth1',
      inputGroup: '10.0.0.50',
      inputPort: 5002,
      unicastInput: true,
      outputs: [{ group: '239.1.1.3', port: 5002, interface: 'eth0', ttl: 4 }],
    }),
    validateRule({
      inputInterface: 'eth0',
      inputGroup: '232.1.1.1',
      inputPort: 5000,
      inputSource: '10.1.1.7',
      outputs: [{ group: '239.3.3.3', port: 6000, interface: 'eth1' }],
    }),
    validateRule({
      inputInterface: 'eth0',
      inputGroup: '239.5.5.5',
      inputPort: 5004,
      rtp: true,
      outputs: [{ group: '239.3.3.4', port: 6000, interface: 'eth1' }],
    }),
  ];
  const text = renderRules(rules, 'written by a test');
  assert.match(text, /rtp: true/);
  assert.match(text, /^\/\/ written by a test\n/);
  const again = parseConfig(text, 'saved.json5');
  assert.ok(again.ok, JSON.stringify(again));
  assert.deepEqual(
    again.config.rules.map((r) => validateRule(r)),
    rules,
  );
});

test('one pass reports shape and meaning together: an unknown key does not hide a bad address', () => {
  const result = parseConfig(
    `{ wrokers: 2, rules: [
        { input: { interface: "eth0", group: "239.1.1", port: 5000 }, outputs: [{ group: "239.2.2.2", port: 6000, interface: "eth1" }] },
        { input: { interface: "eth0", group: "239.1.1.2", port: "x" }, outputs: [] } ] }`,
    FILE,
  );
  assert.deepEqual(summary(result), [
    ['E_CONFIG_UNKNOWN_KEY', 'wrokers'],
    ['E_INVALID_ADDRESS', 'rules[0].input.group'],
    ['E_CONFIG_VALUE', 'rules[1].input.port'],
  ]);
});

test('rtp: true on a rule turns its RTP stream health on; anything but true or false is refused', () => {
  const doc = (rtp: string): string =>
    `{ rules: [{ input: { interface: "eth0", group: "239.1.1.1", port: 5004 }, rtp: ${rtp}, outputs: [{ group: "239.2.2.2", port: 6000, interface: "eth1" }] }] }`;
  const on = parseConfig(doc('true'), FILE);
  assert.ok(on.ok, JSON.stringify(on));
  assert.equal(validateRule(on.config.rules[0]!).rtp, true);
  const off = parseConfig(doc('false'), FILE);
  assert.ok(off.ok, JSON.stringify(off));
  assert.equal(validateRule(off.config.rules[0]!).rtp, false);
  assert.deepEqual(summary(parseConfig(doc('"yes"'), FILE)), [['E_CONFIG_VALUE', 'rules[0].rtp']]);
});
