import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { TracedPacket, TraceView, WorkerView } from '../../src/protocol/control-api.js';
import { expectPackets, receiverReport, RelayHost, send, workerTotals } from '../helpers/relay-host.js';
import { frameArgs } from '../helpers/send-frames.js';
import { BIN, ROOT, RunningProcess, sleep, Topology } from '../helpers/topology.js';

// mcrctl trace against the real mcrd, two workers, with hand-made traffic of known content: each
// frame's decision is shown exactly (the rule and both copies, no rule, malformed), the trace
// stops after its count, --drops-only shows only drops, tracing changes no forwarding counter,
// and a trace whose client is killed stops in every worker (a new trace can take its place).

const topo = new Topology({ outputLinks: 2, net: 63 });
after(() => topo.destroy());
const started: RunningProcess[] = [];
after(() => {
  for (const p of started) p.child.kill('SIGKILL');
});

const GROUP = '239.1.1.1';
const OTHER = '239.1.1.9';
const PORT = 5000;

/** mcrctl trace in the background (the socket is a file: no namespace needed). */
async function startTrace(relay: RelayHost, args: string[]): Promise<RunningProcess> {
  const child = spawn(BIN('mcrctl'), ['--socket', relay.socketPath, 'trace', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const trace = new RunningProcess(child);
  started.push(trace);
  await trace.waitForStderr('tracing ');
  // The workers read trace.start on their channel within a few milliseconds.
  await sleep(300);
  return trace;
}

/** Good frames from the sender to GROUP (or another group), sent as the test's own frames. */
function sendFrames(group: string, count: number, size = 100): void {
  const r = topo.exec(topo.sender, process.execPath, [
    join(ROOT, 'dist/test/helpers/send-frames.js'),
    ...['eth0', group, String(PORT), String(count)],
    ...frameArgs({ src: topo.senderAddress(), size, ttl: 64 }),
  ]);
  assert.equal(r.code, 0, r.stderr);
}

/** Frames with a broken IPv4 header checksum (10.90.1.1 > GROUP, as inject-frames makes them). */
function sendMalformed(count: number): void {
  const r = topo.exec(topo.sender, process.execPath, [
    join(ROOT, 'dist/test/helpers/inject-frames.js'),
    ...['eth0', GROUP, String(PORT), 'bad-checksum', String(count)],
  ]);
  assert.equal(r.code, 0, r.stderr);
}

function packets(trace: RunningProcess): TracedPacket[] {
  return trace.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as TracedPacket);
}

/** The traces mcrd lists (mcrctl traces): running, or stopping until every worker said it stopped. */
function traces(relay: RelayHost): TraceView[] {
  return relay.mcrctlJson<{ traces: TraceView[] }>(['traces']).traces;
}

test('mcrctl trace shows each decision, stops after its count, and changes no counter', async () => {
  const relay = await RelayHost.start(topo, ['--workers', '2']);
  const rule = relay.addRule(GROUP, PORT, '239.2.2.1:6000:out0,239.2.2.2:6000:out1:socket', ['-n', 'video']);
  await sleep(500);
  const before = workerTotals(relay.stats());

  // Everything on in0: 3 relayed, 2 to a group without a rule, 2 with a broken header.
  const all = await startTrace(relay, ['--input', 'in0', '--count', '7', '--json', '--timeout', '20']);
  const drops = await startTrace(relay, ['--input', 'in0', '--drops-only', '--count', '4', '--json']);
  const video = await startTrace(relay, ['--rule', 'video', '--count', '3']);
  sendFrames(GROUP, 3);
  sendFrames(OTHER, 2);
  sendMalformed(2);

  const done = await all.exited;
  assert.equal(done.code, 0, all.stderr);
  const seen = packets(all);
  assert.equal(seen.length, 7, 'it stopped after its count');
  assert.deepEqual(
    seen.map((p) => [p.outcome, p.group, p.port, p.rule?.name ?? null]),
    [
      ['forwarded', GROUP, PORT, 'video'],
      ['forwarded', GROUP, PORT, 'video'],
      ['forwarded', GROUP, PORT, 'video'],
      ['no_rule', OTHER, PORT, null],
      ['no_rule', OTHER, PORT, null],
      ['bad_ipv4_checksum', null, null, null],
      ['bad_ipv4_checksum', null, null, null],
    ],
  );
  const relayed = seen[0]!;
  assert.equal(relayed.interface, 'in0');
  assert.equal(relayed.source, topo.senderAddress());
  assert.equal(relayed.sourcePort, 40000);
  assert.equal(relayed.length, 100);
  assert.equal(relayed.ttl, 64);
  assert.equal(relayed.rule?.id, rule.id);
  assert.deepEqual(
    relayed.copies.map((c) => [c.destination, c.interface, c.status, c.path, c.errno]),
    [
      ['239.2.2.1:6000', 'out0', 'sent', 'raw', null],
      ['239.2.2.2:6000', 'out1', 'sent', 'socket', null],
    ],
  );
  assert.match(relayed.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  assert.deepEqual(seen[3]!.copies, []);
  assert.equal(seen[5]!.frameLength, 142, 'a malformed frame shows its length');

  assert.equal((await drops.exited).code, 0, drops.stderr);
  assert.deepEqual(
    packets(drops).map((p) => p.outcome),
    ['no_rule', 'no_rule', 'bad_ipv4_checksum', 'bad_ipv4_checksum'],
    'drops only',
  );

  assert.equal((await video.exited).code, 0, video.stderr);
  const lines = video.stdout.trim().split('\n');
  assert.equal(lines.length, 3);
  for (const line of lines) {
    assert.match(
      line,
      new RegExp(
        `^\\d\\d:\\d\\d:\\d\\d\\.\\d{6} in0 ${topo.senderAddress().replace(/\./g, '\\.')}:40000 > 239\\.1\\.1\\.1:5000 len 100 ttl 64 rule ${rule.id} \\(video\\) -> 239\\.2\\.2\\.1:6000 out0 raw, 239\\.2\\.2\\.2:6000 out1 socket$`,
      ),
    );
  }
  process.stdout.write(`# ${lines[0]}\n`);

  // The forwarding counters: exactly what was sent, traced or not.
  const stats = await relay.statsAfter((s) => workerTotals(s).framesSeen - before.framesSeen >= 7);
  const w = workerTotals(stats);
  assert.equal(w.forwarded - before.forwarded, 3);
  assert.equal(w.noRule - before.noRule, 2);
  assert.equal(w.malformed - before.malformed, 2);
  const counters = stats.rules.find((r) => r.name === 'video')!.counters;
  assert.equal(counters.packetsIn, 3);
  assert.deepEqual(
    counters.outputs.map((o) => o.packets),
    [3, 3],
  );
  await relay.stop();
});

test('a trace ends at its timeout, when its rule is removed, and in every worker when its client is killed', async () => {
  const relay = await RelayHost.start(topo, ['--workers', '2']);
  relay.addRule(GROUP, PORT, '239.2.2.1:6000:out0', ['-n', 'video']);
  const quiet = await startTrace(relay, ['--rule', 'video', '--timeout', '1']);
  const ended = await quiet.exited;
  assert.equal(ended.code, 0);
  assert.match(quiet.stderr, /timed out after 1 s: 0 of 20 packets seen/);

  // Four at once is the most; the fifth is told so.
  const running = [];
  for (let i = 0; i < 4; i++) running.push(await startTrace(relay, ['--rule', 'video', '--count', '1000']));
  const fifth = relay.mcrctl(['trace', '--rule', 'video']);
  assert.equal(fifth.code, 1);
  assert.match(fifth.stderr, /E_TRACE_LIMIT/);
  const nowhere = relay.mcrctl(['trace', '--input', 'out0']);
  assert.equal(nowhere.code, 1);
  assert.match(nowhere.stderr, /E_NOT_AN_INPUT: no rule takes its input from out0/);
  let listed = traces(relay);
  assert.equal(listed.length, 4);
  assert.ok(
    listed.every((t) => t.state === 'running' && t.workersTracing === 2),
    JSON.stringify(listed),
  );
  const table = relay.mcrctl(['traces']).stdout;
  assert.match(table, /^ID +CLIENT +TRACES +SHOWN +STARTED +STATE +WORKERS$/m);
  assert.equal(
    table.match(/rule r-[0-9a-f]{12} \(video\) on in0 +0\/1000 .* running +2$/gm)?.length,
    4,
    table,
  );

  for (const trace of running) trace.child.kill('SIGKILL');
  const deadline = Date.now() + 5000;
  while ((listed = traces(relay)).length > 0 && Date.now() < deadline) await sleep(50);
  assert.deepEqual(listed, [], 'every worker said it stopped tracing');

  // Removing the traced rule ends its trace.
  const orphan = await startTrace(relay, ['--rule', 'video', '--count', '5']);
  relay.mcrctl(['remove', '--name', 'video']);
  assert.equal((await orphan.exited).code, 1);
  assert.match(orphan.stderr, /trace ended \(rule removed\): 0 of 5 packets seen/);
  relay.addRule(GROUP, PORT, '239.2.2.1:6000:out0', ['-n', 'video']);

  // And tracing again works, counting from zero.
  const again = await startTrace(relay, ['--rule', 'video', '--count', '5', '--json']);
  sendFrames(GROUP, 5);
  assert.equal((await again.exited).code, 0, again.stderr);
  assert.equal(packets(again).length, 5);
  const stats = relay.stats();
  assert.equal(stats.rules[0]!.counters.packetsIn, 5);
  await relay.stop();
});

test('a flow forwards exactly the same with a trace recording every packet as without one', async () => {
  const relay = await RelayHost.start(topo, ['--workers', '2']);
  relay.addRule(GROUP, PORT, '239.2.2.1:6000:out0,239.2.2.2:6000:out1:socket', ['-n', 'video']);
  const flow = { rate: 2000, size: 200, count: 2000 };
  const trial = async (traced: boolean): Promise<{ forwarded: number; outputs: number[]; shown: number }> => {
    const before = relay.stats();
    const trace = traced
      ? await startTrace(relay, ['--rule', 'video', '--count', '2000', '--json'])
      : undefined;
    const receivers = [
      await expectPackets(topo, 'eth0', '239.2.2.1', 6000, flow.count),
      await expectPackets(topo, 'eth1', '239.2.2.2', 6000, flow.count),
    ];
    send(topo, GROUP, PORT, flow);
    for (const r of receivers) assert.equal((await receiverReport(r)).code, 0, r.stderr);
    const after = await relay.statsAfter(
      (s) => s.rules[0]!.counters.packetsIn - before.rules[0]!.counters.packetsIn >= flow.count,
    );
    let shown = 0;
    if (trace) {
      assert.equal((await trace.exited).code, 0, trace.stderr);
      const seen = packets(trace);
      assert.ok(seen.every((p) => p.outcome === 'forwarded' && p.copies.every((c) => c.status === 'sent')));
      shown = seen.length;
      assert.doesNotMatch(trace.stderr, /not recorded|lost/);
    }
    return {
      forwarded: workerTotals(after).forwarded - workerTotals(before).forwarded,
      outputs: after.rules[0]!.counters.outputs.map(
        (o, i) => o.packets - before.rules[0]!.counters.outputs[i]!.packets,
      ),
      shown,
    };
  };
  const plain = await trial(false);
  const traced = await trial(true);
  assert.deepEqual(plain, { forwarded: flow.count, outputs: [flow.count, flow.count], shown: 0 });
  assert.deepEqual(traced, { forwarded: flow.count, outputs: [flow.count, flow.count], shown: flow.count });
  await relay.stop();
});

test('a worker restarted during a trace is asked to trace too, for what is still missing', async () => {
  const relay = await RelayHost.start(topo, ['--workers', '2']);
  relay.addRule(GROUP, PORT, '239.2.2.1:6000:out0', ['-n', 'video']);
  const trace = await startTrace(relay, ['--rule', 'video', '--count', '6', '--json']);
  sendFrames(GROUP, 2);
  for (let waited = 0; traces(relay)[0]?.shown !== 2; waited += 50) {
    assert.ok(waited < 5000, 'the first two are shown');
    await sleep(50);
  }
  const before = relay.mcrctlJson<{ workers: WorkerView[] }>(['workers']).workers;
  // mcrd's own workers, started by this test: SIGKILL both; the supervisor restarts them at once.
  for (const w of before) process.kill(w.pid!, 'SIGKILL');
  const deadline = Date.now() + 10_000;
  let listed: TraceView[] = [];
  for (;;) {
    const workers = relay.mcrctlJson<{ workers: WorkerView[] }>(['workers']).workers;
    listed = traces(relay);
    const restarted = workers.every((w) => w.restarts === 1 && w.state === 'running');
    if ((restarted && listed[0]?.workersTracing === 2) || Date.now() > deadline) break;
    await sleep(100);
  }
  assert.deepEqual(
    listed.map((t) => [t.state, t.workersTracing]),
    [['running', 2]],
    'both new workers trace',
  );
  await sleep(300);
  sendFrames(GROUP, 4);
  assert.equal((await trace.exited).code, 0, trace.stderr);
  assert.deepEqual(
    packets(trace).map((p) => p.outcome),
    Array.from({ length: 6 }, () => 'forwarded'),
  );
  await relay.stop();
});
