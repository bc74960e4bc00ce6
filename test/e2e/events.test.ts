import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { McrEvent, RuleView, WorkerView } from '../../src/protocol/control-api.js';
import { ControlClient } from '../../src/protocol/control-client.js';
import { waitFor } from '../helpers/processes.js';
import { RelayHost, send } from '../helpers/relay-host.js';
import { BIN, ip, RunningProcess, sleep, Topology } from '../helpers/topology.js';

// mcrctl events, run as the operator would, follows what happens to mcrd: rule changes with who
// made them, a flow starting and stopping, a worker killed and replaced, an output link going
// down and up again, a reload by SIGHUP; each arrives in order with its cause, and mcrd's log has
// the very same events.

function configText(outputs: string[], extra = ''): string {
  const outs = outputs.map((o) => `{ group: '${o}', port: 6000, interface: 'out0' }`).join(', ');
  return `{ rules: [ { name: 'cfg', input: { interface: 'in0', group: '239.1.1.9', port: 5000 }, outputs: [ ${outs} ] }, ${extra} ] }\n`;
}

/** `mcrctl events` in the background (from the host: the socket is a file), its output kept. */
function followEvents(relay: RelayHost, args: string[]): RunningProcess {
  return new RunningProcess(
    spawn(BIN('mcrctl'), ['--socket', relay.socketPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }),
  );
}

function streamed(follower: RunningProcess): McrEvent[] {
  return follower.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as McrEvent);
}

function logged(relay: RelayHost): McrEvent[] {
  return relay.daemon.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => (JSON.parse(l) as { event?: McrEvent }).event)
    .filter((e): e is McrEvent => e !== undefined);
}

/** Waits for an event after `after` (a seq) that `match` accepts, in the follower's output. */
function nextEvent(
  follower: RunningProcess,
  what: string,
  after: number,
  match: (e: McrEvent) => boolean,
  ms = 10_000,
): Promise<McrEvent> {
  return waitFor(what, () => streamed(follower).find((e) => e.seq > after && match(e)), ms);
}

test('mcrctl events: rule changes with their cause, flows, a worker restart, a link down and up, a reload; the log has the same events', async () => {
  const topo = new Topology({ net: 64 });
  let follower: RunningProcess | undefined;
  let reader: RunningProcess | undefined;
  try {
    const config = join(topo.dir, 'mcr.json5');
    writeFileSync(config, configText(['239.2.2.9']));
    const relay = await RelayHost.start(topo, ['--workers', '2', '--config', config]);
    follower = followEvents(relay, ['--json', 'events', '--last', '1000']);
    // What happened at start comes first: the config file's rule, the workers starting.
    const start = await nextEvent(follower, 'the config rule at start', 0, (e) => e.type === 'rule.added');
    assert.equal(start.rule?.name, 'cfg');
    assert.deepEqual(start.cause, {
      by: 'config-start',
      source: config,
      client: null,
      signal: null,
      interface: null,
    });
    await waitFor('both workers started', () =>
      streamed(follower!).filter((e) => e.type === 'worker.started').length === 2 ? true : undefined,
    );

    // A rule added by a control client: its pid and uid, as the kernel says.
    const add = spawnSync(
      BIN('mcrctl'),
      ['--socket', relay.socketPath, '--json', 'add', '-i', 'in0', '-g', '239.1.1.1', '-p', '5000'].concat([
        '-o',
        '239.2.2.2:6000:out0',
        '-n',
        'video',
      ]),
      { encoding: 'utf8' },
    );
    assert.equal(add.status, 0, add.stderr);
    const rule = (JSON.parse(add.stdout) as { rule: RuleView }).rule;
    const added = await nextEvent(follower, 'rule.added', start.seq, (e) => e.type === 'rule.added');
    assert.deepEqual(added.cause, {
      by: 'control-client',
      source: null,
      client: { id: added.cause!.client!.id, pid: add.pid, uid: process.getuid!() },
      signal: null,
      interface: null,
    });
    assert.deepEqual(added.rule, {
      id: rule.id,
      name: 'video',
      input: 'in0 239.1.1.1:5000',
      outputs: ['239.2.2.2:6000:out0'],
      origin: 'runtime',
      rtp: false,
      state: 'active',
      reason: null,
      previousState: null,
    });

    // Traffic starts a flow; 3 s after it ends, the flow has stopped.
    send(topo, '239.1.1.1', 5000, { rate: 1000, size: 200, count: 1500 });
    const started = await nextEvent(
      follower,
      'flow.started',
      added.seq,
      (e) => e.type === 'flow.started' && e.rule?.id === rule.id,
    );
    assert.equal(started.flow?.idleSeconds, null);
    const stopped = await nextEvent(
      follower,
      'flow.stopped',
      started.seq,
      (e) => e.type === 'flow.stopped' && e.rule?.id === rule.id,
    );
    assert.equal(stopped.flow?.packets, 1500, 'every packet sent was counted by the time the flow stopped');
    assert.ok(stopped.flow!.idleSeconds! >= 3, `stopped after ${stopped.flow!.idleSeconds} s`);

    // A worker killed: it exited (SIGKILL, not its fault) and is running again.
    const workers = relay.mcrctlJson<{ workers: WorkerView[] }>(['workers']).workers;
    const victim = workers.find((w) => w.id === 1)!;
    process.kill(victim.pid!, 'SIGKILL');
    const exited = await nextEvent(follower, 'worker.exited', stopped.seq, (e) => e.type === 'worker.exited');
    assert.deepEqual(
      [
        exited.worker?.id,
        exited.worker?.pid,
        exited.worker?.signal,
        exited.worker?.death,
        exited.worker?.restartInMs,
      ],
      [1, victim.pid, 'SIGKILL', 'killed', 0],
    );
    const restarted = await nextEvent(
      follower,
      'worker.restarted',
      exited.seq,
      (e) => e.type === 'worker.restarted',
    );
    assert.equal(restarted.worker?.id, 1);
    assert.notEqual(restarted.worker?.pid, victim.pid);
    assert.equal(restarted.worker?.restarts, 1);
    assert.ok(restarted.worker!.downMs! < 5000);

    // The output link goes down: the interface says so, and the rule is degraded because of it.
    ip(['-n', topo.relay, 'link', 'set', 'out0', 'down']);
    const down = await nextEvent(
      follower,
      'interface.down',
      restarted.seq,
      (e) => e.type === 'interface.down',
    );
    assert.deepEqual(
      [down.interface?.name, down.interface?.up, down.interface?.running],
      ['out0', false, false],
    );
    const degraded = await nextEvent(
      follower,
      'rule.state degraded',
      down.seq,
      (e) => e.type === 'rule.state' && e.rule?.id === rule.id,
    );
    assert.deepEqual(
      [degraded.rule?.previousState, degraded.rule?.state, degraded.rule?.reason],
      ['active', 'degraded', 'out0 is down'],
    );
    assert.deepEqual(degraded.cause, {
      by: 'link-change',
      source: null,
      client: null,
      signal: null,
      interface: 'out0',
    });
    ip(['-n', topo.relay, 'link', 'set', 'out0', 'up']);
    const active = await nextEvent(
      follower,
      'rule.state active',
      degraded.seq,
      (e) => e.type === 'rule.state' && e.rule?.id === rule.id && e.rule.state === 'active',
    );
    assert.ok(
      streamed(follower).some(
        (e) => e.type === 'interface.up' && e.interface?.name === 'out0' && e.seq < active.seq,
      ),
    );

    // A reload by SIGHUP: the config rule gains an output, a new rule comes; each says why.
    writeFileSync(
      config,
      configText(
        ['239.2.2.9', '239.2.2.10'],
        `{ name: 'cfg2', input: { interface: 'in0', group: '239.1.1.8', port: 5000 }, outputs: [ { group: '239.2.2.8', port: 6000, interface: 'out0' } ] }`,
      ),
    );
    const { pid: mcrdPid } = relay.mcrctlJson<{ pid: number }>(['ping']);
    process.kill(mcrdPid, 'SIGHUP');
    const applied = await nextEvent(
      follower,
      'config.applied',
      active.seq,
      (e) => e.type === 'config.applied',
    );
    const reload = { by: 'config-reload', source: config, client: null, signal: 'SIGHUP', interface: null };
    const reloadEvents = streamed(follower).filter(
      (e) =>
        e.seq > active.seq &&
        e.seq <= applied.seq &&
        (e.type.startsWith('rule.') || e.type === 'config.applied'),
    );
    assert.deepEqual(
      reloadEvents
        .filter((e) => e.type.startsWith('rule.') || e.type === 'config.applied')
        .map((e) => [e.type, e.rule?.name ?? null]),
      [
        ['rule.updated', 'cfg'],
        ['rule.added', 'cfg2'],
        ['config.applied', null],
      ],
    );
    for (const e of reloadEvents) assert.deepEqual(e.cause, reload, `${e.type} by the reload`);
    assert.deepEqual(reloadEvents[0]!.rule?.outputs, ['239.2.2.9:6000:out0', '239.2.2.10:6000:out0']);
    assert.deepEqual(
      [
        applied.config?.added.length,
        applied.config?.removed,
        applied.config?.updated.length,
        applied.config?.unchanged,
      ],
      [1, [], 1, 0],
    );

    // Removed by a control client.
    const remove = spawnSync(BIN('mcrctl'), ['--socket', relay.socketPath, 'remove', '--name', 'video'], {
      encoding: 'utf8',
    });
    assert.equal(remove.status, 0, remove.stderr);
    const removed = await nextEvent(follower, 'rule.removed', applied.seq, (e) => e.type === 'rule.removed');
    assert.equal(removed.rule?.id, rule.id);
    assert.equal(removed.cause?.client?.pid, remove.pid);

    // Ctrl-C ends mcrctl events cleanly; nothing was lost, every event came once and in order.
    follower.child.kill('SIGINT');
    assert.deepEqual(await follower.exited, { code: 0, signal: null });
    const all = streamed(follower);
    assert.deepEqual(
      all.map((e) => e.seq),
      all.map((_, i) => i + 1),
      'every event from the first, in order, none missing',
    );
    assert.equal(follower.stderr, '');

    // The log has the same events: the same objects, each once.
    await sleep(200);
    const inLog = logged(relay);
    assert.deepEqual(inLog.slice(0, all.length), all);
    assert.deepEqual(
      inLog.map((e) => e.seq),
      inLog.map((_, i) => i + 1),
    );
    // The old log lines these events replace are gone: each thing is said once.
    assert.doesNotMatch(
      relay.daemon.stderr,
      /"msg":"(rule added|rule removed|worker recovered|link state changed)"/,
    );

    // Followed in words; mcrd going away ends mcrctl events with a clear message and status 1.
    const words = followEvents(relay, ['events', '--last', '2', '--types', 'rule']);
    reader = words;
    await waitFor('the last two rule events', () => (words.stdout.split('\n').length > 2 ? true : undefined));
    const lines = words.stdout.trim().split('\n');
    assert.match(
      lines[0]!,
      /^\d{4}-\d\d-\d\dT[\d:.]+Z rule\.added r-[0-9a-f]{12} \(cfg2\) by config reload of .* \(SIGHUP\): in0 239\.1\.1\.8:5000 -> 1 output, active$/,
    );
    assert.match(
      lines[1]!,
      new RegExp(
        `^\\S+ rule\\.removed ${rule.id} \\(video\\) by control client pid ${remove.pid} uid ${process.getuid!()}: in0 239\\.1\\.1\\.1:5000$`,
      ),
    );
    await relay.stop();
    const end = await words.exited;
    assert.equal(end.code, 1);
    assert.match(
      words.stderr,
      /^mcrctl: E_DISCONNECTED: mcrd (ended the event stream: mcrd is stopping|closed the connection)/,
    );
  } finally {
    for (const child of [follower, reader]) child?.child.kill('SIGKILL');
    topo.destroy();
  }
});

test('a follower that stops reading loses events, counted and told; mcrd answers meanwhile and the stream goes on', async () => {
  const topo = new Topology({ net: 64 });
  let follower: RunningProcess | undefined;
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    const rule = (port: number) => ({
      inputInterface: 'in0',
      inputGroup: '239.1.1.1',
      inputPort: port,
      outputs: [{ group: '239.2.2.2', port: 6000, interface: 'out0' }],
    });
    const client = await ControlClient.open(relay.socketPath);
    await client.call('rules.add', { ...rule(4999), name: 'first' });
    follower = followEvents(relay, ['--json', 'events', '--types', 'rule', '--last', '1000']);
    const first = await nextEvent(follower, 'the first rule', 0, (e) => e.rule?.name === 'first');
    // mcrctl stops reading mcrd (as one behind a stalled terminal would).
    process.kill(follower.child.pid!, 'SIGSTOP');
    // Rules added and removed: 4000 events of about 500 bytes, far more than the buffers on the
    // way (mcrd's 256 KiB for a stream, the socket's) hold.
    await Promise.all(
      Array.from({ length: 2000 }, (_, i) =>
        client
          .call('rules.add', rule(5000 + i), 60_000)
          .then(({ rule: added }) => client.call('rules.remove', { id: added.id }, 60_000)),
      ),
    );
    // mcrd is not held by the follower meanwhile.
    const started = Date.now();
    await client.call('ping');
    assert.ok(Date.now() - started < 2000, `ping took ${Date.now() - started} ms`);
    process.kill(follower.child.pid!, 'SIGCONT');
    // Once mcrctl has caught up (its output still for half a second), the stream flows again.
    for (let seen = -1, deadline = Date.now() + 30_000; follower.stdout.length !== seen;) {
      assert.ok(Date.now() < deadline, 'mcrctl did not catch up within 30 s');
      seen = follower.stdout.length;
      await sleep(500);
    }
    await client.call('rules.add', { ...rule(4998), name: 'last' });
    client.close();
    const last = await nextEvent(follower, 'the last rule', first.seq, (e) => e.rule?.name === 'last');
    const got = streamed(follower);
    const lost = [
      ...follower.stderr.matchAll(/^mcrctl: (\d+) events lost: this mcrctl did not read them in time$/gm),
    ].reduce((n, m) => n + Number(m[1]), 0);
    assert.ok(lost > 0, `some events were lost:\n${follower.stderr}`);
    // Every event mcrd published is either shown or counted as lost, exactly; in order, none twice.
    const others = logged(relay).filter(
      (e) => e.seq > first.seq && e.seq < last.seq && !e.type.startsWith('rule.'),
    ).length;
    assert.equal(got.length + lost + others, last.seq - first.seq + 1);
    assert.ok(got.every((e, i) => i === 0 || e.seq > got[i - 1]!.seq));
    console.log(`a follower that stopped reading: ${got.length} events shown, ${lost} counted as lost`);
  } finally {
    follower?.child.kill('SIGKILL');
    topo.destroy();
  }
});
