// What a config reload costs the traffic it leaves alone. One flow (mcrgen, sequence-numbered)
// runs through an untouched rule while another rule of the same file gains and loses an output
// on every reload; the same trial without reloads runs alongside, so the host's own loss at that
// rate is the reference. Prints a line per trial and the loss of each kind.
//
// Usage (root): node dist/bench/reload-loss.js [--rate PPS] [--count N] [--reloads N] [--rounds N]
// It builds its own namespaces (the test topology: sender, relay, receiver) and removes them.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { expectPackets, receiverReport, RelayHost } from '../test/helpers/relay-host.js';
import { BIN, sleep, Topology } from '../test/helpers/topology.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '40000' },
    count: { type: 'string', default: '200000' },
    reloads: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '2' },
  },
});
const rate = Number(values.rate);
const count = Number(values.count);
const reloads = Number(values.reloads);
const rounds = Number(values.rounds);

interface Trial {
  reloads: number;
  applied: number;
  lost: number;
}

function document(churnOutputs: string[]): string {
  const rule = (name: string, group: string, outputs: string[]): string =>
    `{ name: "${name}", input: { interface: "in0", group: "${group}", port: 5000 }, outputs: [${outputs
      .map((o) => `{ group: "${o}", port: 6000, interface: "out0" }`)
      .join(', ')}] }`;
  return `{ rules: [${rule('steady', '239.1.1.1', ['239.2.2.1'])}, ${rule('churn', '239.1.1.2', churnOutputs)}] }\n`;
}

async function trial(withReloads: number): Promise<Trial> {
  const topo = new Topology({ net: 88 });
  try {
    const config = join(topo.dir, 'mcr.json5');
    writeFileSync(config, document(['239.2.2.2']));
    const relay = await RelayHost.start(topo, ['--workers', '2', '--config', config]);
    const recv = await expectPackets(topo, 'eth0', '239.2.2.1', 6000, count);
    const sender = topo.start(topo.sender, BIN('mcrgen'), [
      ...['send', '--interface', 'eth0', '--group', '239.1.1.1', '--port', '5000'],
      ...['--rate', String(rate), '--size', '200', '--count', String(count)],
    ]);
    // Reloads spread over the flow, clear of its first and last 300 ms.
    const spanMs = (count / rate) * 1000 - 600;
    await sleep(300);
    for (let i = 0; i < withReloads; i++) {
      writeFileSync(config, document(i % 2 === 0 ? ['239.2.2.2', '239.2.2.3'] : ['239.2.2.2']));
      relay.daemon.child.kill('SIGHUP');
      await sleep(spanMs / withReloads);
    }
    await sender.exited;
    const { report } = await receiverReport(recv);
    const applied = relay.daemon.stderr.split('config applied').length - 1;
    return { reloads: withReloads, applied, lost: count - report.totals.unique };
  } finally {
    topo.destroy();
  }
}

process.stdout.write(
  `reload loss: ${count} packets at ${rate} pps through an untouched rule; ${reloads} reloads change another rule\n`,
);
const trials: Trial[] = [];
for (let round = 0; round < rounds; round++) {
  for (const n of [0, reloads]) {
    const t = await trial(n);
    trials.push(t);
    process.stdout.write(
      `  round ${round + 1}: ${String(t.reloads).padStart(3)} reloads (${t.applied} applied): ${t.lost} lost (${((t.lost / count) * 100).toFixed(3)} %)\n`,
    );
  }
}
const lostWith = (n: number): number =>
  trials.filter((t) => t.reloads === n).reduce((sum, t) => sum + t.lost, 0);
process.stdout.write(
  `total lost without reloads: ${lostWith(0)}; with ${reloads} reloads per trial: ${lostWith(reloads)} (of ${count * rounds} each)\n`,
);
