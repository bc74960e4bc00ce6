import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RuleStatsView, StatsView, WorkerStatsView } from '../../src/protocol/control-api.js';
import { MetricsExposition, REUSE_MS } from '../../src/supervisor/metrics-exposition.js';
import { parseExposition, type Sample } from '../helpers/exposition.js';

function rule(overrides: Partial<RuleStatsView> = {}): RuleStatsView {
  return {
    id: 'r-0a1b2c3d',
    name: 'cam1',
    input: {
      interface: 'in0',
      vlan: null,
      source: null,
      group: '239.1.1.1',
      port: 5000,
      unicast: false,
      rtp: false,
    },
    outputs: [
      {
        group: '239.2.2.2',
        port: 6000,
        interface: 'out0',
        ttl: 16,
        ttlFixed: false,
        dscp: null,
        mode: 'auto',
        path: 'raw',
        state: 'active',
        reason: null,
      },
      {
        group: '10.0.9.7',
        port: 7000,
        interface: null,
        ttl: 4,
        ttlFixed: false,
        dscp: null,
        mode: 'socket',
        path: 'socket',
        state: 'down',
        reason: 'link down',
      },
    ],
    state: 'degraded',
    reason: 'an output is down',
    path: 'worker',
    pathReason: null,
    origin: 'config',
    createdAt: '2026-12-01T00:00:00.000Z',
    counters: {
      packetsIn: 1000,
      bytesIn: 1_316_000,
      drops: { own_source: 3 },
      outputs: [
        { packets: 997, bytes: 1_312_052, raw: 997, xdp: 0, errors: {}, ttlExpired: 0 },
        { packets: 990, bytes: 1_302_840, raw: 0, xdp: 0, errors: { ENETDOWN: 7 }, ttlExpired: 2 },
      ],
      lastPacketAt: '2026-12-01T04:05:06.500Z',
      rtp: null,
    },
    rates: { packetsIn: 100, bytesIn: 131_600, outputs: [100, 99], outputBytes: [131_200, 130_284] },
    ...overrides,
  };
}

function worker(id: number): WorkerStatsView {
  return {
    id,
    pid: 4000 + id,
    state: 'running',
    rules: 1,
    inputs: ['in0'],
    startedAt: '2026-12-01T04:00:00.000Z',
    restarts: id,
    resyncs: 0,
    cpu: id,
    user: 'mcr',
    confined: true,
    nice: -10,
    counters: {
      framesSeen: 120,
      forwarded: 100,
      noRule: 9,
      notIpv4Udp: 4,
      malformed: 3,
      fragments: 2,
      filtered: 1,
      unsent: 0,
      workerRestart: 1,
      dropsByReason: {
        no_rule: 9,
        not_ipv4: 3,
        not_udp: 1,
        bad_ipv4_checksum: 3,
        fragment: 2,
        own_source: 1,
        worker_restart: 1,
      },
      egressErrors: 7,
      ringDrops: 5,
    },
    health: {
      rssBytes: 52_000_000,
      gcCount: 40,
      gcTotalMs: 25,
      gcMaxPauseMs: 1.5,
      gcPausesOver1Ms: 2,
      cpuSeconds: 12.25,
    },
    rates: { framesSeen: 10, forwarded: 9, cpu: 0.1 },
  };
}

function view(rules: RuleStatsView[] = [rule()]): StatsView {
  return {
    time: '2026-12-01T04:05:07.000Z',
    rateInterval: 1,
    rules,
    workers: [worker(0), worker(1)],
    interfaces: [
      { name: 'in0', rxPackets: 1200, rxDropped: 1, rxMissed: 0, txPackets: 0, txDropped: 0, txErrors: 0 },
      { name: 'out0', rxPackets: 0, rxDropped: 0, rxMissed: 0, txPackets: 997, txDropped: 0, txErrors: 0 },
    ],
  };
}

function exposition(stats: () => Promise<StatsView>, reuseMs = 0): MetricsExposition {
  return new MetricsExposition({ stats, version: '0.1.0', processMetrics: false, reuseMs });
}

function find(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
}

function only(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = find(samples, name, labels);
  assert.equal(found.length, 1, `one ${name} ${JSON.stringify(labels)}, found ${found.length}`);
  return found[0]!.value;
}

test('every family is named and typed by the conventions: mcr_ prefix, counters in _total, base units', async () => {
  const { families } = parseExposition(await exposition(async () => view()).render());
  assert.ok(families.size > 20);
  for (const [name, family] of families) {
    assert.match(name, /^mcr_[a-z0-9_]+$/, name);
    assert.ok(family.help.length > 10, `${name} has help`);
    if (family.type === 'counter') assert.match(name, /_total$/, `counter ${name} ends in _total`);
    else assert.doesNotMatch(name, /_total$/, `${family.type} ${name} does not end in _total`);
    assert.doesNotMatch(
      name,
      /_(ms|milliseconds|kib|mib|kilobytes|percent)(_|$)/,
      `${name} is in base units`,
    );
  }
  assert.equal(families.get('mcr_rule_received_packets_total')?.type, 'counter');
  assert.equal(families.get('mcr_rule_last_packet_timestamp_seconds')?.type, 'gauge');
  assert.equal(families.get('mcr_worker_resident_memory_bytes')?.type, 'gauge');
  assert.equal(families.get('mcr_worker_cpu_seconds_total')?.type, 'counter');
});

test('rule and output series carry the rule, its input and the output, with the counters as mcrd has them', async () => {
  const { samples } = parseExposition(await exposition(async () => view()).render());
  const ruleLabels = {
    rule_id: 'r-0a1b2c3d',
    rule_name: 'cam1',
    input_interface: 'in0',
    input_group: '239.1.1.1',
    input_port: '5000',
  };
  assert.equal(only(samples, 'mcr_rule_received_packets_total', ruleLabels), 1000);
  assert.equal(only(samples, 'mcr_rule_received_bytes_total', ruleLabels), 1_316_000);
  assert.equal(only(samples, 'mcr_rule_dropped_packets_total', { reason: 'own_source' }), 3);
  assert.equal(
    only(samples, 'mcr_rule_dropped_packets_total', { reason: 'ttl_expired' }),
    0,
    'known reasons start at 0',
  );
  assert.equal(
    only(samples, 'mcr_rule_last_packet_timestamp_seconds'),
    Date.parse('2026-12-01T04:05:06.500Z') / 1000,
  );
  assert.deepEqual(
    find(samples, 'mcr_rule_state').map((s) => [s.labels.state, s.value]),
    [
      ['active', 0],
      ['degraded', 1],
      ['down', 0],
      ['waiting', 0],
    ],
  );
  assert.equal(only(samples, 'mcr_rule_info', { origin: 'config', input_vlan: '', input_source: '' }), 1);
  const first = {
    ...ruleLabels,
    output: '0',
    output_group: '239.2.2.2',
    output_port: '6000',
    output_interface: 'out0',
  };
  assert.equal(only(samples, 'mcr_output_sent_packets_total', { ...first, path: 'raw' }), 997);
  assert.equal(only(samples, 'mcr_output_sent_packets_total', { ...first, path: 'socket' }), 0);
  assert.equal(only(samples, 'mcr_output_sent_bytes_total', first), 1_312_052);
  assert.equal(only(samples, 'mcr_output_path', { ...first, path: 'raw' }), 1);
  const second = { output: '1', output_group: '10.0.9.7', output_interface: '' };
  assert.equal(only(samples, 'mcr_output_sent_packets_total', { ...second, path: 'socket' }), 990);
  assert.equal(only(samples, 'mcr_output_send_errors_total', { ...second, errno: 'ENETDOWN' }), 7);
  assert.equal(only(samples, 'mcr_output_ttl_expired_packets_total', second), 2);
  assert.equal(only(samples, 'mcr_output_state', { ...second, state: 'down' }), 1);
  assert.equal(only(samples, 'mcr_interface_receive_packets_total', { interface: 'in0' }), 1200);
  assert.equal(only(samples, 'mcr_interface_receive_dropped_packets_total', { interface: 'in0' }), 1);
  assert.equal(only(samples, 'mcr_interface_transmit_packets_total', { interface: 'out0' }), 997);
});

test("a worker's outcomes add up to its frames seen, as PromQL can check; process health in base units", async () => {
  const { samples } = parseExposition(await exposition(async () => view()).render());
  for (const id of ['0', '1']) {
    const seen = only(samples, 'mcr_worker_frames_seen_total', { worker: id });
    const outcomes = find(samples, 'mcr_worker_frames_total', { worker: id });
    assert.deepEqual(
      outcomes.map((s) => s.labels.outcome),
      [
        'forwarded',
        'no_rule',
        'not_ipv4_udp',
        'malformed',
        'fragment',
        'filtered',
        'unsent',
        'worker_restart',
      ],
    );
    assert.equal(
      outcomes.reduce((sum, s) => sum + s.value, 0),
      seen,
    );
    const dropped = find(samples, 'mcr_worker_dropped_frames_total', { worker: id });
    assert.equal(
      dropped.reduce((sum, s) => sum + s.value, 0) +
        only(samples, 'mcr_worker_frames_total', { worker: id, outcome: 'forwarded' }),
      seen,
    );
  }
  assert.equal(only(samples, 'mcr_worker_restarts_total', { worker: '1' }), 1);
  assert.equal(only(samples, 'mcr_worker_ring_dropped_frames_total', { worker: '0' }), 5);
  assert.equal(only(samples, 'mcr_worker_cpu_seconds_total', { worker: '0' }), 12.25);
  assert.equal(only(samples, 'mcr_worker_gc_pause_seconds_total', { worker: '0' }), 0.025);
  assert.equal(only(samples, 'mcr_worker_gc_max_pause_seconds', { worker: '0' }), 0.0015);
  assert.equal(only(samples, 'mcr_worker_resident_memory_bytes', { worker: '0' }), 52_000_000);
  assert.equal(only(samples, 'mcr_worker_state', { worker: '0', state: 'running' }), 1);
});

test('a rule with the rtp option has its stream health as counters; others have none', async () => {
  const base = rule();
  const rtp = {
    packets: 2990,
    notRtp: 1,
    lost: 16,
    gaps: 4,
    duplicates: 11,
    reordered: 7,
    ssrcChanges: 0,
    resyncs: 2,
  };
  const withRtp = rule({
    id: 'r-00000001',
    name: 'cam-rtp',
    input: { ...base.input, port: 5004, rtp: true },
    counters: { ...base.counters, rtp },
  });
  const { samples } = parseExposition(await exposition(async () => view([rule(), withRtp])).render());
  const labels = { rule_name: 'cam-rtp' };
  assert.equal(only(samples, 'mcr_rule_rtp_packets_total', labels), 2990);
  assert.equal(only(samples, 'mcr_rule_rtp_not_rtp_packets_total', labels), 1);
  assert.equal(only(samples, 'mcr_rule_rtp_lost_packets_total', labels), 16);
  assert.equal(only(samples, 'mcr_rule_rtp_gaps_total', labels), 4);
  assert.equal(only(samples, 'mcr_rule_rtp_duplicate_packets_total', labels), 11);
  assert.equal(only(samples, 'mcr_rule_rtp_reordered_packets_total', labels), 7);
  assert.equal(only(samples, 'mcr_rule_rtp_ssrc_changes_total', labels), 0);
  assert.equal(only(samples, 'mcr_rule_rtp_resyncs_total', labels), 2);
  assert.equal(find(samples, 'mcr_rule_rtp_packets_total').length, 1, 'only the rule with the option');
  assert.equal(only(samples, 'mcr_rule_info', { ...labels, input_rtp: 'true' }), 1);
  assert.equal(only(samples, 'mcr_rule_info', { rule_name: 'cam1', input_rtp: 'false' }), 1);
});

test('label values with quotes, backslashes and newlines are escaped and read back unchanged', async () => {
  const name = 'cam "north"\\2\nsecond line';
  const text = await exposition(async () => view([rule({ name })])).render();
  const line = text.split('\n').find((l) => l.startsWith('mcr_rule_received_packets_total{'));
  assert.ok(line);
  assert.ok(line.includes('rule_name="cam \\"north\\"\\\\2\\nsecond line"'), line);
  const { samples } = parseExposition(text);
  assert.equal(only(samples, 'mcr_rule_received_packets_total', { rule_name: name }), 1000);
});

test('a rule that is gone is gone from the next scrape; a rule without traffic has no last-packet time', async () => {
  let current = view();
  const metrics = exposition(async () => current);
  assert.equal(find(parseExposition(await metrics.render()).samples, 'mcr_rule_info').length, 1);
  current = view([
    rule({ id: 'r-ffff0000', name: null, counters: { ...rule().counters, lastPacketAt: null } }),
  ]);
  const { samples } = parseExposition(await metrics.render());
  assert.deepEqual(
    find(samples, 'mcr_rule_info').map((s) => [s.labels.rule_id, s.labels.rule_name]),
    [['r-ffff0000', '']],
  );
  assert.equal(find(samples, 'mcr_rule_last_packet_timestamp_seconds').length, 0);
});

test('scrapes that arrive while a collection runs share it; the next scrape collects again', async () => {
  let calls = 0;
  let release: (() => void) | undefined;
  const metrics = exposition(async () => {
    calls++;
    await new Promise<void>((resolve) => (release = resolve));
    return view();
  });
  const scrapes = [metrics.render(), metrics.render(), metrics.render()];
  await new Promise((resolve) => setImmediate(resolve));
  release!();
  const texts = await Promise.all(scrapes);
  assert.equal(calls, 1);
  assert.equal(new Set(texts).size, 1);
  const next = metrics.render();
  await new Promise((resolve) => setImmediate(resolve));
  release!();
  await next;
  assert.equal(calls, 2);
});

test('scrapes right after a collection are served its text: at most four collections a second', async () => {
  let calls = 0;
  const metrics = exposition(async () => {
    calls++;
    return view();
  }, 150);
  const first = await metrics.render();
  for (let i = 0; i < 20; i++) assert.equal(await metrics.render(), first);
  assert.equal(calls, 1);
  await new Promise((resolve) => setTimeout(resolve, 200));
  await metrics.render();
  assert.equal(calls, 2);
  assert.equal(REUSE_MS, 250);
});

test('a failed collection fails the scrapes that shared it, and the next one tries again', async () => {
  let fail = true;
  const metrics = exposition(async () => {
    if (fail) throw new Error('no answer from worker 1');
    return view();
  });
  await assert.rejects(Promise.all([metrics.render(), metrics.render()]), /no answer from worker 1/);
  fail = false;
  assert.match(await metrics.render(), /mcr_rule_received_packets_total/);
});

test("the supervisor's process metrics keep their standard names, without prom-client's misnamed gauges", async () => {
  const metrics = new MetricsExposition({ stats: async () => view(), version: '0.1.0' });
  const { families } = parseExposition(await metrics.render());
  assert.equal(families.get('process_cpu_seconds_total')?.type, 'counter');
  assert.equal(families.get('process_resident_memory_bytes')?.type, 'gauge');
  assert.equal(families.get('mcr_build_info')?.type, 'gauge');
  for (const [name, family] of families)
    if (family.type !== 'counter') assert.doesNotMatch(name, /_total$/, `${family.type} ${name}`);
});
