import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import type { StatsView } from '../../src/protocol/control-api.js';
import { RelayHost } from '../helpers/relay-host.js';
import { BIN, sleep, Topology, type RunningProcess } from '../helpers/topology.js';

// mcrctl top and mcrctl stats --watch as a person and a script meet them: top in a real
// terminal (tmux), with steady traffic on two rules and frames no rule takes; stats --watch into
// a pipe, as JSON lines and as plain text.

const NET = 62;
const CAM1_PPS = 400;
const CAM2_PPS = 100;
const UNMATCHED_PPS = 100;

/** A session on a tmux server of the test's own (private socket), so it never touches anyone else's. */
class Tmux {
  readonly server = `mcrtop${process.pid}`;
  readonly session: string;

  constructor(session: string) {
    this.session = session;
  }

  run(args: string[]): string {
    const r = spawnSync('tmux', ['-L', this.server, ...args], { encoding: 'utf8', timeout: 10000 });
    if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  start(command: string, columns: number, rows: number): void {
    // No config file: the test's terminal is tmux's defaults, whatever the machine's ~/.tmux.conf says.
    this.run([
      '-f',
      '/dev/null',
      'new-session',
      '-d',
      '-s',
      this.session,
      '-x',
      String(columns),
      '-y',
      String(rows),
      command,
    ]);
  }

  /** The pane's text; with `escapes`, with the escape sequences of its colours and attributes. */
  capture(escapes = false): string {
    return this.run(['capture-pane', '-p', ...(escapes ? ['-e'] : []), '-t', this.session]);
  }

  /** A tmux format of the pane, e.g. #{alternate_on}. */
  pane(format: string): string {
    return this.run(['display-message', '-p', '-t', this.session, format]).trim();
  }

  resize(columns: number, rows: number): void {
    this.run(['resize-window', '-t', this.session, '-x', String(columns), '-y', String(rows)]);
  }

  keys(...keys: string[]): void {
    this.run(['send-keys', '-t', this.session, ...keys]);
  }

  async waitFor(
    predicate: (screen: string) => boolean,
    what: string,
    timeoutMs = 15000,
    escapes = false,
  ): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = this.capture(escapes);
      if (predicate(screen)) return screen;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; the pane shows:\n${screen}`);
      await sleep(200);
    }
  }

  kill(): void {
    spawnSync('tmux', ['-L', this.server, 'kill-server'], { encoding: 'utf8' });
  }
}

/** The value under a right-aligned column title in a row that starts with `label`. */
function cellUnder(screen: string, title: string, label: string): string {
  const lines = screen.split('\n');
  const header = lines.find((l) => l.includes(title) && l.startsWith('RULE'));
  assert.ok(header, `no rules header with ${title}:\n${screen}`);
  const end = header.indexOf(title) + title.length;
  const row = lines.find((l) => l.startsWith(`${label} `));
  assert.ok(row, `no row for ${label}:\n${screen}`);
  return row.slice(0, end).trim().split(/\s+/).pop()!;
}

const ESC = '\u001b';
/** A colour or attribute sequence (CSI … m), its parameters captured. */
const SGR = new RegExp(`${ESC}\\[([\\d;]*)m`, 'g');

/** Text without its colour and attribute sequences. */
function stripSgr(text: string): string {
  return text.replace(SGR, '');
}

/** The colour codes (SGR 30-38, 40-48, 90-97, 100-107) in `text`; 39 and 49 are "default" and not counted. */
function coloursIn(text: string): number[] {
  const codes = [...text.matchAll(SGR)].flatMap((m) => m[1]!.split(';').map(Number));
  return codes.filter(
    (c) => (c >= 30 && c <= 38) || (c >= 40 && c <= 48) || (c >= 90 && c <= 97) || (c >= 100 && c <= 107),
  );
}

/** "400", "1.20k" → a number. */
function siValue(text: string): number {
  const m = /^([\d.]+)([kMG]?)$/.exec(text);
  assert.ok(m, `not a rate: ${text}`);
  return Number(m[1]) * { '': 1, k: 1e3, M: 1e6, G: 1e9 }[m[2] as '' | 'k' | 'M' | 'G'];
}

function startTraffic(topo: Topology): RunningProcess[] {
  const send = (group: string, streams: number, rate: number): RunningProcess =>
    topo.start(topo.sender, BIN('mcrgen'), [
      ...['send', '--interface', 'eth0', '--group', group, '--streams', String(streams)],
      ...['--port', '5000', '--rate', String(rate), '--size', '200', '--duration', '90'],
    ]);
  return [
    send('239.62.1.1', 1, CAM1_PPS),
    // cam2's group and the next one, which no rule takes: dropped by the worker as no_rule.
    send('239.62.1.2', 2, CAM2_PPS + UNMATCHED_PPS),
  ];
}

test('mcrctl top shows rules, rates and drops live, follows the terminal size, survives mcrd going away and quits on q', async () => {
  const topo = new Topology({ net: NET, outputLinks: 1 });
  const tmux = new Tmux('top');
  try {
    let relay = await RelayHost.start(topo, ['--workers', '1']);
    relay.addRule('239.62.1.1', 5000, '239.62.2.1:6000:out0', ['-n', 'cam1']);
    relay.addRule('239.62.1.2', 5000, '239.62.2.2:6000:out0', ['-n', 'cam2']);
    const senders = startTraffic(topo);

    const command = `echo before-top; ${BIN('mcrctl')} --socket ${topo.socketPath} top; echo "top exited $?"; stty -a; sleep 300`;
    tmux.start(command, 160, 40);
    // Rates need two of mcrd's samples, drops per second two of top's refreshes.
    let screen = await tmux.waitFor(
      (s) => /^cam1 /m.test(s) && /^cam2 /m.test(s) && siValue(cellUnder(s, 'IN PPS', 'cam1')) > CAM1_PPS / 2,
      'both rules with a rate',
    );
    assert.match(screen, /^mcrd \S+\s+pid \d+\s+up /m);
    assert.equal(tmux.pane('#{alternate_on}'), '1', 'top draws on the alternate screen');
    screen = await tmux.waitFor(
      (s) => /drops by reason: .*no_rule/.test(s) && /drops [\d.]+[kM]?\/s/.test(s),
      'the no_rule drops and their rate',
    );
    const cam1 = siValue(cellUnder(screen, 'IN PPS', 'cam1'));
    const cam2 = siValue(cellUnder(screen, 'IN PPS', 'cam2'));
    assert.ok(
      Math.abs(cam1 - CAM1_PPS) <= CAM1_PPS * 0.15,
      `cam1 at ${cam1} pps, sent ${CAM1_PPS}\n${screen}`,
    );
    assert.ok(
      Math.abs(cam2 - CAM2_PPS) <= CAM2_PPS * 0.2,
      `cam2 at ${cam2} pps, sent ${CAM2_PPS}\n${screen}`,
    );
    assert.ok(siValue(cellUnder(screen, 'OUT PPS', 'cam1')) > 0, screen);
    assert.match(
      cellUnder(screen, 'LAST', 'cam1'),
      /^\d\.\ds$/,
      `a flowing stream was seen seconds ago at most\n${screen}`,
    );
    const lines = screen.split('\n');
    assert.ok(
      lines.findIndex((l) => l.startsWith('cam1 ')) < lines.findIndex((l) => l.startsWith('cam2 ')),
      `sorted by input rate:\n${screen}`,
    );
    const totals = lines.find((l) => l.startsWith('in '))!;
    const dropRate = /drops ([\d.]+[kM]?)\/s \(total (\d+)\)/.exec(totals);
    assert.ok(dropRate, `drops in the totals: ${totals}`);
    assert.ok(Number(dropRate[2]) > 0, totals);
    const screenWidth = (s: string): number => Math.max(...s.split('\n').map((l) => l.trimEnd().length));
    assert.ok(screenWidth(screen) <= 160);
    assert.match(screen, /IN BIT\/S/, 'a wide terminal shows every column');

    // Narrower and shorter: columns give way, nothing wraps, the layout follows at once.
    tmux.resize(64, 20);
    screen = await tmux.waitFor((s) => !/IN BIT\/S/.test(s) && /^cam1 /m.test(s), 'the narrow layout');
    assert.ok(screenWidth(screen) <= 64, `lines fit in 64 columns:\n${screen}`);
    assert.match(screen, /^RULE\s+IN PPS/m, 'rule and input rate stay');
    assert.ok(siValue(cellUnder(screen, 'IN PPS', 'cam1')) > 0, screen);
    tmux.resize(120, 30);
    screen = await tmux.waitFor((s) => /OUT PPS/.test(s), 'the wider layout again');
    assert.ok(screenWidth(screen) <= 120, screen);

    // s cycles the order: by name next, cam1 first then too; then drops; back to rate.
    tmux.keys('s');
    await tmux.waitFor((s) => /sort: name/.test(s), 'sort by name');
    tmux.keys('s', 's');
    await tmux.waitFor((s) => /sort: rate/.test(s), 'sort by rate again');

    // mcrd goes away: top says so and keeps trying; a new mcrd is picked up.
    const oldPid = /pid (\d+)/.exec(screen)![1];
    await relay.stop();
    await tmux.waitFor((s) => /mcrd not reachable/.test(s), 'the outage shown');
    relay = await RelayHost.start(topo, ['--workers', '1']);
    screen = await tmux.waitFor(
      (s) => !/mcrd not reachable/.test(s) && /pid (\d+)/.exec(s)?.[1] !== oldPid,
      'the new mcrd',
    );
    assert.match(screen, /no rules/, 'the new mcrd has no rules yet');

    tmux.keys('q');
    screen = await tmux.waitFor((s) => /top exited/.test(s), 'top to quit');
    assert.match(screen, /top exited 0/);
    assert.match(screen, /^before-top$/m, 'the screen from before top is back');
    assert.equal(tmux.pane('#{alternate_on}'), '0', 'the alternate screen is left');
    assert.equal(tmux.pane('#{cursor_flag}'), '1', 'the cursor is shown again');
    // The terminal is out of raw mode: line editing and echo are on again.
    assert.match(screen, /(^|\s)icanon(\s|$)/m, screen);
    assert.match(screen, /(^|\s)echo(\s|$)/m, screen);

    // Colours: state in green on a terminal; none at all with NO_COLOR. Ctrl-C quits as q does.
    relay.addRule('239.62.1.1', 5000, '239.62.2.1:6000:out0', ['-n', 'cam1']);
    const topCommand = (env: string): string =>
      `${env} ${BIN('mcrctl')} --socket ${topo.socketPath} top; echo "top exited $?"; sleep 300`;
    const coloured = new Tmux('coloured');
    coloured.start(topCommand(''), 120, 30);
    const sgr = await coloured.waitFor((s) => /^cam1 /m.test(stripSgr(s)), 'cam1 again', 15000, true);
    assert.ok(sgr.includes(`${ESC}[32mactive`), `an active rule in green:\n${sgr}`);
    const monochrome = new Tmux('monochrome');
    monochrome.start(topCommand('NO_COLOR=1'), 120, 30);
    const plainScreen = await monochrome.waitFor((s) => /^cam1 /m.test(stripSgr(s)), 'cam1', 15000, true);
    assert.deepEqual(coloursIn(plainScreen), [], 'no colour with NO_COLOR');
    assert.ok(coloursIn(sgr).includes(32), 'while the same screen without it has some');
    monochrome.keys('C-c');
    await monochrome.waitFor((s) => /top exited 0/.test(s), 'Ctrl-C to quit');
    assert.equal(monochrome.pane('#{alternate_on}'), '0');

    // stats --watch on a terminal redraws in place: one time line, changing; q quits.
    const watch = new Tmux('watch');
    watch.start(
      `${BIN('mcrctl')} --socket ${topo.socketPath} stats --watch; echo "watch exited $?"; sleep 300`,
      150,
      40,
    );
    const first = await watch.waitFor((s) => /rates over/.test(s), 'the first stats');
    const second = await watch.waitFor((s) => s !== first && /rates over/.test(s), 'a redraw');
    assert.equal(second.match(/rates over/g)?.length, 1, `drawn in place:\n${second}`);
    assert.match(second, /^every 1s: mcrctl stats/m);
    watch.keys('q');
    await watch.waitFor((s) => /watch exited 0/.test(s), 'q to quit the watch');

    for (const s of senders) s.child.kill('SIGTERM');
    await relay.stop();
  } finally {
    tmux.kill();
    topo.destroy();
  }
});

test('mcrctl stats --watch: JSON lines, plain text into a pipe, and top refuses a pipe', async () => {
  const topo = new Topology({ net: NET, outputLinks: 1 });
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    relay.addRule('239.62.1.1', 5000, '239.62.2.1:6000:out0', ['-n', 'cam1']);
    const senders = startTraffic(topo);

    /** Runs a watch until `enough` of its output has come (or 20 s), then ends it as Ctrl-C does. */
    const watch = (args: string[], enough: (out: string) => boolean): Promise<string> => {
      const child = spawn(BIN('mcrctl'), ['--socket', topo.socketPath, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      const deadline = setTimeout(() => child.kill('SIGINT'), 20000);
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (enough(out)) child.kill('SIGINT');
      });
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      return new Promise((resolve, reject) =>
        child.once('exit', (code) => {
          clearTimeout(deadline);
          if (code === 0) resolve(out);
          else reject(new Error(`mcrctl ${args.join(' ')} exited ${code}: ${err}`));
        }),
      );
    };

    const lines = (
      await watch(['--json', 'stats', '--watch', '--interval', '0.5'], (out) => out.split('\n').length > 4)
    )
      .trimEnd()
      .split('\n');
    assert.ok(lines.length >= 4, `a line per half second:\n${lines.join('\n')}`);
    const snapshots = lines.map((l) => JSON.parse(l) as StatsView);
    for (let i = 1; i < snapshots.length; i++) {
      assert.ok(snapshots[i]!.time > snapshots[i - 1]!.time, 'each line a new answer');
      assert.ok(snapshots[i]!.rules[0]!.counters.packetsIn >= snapshots[i - 1]!.rules[0]!.counters.packetsIn);
    }
    assert.equal(snapshots.at(-1)!.rules[0]!.name, 'cam1');
    assert.ok(snapshots.at(-1)!.rules[0]!.counters.packetsIn > 0);

    const text = await watch(
      ['stats', '--watch', '--interval', '0.5'],
      (out) => (out.match(/^--- mcrd stats /gm)?.length ?? 0) > 4,
    );
    assert.ok(
      !text.includes('\u001b'),
      `no escape codes into a pipe:\n${JSON.stringify(text.slice(0, 400))}`,
    );
    const blocks = text.split(/^--- mcrd stats \S+ ---$/m).filter((b) => b.trim() !== '');
    assert.ok(blocks.length >= 4, `a block per refresh:\n${text}`);
    for (const block of blocks) assert.match(block, /\bcam1\b/);
    assert.match(text, /\n\n--- mcrd stats /, 'a blank line between blocks');

    const top = relay.mcrctl(['top']);
    assert.equal(top.code, 2, 'bad usage');
    assert.match(top.stderr, /E_NOT_A_TERMINAL: .*mcrctl --json stats --watch/);
    assert.equal(top.stdout, '');

    // --json everywhere: top with it is the JSON watch.
    const topJson = await watch(['--json', 'top', '--interval', '0.5'], (out) => out.split('\n').length > 2);
    for (const l of topJson.trimEnd().split('\n'))
      assert.equal((JSON.parse(l) as StatsView).rules[0]!.name, 'cam1');

    const noWatch = relay.mcrctl(['stats', '--interval', '2']);
    assert.equal(noWatch.code, 2);
    assert.match(noWatch.stderr, /--interval goes with --watch/);
    const badInterval = relay.mcrctl(['stats', '--watch', '--interval', '0']);
    assert.equal(badInterval.code, 2);
    assert.match(badInterval.stderr, /--interval 0: give seconds between 0\.1 and 3600/);
    for (const s of senders) s.child.kill('SIGTERM');
    await relay.stop();
  } finally {
    topo.destroy();
  }
});
