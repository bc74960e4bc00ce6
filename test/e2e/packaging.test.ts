import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  accessSync,
  appendFileSync,
  constants,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RuleView, StatsView, WorkerView } from '../../src/protocol/control-api.js';
import { groupMembers, TestAccounts } from '../helpers/accounts.js';
import { processStatus } from '../helpers/processes.js';
import { expectPackets, receiverReport, send, workerTotals } from '../helpers/relay-host.js';
import { BIN, ROOT, Topology, type RunningProcess } from '../helpers/topology.js';
import {
  asTheUnit,
  serviceDirectories,
  canApplyLimitNice,
  startAsTheUnit,
  unitCommand,
  type ServicePlaces,
} from '../helpers/as-the-unit.js';
import { UnitFile } from '../helpers/unit-file.js';

// mcr as a distribution ships it: the systemd unit, the accounts (sysusers.d), the example config
// and scripts/install.sh. The unit is checked by systemd's own tools; mcrd is then run the way
// the unit runs it (its account, exactly its capabilities, no_new_privs, its umask, its options)
// and must relay a flow, serve operators in the socket's group and refuse everyone else.

const UNIT_PATH = join(ROOT, 'packaging/systemd/mcr.service');
const SYSUSERS = join(ROOT, 'packaging/sysusers.d/mcr.conf');
const EXAMPLE = join(ROOT, 'examples/mcr.json5');
const unit = new UnitFile(UNIT_PATH);

/** systemd-analyze security's levels, best first; "OK or better" is an exposure below 5.0. */
const GOOD_LEVELS = ['PERFECT', 'SAFE', 'OK'];
const OK_THRESHOLD = 5.0;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], env?: NodeJS.ProcessEnv): Run {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 120000, env: env ?? process.env });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? r.error?.message ?? '' };
}

/** Overall exposure of a unit file as `systemd-analyze security --offline=true` rates it. */
function securityRating(
  unitFile: string,
  root?: string,
): { exposure: number; level: string; output: string } {
  const r = run('systemd-analyze', [
    'security',
    '--offline=true',
    '--no-pager',
    ...(root ? [`--root=${root}`] : []),
    unitFile,
  ]);
  const output = r.stdout + r.stderr;
  const match = /Overall exposure level for \S+: (\d+\.\d) (\w+)/.exec(output);
  assert.ok(match, `systemd-analyze security gave no overall exposure (exit ${r.code}):\n${output}`);
  return { exposure: Number(match[1]), level: match[2]!, output };
}

describe('the package: install.sh, the unit, the accounts, the example config', () => {
  let destdir = '';
  let install: Run;

  before(() => {
    destdir = mkdtempSync(join(tmpdir(), 'mcr-destdir-'));
    install = run('bash', [join(ROOT, 'scripts/install.sh')], {
      ...process.env,
      DESTDIR: destdir,
      PREFIX: '/usr',
    });
    assert.equal(install.code, 0, `install.sh failed:\n${install.stdout}${install.stderr}`);
  });
  after(() => rmSync(destdir, { recursive: true, force: true }));

  const at = (path: string): string => join(destdir, path);

  it('install.sh with DESTDIR and PREFIX=/usr lays out the tree a package ships, and runs nothing', () => {
    for (const tool of ['mcrd', 'mcrctl', 'mcrgen']) {
      const wrapper = at(`usr/bin/${tool}`);
      accessSync(wrapper, constants.X_OK);
      assert.match(
        readFileSync(wrapper, 'utf8'),
        new RegExp(`^exec /\\S*node /usr/lib/mcr/bin/${tool} "\\$@"$`, 'm'),
      );
    }
    for (const file of [
      'usr/lib/mcr/package.json',
      'usr/lib/mcr/bin/mcrd',
      'usr/lib/mcr/dist/src/cli/mcrd.js',
      'usr/lib/mcr/dist/src/cli/mcrd-worker.js',
      'usr/lib/mcr/dist/src/cli/mcrctl.js',
      'usr/lib/mcr/dist/src/cli/mcrgen.js',
      'usr/lib/mcr/node_modules/koffi/package.json',
      'usr/lib/mcr/node_modules/pino/package.json',
      'usr/lib/mcr/node_modules/json5/package.json',
      'usr/lib/mcr/node_modules/prom-client/package.json',
      'usr/share/doc/mcr/OPERATIONS.md',
      'usr/share/doc/mcr/TROUBLESHOOTING.md',
      'usr/share/doc/mcr/mcr.json5',
      'usr/share/doc/mcr/grafana-mcr.json',
    ]) {
      assert.ok(existsSync(at(file)), `${file} is installed`);
    }
    for (const absent of [
      'usr/lib/mcr/dist/test',
      'usr/lib/mcr/node_modules/typescript',
      'usr/lib/mcr/node_modules/eslint',
      'usr/lib/mcr/node_modules/prettier',
      'usr/lib/mcr.new',
      'usr/lib/mcr.old',
      'usr/lib/tmpfiles.d',
      'usr/local',
    ]) {
      assert.ok(!existsSync(at(absent)), `${absent} is not installed`);
    }
    const installedUnit = readFileSync(at('usr/lib/systemd/system/mcr.service'), 'utf8');
    assert.match(installedUnit, /^ExecStart=\/usr\/bin\/mcrd --config \/etc\/mcr\/mcr\.json5 /m);
    assert.match(installedUnit, /^ExecReload=\/usr\/bin\/mcrctl /m);
    assert.doesNotMatch(installedUnit, /\/usr\/local\//, 'no path of the default PREFIX is left');
    assert.equal(readFileSync(at('usr/lib/sysusers.d/mcr.conf'), 'utf8'), readFileSync(SYSUSERS, 'utf8'));
    assert.equal(readFileSync(at('etc/mcr/mcr.json5'), 'utf8'), readFileSync(EXAMPLE, 'utf8'));
    assert.match(install.stdout, /install: staged in /, 'it says what it did');
    assert.doesNotMatch(install.stdout, /creating the accounts/, 'a package build does not touch accounts');
  });

  it('the installed programs run from their pruned dependencies', () => {
    const app = at('usr/lib/mcr');
    const check = run(process.execPath, [join(app, 'bin/mcrd'), '--check-config', at('etc/mcr/mcr.json5')]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /OK, 4 rules/);
    for (const tool of ['mcrctl', 'mcrgen']) {
      const help = run(process.execPath, [join(app, 'bin', tool), '--help']);
      assert.equal(help.code, 0, `${tool} --help: ${help.stderr}`);
    }
  });

  it('systemd-analyze verify passes on the installed unit, and would catch a missing program', () => {
    // The unit's default dependencies and WantedBy= name targets that a real root has.
    const unitDir = at('usr/lib/systemd/system');
    for (const name of readdirSync('/usr/lib/systemd/system').filter((n) => n.endsWith('.target'))) {
      if (!existsSync(join(unitDir, name)))
        copyFileSync(join('/usr/lib/systemd/system', name), join(unitDir, name));
    }
    const verify = (): Run =>
      run('systemd-analyze', ['verify', '--man=no', `--root=${destdir}`, 'mcr.service']);
    const good = verify();
    assert.equal(good.code, 0, `systemd-analyze verify:\n${good.stdout}${good.stderr}`);
    assert.equal(good.stderr.trim(), '', 'no warning');
    renameSync(at('usr/bin/mcrd'), at('usr/bin/mcrd.away'));
    try {
      const bad = verify();
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /\/usr\/bin\/mcrd is not executable/);
    } finally {
      renameSync(at('usr/bin/mcrd.away'), at('usr/bin/mcrd'));
    }
  });

  it('systemd-analyze security --offline=true rates the unit OK or better', (t) => {
    for (const [name, file, root] of [
      ['packaging/systemd/mcr.service', UNIT_PATH, undefined],
      ['the installed unit', at('usr/lib/systemd/system/mcr.service'), destdir],
    ] as const) {
      const { exposure, level, output } = securityRating(file, root);
      t.diagnostic(`${name}: overall exposure ${exposure.toFixed(1)} ${level}`);
      console.log(`systemd-analyze security --offline=true: ${name}: ${exposure.toFixed(1)} ${level}`);
      assert.ok(exposure < OK_THRESHOLD, `exposure ${exposure} must be below ${OK_THRESHOLD}:\n${output}`);
      assert.ok(GOOD_LEVELS.includes(level), `level ${level}`);
    }
  });

  it('a second install keeps the config an operator edited', () => {
    appendFileSync(at('etc/mcr/mcr.json5'), '// edited by the operator\n');
    const again = run('bash', [join(ROOT, 'scripts/install.sh')], {
      ...process.env,
      DESTDIR: destdir,
      PREFIX: '/usr',
    });
    assert.equal(again.code, 0, again.stderr);
    assert.match(readFileSync(at('etc/mcr/mcr.json5'), 'utf8'), /edited by the operator/);
    assert.match(again.stdout, /kept the existing .*\/etc\/mcr\/mcr\.json5/);
    assert.ok(existsSync(at('usr/lib/mcr/dist/src/cli/mcrd.js')), 'the application was replaced whole');
  });

  it('the example config passes mcrd --check-config', () => {
    const r = run(BIN('mcrd'), ['--check-config', EXAMPLE]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^.*mcr\.json5: OK, \d+ rules\n/);
    assert.doesNotMatch(r.stdout, /warning/);
  });

  it('the sysusers file makes the accounts the unit names, mcrd in the socket group', () => {
    const root = mkdtempSync(join(tmpdir(), 'mcr-sysusers-'));
    try {
      mkdirSync(join(root, 'etc'));
      const r = run('systemd-sysusers', [`--root=${root}`, SYSUSERS]);
      assert.equal(r.code, 0, r.stderr);
      const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8');
      const group = readFileSync(join(root, 'etc/group'), 'utf8');
      for (const user of ['mcr', 'mcrd']) {
        assert.match(passwd, new RegExp(`^${user}:x:\\d+:\\d+:[^:]*:/nonexistent:/usr/sbin/nologin$`, 'm'));
      }
      const socketGroup = unit.command()[unit.command().indexOf('--socket-group') + 1];
      assert.equal(socketGroup, 'mcrctl');
      assert.match(group, /^mcrctl:x:\d+:mcrd$/m, 'mcrd is a member of the socket group');
      assert.equal(unit.get('Service', 'User'), 'mcrd');
      assert.equal(unit.get('Service', 'SupplementaryGroups'), socketGroup);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

/** The capability mask of a list of names (bit numbers from capabilities(7)). */
function capabilityMask(names: string[]): bigint {
  const bits: Record<string, number> = {
    CAP_CHOWN: 0,
    CAP_KILL: 5,
    CAP_SETGID: 6,
    CAP_SETUID: 7,
    CAP_NET_ADMIN: 12,
    CAP_NET_RAW: 13,
    CAP_PERFMON: 38,
    CAP_BPF: 39,
  };
  return names.reduce((mask, name) => {
    assert.ok(name in bits, `a capability this test knows: ${name}`);
    return mask | (1n << BigInt(bits[name]!));
  }, 0n);
}

describe('mcrd run as the unit runs it', () => {
  const accounts = new TestAccounts();
  const operator = `mcrt${process.pid}op`;
  const outsider = `mcrt${process.pid}out`;
  let topo: Topology | undefined;
  let places: ServicePlaces | undefined;
  let daemon: RunningProcess | undefined;
  const socket = (): string => places!.socketPath;

  function mcrctl(args: string[], as?: string): Run {
    const user = as ? ['setpriv', `--reuid=${as}`, `--regid=${as}`, '--init-groups'] : [];
    const command = [...user, BIN('mcrctl'), '--socket', socket(), ...args];
    return run(command[0]!, command.slice(1));
  }

  function json<T>(args: string[]): T {
    const r = mcrctl(['--json', ...args]);
    assert.equal(r.code, 0, `mcrctl ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  before(async () => {
    assert.equal(process.getuid!(), 0, 'these tests run as root');
    accounts.applySysusers(SYSUSERS, ['mcr', 'mcrd'], ['mcrctl']);
    accounts.createUser(operator, ['mcrctl']);
    accounts.createUser(outsider);
    topo = new Topology();
    places = serviceDirectories(unit, EXAMPLE);
    daemon = (await startAsTheUnit(topo, topo.relay, unit, places)).process;
  });

  after(() => {
    const problems: string[] = [];
    try {
      topo?.destroy(); // kills mcrd if a test left it running
      if (daemon && daemon.child.exitCode === null && daemon.child.signalCode === null)
        daemon.child.kill('SIGKILL');
    } catch (err) {
      problems.push(String(err));
    }
    if (places) rmSync(places.base, { recursive: true, force: true });
    // userdel refuses an account with processes left: wait for mcrd's workers to be gone.
    for (let i = 0; i < 50 && run('pgrep', ['-u', 'mcrd']).code === 0; i++) spawnSync('sleep', ['0.1']);
    try {
      accounts.removeAll();
    } catch (err) {
      problems.push(String(err));
    }
    if (problems.length > 0) throw new Error(problems.join('\n'));
  });

  it('asks for exactly the capabilities the unit grants, no more and no fewer', () => {
    // Without one of them mcrd names what it needs, as the unit should grant it.
    const r = run('setpriv', [
      '--inh-caps=-all',
      '--bounding-set=-kill',
      BIN('mcrd'),
      '--socket',
      join(places!.base, 'x.sock'),
    ]);
    assert.equal(r.code, 78, r.stderr);
    const asked = /AmbientCapabilities=([A-Z_ ]+)\)/.exec(r.stderr);
    assert.ok(asked, `mcrd names the capabilities a unit should grant:\n${r.stderr}`);
    const wanted = asked[1]!.trim().split(' ').sort();
    assert.deepEqual(unit.capabilities('AmbientCapabilities').sort(), wanted);
    assert.deepEqual(unit.capabilities('CapabilityBoundingSet').sort(), wanted);
  });

  it('runs as mcrd with exactly those capabilities, no_new_privs and the socket group, and relays a flow exactly', async (t) => {
    const niceApplied = canApplyLimitNice(unit);
    const pid = daemon!.child.pid!;
    const status = processStatus(pid);
    const mcrdUid = run('id', ['-u', 'mcrd']).stdout.trim();
    const groupId = run('getent', ['group', 'mcrctl']).stdout.split(':')[2]!;
    assert.match(status.Uid!, new RegExp(`^${mcrdUid}\\s+${mcrdUid}\\s+${mcrdUid}\\s+${mcrdUid}$`));
    assert.ok(status.Groups!.split(/\s+/).includes(groupId), `mcrd is in mcrctl (groups ${status.Groups})`);
    const mask = capabilityMask(unit.capabilities('AmbientCapabilities'));
    for (const set of ['CapPrm', 'CapEff', 'CapAmb', 'CapBnd'] as const) {
      assert.equal(BigInt(`0x${status[set]}`), mask, `${set} ${status[set]}`);
    }
    assert.equal(status.NoNewPrivs, '1');

    const file = statSync(socket());
    assert.equal(file.mode & 0o777, 0o660, 'socket mode 0660');
    assert.equal(String(file.uid), mcrdUid);
    assert.equal(String(file.gid), groupId, 'socket group mcrctl');

    const workers = json<{ workers: WorkerView[] }>(['workers']).workers;
    assert.ok(workers.length > 0);
    for (const w of workers) {
      assert.equal(w.user, 'mcr');
      assert.equal(w.confined, true, `worker ${w.id} runs under its own filter`);
      assert.equal(processStatus(w.pid!).CapEff, '0000000000000000');
      // Without CAP_SYS_NICE: the unit's LimitNICE lets it take --worker-nice's default. Where
      // the test cannot set that limit, the worker runs at 0 and says what it lacks.
      assert.equal(w.nice, niceApplied ? -10 : 0, `worker ${w.id}'s packet thread`);
    }
    if (!niceApplied) {
      t.diagnostic(
        'this host does not let the test raise RLIMIT_NICE (no CAP_SYS_RESOURCE): the fallback is checked',
      );
      await daemon!.waitForStderr('W_WORKER_NICE', 5000);
      assert.match(daemon!.stderr, /W_WORKER_NICE.*could not set its nice value to -10.*LimitNICE=-10/);
    }
    // The example's rules wait for interfaces this namespace does not have.
    const fromConfig = json<{ rules: RuleView[] }>(['list']).rules;
    assert.equal(fromConfig.length, 4);
    for (const rule of fromConfig) assert.equal(rule.state, 'waiting', `${rule.name}: ${rule.reason}`);

    const added = mcrctl(['add', '-i', 'in0', '-g', '239.1.1.1', '-p', '5000', '-o', '239.2.2.2:6000:out0']);
    assert.equal(added.code, 0, added.stderr);
    const recv = await expectPackets(topo!, 'eth0', '239.2.2.2', 6000, 1000);
    send(topo!, '239.1.1.1', 5000, { rate: 2000, size: 300, count: 1000 });
    const { code, report } = await receiverReport(recv);
    assert.equal(code, 0, `${recv.stderr}\n${daemon!.stderr.slice(-4000)}`);
    assert.equal(report.totals.unique, 1000);
    assert.equal(report.totals.duplicates, 0);
    const stats = json<StatsView>(['stats']);
    assert.equal(workerTotals(stats).forwarded, 1000);

    // The runtime rule is kept in the state directory, not readable by others (UMask=0027).
    const kept = statSync(join(places!.stateDir, 'runtime-rules.json5'));
    assert.equal(String(kept.uid), mcrdUid);
    assert.equal(kept.mode & 0o007, 0, 'not world-readable');
  });

  it('serves a member of the socket group (list, add) and refuses an account outside it with E_PERMISSION', () => {
    assert.ok(groupMembers('mcrctl').includes(operator));
    const list = mcrctl(['list'], operator);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /in0 239\.1\.1\.1:5000/);
    const add = mcrctl(
      ['add', '-i', 'in0', '-g', '239.1.1.9', '-p', '5000', '-o', '239.2.2.9:6000:out0'],
      operator,
    );
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /added rule r-/);

    for (const args of [
      ['list'],
      ['add', '-i', 'in0', '-g', '239.1.1.8', '-p', '5000', '-o', '239.2.2.8:6000:out0'],
    ]) {
      const refused = mcrctl(args, outsider);
      assert.equal(refused.code, 1, `${args[0]} as ${outsider}: ${refused.stdout}${refused.stderr}`);
      assert.match(refused.stderr, /^mcrctl: E_PERMISSION: no permission to open .*mcrd\.sock/m);
    }
    const rules = json<{ rules: RuleView[] }>(['list']).rules;
    assert.ok(rules.some((r) => r.input.group === '239.1.1.9'));
    assert.ok(!rules.some((r) => r.input.group === '239.1.1.8'), "the outsider's rule was not added");
  });

  it("the unit's ExecReload, run as mcrd, applies the config file and fails on a broken one", () => {
    const configPath = places!.configPath;
    const reload = (): Run => {
      const command = [...asTheUnit(unit), ...unitCommand(unit, 'ExecReload', places!)];
      return run(command[0]!, command.slice(1));
    };
    const original = readFileSync(configPath, 'utf8');
    const withRule = original.replace(
      /rules: \[/,
      "rules: [\n    { name: 'reloaded', input: { interface: 'in0', group: '239.1.1.7', port: 5000 }, outputs: [{ group: '239.2.2.7', port: 6000, interface: 'out0' }] },",
    );
    assert.notEqual(withRule, original);
    writeFileSync(configPath, withRule);
    const applied = reload();
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /added 1, removed 0, changed 0, unchanged 4/);
    const names = (): string[] => json<{ rules: RuleView[] }>(['list']).rules.map((r) => r.name ?? r.id);
    assert.ok(names().includes('reloaded'));
    assert.ok(names().length >= 7, 'runtime rules stay');

    writeFileSync(
      configPath,
      withRule.replace("port: 6000, interface: 'out0' }] },", "port: 0, interface: 'out0' }] },"),
    );
    const before = names();
    const broken = reload();
    assert.equal(broken.code, 1, 'systemctl reload would fail');
    assert.match(broken.stderr, /rules\[0\]\.outputs\[0\]\.port/);
    assert.deepEqual(names(), before, 'a broken file changes nothing');
  });

  it('stops cleanly on SIGTERM and removes its socket', async () => {
    daemon!.child.kill('SIGTERM');
    const { code, signal } = await daemon!.exited;
    assert.equal(signal, null);
    assert.equal(code, 0, daemon!.stderr.slice(-2000));
    assert.ok(!existsSync(socket()));
  });
});
