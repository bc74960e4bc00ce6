import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { WorkerView } from '../../src/protocol/control-api.js';
import { TestAccounts } from '../helpers/accounts.js';
import { serviceDirectories, startAsTheUnit, type ServicePlaces } from '../helpers/as-the-unit.js';
import { expectPackets, receiverReport, send } from '../helpers/relay-host.js';
import { BIN, ROOT, sleep, Topology } from '../helpers/topology.js';
import { UnitFile } from '../helpers/unit-file.js';

// The unit's SystemCallFilter= is an allow list: a call outside it fails with EPERM under
// systemd (SystemCallErrorNumber=EPERM), which would break mcrd or its workers in production
// only. systemd is not PID 1 on test machines, so the filter cannot be applied here; instead
// mcrd runs as the unit runs it, under strace, through start-up, relaying, rule changes, both
// kinds of reload, a worker's restart and a clean stop, and every system call it and its
// workers made must be in the set the unit's filter allows (as systemd-analyze resolves it).

const unit = new UnitFile(join(ROOT, 'packaging/systemd/mcr.service'));

/** The system calls of a set (@name) or a single call, as systemd-analyze syscall-filter lists them. */
function expand(item: string, seen = new Set<string>()): string[] {
  if (!item.startsWith('@')) return [item];
  if (seen.has(item)) return [];
  seen.add(item);
  const r = spawnSync('systemd-analyze', ['syscall-filter', '--no-pager', item], { encoding: 'utf8' });
  assert.equal(r.status, 0, `systemd-analyze syscall-filter ${item}: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .slice(1)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .flatMap((l) => expand(l, seen));
}

/**
 * What the unit's SystemCallFilter= lines allow, read as systemd does: the first line is an allow
 * list (here), later `~` lines take calls away and plain lines add them back. systemd also always
 * allows execve, exit, exit_group, getrlimit, rt_sigreturn and sigreturn (systemd.exec(5)).
 */
function allowedByUnit(): Set<string> {
  const lines = unit.all('Service', 'SystemCallFilter');
  assert.ok(lines.length > 0 && !lines[0]!.startsWith('~'), 'the unit gives an allow list first');
  const allowed = new Set(['execve', 'exit', 'exit_group', 'getrlimit', 'rt_sigreturn', 'sigreturn']);
  for (const line of lines) {
    const deny = line.startsWith('~');
    for (const item of line
      .replace(/^~/, '')
      .split(/\s+/)
      .filter((i) => i !== '')) {
      for (const call of expand(item)) {
        if (deny) allowed.delete(call);
        else allowed.add(call);
      }
    }
  }
  return allowed;
}

/**
 * The calls in an `strace -f` log, by name. The first process is the launcher (setpriv, then
 * env): its calls before it becomes node are not the service's (systemd does that part itself).
 */
function callsInTrace(log: string): Map<string, number> {
  const lines = log.split('\n');
  const launcher = lines[0]?.split(/\s+/)[0];
  let launched = false;
  const calls = new Map<string, number>();
  for (const line of lines) {
    const match = /^(\d+)\s+([a-z_0-9]+)\(/.exec(line);
    if (!match) continue;
    const [, pid, name] = match;
    if (pid === launcher && !launched) {
      if (name === 'execve' && /^\d+\s+execve\("[^"]*\/node"/.test(line) && !/= -1 /.test(line))
        launched = true;
      continue;
    }
    calls.set(name!, (calls.get(name!) ?? 0) + 1);
  }
  assert.ok(launched, 'the trace shows the launcher becoming node');
  return calls;
}

test("every system call mcrd and its workers make is one the unit's SystemCallFilter allows", async (t) => {
  if (spawnSync('strace', ['-V']).status !== 0)
    assert.fail('strace is missing: scripts/setup.sh --test-tools installs it');
  const allowed = allowedByUnit();
  assert.ok(allowed.has('seccomp'), 'workers install their own filter with seccomp()');
  const accounts = new TestAccounts();
  let topo: Topology | undefined;
  let places: ServicePlaces | undefined;
  try {
    accounts.applySysusers(join(ROOT, 'packaging/sysusers.d/mcr.conf'), ['mcr', 'mcrd'], ['mcrctl']);
    topo = new Topology();
    places = serviceDirectories(unit, join(ROOT, 'examples/mcr.json5'));
    const trace = join(places.base, 'strace.log');
    const { pid } = await startAsTheUnit(topo, topo.relay, unit, places, [
      'strace',
      '-f',
      '-qq',
      '-o',
      trace,
    ]);
    const mcrctl = (args: string[]): string => {
      const r = spawnSync(BIN('mcrctl'), ['--socket', places!.socketPath, ...args], { encoding: 'utf8' });
      assert.equal(r.status, 0, `mcrctl ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };

    // Relaying, with the rule changes and reloads an operator makes.
    mcrctl([
      'add',
      '-i',
      'in0',
      '-g',
      '239.1.1.1',
      '-p',
      '5000',
      '-o',
      '239.2.2.2:6000:out0',
      '--name',
      'traced',
    ]);
    const recv = await expectPackets(topo, 'eth0', '239.2.2.2', 6000, 300);
    send(topo, '239.1.1.1', 5000, { rate: 500, size: 200, count: 300 });
    assert.equal((await receiverReport(recv)).code, 0, recv.stderr);
    mcrctl(['add', '-i', 'in0', '-g', '239.1.1.2', '-p', '5000', '-o', '239.2.2.3:6000:out0:socket']);
    // The XDP path: mcrd loads and attaches programs (bpf), reads the XDP features of the links
    // (generic netlink) and the maps' counters, and detaches with the rule's removal. A redirect
    // into a veth needs NAPI at its peer: GRO gives it one.
    spawnSync('ip', ['netns', 'exec', topo.receiver, 'ethtool', '-K', 'eth0', 'gro', 'on']);
    mcrctl([
      'add',
      '-i',
      'in0',
      '-g',
      '239.1.1.3',
      '-p',
      '5000',
      '-o',
      '239.2.2.4:6000:out0:xdp',
      '--name',
      'xdp',
    ]);
    send(topo, '239.1.1.3', 5000, { rate: 500, size: 200, count: 50 });
    mcrctl(['stats']);
    mcrctl(['remove', '--name', 'xdp']);
    mcrctl(['config', 'load', places.configPath]);
    process.kill(pid, 'SIGHUP');
    mcrctl(['remove', '--name', 'traced']);
    mcrctl(['stats']);
    mcrctl(['log-level', 'set', 'debug']);

    // A worker killed from outside is replaced: the supervisor's spawn path and a new worker's
    // start-up (dropping privileges, installing its filter) run again under the trace.
    const before = JSON.parse(mcrctl(['--json', 'workers'])) as { workers: WorkerView[] };
    const victim = before.workers[0]!;
    process.kill(victim.pid!, 'SIGKILL');
    for (let i = 0; ; i++) {
      const now = (JSON.parse(mcrctl(['--json', 'workers'])) as { workers: WorkerView[] }).workers[0]!;
      if (now.pid !== victim.pid && now.state === 'running' && now.confined) break;
      assert.ok(i < 300, 'the worker was replaced within 30 s');
      await sleep(100);
    }

    process.kill(pid, 'SIGTERM');
    for (let i = 0; spawnSync('kill', ['-0', String(pid)]).status === 0; i++) {
      assert.ok(i < 300, 'mcrd stopped within 30 s');
      await sleep(100);
    }
    await sleep(500); // strace writes the last lines as it exits

    const calls = callsInTrace(readFileSync(trace, 'utf8'));
    const outside = [...calls.keys()].filter((c) => !allowed.has(c)).sort();
    t.diagnostic(`${calls.size} distinct system calls traced; the unit allows ${allowed.size}`);
    assert.deepEqual(outside, [], `calls the unit's filter would refuse (EPERM): ${outside.join(', ')}`);
    for (const needed of [
      'seccomp',
      'setuid',
      'setgid',
      'setgroups',
      'capset',
      'chown',
      'sched_setaffinity',
      'setpriority',
    ]) {
      assert.ok(calls.has(needed), `the trace shows ${needed}, which the unit's filter keeps for it`);
    }
  } finally {
    topo?.destroy();
    if (places) rmSync(places.base, { recursive: true, force: true });
    for (let i = 0; i < 50 && spawnSync('pgrep', ['-u', 'mcrd']).status === 0; i++) await sleep(100);
    accounts.removeAll();
  }
});
