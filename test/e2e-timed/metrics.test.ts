import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseExposition } from '../helpers/exposition.js';
import { httpGet, httpGetWhenReady, PrometheusServer } from '../helpers/prometheus.js';
import { RelayHost } from '../helpers/relay-host.js';
import { BIN, ip, ROOT, sleep, Topology } from '../helpers/topology.js';

// mcrd's Prometheus endpoint against the real tools: promtool checks the exposition, a real
// Prometheus server scrapes mcrd every second and its query API returns the rate mcrgen sends,
// and every PromQL expression of the shipped Grafana dashboard returns data from it. Everything
// listens on the relay namespace's loopback, where the scraper and Prometheus run too.

const METRICS = '127.0.0.1:9464';
const PROMETHEUS_PORT = 9090;
const RATE = 1000;

/** Every PromQL expression of a Grafana dashboard's panels (rows' panels too). */
function dashboardExpressions(file: string): { panel: string; expr: string }[] {
  interface Panel {
    title: string;
    targets?: { expr?: string }[];
    panels?: Panel[];
  }
  const dashboard = JSON.parse(readFileSync(file, 'utf8')) as { panels: Panel[] };
  const walk = (panels: Panel[]): { panel: string; expr: string }[] =>
    panels.flatMap((p) => [
      ...(p.targets ?? []).flatMap((t) => (t.expr ? [{ panel: p.title, expr: t.expr }] : [])),
      ...walk(p.panels ?? []),
    ]);
  return walk(dashboard.panels);
}

/**
 * Grafana's variables as a dashboard viewer set to "All" would see them: every instance and
 * rule, a rate window of several scrapes, the last minutes as the range.
 */
function substituteVariables(expr: string): string {
  return expr
    .replace(/\$__rate_interval|\$\{__rate_interval\}/g, '10s')
    .replace(/\$__range|\$\{__range\}/g, '2m')
    .replace(/\$\{?(instance|rule)\}?/g, '.*');
}

test('/metrics passes promtool; a real Prometheus sees the sent rate; every dashboard query has data', async (t) => {
  const topo = new Topology({ outputLinks: 2, net: 60 });
  let prometheus: PrometheusServer | undefined;
  try {
    const relay = await RelayHost.start(topo, ['--workers', '2', '--metrics-listen', METRICS]);
    // An RTP stream, so the dashboard's stream-health panel has a rule to show.
    relay.addRule('239.1.1.1', 5000, '239.2.2.1:6000:out0,239.2.2.2:6000:out1', ['-n', 'steady', '--rtp']);
    // out1 goes down: its copies fail and are counted by errno (the dashboard's error panel).
    ip(['-n', topo.relay, 'link', 'set', 'out1', 'down']);
    const sender = topo.start(topo.sender, BIN('mcrgen'), [
      ...['send', '--interface', 'eth0', '--group', '239.1.1.1', '--port', '5000'],
      ...['--rate', String(RATE), '--size', '200', '--duration', '40', '--rtp', '--rtp-skip-every', '1000'],
    ]);
    // A trickle to a group without a rule: worker drops by reason.
    const unmatched = topo.start(topo.sender, BIN('mcrgen'), [
      ...['send', '--interface', 'eth0', '--group', '239.1.1.9', '--port', '5000'],
      ...['--rate', '20', '--size', '100', '--duration', '40'],
    ]);
    await relay.statsAfter(
      (s) => (s.rules[0]?.counters.packetsIn ?? 0) > 500 && s.workers.every((w) => w.health),
    );

    const scrape = await httpGetWhenReady(topo.relay, `http://${METRICS}/metrics`);
    assert.match(scrape.type ?? '', /^text\/plain; version=0\.0\.4/);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: scrape.body, encoding: 'utf8' });
    assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
    assert.equal(`${check.stdout}${check.stderr}`, '', 'promtool has no warnings');
    const { families, samples } = parseExposition(scrape.body);
    for (const name of [
      'mcr_rule_received_packets_total',
      'mcr_output_sent_packets_total',
      'mcr_output_send_errors_total',
      'mcr_worker_frames_total',
      'mcr_worker_dropped_frames_total',
      'mcr_worker_cpu_seconds_total',
      'mcr_interface_receive_packets_total',
      'mcr_rule_rtp_lost_packets_total',
      'process_cpu_seconds_total',
    ])
      assert.ok(families.has(name) && samples.some((s) => s.name === name), `${name} is exposed`);
    assert.ok(
      samples.some((s) => s.name === 'mcr_worker_dropped_frames_total' && s.labels.reason === 'no_rule'),
      'unmatched frames are counted by reason',
    );
    const index = await httpGet(topo.relay, `http://${METRICS}/`);
    assert.equal(index.status, 200);
    assert.match(index.body, /href="\/metrics"/);
    assert.equal((await httpGet(topo.relay, `http://${METRICS}/nothing`)).status, 404);

    prometheus = await PrometheusServer.start(topo, topo.relay, [METRICS], PROMETHEUS_PORT);
    // Enough scrapes for a 20 s rate window, and the dashboard's 2 m ranges to hold data. The
    // window is that long because a rate is the difference of two scrapes over their distance:
    // a scrape late by a few hundred ms on a busy machine moves a 10 s rate by several percent.
    await sleep(24000);
    const targets = await prometheus.targets();
    assert.deepEqual(
      targets.map((t) => [t.scrapeUrl, t.health, t.lastError]),
      [[`http://${METRICS}/metrics`, 'up', '']],
    );

    const [received] = await prometheus.query(
      'rate(mcr_rule_received_packets_total{rule_name="steady"}[20s])',
    );
    const receivedRate = Number(received?.value[1]);
    assert.ok(
      Math.abs(receivedRate - RATE) < RATE * 0.1,
      `Prometheus' rate ${receivedRate} pps, sent ${RATE}`,
    );
    const [sent] = await prometheus.query(
      'sum(rate(mcr_output_sent_packets_total{rule_name="steady", output="0"}[20s]))',
    );
    const sentRate = Number(sent?.value[1]);
    assert.ok(Math.abs(sentRate - RATE) < RATE * 0.1, `output 0: ${sentRate} pps`);
    t.diagnostic(
      `Prometheus: received ${receivedRate.toFixed(1)} pps, output 0 ${sentRate.toFixed(1)} pps (sent ${RATE})`,
    );
    const unaccounted = await prometheus.query(
      'mcr_worker_frames_seen_total - on (instance, worker) sum by (instance, worker) (mcr_worker_frames_total)',
    );
    assert.equal(unaccounted.length, 2, 'one per worker');
    for (const s of unaccounted) assert.equal(Number(s.value[1]), 0, 'every frame in one outcome, in PromQL');

    const expressions = dashboardExpressions(join(ROOT, 'examples/grafana-mcr.json'));
    assert.ok(expressions.length >= 15, `${expressions.length} expressions`);
    const empty: string[] = [];
    for (const { panel, expr } of expressions) {
      const result = await prometheus.query(substituteVariables(expr));
      if (result.length === 0) empty.push(`${panel}: ${expr}`);
    }
    assert.deepEqual(empty, [], 'every dashboard expression returns data');

    await prometheus.stop();
    prometheus = undefined;
    sender.child.kill('SIGTERM');
    unmatched.child.kill('SIGTERM');
    const exit = await relay.stop();
    assert.equal(exit.code, 0, relay.daemon.stderr);
  } finally {
    await prometheus?.stop();
    topo.destroy();
  }
});

test('an address in use stops mcrd at start (78); a reload that moves metrics.listen says it needs a restart', async () => {
  const topo = new Topology({ net: 61 });
  try {
    const holder = topo.start(topo.relay, process.execPath, [
      '-e',
      `require('node:net').createServer().listen(9464, '127.0.0.1', () => console.error('holding'))`,
    ]);
    await holder.waitForStderr('holding');
    const refused = topo.start(topo.relay, BIN('mcrd'), [
      ...['--socket', topo.socketPath, '--metrics-listen', METRICS],
    ]);
    const { code } = await refused.exited;
    assert.equal(code, 78, refused.stderr);
    assert.match(
      refused.stderr,
      /mcrd: E_METRICS_LISTEN: cannot serve metrics at 127\.0\.0\.1:9464: the address is in use by another program/,
    );
    assert.doesNotMatch(refused.stderr, /"msg":"mcrd ready"/);
    assert.ok(!existsSync(topo.socketPath), 'no control socket left behind');
    holder.child.kill('SIGTERM');
    await holder.exited;

    const usage = spawnSync(BIN('mcrd'), ['--metrics-listen', 'localhost:9464'], { encoding: 'utf8' });
    assert.equal(usage.status, 2, usage.stderr);
    assert.match(usage.stderr, /"localhost:9464" has localhost, which is not an IPv4 address/);

    const config = join(topo.dir, 'mcr.json5');
    writeFileSync(config, `{ metrics: { listen: '127.0.0.1:9465' } }\n`);
    const relay = await RelayHost.start(topo, ['--config', config]);
    assert.equal((await httpGetWhenReady(topo.relay, 'http://127.0.0.1:9465/metrics')).status, 200);
    writeFileSync(config, `{ metrics: { listen: '127.0.0.1:9466' } }\n`);
    const reload = relay.mcrctlJson<{ needsRestart: string[] }>(['config', 'reload']);
    assert.deepEqual(reload.needsRestart, ['metrics.listen 127.0.0.1:9465 → 127.0.0.1:9466']);
    assert.equal(
      (await httpGet(topo.relay, 'http://127.0.0.1:9465/metrics')).status,
      200,
      'still where it was',
    );
    writeFileSync(config, `{ metrics: { listen: 'localhost:9466' } }\n`);
    const bad = relay.mcrctl(['config', 'reload']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr + bad.stdout, /metrics\.listen "localhost:9466" has localhost/);
    assert.equal((await relay.stop()).code, 0, relay.daemon.stderr);
  } finally {
    topo.destroy();
  }
});

test('the scrape-cost benchmark runs both kinds of trial and reports them', () => {
  // Its figures are not judged here (benchmarks print, tests do not time); that it works is.
  const r = spawnSync(
    process.execPath,
    [
      join(ROOT, 'dist/bench/scrape-cost.js'),
      ...['--rate', '2000', '--count', '5000', '--rounds', '1', '--rules', '3', '--interval', '0.5'],
    ],
    { encoding: 'utf8', timeout: 120000 },
  );
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /round 1: no scraping: \d+ lost .*; CPU: supervisor \d+ ms, workers \d+ ms\n/);
  const scraping = /round 1: scraping {3}: \d+ lost .*; (\d+) scrapes \((\d+) failed\) of (\d+) KiB/.exec(
    r.stdout,
  );
  assert.ok(scraping, r.stdout);
  assert.ok(Number(scraping[1]) >= 2, 'the scraper scraped');
  assert.equal(scraping[2], '0', 'every scrape answered');
  assert.ok(Number(scraping[3]) > 10, 'a whole exposition each time');
  assert.match(
    r.stdout,
    /total lost without scraping: \d+; with a scrape every 0\.5 s: \d+ \(of 5000 each\)/,
  );
  assert.match(r.stdout, /supervisor CPU per scrape: -?\d+ ms/);
});
