import {
  type RxRing,
  TP2_LEN,
  TP2_MAC,
  TP2_SNAPLEN,
  TP2_VLAN_TCI,
  TP_STATUS_USER,
  TP_STATUS_VLAN_VALID,
} from '../sys/rx-ring.js';

/**
 * Handing an input over from its AF_PACKET socket to a new one (the interface's MTU grew, and a
 * ring's slot size is fixed when the ring is made) without losing or repeating frames.
 *
 * mcrd opens the new sockets with their rings, bound and in a new fanout group, refusing
 * frames (sys/packet-socket.ts, openIngressGroup). The handover (InputPath.handOver) lets the new
 * socket take frames, then makes the old one refuse them: in between, the kernel gives each
 * frame to both, one after the other in the softirq that receives it. It then takes every frame
 * left in the old ring, closes the old socket and unmaps its ring, and only then reads the new
 * ring. The new ring's first frames are those that arrived after it began to take them; the ones
 * among them that were also taken from the old ring are duplicates. This module finds them: it
 * keeps a fingerprint of each frame taken from the old ring during the handover, fingerprints
 * the frames waiting in the new ring, and looks for the longest run of the new ring's first
 * frames that equals the old ring's last ones, every frame of it, not just one.
 *
 * Per worker, not across workers: each worker skips only what it took itself, so a flow must
 * reach the same worker through the old group and the new one. The kernel picks a group's
 * socket from the flow's hash (or the CPU) and the group's size and order; mcrd makes every
 * group of an interface in worker order (rings set up before the sockets join: setting one up
 * later moves a socket to the end of its group) and keeps every old socket bound, in its group,
 * until all workers have handed over (a closed one would shrink the group and move its flows).
 *
 * Per flow, not over the whole ring: frames received on different CPUs (a NIC's receive queues,
 * RPS, or two local senders on loopback) reach the two sockets interleaved differently, so the
 * two rings' orders differ across flows (measured: 60 of 8192 positions differed between two
 * rings fed by two senders on two CPUs). Within a flow (same addresses, protocol, ports, VLAN)
 * every frame comes from the same CPU, so both rings have its frames in the same order.
 *
 * What can still go wrong, and how it fails: if one ring dropped a frame of a flow that the
 * other kept (the old ring was full), that flow's runs differ and its match comes out shorter,
 * down to none: its unmatched frames are relayed twice, never lost. Identical frames in a row (a
 * source that repeats a datagram byte for byte) are matched as far as they go: the longest match
 * wins, so a repeat that straddles the boundary may be taken for a duplicate and relayed once.
 */

/**
 * Bytes of each frame a fingerprint covers, with its length and VLAN tag: Ethernet, IPv4 and UDP
 * headers (IP id and checksum included) and the first 214 bytes of payload, where sequence
 * numbers and timestamps live. A fixed prefix, not the whole frame, because a frame too large
 * for the old ring's slots was only partly captured there (at least the slot size, 2 KiB less
 * the header, is always there), and hashing whole jumbo frames would stall the handover.
 */
export const FINGERPRINT_BYTES = 256;

/** Fingerprints of frames, in the order they were taken from a ring. */
export class FrameLog {
  readonly capacity: number;
  count = 0;
  private readonly lengths: Uint32Array;
  private readonly vlans: Uint32Array;
  /** A hash of the frame's flow: frames of one flow share a CPU, so both rings order them alike. */
  readonly flows: Uint32Array;
  private readonly hashA: Uint32Array;
  private readonly hashB: Uint32Array;
  /** 1: the frame did not fit its slot (its ring counted it oversize). */
  private readonly truncated: Uint8Array;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.lengths = new Uint32Array(capacity);
    this.vlans = new Uint32Array(capacity);
    this.flows = new Uint32Array(capacity);
    this.hashA = new Uint32Array(capacity);
    this.hashB = new Uint32Array(capacity);
    this.truncated = new Uint8Array(capacity);
  }

  /**
   * Adds the frame whose first `captured` bytes are at `bytes[start]` (it was `length` bytes on
   * the wire); `vlan`: the tag the kernel stripped, 0x10000 | TCI, or 0; `flow`: see flowOf.
   * False when full.
   */
  add(
    bytes: Uint8Array,
    start: number,
    captured: number,
    length: number,
    vlan: number,
    flow: number,
  ): boolean {
    if (this.count === this.capacity) return false;
    const end = start + Math.min(captured, length, FINGERPRINT_BYTES);
    // Two independent 32-bit hashes (FNV-1a and a Murmur-style mix): a false match needs both
    // to collide on every frame of the run.
    let a = 0x811c9dc5;
    let b = 0x9747b28c;
    for (let i = start; i < end; i++) {
      const byte = bytes[i]!;
      a = Math.imul(a ^ byte, 0x01000193);
      b = Math.imul(b ^ byte, 0x5bd1e995);
      b ^= b >>> 15;
    }
    const k = this.count++;
    this.lengths[k] = length;
    this.vlans[k] = vlan;
    this.flows[k] = flow;
    this.hashA[k] = a;
    this.hashB[k] = b;
    this.truncated[k] = captured < length ? 1 : 0;
    return true;
  }

  wasTruncated(index: number): boolean {
    return this.truncated[index] === 1;
  }

  /** Whether entry `index` here and entry `otherIndex` of `other` are the same frame. */
  same(index: number, other: FrameLog, otherIndex: number): boolean {
    return (
      this.hashA[index] === other.hashA[otherIndex] &&
      this.hashB[index] === other.hashB[otherIndex] &&
      this.lengths[index] === other.lengths[otherIndex] &&
      this.vlans[index] === other.vlans[otherIndex]
    );
  }
}

/** Where a run of new-ring frames lines up with the end of the old ring's. */
export interface Alignment {
  /** How many of the new ring's first frames (of one flow) were already taken from the old ring. */
  skip: number;
  /** Where those frames start among the old ring's (skipped frame i is old frame tailStart + i). */
  tailStart: number;
}

/**
 * The leading duplicates of one flow. `tailLength` frames were taken from the old ring after the
 * new ring was set up (a few at the start may have arrived just before it existed: they match
 * nothing), oldest first; `headLength` wait in the new ring; `same(i, j)`: old frame i is new
 * frame j.
 *
 * The new ring received every frame after its set-up until it was read, unless it filled up
 * (`headFull`), in which case it dropped frames the old ring took and holds only a run from the
 * middle of the old ring's. So: the longest run of the new frames that equals the end of the old
 * ones; or, when the new ring was full, the first place where all the new frames appear among
 * the old ones. A run must match frame for frame; none found means nothing is skipped.
 */
export function alignRuns(
  tailLength: number,
  headLength: number,
  same: (tailIndex: number, headIndex: number) => boolean,
  headFull: boolean,
): Alignment {
  const r = tailLength;
  const m = headLength;
  // Without drops, every old frame after the overlap's start is in the new ring: the start is at
  // most m frames from the end. Earliest start first: the longest overlap wins.
  for (let start = headFull ? 0 : Math.max(0, r - m); start < r; start++) {
    const n = Math.min(r - start, m);
    let i = 0;
    while (i < n && same(start + i, i)) i++;
    if (i === n) return { skip: n, tailStart: start };
  }
  return { skip: 0, tailStart: r };
}

export interface Overlap {
  /** Per frame waiting in the new ring, in order: the old-ring frame it repeats, or -1 (new). */
  duplicateOf: Int32Array;
  /** How many of them repeat an old-ring frame. */
  skipped: number;
}

/**
 * Which of the frames waiting in the new ring (`head`) were already taken from the old ring
 * (`tail`): alignRuns per flow. Pure: the handover's decision in one function, unit-tested.
 */
export function findOverlap(tail: FrameLog, head: FrameLog, headFull: boolean): Overlap {
  const tailFlows = indexByFlow(tail);
  const duplicateOf = new Int32Array(head.count).fill(-1);
  let skipped = 0;
  for (const [flow, headIndexes] of indexByFlow(head)) {
    const tailIndexes = tailFlows.get(flow);
    if (tailIndexes === undefined) continue;
    const { skip, tailStart } = alignRuns(
      tailIndexes.length,
      headIndexes.length,
      (i, j) => tail.same(tailIndexes[i]!, head, headIndexes[j]!),
      headFull,
    );
    for (let k = 0; k < skip; k++) duplicateOf[headIndexes[k]!] = tailIndexes[tailStart + k]!;
    skipped += skip;
  }
  return { duplicateOf, skipped };
}

/** Entry indexes of a log by flow, each list in log order. */
function indexByFlow(log: FrameLog): Map<number, number[]> {
  const byFlow = new Map<number, number[]>();
  for (let i = 0; i < log.count; i++) {
    const flow = log.flows[i]!;
    const list = byFlow.get(flow);
    if (list) list.push(i);
    else byFlow.set(flow, [i]);
  }
  return byFlow;
}

/**
 * A frame's flow as a hash: VLAN tags, IPv4 addresses and protocol, and the UDP ports unless it
 * is a fragment, read straight from the headers in the `captured` bytes (a frame too short to
 * say is flow 0). Nothing is validated and nothing depends on the frame's length: the two
 * copies of a frame, even one cut short by a small slot, always land in the same flow. Finer
 * than the NIC's own spreading is safe (each flow is still on one CPU); coarser would not be.
 */
export function flowOf(bytes: Uint8Array, start: number, captured: number, vlan: number): number {
  const end = Math.min(start + captured, bytes.length);
  let p = start + 12;
  let h = Math.imul(vlan ^ 0x2545f491, 0x9e3779b1);
  for (let tags = 0; ; tags++) {
    if (p + 2 > end) return 0;
    const etherType = (bytes[p]! << 8) | bytes[p + 1]!;
    if (tags < 2 && (etherType === 0x8100 || etherType === 0x88a8)) {
      if (p + 4 > end) return 0;
      h = Math.imul(h ^ ((bytes[p + 2]! << 8) | bytes[p + 3]!), 0x85ebca6b); // inner TCI
      p += 4;
      continue;
    }
    if (etherType !== 0x0800) return 0;
    p += 2;
    break;
  }
  if (p + 20 > end) return 0;
  const headerLength = (bytes[p]! & 0x0f) << 2;
  const protocol = bytes[p + 9]!;
  const fragment = (((bytes[p + 6]! << 8) | bytes[p + 7]!) & 0x3fff) !== 0;
  for (let i = 12; i < 20; i += 4) {
    const word =
      (bytes[p + i]! << 24) | (bytes[p + i + 1]! << 16) | (bytes[p + i + 2]! << 8) | bytes[p + i + 3]!;
    h = Math.imul(h ^ word, 0xc2b2ae35);
  }
  h = Math.imul(h ^ protocol, 0x27d4eb2f);
  const udp = p + headerLength;
  if (protocol === 17 && !fragment && headerLength >= 20 && udp + 4 <= end) {
    const ports = (bytes[udp]! << 24) | (bytes[udp + 1]! << 16) | (bytes[udp + 2]! << 8) | bytes[udp + 3]!;
    h = Math.imul(h ^ ports, 0x165667b1);
  }
  return (h ^ (h >>> 16)) >>> 0 || 1;
}

/** How many frames wait in a ring from `cursor` on, up to the first slot that is not ready. */
export function waitingRun(ring: RxRing, cursor: number): number {
  const slotWords = ring.frameSize >>> 2;
  let n = 0;
  let slot = cursor;
  while (n < ring.frameCount && (Atomics.load(ring.words, slot * slotWords) & TP_STATUS_USER) !== 0) {
    n++;
    slot = slot + 1 === ring.frameCount ? 0 : slot + 1;
  }
  return n;
}

/** Adds the frame in ring slot `slot` (which must be ready) to `log`; false when the log is full. */
export function logSlot(ring: RxRing, slot: number, log: FrameLog): boolean {
  const at = slot * ring.frameSize;
  const status = Atomics.load(ring.words, at >>> 2);
  const length = ring.words[(at + TP2_LEN) >>> 2]!;
  const captured = ring.words[(at + TP2_SNAPLEN) >>> 2]!;
  const start = at + ring.halfWords[(at + TP2_MAC) >>> 1]!;
  const vlan =
    (status & TP_STATUS_VLAN_VALID) !== 0 ? 0x10000 | ring.halfWords[(at + TP2_VLAN_TCI) >>> 1]! : 0;
  return log.add(ring.bytes, start, captured, length, vlan, flowOf(ring.bytes, start, captured, vlan));
}

/** What to do with one of a new ring's first frames after a handover. */
export const HANDOVER_NEW = 0;
export const HANDOVER_SKIP = 1;
export const HANDOVER_RELAY_WHOLE = 2;

/** What an input handover did (InputPath.handOver), for the log. */
export interface HandoverReport {
  /** Frames taken from the old ring during the handover (relayed or dropped as usual). */
  takenFromOld: number;
  /** Frames waiting in the new ring when it was first read. */
  waitingInNew: number;
  /** Of those, copies of frames already taken from the old ring: skipped, not counted again. */
  skipped: number;
  /** Copies of frames the old ring had cut short (counted oversize there): relayed whole now. */
  recovered: number;
  /**
   * Frames left in the old ring because the worker could not catch up with it (overload): the
   * new ring, full by then, dropped them too, and its drop counter (ringDrops) has them.
   */
  leftInOldRing: number;
  /** Frames the old ring dropped since its drops were last read (also added to ringDrops). */
  oldRingDrops: number;
}

/** What to do with each of a new ring's first frames, from how they line up with the old ring's last ones. */
export interface NewRingPlan {
  /** HANDOVER_* per frame waiting in the new ring. */
  actions: Uint8Array;
  /** Frames up to the last that is not new: past these, every frame is new. */
  length: number;
  waiting: number;
  /** Duplicates skipped; recovered: duplicates of frames the old ring cut short, relayed now. */
  skipped: number;
  recovered: number;
}

/** A ring taken over (not fresh): read as any inherited ring, nothing lined up. */
export const NOTHING_TO_PLAN: Readonly<NewRingPlan> = Object.freeze({
  actions: new Uint8Array(0),
  length: 0,
  waiting: 0,
  skipped: 0,
  recovered: 0,
});

/**
 * Lines the frames waiting in a new ring up with the old ring's fingerprinted tail (steps 5
 * and 6 of the handover): a frame that repeats one already taken is skipped, unless the old ring
 * had cut it short (counted oversize there), in which case this whole copy is relayed instead.
 */
export function planNewRing(tail: FrameLog, ring: RxRing): NewRingPlan {
  const waiting = waitingRun(ring, 0);
  const head = new FrameLog(waiting);
  for (let slot = 0; slot < waiting; slot++) logSlot(ring, slot, head);
  const { duplicateOf, skipped } = findOverlap(tail, head, waiting === ring.frameCount);
  const actions = new Uint8Array(waiting).fill(HANDOVER_NEW);
  let recovered = 0;
  let length = 0;
  for (let i = 0; i < waiting; i++) {
    const old = duplicateOf[i]!;
    if (old < 0) continue;
    const relay = tail.wasTruncated(old);
    if (relay) recovered++;
    actions[i] = relay ? HANDOVER_RELAY_WHOLE : HANDOVER_SKIP;
    length = i + 1;
  }
  return { actions, length, waiting, skipped: skipped - recovered, recovered };
}
