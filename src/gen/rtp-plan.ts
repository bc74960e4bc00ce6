// mcrgen send --rtp: which RTP sequence number each datagram carries, with the impairments asked
// for (gaps, duplicates, packets sent late), and what a receiver should therefore count. Pure and
// deterministic: the same options give the same numbers, so a run's report can be worked out
// again for exactly the datagrams the kernel took.

/** Before logical packet `at` (1, 2, …), `size` sequence numbers are skipped: one gap. */
export interface RtpGap {
  at: number;
  size: number;
}

export interface RtpPlanOptions {
  /** The first packet's sequence number, 0-65535. */
  firstSequence: number;
  /** Gaps at given packets, in increasing order of `at`. */
  gaps: readonly RtpGap[];
  /** Skip one sequence number before every Nth packet (N, 2N, …); 0: never. */
  skipEvery: number;
  /** Send every Nth packet (N-1, 2N-1, … from 0) twice in a row; 0: never. */
  duplicateEvery: number;
  /** Send every Nth packet (N-1, 2N-1, … from 0) after the one that follows it; 0: never. */
  reorderEvery: number;
}

/** What the datagrams sent so far do to a receiver that counts as mcrd's rtp option does. */
export interface RtpInjected {
  /** Runs of sequence numbers never sent. */
  gaps: number;
  /** Sequence numbers never sent (the sum of the gaps' sizes). */
  lost: number;
  duplicates: number;
  /** Packets sent after the one that follows them. */
  reordered: number;
}

/** A packet is sent late only past a gap smaller than this (RFC 3550's MAX_MISORDER): a later one is lost to a receiver. */
export const MAX_LATE_DISTANCE = 100;
/** The largest gap one option may ask for: larger jumps are a new start of the sequence to a receiver (RFC 3550's MAX_DROPOUT is 3,000). */
export const MAX_GAP_SIZE = 1000;

const NORMAL = 0;
const DUPLICATE = 1;
/** The first copy of a packet sent late. */
const LATE = 2;

export class RtpSequencePlan {
  private readonly options: RtpPlanOptions;
  /** Datagrams the run may send at most (Infinity: until stopped). */
  private readonly limit: number;
  /** The next logical packet, and the extended sequence number of the last one taken. */
  private logical = 0;
  private last: number;
  private gapIndex = 0;
  /** Datagrams decided but not yet handed out: extended sequence numbers and kinds. */
  private readonly queued: number[] = [];
  private readonly kinds: number[] = [];
  private emitted = 0;
  private readonly counts: RtpInjected = { gaps: 0, lost: 0, duplicates: 0, reordered: 0 };
  /** The gaps before and after the last packet sent late, for a run cut before it went out. */
  private lateSkipBefore = 0;
  private lateSkipAfter = 0;
  /** The gap before the packet last taken. */
  private lastSkip = 0;

  constructor(options: RtpPlanOptions, limit = Number.POSITIVE_INFINITY) {
    this.options = options;
    this.limit = limit;
    this.last = options.firstSequence - 1;
  }

  /** The extended sequence number of the next datagram (its low 16 bits go on the wire). */
  next(): number {
    if (this.queued.length === 0) this.refill();
    const ext = this.queued.shift()!;
    if (this.kinds.shift() === DUPLICATE) this.counts.duplicates++;
    this.emitted++;
    return ext;
  }

  /**
   * What the datagrams handed out so far inject. A packet sent late that has not gone out yet
   * (the run stopped between the pair) is a lost number instead.
   */
  injected(): RtpInjected {
    const result = { ...this.counts };
    if (this.kinds.includes(LATE)) {
      result.reordered--;
      result.lost++;
      // It joins the gaps on either side of it into one.
      result.gaps += 1 - (this.lateSkipBefore > 0 ? 1 : 0) - (this.lateSkipAfter > 0 ? 1 : 0);
    }
    return result;
  }

  private refill(): void {
    const o = this.options;
    const remaining = this.limit - this.emitted;
    const p = this.logical;
    const dupA = this.every(o.duplicateEvery, p) ? 1 : 0;
    if (this.every(o.reorderEvery, p)) {
      const dupB = this.every(o.duplicateEvery, p + 1) ? 1 : 0;
      const skipAfter = this.skipBefore(p + 1, false);
      if (2 + dupA + dupB <= remaining && skipAfter < MAX_LATE_DISTANCE) {
        const a = this.take();
        const skipBefore = this.lastSkip;
        const b = this.take();
        this.push(b, NORMAL);
        if (dupB) this.push(b, DUPLICATE);
        this.push(a, LATE);
        if (dupA) this.push(a, DUPLICATE);
        this.counts.reordered++;
        this.lateSkipBefore = skipBefore;
        this.lateSkipAfter = this.lastSkip;
        return;
      }
    }
    const a = this.take();
    this.push(a, NORMAL);
    if (dupA && remaining >= 2) this.push(a, DUPLICATE);
  }

  /** The next logical packet: its extended sequence number, after the gap before it. */
  private take(): number {
    const skip = this.skipBefore(this.logical, true);
    this.logical++;
    this.last += 1 + skip;
    this.lastSkip = skip;
    if (skip > 0) {
      this.counts.gaps++;
      this.counts.lost += skip;
    }
    return this.last;
  }

  /** Numbers skipped before logical packet `p`; `consume`: move past the listed gaps used. */
  private skipBefore(p: number, consume: boolean): number {
    const o = this.options;
    let skip = p > 0 && this.every(o.skipEvery, p - 1) ? 1 : 0;
    let i = this.gapIndex;
    while (i < o.gaps.length && o.gaps[i]!.at < p) i++;
    while (i < o.gaps.length && o.gaps[i]!.at === p) skip += o.gaps[i++]!.size;
    if (consume) this.gapIndex = i;
    return skip;
  }

  /** Packet p is the Nth, 2Nth, … (counting from 1). */
  private every(n: number, p: number): boolean {
    return n > 0 && p % n === n - 1;
  }

  private push(ext: number, kind: number): void {
    this.queued.push(ext);
    this.kinds.push(kind);
  }
}

/** RTP header (RFC 3550), 12 bytes at `offset`: version 2, no padding, extension or CSRC, marker 0. */
export function writeRtpHeader(
  bytes: Uint8Array,
  offset: number,
  payloadType: number,
  sequence: number,
  timestamp: number,
  ssrc: number,
): void {
  bytes[offset] = 0x80;
  bytes[offset + 1] = payloadType & 0x7f;
  bytes[offset + 2] = (sequence >>> 8) & 0xff;
  bytes[offset + 3] = sequence & 0xff;
  bytes[offset + 4] = timestamp >>> 24;
  bytes[offset + 5] = (timestamp >>> 16) & 0xff;
  bytes[offset + 6] = (timestamp >>> 8) & 0xff;
  bytes[offset + 7] = timestamp & 0xff;
  bytes[offset + 8] = ssrc >>> 24;
  bytes[offset + 9] = (ssrc >>> 16) & 0xff;
  bytes[offset + 10] = (ssrc >>> 8) & 0xff;
  bytes[offset + 11] = ssrc & 0xff;
}
