// Micro-benchmark: the JavaScript cost per frame of the worker's per-frame decisions (parse, VLAN,
// rule lookup, source check, TTL per output, RTP stream health), on frames that end before anything
// is sent, so no kernel send cost hides them. The figures back the cost comments in src/worker/input-path.ts.
//
// Usage (root, for the AF_PACKET ring): node dist/bench/worker-decisions.js [--rounds N] [--only TEXT]
// The ring's socket is never bound and nothing is sent: no traffic anywhere.
import { buildUdpFrame } from '../src/packet/build.js';
import { parseIpv4 } from '../src/packet/ipv4-address.js';
import type { WorkerOutput } from '../src/protocol/worker-messages.js';
import { allowedCpus, pinToCpu } from '../src/sys/affinity.js';
import { AF_PACKET, SOCK_RAW } from '../src/sys/constants.js';
import { ringGeometryFor, RxRing, TP_STATUS_USER, TP_STATUS_VLAN_VALID } from '../src/sys/rx-ring.js';
import { openSocket, openUdpSocket } from '../src/sys/socket.js';
import { ForwardingRule } from '../src/worker/forwarding-rule.js';
import { HostAddresses } from '../src/worker/host-addresses.js';
import { InputPath } from '../src/worker/input-path.js';
import { OutputPath } from '../src/worker/output-path.js';
import { WorkerCounterSet } from '../src/worker/worker-counters.js';

const ip = (text: string): number => parseIpv4(text)!;
const SETTINGS = {
  ringBytes: 4 << 20,
  batchSize: 64,
  batchesPerWakeup: 16,
  coalesceUs: 0,
  statsIntervalMs: 1000,
};
const GROUP = '239.1.1.1';
const PORT = 5000;
const TP_MAC_AT = 80;
/** The UDP payload in an untagged frame: Ethernet (14) + IPv4 (20) + UDP (8). */
const RTP_AT = 42;

interface Case {
  label: string;
  /** Frames, each with the tag the kernel stripped (0: none); cycled through the ring. */
  frames: { src: string; ttl: number; tci: number; dst?: string }[];
  outputs: number;
  attached: boolean;
  hosts: string[];
  /** The rule has the rtp option; the payloads carry RTP headers numbered in order either way. */
  rtp?: boolean;
  /** With rtp: every this many frames a sequence number is skipped (a gap of one). */
  skipEvery?: number;
}

const CASES: Case[] = [
  {
    label: 'no_rule (parse, cached lookup)',
    frames: [{ src: '198.51.100.1', ttl: 64, tci: 0, dst: '239.9.9.9' }],
    outputs: 1,
    attached: true,
    hosts: [],
  },
  {
    label: 'other_vlan (stripped tag, cached lookup)',
    frames: [{ src: '198.51.100.1', ttl: 64, tci: 200, dst: GROUP }],
    outputs: 1,
    attached: true,
    hosts: [],
  },
  {
    label: 'own_source, same source (cached verdict)',
    frames: [{ src: '192.168.1.1', ttl: 64, tci: 0 }],
    outputs: 1,
    attached: true,
    hosts: ['192.168.1.1'],
  },
  {
    label: 'own_source, source changes every frame',
    frames: [
      { src: '192.168.1.1', ttl: 64, tci: 0 },
      { src: '192.168.1.2', ttl: 64, tci: 0 },
    ],
    outputs: 1,
    attached: true,
    hosts: ['192.168.1.1', '192.168.1.2', '10.0.0.1'],
  },
  {
    label: 'no_output (rule matched, none attached)',
    frames: [{ src: '198.51.100.1', ttl: 64, tci: 0 }],
    outputs: 1,
    attached: false,
    hosts: [],
  },
  {
    label: 'no_output, RTP payload, rtp off',
    frames: [{ src: '198.51.100.1', ttl: 64, tci: 0 }],
    outputs: 1,
    attached: false,
    hosts: [],
    rtp: false,
  },
  {
    label: 'no_output, RTP payload, rtp on, in order',
    frames: [{ src: '198.51.100.1', ttl: 64, tci: 0 }],
    outputs: 1,
    attached: false,
    hosts: [],
    rtp: true,
  },
  {
    label: 'no_output, rtp on, a gap every 8 frames',
    frames: [{ src: '198.51.100.1', ttl: 64, tci: 0 }],
    outputs: 1,
    attached: false,
    hosts: [],
    rtp: true,
    skipEvery: 8,
  },
  {
    label: 'ttl_expired, 1 output',
    frames: [{ src: '198.51.100.1', ttl: 1, tci: 0 }],
    outputs: 1,
    attached: true,
    hosts: [],
  },
  {
    label: 'ttl_expired, 8 outputs',
    frames: [{ src: '198.51.100.1', ttl: 1, tci: 0 }],
    outputs: 8,
    attached: true,
    hosts: [],
  },
];

function measure(c: Case, batches: number): number {
  const counters = new WorkerCounterSet();
  const hosts = new HostAddresses();
  hosts.replace(c.hosts.map(ip));
  const fd = openSocket(AF_PACKET, SOCK_RAW, 0, 'bench ring');
  const ring = RxRing.attach(fd, ringGeometryFor(1500, SETTINGS.ringBytes));
  const input = new InputPath(fd, 'bench', 1500, SETTINGS, counters, hosts, { watch: () => ({ stop() {} }) });
  const specs: WorkerOutput[] = Array.from({ length: c.outputs }, (_, i) => ({
    label: `o${i}`,
    ttl: 16,
    ttlFixed: false,
    dscp: null,
    attached: false,
    egress: null,
  }));
  const outputs = specs.map((s) => {
    const o = new OutputPath(s, SETTINGS.batchSize, counters);
    if (c.attached) o.attach(openUdpSocket('bench output'), undefined); // never sent to
    return o;
  });
  const rule = new ForwardingRule(
    {
      id: 'r',
      inputInterface: 'bench',
      inputVlan: 0,
      inputSource: 0,
      inputGroup: ip(GROUP),
      inputPort: PORT,
      rtp: c.rtp === true,
      outputs: specs,
    },
    outputs,
  );
  input.addRule(rule);
  input.addRule(
    new ForwardingRule(
      {
        id: 'v',
        inputInterface: 'bench',
        inputVlan: 100,
        inputSource: 0,
        inputGroup: ip(GROUP),
        inputPort: PORT,
        rtp: false,
        outputs: [],
      },
      [],
    ),
  );
  const frames = c.frames.map((f) => ({
    bytes: buildUdpFrame({
      src: ip(f.src),
      dst: ip(f.dst ?? GROUP),
      srcPort: 4000,
      dstPort: PORT,
      payload: 64,
      ttl: f.ttl,
    }),
    tci: f.tci,
  }));
  // Fill the whole ring once; per batch only the status words are handed back to "user".
  for (let slot = 0; slot < ring.frameCount; slot++) {
    const f = frames[slot % frames.length]!;
    const at = slot * ring.frameSize;
    ring.bytes.set(f.bytes, at + TP_MAC_AT);
    ring.words[(at >>> 2) + 1] = f.bytes.length;
    ring.words[(at >>> 2) + 2] = f.bytes.length;
    ring.halfWords[(at + 12) >>> 1] = TP_MAC_AT;
    ring.halfWords[(at + 24) >>> 1] = f.tci;
  }
  let slot = 0;
  let sequence = 0;
  const ready = (): void => {
    for (let i = 0; i < SETTINGS.batchSize; i++) {
      const f = frames[slot % frames.length]!;
      if (c.rtp !== undefined) {
        // An RTP header (version 2, SSRC 1) numbered in order, outside the timed part.
        const at = slot * ring.frameSize + TP_MAC_AT + RTP_AT;
        if (c.skipEvery !== undefined && sequence % c.skipEvery === 0) sequence++;
        ring.bytes[at] = 0x80;
        ring.bytes[at + 2] = (sequence >>> 8) & 0xff;
        ring.bytes[at + 3] = sequence & 0xff;
        ring.bytes[at + 11] = 1;
        sequence++;
      }
      Atomics.store(
        ring.words,
        (slot * ring.frameSize) >>> 2,
        TP_STATUS_USER | (f.tci ? TP_STATUS_VLAN_VALID : 0),
      );
      slot = (slot + 1) % ring.frameCount;
    }
  };
  for (let b = 0; b < 2000; b++) {
    ready();
    input.drain();
  }
  let ns = 0;
  for (let b = 0; b < batches; b++) {
    ready();
    const started = process.hrtime.bigint();
    input.drain();
    ns += Number(process.hrtime.bigint() - started);
  }
  if (c.rtp === true && rule.rtp!.counters.values[0]! < batches * SETTINGS.batchSize)
    throw new Error(`${c.label}: the RTP payloads were not counted`);
  input.close();
  ring.detach();
  rule.close();
  return ns / (batches * SETTINGS.batchSize);
}

function argument(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

const rounds = argument('--rounds', 5);
const cpus = allowedCpus();
pinToCpu(cpus[cpus.length - 1]!);
console.log(`InputPath.drain, batches of ${SETTINGS.batchSize}, ns per frame (median of ${rounds}, range):`);
// --only TEXT: the cases whose label has TEXT (e.g. --only no_output, to compare rtp off and on).
const only = process.argv.indexOf('--only') >= 0 ? process.argv[process.argv.indexOf('--only') + 1]! : '';
for (const c of CASES.filter((k) => k.label.includes(only))) {
  const samples = Array.from({ length: rounds }, () => measure(c, 20000)).sort((a, b) => a - b);
  const median = samples[Math.floor(samples.length / 2)]!;
  console.log(
    `  ${c.label.padEnd(44)} ${median.toFixed(1).padStart(6)}  (${samples[0]!.toFixed(1)}–${samples[samples.length - 1]!.toFixed(1)})`,
  );
}
