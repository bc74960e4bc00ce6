// Where the input link's receive processing runs. A veth pair normally does the receiver's work
// in the sender's softirq, on the sender's CPU, which hides that cost from the relay. Threaded
// NAPI on the relay's input (in0) moves it into a kernel thread that can be pinned: to the relay's
// core, as a NIC queue steered to the worker's core would be, or to another core.
import { readdirSync, readFileSync } from 'node:fs';
import type { Topology } from '../test/helpers/topology.js';

export const PLACEMENTS = ['relay-core', 'other-core'] as const;
export type Placement = (typeof PLACEMENTS)[number];

/** The relay's process (worker, socat, smcrouted) runs here. */
export const RELAY_CPU = 0;
/** The generator runs here. */
export const GENERATOR_CPU = 1;

export const PLACEMENT_LABELS: Record<Placement, string> = {
  'relay-core': 'input receive on the relay core',
  'other-core': 'input receive on the generator core',
};

/** Packets the sender's qdisc holds when the relay's input is full: a NIC ring's worth. */
const SENDER_QUEUE_PACKETS = 1000;
/** Polls in a row in0's NAPI may defer its completion for (napi_defer_hard_irqs), with coalescing. */
const DEFERRED_POLLS = 2;

/**
 * Sets up the input link for `placement` and returns the pid of in0's NAPI thread.
 * - veth hands a frame to the peer's NAPI only if the sending device does no TSO, and only when
 *   the receiving device has GRO on (else it runs the receive inline in the sender's context).
 * - With NAPI the sender stops when in0's 256-entry ring is full; a pfifo qdisc on the sender
 *   holds the excess and drops beyond it, as a NIC's receive ring would. The generator counts
 *   those packets as offered, so they count as loss.
 * - `coalesceUs` > 0 coalesces in0's receive as a NIC's interrupt moderation does: NAPI stays
 *   scheduled for up to that long after a poll (gro_flush_timeout, napi_defer_hard_irqs) and a
 *   timer on its own core polls again. Without it the sender wakes the NAPI thread across cores
 *   every time the thread has caught up, which on this VM capped the generator near 0.5-0.8 M pps
 *   (docs/PERFORMANCE.md, the generator).
 */
export function placeInputReceive(topo: Topology, placement: Placement, coalesceUs = 0): number {
  must(topo.exec(topo.sender, 'ethtool', ['-K', 'eth0', 'tso', 'off']), 'ethtool -K eth0 tso off');
  must(
    topo.exec(topo.sender, 'tc', [
      ...['qdisc', 'replace', 'dev', 'eth0', 'root', 'pfifo', 'limit', String(SENDER_QUEUE_PACKETS)],
    ]),
    'tc qdisc replace',
  );
  must(topo.exec(topo.relay, 'ethtool', ['-K', 'in0', 'gro', 'on']), 'ethtool -K in0 gro on');
  coalesceInput(topo, coalesceUs);
  const before = napiThreads('in0');
  must(topo.exec(topo.relay, 'sh', ['-c', 'echo 1 > /sys/class/net/in0/threaded']), 'threaded NAPI on in0');
  const created = napiThreads('in0').filter((pid) => !before.includes(pid));
  if (created.length !== 1)
    throw new Error(`expected one new napi/in0 thread after enabling threaded NAPI, found ${created.length}`);
  const pid = created[0]!;
  const cpu = placement === 'relay-core' ? RELAY_CPU : GENERATOR_CPU;
  must(topo.exec(topo.relay, 'taskset', ['-pc', String(cpu), String(pid)]), `pinning napi thread ${pid}`);
  return pid;
}

/** Sets in0's receive coalescing (see placeInputReceive); 0 turns it off. */
export function coalesceInput(topo: Topology, coalesceUs: number): void {
  for (const [file, value] of [
    ['gro_flush_timeout', String(Math.round(coalesceUs * 1000))],
    ['napi_defer_hard_irqs', coalesceUs > 0 ? String(DEFERRED_POLLS) : '0'],
  ] as const)
    must(topo.exec(topo.relay, 'sh', ['-c', `echo ${value} > /sys/class/net/in0/${file}`]), `in0 ${file}`);
}

/** Pids of kernel threads named napi/<ifname>-<id>, in any namespace. */
function napiThreads(ifname: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').startsWith(`napi/${ifname}-`)) pids.push(Number(entry));
    } catch {
      // The process ended while the list was read: it is not ours.
    }
  }
  return pids;
}

function must(r: { code: number; stderr: string }, what: string): void {
  if (r.code !== 0) throw new Error(`${what} failed: ${r.stderr.trim()}`);
}
