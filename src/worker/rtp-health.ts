import type { RtpCounters } from '../protocol/control-api.js';
import { rtpCountersAt } from '../protocol/counter-cells.js';
import {
  RTP_CELLS,
  RTP_DUPLICATES as DUPLICATES,
  RTP_GAPS as GAPS,
  RTP_LOST as LOST,
  RTP_NOT_RTP as NOT_RTP,
  RTP_PACKETS as PACKETS,
  RTP_REORDERED as REORDERED,
  RTP_RESYNCS as RESYNCS,
  RTP_SSRC_CHANGES as SSRC_CHANGES,
} from '../protocol/counter-layout.js';

// RTP stream health of one rule in one worker: each matched payload is read as an RTP header
// (RFC 3550: version 2, sequence number, SSRC) and its sequence number judged against the ones
// before it. Pure, allocation-free per packet; the rules are in docs/RTP-HEALTH.md.

export const RTP_HEADER_SIZE = 12;
/**
 * Sequence numbers remembered behind the highest one: a packet up to this many minus one behind
 * is late (or a duplicate), and a number still missing when it leaves this window is lost.
 * RFC 3550's reference code allows 100 of misorder; a power of two keeps the index a mask.
 */
export const RTP_WINDOW = 128;
/** A jump ahead by more than this is a new start of the sequence, not a gap (RFC 3550's MAX_DROPOUT). */
export const RTP_MAX_DROPOUT = 3000;
/** A missing number still in the window is judged lost when it has waited this long (settle). */
export const RTP_SETTLE_MS = 500;

const MASK = RTP_WINDOW - 1;
/** Window slot states. */
const MISSING = 0;
const RECEIVED = 1;
const JUDGED_LOST = 2;

/**
 * The counters alone, in cells indexed as counter-layout.ts RTP_* says: counting allocates
 * nothing, and the cells are a rule's RTP cells in the region the supervisor reads (private
 * memory in tests).
 */
export class RtpCounterSet {
  readonly values: Float64Array;

  constructor(values: Float64Array = new Float64Array(RTP_CELLS)) {
    if (values.length < RTP_CELLS) throw new Error(`RTP counters need ${RTP_CELLS} cells`);
    this.values = values;
  }

  /** What they say (the supervisor's decoding of the same cells). */
  snapshot(): RtpCounters {
    return rtpCountersAt(this.values, 0);
  }
}

/** The sequence state of one stream, and its counters. */
export class RtpHealth {
  readonly counters: RtpCounterSet;
  private readonly c: Float64Array;
  /** Per sequence number in the window (index: number & MASK): MISSING, RECEIVED or JUDGED_LOST. */
  private readonly slots = new Uint8Array(RTP_WINDOW);
  private started = false;
  private ssrc = 0;
  /** The highest sequence number taken, extended past 16 bits (it counts wrap-arounds). */
  private highest = 0;
  /** The extended number last judged lost (a gap goes on while the next one is lost too). */
  private lastLost = -2;
  /** How far the window moved since the last settle (at most RTP_WINDOW). */
  private advanced = 0;
  private settledAt = 0;
  /** After a packet far behind: its number + 1, the one that would confirm a restart; -1: none. */
  private probation = -1;

  constructor(counters: RtpCounterSet = new RtpCounterSet()) {
    this.counters = counters;
    this.c = counters.values;
  }

  /** One payload of the stream: `bytes[offset, offset + length)`. */
  observe(bytes: Uint8Array, offset: number, length: number): void {
    const c = this.c;
    if (length < RTP_HEADER_SIZE || (bytes[offset]! & 0xc0) !== 0x80) {
      c[NOT_RTP]!++;
      return;
    }
    c[PACKETS]!++;
    const seq = (bytes[offset + 2]! << 8) | bytes[offset + 3]!;
    const ssrc =
      (bytes[offset + 8]! << 24) |
      (bytes[offset + 9]! << 16) |
      (bytes[offset + 10]! << 8) |
      bytes[offset + 11]!;
    // The distance from the highest number, -32768..32767: 16-bit arithmetic handles wrap-around.
    const delta = (((seq - this.highest) & 0xffff) << 16) >> 16;
    if (delta === 1 && ssrc === this.ssrc && this.probation < 0 && this.started) {
      // The common case: the next number, from the same sender.
      const next = this.highest + 1;
      const slot = next & MASK;
      if (this.slots[slot] === MISSING) this.judgeLost(next - RTP_WINDOW);
      this.slots[slot] = RECEIVED;
      this.highest = next;
      if (this.advanced < RTP_WINDOW) this.advanced++;
      return;
    }
    this.observeOther(seq, ssrc, delta);
  }

  /** Everything but the next number from the same sender. */
  private observeOther(seq: number, ssrc: number, delta: number): void {
    const c = this.c;
    if (ssrc !== this.ssrc || !this.started) {
      this.newSender(seq, ssrc);
      return;
    }
    if (this.probation >= 0) {
      // The packet far behind is followed by its successor: the sender went back and goes on.
      if (seq === this.probation) {
        this.probation = -1;
        this.restart(seq);
        c[RESYNCS]!++;
        return;
      }
      // It was not: one very late packet.
      this.probation = -1;
      c[REORDERED]!++;
    }
    if (delta === 1) {
      this.advance(1);
      this.slots[seq & MASK] = RECEIVED;
      return;
    }
    if (delta > 1) {
      if (delta > RTP_MAX_DROPOUT) {
        this.restart(seq);
        c[RESYNCS]!++;
        return;
      }
      this.advance(delta);
      this.slots[seq & MASK] = RECEIVED;
      return;
    }
    if (delta === 0) {
      c[DUPLICATES]!++;
      return;
    }
    if (delta > -RTP_WINDOW) {
      const slot = seq & MASK;
      if (this.slots[slot] === RECEIVED) c[DUPLICATES]!++;
      else {
        // Late: it fills its hole (or arrives after it was judged lost, which stays counted).
        this.slots[slot] = RECEIVED;
        c[REORDERED]!++;
      }
      return;
    }
    // Far behind: a very late packet, or the sender went back; its successor decides.
    this.probation = (seq + 1) & 0xffff;
  }

  /**
   * Judges lost the numbers that have been missing since the last settle, at least RTP_SETTLE_MS
   * ago (a quiet or slow stream's holes do not wait for 128 newer numbers), and a packet far
   * behind that nothing followed. Called on the worker's stats timer with a monotonic time in
   * ms; cheap (one pass over the window), never per packet.
   */
  settle(now: number): void {
    if (now - this.settledAt < RTP_SETTLE_MS) return;
    this.settledAt = now;
    if (!this.started) return;
    if (this.probation >= 0) {
      this.probation = -1;
      this.c[REORDERED]!++;
    }
    // Oldest first, so a gap's numbers are judged in order.
    for (let age = RTP_WINDOW - 1; age >= this.advanced; age--) {
      const number = this.highest - age;
      if (this.slots[number & MASK] !== MISSING) continue;
      this.judgeLost(number);
      this.slots[number & MASK] = JUDGED_LOST;
    }
    this.advanced = 0;
  }

  /** Moves the window `delta` (1..RTP_MAX_DROPOUT) ahead; numbers leaving it still missing are lost. */
  private advance(delta: number): void {
    const slots = this.slots;
    const from = this.highest;
    const steps = delta < RTP_WINDOW ? delta : RTP_WINDOW;
    for (let k = 1; k <= steps; k++) {
      const slot = (from + k) & MASK;
      if (slots[slot] === MISSING) this.judgeLost(from + k - RTP_WINDOW);
      slots[slot] = MISSING;
    }
    // Numbers skipped past the whole window: never seen, lost in one run.
    for (let n = from + 1; n <= from + delta - RTP_WINDOW; n++) this.judgeLost(n);
    this.highest = from + delta;
    this.advanced = Math.min(RTP_WINDOW, this.advanced + delta);
  }

  private judgeLost(number: number): void {
    this.c[LOST]!++;
    if (number !== this.lastLost + 1) this.c[GAPS]!++;
    this.lastLost = number;
  }

  private newSender(seq: number, ssrc: number): void {
    if (this.started) this.c[SSRC_CHANGES]!++;
    this.ssrc = ssrc;
    this.restart(seq);
  }

  /**
   * The old sequence ends: what is still missing of it is lost (a late packet of it would now be
   * another sender's, or another start); a new one starts at `seq` with nothing missing before.
   */
  private restart(seq: number): void {
    if (this.started) {
      if (this.probation >= 0) this.c[REORDERED]!++;
      for (let age = RTP_WINDOW - 1; age >= 0; age--) {
        const number = this.highest - age;
        if (this.slots[number & MASK] === MISSING) this.judgeLost(number);
      }
    }
    this.started = true;
    this.slots.fill(RECEIVED);
    this.highest = seq;
    this.lastLost = -2;
    this.advanced = 0;
    this.probation = -1;
  }
}
