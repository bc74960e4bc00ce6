import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BIN, Topology } from '../helpers/topology.js';

// mcrgen failing: each problem is one line that names what failed plus, where the errno alone
// does not say it, a hint with the fix; exit 2 for a bad command line, 1 for a refused operation.

const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];

interface Result {
  code: number;
  stderr: string;
}

function mcrgen(topo: Topology, ns: string, args: string[], asNobody = false): Result {
  const r = asNobody
    ? topo.exec(ns, 'setpriv', [...NOBODY, BIN('mcrgen'), ...args])
    : topo.exec(ns, BIN('mcrgen'), args);
  return { code: r.code, stderr: r.stderr };
}

function assertClear(r: Result, code: number, patterns: RegExp[]): void {
  assert.equal(r.code, code, r.stderr);
  for (const pattern of patterns) assert.match(r.stderr, pattern);
  for (const line of r.stderr.split('\n').filter((l) => l !== '')) {
    assert.match(line, /^mcrgen: /, `every line is mcrgen's own: ${line}`);
  }
  assert.doesNotMatch(r.stderr, /\n\s+at |ERR_[A-Z_]+/, 'no stack, no Node internals');
}

const recv = (group: string, port: number): string[] => [
  'recv',
  '--interface',
  'eth0',
  '--group',
  group,
  '--port',
  String(port),
  '--duration',
  '1',
];
const send = (more: string[]): string[] => [
  ...['send', '--interface', 'eth0', '--group', '239.1.1.1', '--port', '5000'],
  ...['--rate', '100', '--size', '100', '--count', '2', ...more],
];

test('mcrgen: an interface that does not exist is a usage error', () => {
  const topo = new Topology();
  try {
    const r = mcrgen(topo, topo.receiver, [
      'recv',
      '--interface',
      'nope0',
      '--group',
      '239.1.1.1',
      '--port',
      '5000',
      '--duration',
      '1',
    ]);
    assertClear(r, 2, [/^mcrgen: --interface: no interface named "nope0" in this network namespace/]);
  } finally {
    topo.destroy();
  }
});

test('mcrgen: a group it cannot join names the group, the interface and the limit', () => {
  const topo = new Topology();
  try {
    topo.sysctl(topo.receiver, 'net.ipv4.igmp_max_memberships', '0');
    const r = mcrgen(topo, topo.receiver, recv('239.1.1.1', 5000));
    assertClear(r, 1, [
      /^mcrgen: join 239\.1\.1\.1 on eth0 \(IP_ADD_MEMBERSHIP\) failed: ENOBUFS/m,
      /^mcrgen: hint: .*net\.ipv4\.igmp_max_memberships groups, and that is 0 here/m,
    ]);
  } finally {
    topo.destroy();
  }
});

test('mcrgen without root: a privileged port says which limit and what to do', () => {
  const topo = new Topology();
  try {
    let r = mcrgen(topo, topo.receiver, recv('239.1.1.1', 500), true);
    assertClear(r, 1, [
      /^mcrgen: bind\(udp 239\.1\.1\.1:500\) failed: EACCES/m,
      /^mcrgen: hint: ports below 1024 .*run as root, or use a port of 1024 or above/m,
    ]);
    r = mcrgen(topo, topo.sender, send(['--source-port', '80']), true);
    assertClear(r, 1, [
      /^mcrgen: bind\(udp 0\.0\.0\.0:80\) failed: EACCES/m,
      /^mcrgen: hint: ports below 1024/m,
    ]);
    // Unprivileged otherwise works: no SO_BINDTODEVICE or forced buffers are needed.
    r = mcrgen(topo, topo.sender, send([]), true);
    assert.equal(r.code, 0, r.stderr);
  } finally {
    topo.destroy();
  }
});

test('mcrgen: a broadcast destination and a down interface are explained', () => {
  const topo = new Topology();
  try {
    const broadcast = `10.${topo.net}.1.255`;
    let r = mcrgen(topo, topo.sender, [
      'send',
      '--interface',
      'eth0',
      '--group',
      broadcast,
      '--port',
      '5000',
      '--rate',
      '10',
      '--size',
      '100',
      '--count',
      '1',
    ]);
    assertClear(r, 1, [
      new RegExp(`^mcrgen: connect\\(udp ${broadcast.replaceAll('.', '\\.')}:5000\\) failed: EACCES`, 'm'),
      /^mcrgen: hint: that is a broadcast address/m,
    ]);
    topo.exec(topo.sender, 'ip', ['link', 'set', 'eth0', 'down']);
    r = mcrgen(topo, topo.sender, send([]));
    assertClear(r, 1, [/failed: ENETUNREACH|failed: ENETDOWN/, /^mcrgen: hint: .*(down|up)/m]);
  } finally {
    topo.destroy();
  }
});
