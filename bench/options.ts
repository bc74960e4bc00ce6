// Command line of the forwarding-rate benchmark.
import { Command, InvalidArgumentError, Option } from 'commander';
import { SCENARIOS } from './scenarios.js';
import { PLACEMENTS, type Placement } from './placement.js';
import { SYSTEMS, type SystemName } from './systems.js';
import { GENERATORS, type Generator } from './trial.js';

export interface BenchOptions {
  scenarios: string[];
  sizes: number[];
  systems: SystemName[];
  placements: Placement[];
  repeat: number;
  /** Length of one trial (one offered rate). */
  seconds: number;
  /** The offered rate at which CPU per packet is measured (below every system's lossless rate). */
  fixedRate: number;
  /** Bisection stops when the lossy and lossless rates are this close (a fraction). */
  resolution: number;
  workers: number;
  /** How mcrgen offers load: whole frames on a packet socket (the fastest), or UDP datagrams. */
  generator: Generator;
  /** Receive coalescing on the relay's input in µs (0: none); see placement.ts. */
  inputCoalesce: number;
  qdiscBypass: boolean;
  /** Seconds of unpaced load after the search, inside the GC window (0: none). */
  soak: number;
  /** Extra mcrd arguments (tuning runs: ring size, batch size, batch budget). */
  mcrdArgs: string[];
  results: string;
  smoke: boolean;
}

function list<T extends string>(known: readonly T[]) {
  return (text: string): T[] => {
    const items = text.split(',').map((s) => s.trim());
    for (const item of items)
      if (!known.includes(item as T))
        throw new InvalidArgumentError(`"${item}" is not one of ${known.join(', ')}`);
    return items as T[];
  };
}

function positive(text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
}

function nonNegative(text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be zero or a positive number');
  return n;
}

function sizes(text: string): number[] {
  return text.split(',').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 32 || n > 1472)
      throw new InvalidArgumentError(`payload size "${s}" must be 32-1472 bytes (one unfragmented frame)`);
    return n;
  });
}

export function parseBenchOptions(argv: string[]): BenchOptions {
  const program = new Command('npm run bench --')
    .description(
      'Forwarding rate of mcr against Linux kernel multicast forwarding (smcroute) and socat, in namespaces built for the run. Needs root.',
    )
    .addOption(
      new Option('--scenarios <list>', 'scenarios to run')
        .argParser(list(Object.keys(SCENARIOS)))
        .default(Object.keys(SCENARIOS)),
    )
    .addOption(
      new Option('--sizes <list>', 'UDP payload sizes in bytes').argParser(sizes).default([64, 1316]),
    )
    .addOption(
      new Option('--systems <list>', 'relays to compare').argParser(list(SYSTEMS)).default([...SYSTEMS]),
    )
    .addOption(
      new Option('--placements <list>', 'where the input link’s receive processing runs')
        .argParser(list(PLACEMENTS))
        .default([...PLACEMENTS]),
    )
    .addOption(
      new Option('--repeat <n>', 'repetitions, interleaved across cases').argParser(positive).default(3),
    )
    .addOption(new Option('--seconds <s>', 'length of one trial').argParser(positive).default(2))
    .addOption(
      new Option('--fixed-rate <pps>', 'offered rate for the CPU-per-packet trial')
        .argParser(positive)
        .default(50000),
    )
    .addOption(
      new Option('--resolution <fraction>', 'stop the lossless search when bounds are this close')
        .argParser(positive)
        .default(0.05),
    )
    .addOption(
      new Option('--soak <s>', 'after the search, this long unpaced: GC and RSS over a long saturated run')
        .argParser(nonNegative)
        .default(0),
    )
    .addOption(new Option('--workers <n>', 'mcr worker processes').argParser(positive).default(1))
    .addOption(
      new Option('--generator <kind>', 'mcrgen send --raw (frames on a packet socket) or its UDP socket')
        .choices(GENERATORS)
        .default('raw'),
    )
    .addOption(
      new Option('--input-coalesce <µs>', 'receive coalescing on the relay’s input (0: none)')
        .argParser(nonNegative)
        .default(50),
    )
    .option('--no-qdisc-bypass', 'mcr raw egress through the qdisc (PACKET_QDISC_BYPASS off)')
    .addOption(
      new Option('--mcrd-args <args>', 'extra mcrd arguments, e.g. "--batch-size 16 --ring-size 1"')
        .argParser((text: string) => text.split(/\s+/).filter(Boolean))
        .default([]),
    )
    .addOption(
      new Option('--results <file>', 'JSON results file').default(
        `bench-results/forwarding-rate-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
      ),
    )
    .option(
      '--smoke',
      'a short run for CI: 1:1, 64 bytes, relay-core placement, every system, one repetition, half-second trials',
    )
    .addHelpText(
      'after',
      `
Every case builds fresh namespaces: a sender (mcrgen, CPU 1; --raw unless --generator socket),
the relay (its relay process pinned to CPU 0) and a receiver counting at its interfaces. Systems:
mcr-raw and mcr-socket (the worker path, outputs forced to raw or socket egress), mcr-xdp (the XDP
path: outputs in mode xdp; the receiver's ends get GRO, so a veth takes redirected frames),
kernel (smcroute routes) and socat. Placements: relay-core runs the input veth's
threaded NAPI on CPU 0, sharing the relay's core as a NIC queue steered there would; other-core
runs it on CPU 1. in0's receive is coalesced as a NIC's interrupt moderation would (--input-coalesce). Per case: CPU per packet at --fixed-rate, output at full load, a bisection for
the maximum lossless rate (loss <= 0.1 %), then for the maximum rate at <= 1 % loss (starting from
the first search's trials), output at twice the lossless rate, and with --soak a long
unpaced trial for the worker's garbage collections and memory. docs/PERFORMANCE.md
explains the method and the figures.`,
    );
  program.parse(argv);
  const o = program.opts<Omit<BenchOptions, 'smoke'> & { smoke?: boolean }>();
  const smoke = o.smoke === true;
  return {
    ...o,
    scenarios: smoke ? ['1to1'] : o.scenarios,
    sizes: smoke ? [64] : o.sizes,
    placements: smoke ? ['relay-core'] : o.placements,
    repeat: smoke ? 1 : Math.round(o.repeat),
    seconds: smoke ? 0.5 : o.seconds,
    fixedRate: smoke ? 20000 : o.fixedRate,
    soak: smoke ? 0 : o.soak,
    resolution: smoke ? 0.25 : o.resolution,
    workers: Math.round(o.workers),
    smoke,
  };
}
