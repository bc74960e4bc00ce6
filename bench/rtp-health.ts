// Micro-benchmark: what RtpHealth.observe costs per payload (the per-frame work of a rule with the
// rtp option), for an in-order stream and for streams with gaps, late packets and duplicates, next
// to the loop with the hook's test alone (a rule without the option). No sockets, no root.
//
// Usage: node dist/bench/rtp-health.js [--rounds N]
import { allowedCpus, pinToCpu } from '../src/sys/affinity.js';
import { RtpHealth } from '../src/worker/rtp-health.js';

const PAYLOAD = 64;
const PACKETS = 1 << 16;

interface Case {
  label: string;
  rtp: boolean;
  /** The sequence number of packet i of a lap. */
  sequence: (i: number) => number;
}

const CASES: Case[] = [
  { label: 'rtp off (the hook tests a null field)', rtp: false, sequence: (i) => i },
  { label: 'rtp on, in order', rtp: true, sequence: (i) => i },
  { label: 'rtp on, a gap of 1 every 100 packets', rtp: true, sequence: (i) => i + Math.floor(i / 100) },
  {
    label: 'rtp on, a pair swapped every 100 packets',
    rtp: true,
    sequence: (i) => (i % 100 === 98 ? i + 1 : i % 100 === 99 ? i - 1 : i),
  },
  {
    label: 'rtp on, a duplicate every 100 packets',
    rtp: true,
    sequence: (i) => (i % 100 === 99 ? i - 1 : i),
  },
];

/** One lap of payloads, back to back in one buffer, as frames sit in a ring. */
function payloads(c: Case): Uint8Array {
  const bytes = new Uint8Array(PACKETS * PAYLOAD);
  for (let i = 0; i < PACKETS; i++) {
    const at = i * PAYLOAD;
    const seq = c.sequence(i) & 0xffff;
    bytes[at] = 0x80;
    bytes[at + 2] = seq >>> 8;
    bytes[at + 3] = seq & 0xff;
    bytes[at + 11] = 1;
  }
  return bytes;
}

function measure(c: Case, laps: number): number {
  const bytes = payloads(c);
  const health = c.rtp ? new RtpHealth() : null;
  let seen = 0;
  const lap = (): void => {
    for (let i = 0; i < PACKETS; i++) {
      seen++; // stands for the rule's own counting, so the off case is a loop with work in it
      if (health !== null) health.observe(bytes, i * PAYLOAD, PAYLOAD);
    }
  };
  for (let w = 0; w < 20; w++) lap();
  const started = process.hrtime.bigint();
  for (let l = 0; l < laps; l++) lap();
  const ns = Number(process.hrtime.bigint() - started);
  // A lap ends where the sequence wraps to its start: a jump far back, judged once per lap.
  if (health !== null && health.counters.values[0]! !== seen)
    throw new Error(`${c.label}: not every payload counted`);
  return ns / (laps * PACKETS);
}

function argument(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

const rounds = argument('--rounds', 7);
const cpus = allowedCpus();
pinToCpu(cpus[cpus.length - 1]!);
console.log(`RtpHealth.observe, ${PAYLOAD}-byte payloads, ns per payload (median of ${rounds}, range):`);
for (const c of CASES) {
  const samples = Array.from({ length: rounds }, () => measure(c, 100)).sort((a, b) => a - b);
  const median = samples[Math.floor(samples.length / 2)]!;
  console.log(
    `  ${c.label.padEnd(44)} ${median.toFixed(2).padStart(6)}  (${samples[0]!.toFixed(2)}–${samples[samples.length - 1]!.toFixed(2)})`,
  );
}
