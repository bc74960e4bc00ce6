// What mcrgen can offer. Each variant sends probes unpaced (or paced, with --rates) for a few
// seconds over the forwarding-rate benchmark's own input link, set up the same way (sender eth0
// on CPU 1 → relay in0 with GRO and threaded NAPI pinned to CPU 0, its receive coalesced by each
// --input-coalesce value in turn; or with --peer plain a bare veth whose receive work runs on the
// sender's CPU), and in0's rx_packets counts what arrived. Trials are interleaved and repeated;
// the table gives medians and ranges. docs/PERFORMANCE.md (the generator) has a run's figures.
//
// Besides mcrgen's own modes it can blast one prebuilt frame as fast as possible through the
// two kernel paths a raw sender could use, with no JavaScript per frame: sendmmsg of 64 messages
// on a packet socket, and a TPACKET_V2 TX ring (PACKET_TX_RING) flushed every 64 frames; and it
// times the JavaScript that mcrgen --raw runs per frame.
//
// Usage (root): node dist/bench/generator-rate.js [--seconds 5] [--repeat 5] [--size 64]
//   [--variants socket,raw,…] [--rates 500000,1000000] [--peer napi|plain] [--input-coalesce 0,50]
//   [--results FILE]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';

import type { SendReport } from '../src/gen/sender.js';
import { multicastMac } from '../src/packet/build.js';
import { parseIpv4 } from '../src/packet/ipv4-address.js';
import { writeProbe } from '../src/packet/probe.js';
import {
  FRAME_HEADER_BYTES,
  frameWords,
  writeFrameHeader,
  writeProbeFrame,
} from '../src/packet/probe-frame.js';
import { MSG_DONTWAIT } from '../src/sys/constants.js';
import { errnoName } from '../src/sys/errors.js';
import { interfaceInfo } from '../src/sys/interfaces.js';
import { allocateNative } from '../src/sys/libc.js';
import { MessageBatch } from '../src/sys/message-batch.js';
import { openFrameSender } from '../src/sys/packet-socket.js';
import { sleepMicroseconds } from '../src/sys/short-sleep.js';
import { setBufferSize } from '../src/sys/socket.js';
import { TxRing } from '../src/sys/tx-ring.js';
import { BIN, sleep, Topology } from '../test/helpers/topology.js';
import { coalesceInput, GENERATOR_CPU, placeInputReceive, RELAY_CPU } from './placement.js';
import { spread, writeResults, type Spread } from './results.js';

/** mcrgen send arguments of each variant, and the CPUs it may use. */
const MCRGEN_VARIANTS: Record<string, { args: string[]; cpus: string }> = {
  socket: { args: [], cpus: `${GENERATOR_CPU}` },
  raw: { args: ['--raw'], cpus: `${GENERATOR_CPU}` },
  'raw-drop': { args: ['--raw', '--drop-when-full'], cpus: `${GENERATOR_CPU}` },
  'raw-qdisc': { args: ['--raw', '--no-qdisc-bypass'], cpus: `${GENERATOR_CPU}` },
  'raw-qdisc-drop': { args: ['--raw', '--no-qdisc-bypass', '--drop-when-full'], cpus: `${GENERATOR_CPU}` },
  'raw-2-threads': { args: ['--raw', '--threads', '2'], cpus: `${GENERATOR_CPU}` },
  'raw-2-threads-2-cpus': { args: ['--raw', '--threads', '2'], cpus: `${RELAY_CPU},${GENERATOR_CPU}` },
};
const BLASTS = ['blast-sendmmsg', 'blast-tx-ring'] as const;
const VARIANTS = [...Object.keys(MCRGEN_VARIANTS), ...BLASTS];

const GROUP = '239.1.1.1';
const PORT = 5000;
const BATCH = 64;

interface Trial {
  variant: string;
  /** in0's receive coalescing (µs) during the trial; null for a bare veth. */
  coalesceUs: number | null;
  /** Paced target, or 'max'. */
  target: number | 'max';
  /** Frames handed to the kernel per second: accepted + refused. */
  offeredPps: number;
  acceptedPps: number;
  /** What in0 counted, per second of the sender's run. */
  receivedPps: number;
  refusedShare: number;
}

interface Options {
  seconds: number;
  repeat: number;
  size: number;
  variants: string[];
  rates: number[];
  peer: 'napi' | 'plain';
  /** With --peer napi: in0's receive coalescing, µs; trials interleave over the values. */
  inputCoalesce: number[];
  results: string;
  blast?: 'blast-sendmmsg' | 'blast-tx-ring';
}

function parseOptions(): Options {
  const numbers = (text: string): number[] => text.split(',').map(Number);
  const program = new Command('generator-rate')
    .addOption(new Option('--seconds <s>', 'length of one trial').argParser(Number).default(5))
    .addOption(new Option('--repeat <n>', 'repetitions, interleaved').argParser(Number).default(5))
    .addOption(new Option('--size <bytes>', 'UDP payload bytes').argParser(Number).default(64))
    .addOption(
      new Option('--variants <list>', 'unpaced variants').argParser((t) => t.split(',')).default(VARIANTS),
    )
    .addOption(new Option('--rates <list>', 'paced raw trials at these rates').argParser(numbers).default([]))
    .addOption(new Option('--peer <kind>', 'receiving end').choices(['napi', 'plain']).default('napi'))
    .addOption(
      new Option(
        '--input-coalesce <list>',
        'with --peer napi: in0 receive coalescing, µs (several: interleaved)',
      )
        .argParser(numbers)
        .default([50]),
    )
    .addOption(
      new Option('--results <file>').default(
        `bench-results/generator-rate-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
      ),
    )
    .addOption(new Option('--blast <kind>').choices(BLASTS).hideHelp());
  program.parse(process.argv);
  const o = program.opts<Options>();
  for (const v of o.variants)
    if (!VARIANTS.includes(v)) throw new Error(`unknown variant ${v}: ${VARIANTS.join(', ')}`);
  return o;
}

/** One trial: a sender in the sender namespace, in0's rx_packets before and after. */
async function trial(
  topo: Topology,
  o: Options,
  variant: string,
  target: number | 'max',
  coalesceUs: number | null,
): Promise<Trial> {
  if (coalesceUs !== null) coalesceInput(topo, coalesceUs);
  const self = fileURLToPath(import.meta.url);
  const mcrgen = MCRGEN_VARIANTS[variant];
  const command = mcrgen
    ? [
        ...['-c', mcrgen.cpus, BIN('mcrgen'), 'send', '--interface', 'eth0', '--json'],
        ...['--group', GROUP, '--port', String(PORT), '--size', String(o.size)],
        ...['--rate', target === 'max' ? 'max' : String(target), '--duration', String(o.seconds)],
        ...mcrgen.args,
      ]
    : [
        '-c',
        `${GENERATOR_CPU}`,
        process.execPath,
        self,
        '--blast',
        variant,
        '--seconds',
        String(o.seconds),
        '--size',
        String(o.size),
      ];
  const before = topo.linkStats(topo.relay, 'in0').rxPackets;
  const sender = topo.start(topo.sender, 'taskset', command);
  const { code } = await sender.exited;
  if (code !== 0) throw new Error(`${variant} exited ${code}: ${sender.stderr}`);
  await sleep(300); // what is still in the peer's ring arrives
  const received = topo.linkStats(topo.relay, 'in0').rxPackets - before;
  const r = JSON.parse(sender.stdout) as Pick<SendReport, 'packets' | 'refused' | 'elapsedSeconds'>;
  const offered = r.packets + r.refused;
  return {
    variant,
    coalesceUs,
    target,
    offeredPps: offered / r.elapsedSeconds,
    acceptedPps: r.packets / r.elapsedSeconds,
    receivedPps: received / r.elapsedSeconds,
    refusedShare: offered > 0 ? r.refused / offered : 0,
  };
}

/** Inside the sender namespace: one prebuilt frame, as fast as a kernel path takes it. */
function blast(o: Options): void {
  const link = interfaceInfo('eth0')!;
  const group = parseIpv4(GROUP)!;
  const fd = openFrameSender(link.index, 'eth0', true);
  setBufferSize(fd, 'send', 4 * 1024 * 1024, true);
  const length = FRAME_HEADER_BYTES + o.size;
  const stride = Math.ceil(length / 8) * 8; // frames start at even offsets
  const write = (bytes: Uint8Array, at: number): void => {
    const base = writeFrameHeader(bytes, at, {
      destinationMac: multicastMac(group),
      sourceMac: link.mac,
      source: link.ipv4!,
      destination: group,
      sourcePort: 40000,
      port: PORT,
      ttl: 16,
      payloadLength: o.size,
    });
    writeProbeFrame(bytes, frameWords(bytes), at, o.size, 1, 0, 0, base);
  };
  let packets = 0;
  let refusals = 0;
  const started = performance.now();
  const end = started + o.seconds * 1000;
  if (o.blast === 'blast-sendmmsg') {
    const frames = allocateNative(BATCH * stride);
    const batch = new MessageBatch(BATCH);
    for (let i = 0; i < BATCH; i++) {
      write(frames.bytes, i * stride);
      batch.add(frames.region, i * stride, length);
    }
    while (performance.now() < end) {
      for (let from = 0; from < BATCH;) {
        const n = batch.send(fd, from, MSG_DONTWAIT);
        if (n > 0) {
          from += n;
          packets += n;
        } else {
          if (!['ENOBUFS', 'EAGAIN'].includes(errnoName(-n))) throw new Error(`sendmmsg: ${errnoName(-n)}`);
          refusals++;
          sleepMicroseconds(50);
        }
      }
    }
  } else {
    const ring = TxRing.attach(fd, length, 4096);
    for (let s = 0; s < ring.frameCount; s++) write(ring.bytes, ring.frameOffset(s));
    let next = 0;
    while (performance.now() < end) {
      let submitted = 0;
      while (submitted < BATCH && ring.isFree(next)) {
        ring.submit(next, length);
        next = (next + 1) % ring.frameCount;
        submitted++;
      }
      const n = ring.flush(MSG_DONTWAIT);
      if (n > 0) packets += n / length;
      else if (n < 0 && !['ENOBUFS', 'EAGAIN'].includes(errnoName(-n)))
        throw new Error(`send: ${errnoName(-n)}`);
      if (n <= 0 || submitted === 0) {
        refusals++;
        sleepMicroseconds(50);
      }
    }
  }
  const elapsedSeconds = (performance.now() - started) / 1000;
  process.stdout.write(`${JSON.stringify({ packets, refused: 0, elapsedSeconds, refusals })}\n`);
}

/**
 * Nanoseconds of JavaScript per frame: the probe alone, and the probe with the UDP checksum. The
 * least of five samples: other work on a shared machine only ever adds time.
 */
function javascriptCost(size: number): { probeNs: number; probeFrameNs: number } {
  const slots = 64;
  const stride = Math.ceil((FRAME_HEADER_BYTES + size) / 8) * 8;
  const bytes = new Uint8Array(slots * stride);
  const words = frameWords(bytes);
  const frames = 640_000;
  const time = (body: (at: number, seq: number) => void): number => {
    let best = Number.POSITIVE_INFINITY;
    for (let sample = 0; sample < 5; sample++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < frames; i++) body((i % slots) * stride, i);
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / frames);
    }
    return best;
  };
  const timeUs = Date.now() * 1000;
  return {
    probeNs: time((at, seq) => writeProbe(bytes, at + FRAME_HEADER_BYTES, size, 7, seq, timeUs)),
    probeFrameNs: time((at, seq) => writeProbeFrame(bytes, words, at, size, 7, seq, timeUs, 0x1234)),
  };
}

function format(s: Spread | null): string {
  if (!s) return '-';
  const k = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(0)}k`);
  return s.n > 1 ? `${k(s.median)} [${k(s.min)}-${k(s.max)}]` : k(s.median);
}

async function main(): Promise<void> {
  const o = parseOptions();
  if (o.blast) return blast(o);
  const js = javascriptCost(o.size);
  console.log(
    `generator-rate: ${o.size}-byte payloads, ${o.seconds}-s trials, ${o.repeat} interleaved repetitions, peer ${o.peer === 'plain' ? 'a bare veth (receive work on the sender CPU)' : `in0 with GRO and threaded NAPI on CPU ${RELAY_CPU}, coalescing ${o.inputCoalesce.join(' and ')} µs`}`,
  );
  console.log(
    `JavaScript per frame (this process): probe ${js.probeNs.toFixed(0)} ns, probe + UDP checksum ${js.probeFrameNs.toFixed(0)} ns`,
  );
  const topo = new Topology();
  const trials: Trial[] = [];
  try {
    const coalescing = o.peer === 'napi' ? o.inputCoalesce : [null];
    if (o.peer === 'napi') placeInputReceive(topo, 'relay-core');
    const plan: [string, number | 'max', number | null][] = [];
    for (const c of coalescing) {
      for (const v of o.variants) plan.push([v, 'max', c]);
      for (const r of o.rates) plan.push(['raw', r, c]);
    }
    const k = (n: number): string => `${(n / 1000).toFixed(0)}k`;
    for (let rep = 1; rep <= o.repeat; rep++) {
      for (const [variant, target, c] of plan) {
        const t = await trial(topo, o, variant, target, c);
        trials.push(t);
        console.log(
          `[${rep}/${o.repeat}] ${variant} ${target === 'max' ? 'unpaced' : `at ${k(target)}`}${c === null ? '' : `, coalescing ${c} µs`}: offered ${k(t.offeredPps)}, received ${k(t.receivedPps)}` +
            (t.refusedShare > 0 ? `, ${(t.refusedShare * 100).toFixed(1)} % refused` : ''),
        );
      }
    }
    console.log('\nVARIANT                    TARGET  COALESCE  OFFERED PPS            RECEIVED AT in0 PPS');
    for (const [variant, target, c] of plan) {
      const mine = trials.filter((t) => t.variant === variant && t.target === target && t.coalesceUs === c);
      console.log(
        `${variant.padEnd(26)} ${String(target).padStart(7)}  ${(c === null ? '-' : `${c} µs`).padStart(8)}  ${format(spread(mine.map((t) => t.offeredPps))).padEnd(22)} ${format(spread(mine.map((t) => t.receivedPps)))}`,
      );
    }
    writeResults(o.results, {
      date: new Date().toISOString(),
      kernel: spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim(),
      options: o,
      javascriptNsPerFrame: js,
      trials,
    });
    console.log(`\nresults: ${o.results}`);
  } finally {
    topo.destroy();
  }
}

await main();
