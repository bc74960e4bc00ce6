// What a Prometheus scrape every second costs forwarding. One flow (mcrgen, sequence-numbered)
// runs through mcrd at a fixed high rate while a scraper in the relay's namespace GETs /metrics
// every second; the same trial without the scraper runs alternately in the same run, so the
// host's own loss at that rate is the reference. Idle rules (with outputs) make the exposition
// as large as a real configuration's. All trials go through one mcrd. Prints a line per trial, the loss of each kind, and what
// the scrapes took (time and size).
//
// Usage (root): node dist/bench/scrape-cost.js [--rate PPS] [--count N] [--rules N] [--rounds N]
//               [--interval S] [--workers N]
// It builds its own namespaces (the test topology: sender, relay, receiver) and removes them.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { expectPackets, receiverReport, RelayHost } from '../test/helpers/relay-host.js';
import { BIN, sleep, Topology } from '../test/helpers/topology.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '50000' },
    count: { type: 'string', default: '500000' },
    rules: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
    interval: { type: 'string', default: '1' },
    workers: { type: 'string', default: '2' },
  },
});
const rate = Number(values.rate);
const count = Number(values.count);
const idleRules = Number(values.rules);
const rounds = Number(values.rounds);
const intervalSeconds = Number(values.interval);
const workers = values.workers;

const METRICS = '127.0.0.1:9464';

interface Scrapes {
  scrapes: number;
  failed: number;
  meanMs: number;
  maxMs: number;
  bytes: number;
}

interface Trial {
  scraping: boolean;
  lost: number;
  scrapes: Scrapes | undefined;
  /** CPU time used during the trial, in seconds: mcrd's supervisor, and its workers together. */
  supervisorCpu: number;
  workersCpu: number;
}

/** User and system CPU time of a process so far, in seconds (/proc/PID/stat, 100 ticks a second). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Runs in the relay's namespace: GET /metrics every interval; on SIGTERM, what it measured. */
const SCRAPER = `const [url, interval] = [process.argv[1], Number(process.argv[2]) * 1000];
const times = []; let failed = 0; let bytes = 0;
const scrape = async () => {
  const started = performance.now();
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(interval) });
    const text = await r.text();
    if (r.status !== 200) failed++; else { bytes = text.length; times.push(performance.now() - started); }
  } catch { failed++; }
};
const timer = setInterval(scrape, interval);
process.on('SIGTERM', () => {
  clearInterval(timer);
  const sum = times.reduce((a, b) => a + b, 0);
  process.stdout.write(JSON.stringify({ scrapes: times.length, failed, meanMs: times.length ? sum / times.length : 0, maxMs: Math.max(0, ...times), bytes }));
  process.exit(0);
});
console.error('scraping');`;

function document(): string {
  const rule = (name: string, group: string, port: number): string =>
    `{ name: "${name}", input: { interface: "in0", group: "${group}", port: ${port} }, outputs: [{ group: "239.2.2.1", port: ${port}, interface: "out0" }, { group: "239.2.3.1", port: ${port}, interface: "out0" }] }`;
  const idle = Array.from({ length: idleRules }, (_, i) => rule(`idle-${i}`, '239.1.2.1', 6001 + i));
  return `{ rules: [${[rule('steady', '239.1.1.1', 5000), ...idle].join(',\n')}] }\n`;
}

/** One flow of `count` packets through the running relay, with or without the scraper. */
async function trial(topo: Topology, relay: RelayHost, scraping: boolean): Promise<Trial> {
  const supervisor = relay.daemon.child.pid!;
  const workerPids = relay.stats().workers.flatMap((w) => (w.pid === null ? [] : [w.pid]));
  const workersCpu = (): number => workerPids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const recv = await expectPackets(topo, 'eth0', '239.2.2.1', 5000, count);
  const scraper = scraping
    ? topo.start(topo.relay, process.execPath, [
        '-e',
        SCRAPER,
        `http://${METRICS}/metrics`,
        String(intervalSeconds),
      ])
    : undefined;
  await scraper?.waitForStderr('scraping');
  const supervisorBefore = cpuSeconds(supervisor);
  const workersBefore = workersCpu();
  const sender = topo.start(topo.sender, BIN('mcrgen'), [
    ...['send', '--interface', 'eth0', '--group', '239.1.1.1', '--port', '5000'],
    ...['--rate', String(rate), '--size', '200', '--count', String(count)],
  ]);
  await sender.exited;
  const supervisorCpu = cpuSeconds(supervisor) - supervisorBefore;
  const workersSpent = workersCpu() - workersBefore;
  let scrapes: Scrapes | undefined;
  if (scraper) {
    scraper.child.kill('SIGTERM');
    await scraper.exited;
    scrapes = JSON.parse(scraper.stdout) as Scrapes;
  }
  const { report } = await receiverReport(recv);
  return { scraping, lost: count - report.totals.unique, scrapes, supervisorCpu, workersCpu: workersSpent };
}

process.stdout.write(
  `scrape cost: ${count} packets at ${rate} pps through one rule (${idleRules} idle rules besides, ${workers} workers); ` +
    `with and without a GET /metrics every ${intervalSeconds} s, alternately\n`,
);
// One relay for every trial, so the two kinds differ only by the scraper; the order alternates
// between rounds, so a drift of the host's load does not favour one kind.
const topo = new Topology({ net: 61 });
const trials: Trial[] = [];
try {
  const config = join(topo.dir, 'mcr.json5');
  writeFileSync(config, document());
  const relay = await RelayHost.start(topo, [
    ...['--workers', workers, '--config', config, '--metrics-listen', METRICS],
    ...['--log-level', 'warn'],
  ]);
  for (let round = 0; round < rounds; round++) {
    for (const scraping of round % 2 === 0 ? [false, true] : [true, false]) {
      const t = await trial(topo, relay, scraping);
      trials.push(t);
      const s = t.scrapes;
      const scrapeText = s
        ? `; ${s.scrapes} scrapes (${s.failed} failed) of ${(s.bytes / 1024).toFixed(0)} KiB, mean ${s.meanMs.toFixed(1)} ms, max ${s.maxMs.toFixed(1)} ms`
        : '';
      process.stdout.write(
        `  round ${round + 1}: ${scraping ? 'scraping   ' : 'no scraping'}: ${t.lost} lost (${((t.lost / count) * 100).toFixed(3)} %); ` +
          `CPU: supervisor ${ms(t.supervisorCpu)} ms, workers ${ms(t.workersCpu)} ms${scrapeText}\n`,
      );
      await sleep(200);
    }
  }
  await relay.stop();
} finally {
  topo.destroy();
}
const total = (scraping: boolean, of: (t: Trial) => number): number =>
  trials.filter((t) => t.scraping === scraping).reduce((sum, t) => sum + of(t), 0);
const scrapeCount = trials.reduce((sum, t) => sum + (t.scrapes?.scrapes ?? 0), 0);
process.stdout.write(
  `total lost without scraping: ${total(false, (t) => t.lost)}; with a scrape every ${intervalSeconds} s: ${total(true, (t) => t.lost)} (of ${count * rounds} each)\n` +
    `supervisor CPU per scrape: ${scrapeCount > 0 ? ms((total(true, (t) => t.supervisorCpu) - total(false, (t) => t.supervisorCpu)) / scrapeCount) : '-'} ms; ` +
    `workers' CPU per scrape: ${scrapeCount > 0 ? ms((total(true, (t) => t.workersCpu) - total(false, (t) => t.workersCpu)) / scrapeCount) : '-'} ms (the difference between the two kinds of trial, over the scrapes)\n`,
);

function ms(seconds: number): string {
  return (seconds * 1000).toFixed(0);
}
