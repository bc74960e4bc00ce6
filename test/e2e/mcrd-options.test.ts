import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { BIN, Topology } from '../helpers/topology.js';

// mcrd's command line: values that cannot work are refused before anything starts, in one line
// naming the option and the limit, with exit status 2 (bad usage) like mcrctl and mcrgen.

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function mcrd(topo: Topology, args: string[]): Result {
  return topo.exec(topo.relay, BIN('mcrd'), ['--socket', topo.socketPath, ...args]);
}

/** Exit 2, one "mcrd: ..." line matching `pattern`, no stack, nothing started or created. */
function assertUsage(topo: Topology, args: string[], pattern: RegExp): void {
  const r = mcrd(topo, args);
  assert.equal(r.code, 2, `mcrd ${args.join(' ')}: ${r.stderr}`);
  const line = r.stderr.split('\n').find((l) => l.startsWith('mcrd: '));
  assert.ok(line, `mcrd ${args.join(' ')} printed a line for a person:\n${r.stderr}`);
  assert.match(line, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at |"stack"|"worker":/, 'no stack, no worker started');
  assert.deepEqual(readdirSync(topo.dir), [], 'no socket created');
}

test('mcrd: unknown options and values out of range exit 2 with one line saying the limit and why', () => {
  const topo = new Topology();
  try {
    assertUsage(topo, ['--bogus'], /unknown option '--bogus'/);
    assertUsage(topo, ['--workers'], /argument missing/);
    for (const n of ['0', '257', 'abc', '-1']) {
      assertUsage(topo, ['--workers', n], /--workers.*1 to 256.*PACKET_FANOUT group holds at most 256/);
    }
    for (const n of ['0', '1025', '4096']) {
      assertUsage(topo, ['--ring-size', n], /--ring-size.*1 to 1024/);
    }
    assertUsage(topo, ['--fanout', 'round-robin'], /--fanout.*hash, cpu/);
    assertUsage(topo, ['--batch-size', '0'], /--batch-size.*1 to 1024/);
    for (const n of ['-21', '20', 'high', '1.5']) {
      assertUsage(topo, [`--worker-nice=${n}`], /--worker-nice.*-20 to 19/);
    }
  } finally {
    topo.destroy();
  }
});

test('mcrd: --user must exist and must not be root', () => {
  const topo = new Topology();
  try {
    assertUsage(topo, ['--user', 'no-such-user-mcr'], /^mcrd: E_UNKNOWN_USER: --user no-such-user-mcr/);
    assertUsage(topo, ['--user', 'root'], /^mcrd: E_PRIVILEGED_USER: --user root .*uid 0/);
  } finally {
    topo.destroy();
  }
});

test('mcrd: rings larger than the memory this host has available are refused', (t) => {
  const available =
    Number(/^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))![1]) * 1024;
  const workers = Math.ceil(available / 2 ** 30) + 1;
  if (workers > 256) return t.skip('this host has more memory than 256 rings of 1 GiB');
  const topo = new Topology();
  try {
    assertUsage(
      topo,
      ['--ring-size', '1024', '--workers', String(workers)],
      /^mcrd: E_RING_MEMORY: .*--ring-size 1024 MiB.*MemAvailable/,
    );
  } finally {
    topo.destroy();
  }
});

test('mcrd --help documents signals and exit statuses; --help and --version exit 0', () => {
  const topo = new Topology();
  try {
    const help = mcrd(topo, ['--help']);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /Signals:/);
    assert.match(help.stdout, /Exit status:[\s\S]*0[\s\S]*1[\s\S]*2/);
    const version = mcrd(topo, ['--version']);
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
  } finally {
    topo.destroy();
  }
});
