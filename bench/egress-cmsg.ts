// Micro-benchmark: what per-packet IP_TTL / IP_TOS control messages cost a connected UDP socket's
// sendmmsg, against sending without them and against changing the socket with setsockopt.
// The worker's socket egress path chose between these with the figures this prints (see
// src/worker/output-path.ts).
//
// Usage (root): node dist/bench/egress-cmsg.js [--rounds N] [--batches N]
// It builds its own network namespaces (i10w-PID-*) joined by a veth pair. The far end drops
// every frame early: the multicast group has no member there, and the unicast destination's
// static neighbour entry names a MAC that is not the far end's (dropped as PACKET_OTHERHOST
// before routing; no ARP either). What is measured is this socket's send path plus veth's
// hand-over and that early drop, which run on this CPU too. Namespaces are removed at the end.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { parseIpv4 } from '../src/packet/ipv4-address.js';
import { pinToCpu, allowedCpus } from '../src/sys/affinity.js';
import { IPPROTO_IP, IP_TTL, MSG_DONTWAIT } from '../src/sys/constants.js';
import { interfaceIndex } from '../src/sys/interfaces.js';
import { allocateNative } from '../src/sys/libc.js';
import { MessageBatch } from '../src/sys/message-batch.js';
import {
  bindToDevice,
  closeFd,
  connectIpv4,
  openUdpSocket,
  setBufferSize,
  setIntOption,
  setMulticastInterface,
  setMulticastLoop,
  setMulticastTtl,
  setTypeOfService,
} from '../src/sys/socket.js';

const BATCH = 64;
const PAYLOAD = 64;

interface Destination {
  label: string;
  link: string;
  address: string;
  multicast: boolean;
}

const DESTINATIONS: Destination[] = [
  { label: 'multicast (no route cache on any path)', link: 'veth0', address: '239.77.0.1', multicast: true },
  { label: 'unicast (connected: cached route)', link: 'veth0', address: '10.78.0.2', multicast: false },
];

/** What each message of a batch carries; setsockopt: none, but two setsockopt calls per batch. */
const VARIANTS = ['none', 'ttl', 'tos', 'ttl+tos', 'setsockopt x2 per batch'] as const;
type Variant = (typeof VARIANTS)[number];

function argument(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

function run(command: string, args: string[]): void {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')}: ${r.stderr.trim()}`);
}

/** Outside: build the namespaces, run this script inside, remove them. */
function outside(): void {
  const ns = `i10w-${process.pid}-cmsg`;
  const peer = `i10w-${process.pid}-peer`;
  const cleanup = (): void => {
    spawnSync('ip', ['netns', 'del', ns]);
    spawnSync('ip', ['netns', 'del', peer]);
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    run('ip', ['netns', 'add', ns]);
    run('ip', ['netns', 'add', peer]);
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    run('ip', ['-n', ns, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1', 'netns', peer]);
    run('ip', ['-n', ns, 'addr', 'add', '10.78.0.1/24', 'dev', 'veth0']);
    run('ip', ['-n', peer, 'addr', 'add', '10.78.0.2/24', 'dev', 'veth1']);
    run('ip', ['-n', ns, 'link', 'set', 'veth0', 'up']);
    run('ip', ['-n', peer, 'link', 'set', 'veth1', 'up']);
    run('ip', ['-n', ns, 'neigh', 'replace', '10.78.0.2', 'lladdr', '02:00:00:00:00:02', 'dev', 'veth0']);
    const self = fileURLToPath(import.meta.url);
    const r = spawnSync(
      'ip',
      ['netns', 'exec', ns, process.execPath, self, '--inside', ...process.argv.slice(2)],
      { stdio: 'inherit' },
    );
    if (r.status !== 0) process.exitCode = 1;
  } finally {
    cleanup();
  }
}

function openSocket(d: Destination): number {
  const fd = openUdpSocket(`bench ${d.label}`);
  bindToDevice(fd, d.link);
  if (d.multicast) {
    setMulticastInterface(fd, interfaceIndex(d.link)!);
    setMulticastTtl(fd, 16);
    setMulticastLoop(fd, false);
  } else {
    setIntOption(fd, IPPROTO_IP, IP_TTL, 16, 'IP_TTL');
  }
  setBufferSize(fd, 'send', 4 * 1024 * 1024, true);
  connectIpv4(fd, parseIpv4(d.address)!, 9000);
  return fd;
}

/** Nanoseconds per packet for `batches` batches of one variant (fill and send, as the worker does). */
function measure(fd: number, d: Destination, variant: Variant, batches: number): number {
  const batch = new MessageBatch(BATCH, 1, true);
  const payload = allocateNative(PAYLOAD);
  const ttl = variant === 'ttl' || variant === 'ttl+tos' ? 15 : 0;
  const tos = variant === 'tos' || variant === 'ttl+tos' ? 0xb8 : -1;
  const perBatchOptions = variant === 'setsockopt x2 per batch';
  let failed = 0;
  const started = process.hrtime.bigint();
  for (let b = 0; b < batches; b++) {
    if (perBatchOptions) {
      // Alternate the values so the kernel really changes them (a TOS change resets the route).
      setTypeOfService(fd, b & 1 ? 0xb8 : 0x88);
      if (d.multicast) setMulticastTtl(fd, b & 1 ? 15 : 14);
      else setIntOption(fd, IPPROTO_IP, IP_TTL, b & 1 ? 15 : 14, 'IP_TTL');
    }
    batch.count = 0;
    for (let i = 0; i < BATCH; i++) batch.addWithIpOptions(payload.region, 0, PAYLOAD, ttl, tos);
    let from = 0;
    while (from < BATCH) {
      const n = batch.send(fd, from, MSG_DONTWAIT);
      if (n > 0) from += n;
      else {
        failed++;
        from++;
      }
    }
  }
  const ns = Number(process.hrtime.bigint() - started);
  batch.free();
  payload.free();
  if (failed > 0) console.error(`  (${d.label}, ${variant}: ${failed} refused sends)`);
  return ns / (batches * BATCH);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function inside(): void {
  const rounds = argument('--rounds', 7);
  const batches = argument('--batches', 20000);
  const cpus = allowedCpus();
  pinToCpu(cpus[cpus.length - 1]!);
  console.log(`UDP sendmmsg, batches of ${BATCH} × ${PAYLOAD}-byte payloads, ${batches} batches per sample,`);
  console.log(`${rounds} interleaved rounds; median ns per packet (range):\n`);
  for (const d of DESTINATIONS) {
    const fd = openSocket(d);
    const samples = new Map<Variant, number[]>(VARIANTS.map((v) => [v, []]));
    for (const v of VARIANTS) measure(fd, d, v, Math.min(2000, batches)); // warm-up
    for (let r = 0; r < rounds; r++)
      for (const v of VARIANTS) samples.get(v)!.push(measure(fd, d, v, batches));
    closeFd(fd);
    const base = median(samples.get('none')!);
    console.log(d.label);
    for (const v of VARIANTS) {
      const s = samples.get(v)!;
      const m = median(s);
      const delta = m - base;
      const extra =
        v === 'none'
          ? ''
          : v === 'setsockopt x2 per batch'
            ? `  → one setsockopt ≈ ${Math.round((delta * BATCH) / 2)} ns`
            : `  (+${delta.toFixed(0)} ns, +${((100 * delta) / base).toFixed(1)} %)`;
      console.log(
        `  ${v.padEnd(24)} ${m.toFixed(0).padStart(5)} ns  (${Math.min(...s).toFixed(0)}–${Math.max(...s).toFixed(0)})${extra}`,
      );
    }
    console.log('');
  }
}

if (process.argv.includes('--inside')) inside();
else outside();
