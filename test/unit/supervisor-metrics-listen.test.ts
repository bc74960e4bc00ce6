import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/supervisor/config-file.js';
import { parseMetricsAddress } from '../../src/supervisor/metrics-address.js';

const FILE = '/etc/mcr/mcr.json5';

test('HOST:PORT takes IPv4 and bracketed IPv6 addresses and a port 1-65535', () => {
  for (const [text, host, port] of [
    ['127.0.0.1:9464', '127.0.0.1', 9464],
    ['0.0.0.0:1', '0.0.0.0', 1],
    ['[::1]:9464', '::1', 9464],
    ['[::]:65535', '::', 65535],
  ] as const) {
    const parsed = parseMetricsAddress(text);
    assert.ok(parsed.ok, text);
    assert.deepEqual(parsed.address, { host, port, text });
  }
});

test('anything else is refused with what is wrong', () => {
  const cases: [string, RegExp][] = [
    ['9464', /has no address: write 127\.0\.0\.1:9464/],
    ['::1', /IPv6 address without a port/],
    ['localhost:9464', /localhost, which is not an IPv4 address \(names are not resolved\)/],
    [':9464', /an empty address/],
    ['127.0.0.1:0', /port 0, outside 1-65535/],
    ['127.0.0.1:70000', /port 70000, outside/],
    ['127.0.0.1:', /is not HOST:PORT/],
    ['::1:9464', /IPv6 address without a port: write \[ADDRESS\]:PORT/],
    ['[::1]9464', /is not HOST:PORT/],
    ['[127.0.0.1]:9464', /not an IPv6 address/],
    ['256.1.1.1:9464', /not an IPv4 address/],
    ['127.0.0.1:9464 ', /is not HOST:PORT/],
  ];
  for (const [text, why] of cases) {
    const parsed = parseMetricsAddress(text);
    assert.equal(parsed.ok, false, text);
    if (!parsed.ok) assert.match(parsed.why, why, text);
  }
});

test('metrics.listen in a config file becomes the setting', () => {
  const result = parseConfig(`{ metrics: { listen: '127.0.0.1:9464' } }`, FILE);
  assert.ok(result.ok, JSON.stringify(result));
  assert.deepEqual(result.config.settings, { metricsListen: '127.0.0.1:9464' });
});

test('a bad metrics.listen is a problem of the file, reported with the others, in the config style', () => {
  const result = parseConfig(
    `{
      metrics: { listen: 'localhost:9464' },
      workers: 0,
      rules: [{ input: { interface: 'eth0', group: '239.1.1.1', port: 5000 }, outputs: [] }],
    }`,
    FILE,
  );
  assert.equal(result.ok, false);
  if (result.ok) return;
  const listen = result.problems.find((p) => p.path === 'metrics.listen');
  assert.ok(listen, JSON.stringify(result.problems));
  assert.equal(listen.code, 'E_CONFIG_VALUE');
  assert.equal(listen.value, 'localhost:9464');
  assert.match(
    listen.message,
    /^\/etc\/mcr\/mcr\.json5: metrics\.listen "localhost:9464" has localhost, which is not an IPv4 address \(names are not resolved\) \(allowed: HOST:PORT .*127\.0\.0\.1:9464/,
  );
  assert.ok(result.problems.some((p) => p.path === 'workers'));
  assert.ok(result.problems.some((p) => p.code === 'E_NO_OUTPUTS'));
});

test('metrics.listen of the wrong type, and misspelt keys, get the config’s messages and did-you-mean', () => {
  const result = parseConfig(`{ metrics: { listen: 9464, lisen: 'x' }, metric: {} }`, FILE);
  assert.equal(result.ok, false);
  if (result.ok) return;
  const messages = result.problems.map((p) => [p.code, p.message]);
  assert.deepEqual(messages, [
    ['E_CONFIG_VALUE', `${FILE}: metrics.listen 9464 is not a string`],
    [
      'E_CONFIG_UNKNOWN_KEY',
      `${FILE}: metrics.lisen is not a setting mcr knows; did you mean listen? (allowed here: listen)`,
    ],
    ['E_CONFIG_UNKNOWN_KEY', expectUnknown('metric', 'metrics')],
  ]);
});

function expectUnknown(key: string, suggestion: string): string {
  const problems = parseConfig(`{ ${key}: {} }`, FILE);
  assert.equal(problems.ok, false);
  const message = problems.ok ? '' : problems.problems[0]!.message;
  assert.match(message, new RegExp(`did you mean ${suggestion}\\?`));
  return message;
}
