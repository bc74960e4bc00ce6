import { cpus } from 'node:os';
import { TP2_LEN, TP_STATUS_KERNEL, TP_STATUS_USER } from '../sys/rx-ring.js';
import { Stopwatch } from '../sys/stopwatch.js';

/**
 * Taking over an RX ring that a dead worker left on its socket (a restarted worker is given the
 * same socket, and the ring is still set up on it), and finding where the kernel writes.
 *
 * The kernel's side of a TPACKET_V2 ring (net/packet/af_packet.c, tpacket_rcv), which everything
 * here rests on:
 *   K1. It keeps one write position (head), unknown to user space, and writes a frame only into
 *       the slot at head, only when that slot's status is TP_STATUS_KERNEL (0); then head moves
 *       on by one. When the slot at head is not free, the frame is dropped (tp_drops) and head
 *       stays. So it writes strictly in slot order and never skips a slot.
 *   K2. It claims the slot and moves head under a lock, then copies the frame, writes the
 *       header (tp_len first among what we read) and sets TP_STATUS_USER last, outside the lock.
 *       Frames received on different CPUs can therefore become ready out of order: slot h + 1
 *       ready while slot h, claimed first, is still being written (in flight). Each CPU has at
 *       most one frame in flight (softirq context; it does not nest on one CPU).
 *   K3. It never touches a slot whose status is not 0, except to finish a frame in flight.
 *
 * Tearing the ring down and setting it up anew would reset head to 0, but a socket in a
 * PACKET_FANOUT group leaves the group and joins it again at its end: with two workers the
 * members swap places and every flow moves to the other worker (measured:
 * test/unit/sys-ring-reset-fanout.test.ts), reordering whatever the other worker still holds.
 * So the ring is kept, and the new worker finds head from the ring's own state:
 *
 *   - A ring the kernel never wrote to (a new ring is zeroed: every status 0, every tp_len 0)
 *     has head at slot 0.
 *   - Otherwise (takeOver): freeze it (every free slot's status set to HELD, a value the kernel
 *     treats as busy and the reader as not ready, so the kernel writes nothing more), wait
 *     SETTLE_MS for frames in flight to be finished, drop every waiting frame (the dead worker's:
 *     those it had counted, TP_STATUS_COUNTED, are not counted again; the others are counted
 *     worker_restart, never forwarded, though a send cut short by the kill may have put some of
 *     their copies on the wire), and open the ring
 *     again. The kernel goes on at its head, wherever that is.
 *   - The first frames it writes then tell where (findRunStart): they form one run from head
 *     on, holes only where frames are in flight. From any waiting frame, walk back over frames
 *     and short holes until `fence` free slots in a row: the run starts after them. The slots
 *     of that gap just before the start are held (a fence): a frame in flight there when the
 *     start was chosen would otherwise become ready behind the reader and be read a whole lap
 *     late. The reader gives the fence back SETTLE_MS later, or when it comes round to it
 *     first (the kernel, which cannot pass a held slot, is exactly there then), and drops any
 *     frame found in it. (Held for a whole lap, it would make the kernel drop, at the end of
 *     that lap, whatever arrives while the reader catches up.)
 *
 * A frame is thus forwarded only if the kernel wrote it after the ring was frozen and opened,
 * each such frame at most once, in the kernel's order; what is lost on the way is counted
 * (worker_restart for frames dropped here, the kernel's ring drops while frozen).
 */

/** The part of a ring the takeover reads and writes: one status word and one tp_len per slot. */
export interface RingSlots {
  readonly words: Uint32Array;
  readonly frameSize: number;
  readonly frameCount: number;
}

/**
 * A slot the reader holds: not 0, so the kernel writes nothing into it (K1); without
 * TP_STATUS_USER, so the data path stops at it as at a slot not yet ready. Bit 24 is no status
 * bit of the kernel's; a frame in flight that lands in a held slot overwrites it (K3).
 */
export const TP_STATUS_HELD = 0x0100_0000;

/**
 * Set by the worker on a slot whose frame it has counted (its outcome is in the counters the
 * supervisor reads), before it hands the slot back. A successor that takes the ring over after
 * the worker was killed drops such a frame without counting it again: every frame is counted
 * once, by the worker that took it or as worker_restart by the one that dropped it. Bit 25 is no
 * status bit of the kernel's, which writes a slot's whole status word when it fills it.
 */
export const TP_STATUS_COUNTED = 0x0200_0000;

/** A frame waits in the slot and no worker has counted it. */
function uncounted(status: number): boolean {
  return (status & (TP_STATUS_USER | TP_STATUS_COUNTED)) === TP_STATUS_USER;
}

/**
 * How long a frame stays in flight at most, with margin: the kernel copies at most one slot and
 * sets its status in softirq context, which does not sleep (a few microseconds). The ring is
 * frozen meanwhile (the kernel drops and counts what arrives), once per takeover.
 */
export const SETTLE_MS = 2;

/** Every CPU can have one frame in flight (K2); the fence covers them all, with a floor. */
const CPU_COUNT = ((): number => {
  try {
    return cpus().length;
  } catch {
    return 0;
  }
})();

/** Free slots in a row that mark the start of the kernel's run, and the size of the fence. */
export function fenceSize(frameCount: number): number {
  return Math.min(frameCount >>> 2, Math.max(16, CPU_COUNT + 1));
}

/**
 * True when the kernel has never written into the ring: every slot free with tp_len 0 (the
 * kernel zeroes a new ring; every frame it writes has a length). Its head is then slot 0; a
 * frame it is writing into slot 0 right now is found there by the reader.
 */
export function neverWritten(ring: RingSlots): boolean {
  const { words, frameCount } = ring;
  const slotWords = ring.frameSize >>> 2;
  for (let slot = 0; slot < frameCount; slot++) {
    const at = slot * slotWords;
    if (Atomics.load(words, at) !== TP_STATUS_KERNEL || words[at + (TP2_LEN >>> 2)] !== 0) return false;
  }
  return true;
}

/** Holds every free slot: from here on the kernel writes nothing (K1), but finishes frames in flight. */
export function freeze(ring: RingSlots): void {
  const { words, frameCount } = ring;
  const slotWords = ring.frameSize >>> 2;
  for (let slot = 0; slot < frameCount; slot++) {
    Atomics.compareExchange(words, slot * slotWords, TP_STATUS_KERNEL, TP_STATUS_HELD);
  }
}

/** Drops every waiting frame and holds its slot; returns how many had not been counted. */
export function dropWaiting(ring: RingSlots): number {
  const { words, frameCount } = ring;
  const slotWords = ring.frameSize >>> 2;
  let dropped = 0;
  for (let slot = 0; slot < frameCount; slot++) {
    const at = slot * slotWords;
    const status = Atomics.load(words, at);
    if ((status & TP_STATUS_USER) !== 0) {
      Atomics.store(words, at, TP_STATUS_HELD);
      if (uncounted(status)) dropped++;
    }
  }
  return dropped;
}

/**
 * Gives `count` slots from `from` on back to the kernel, in slot order (the kernel, if it waits
 * at `from`, follows right behind). Whatever a slot holds is dropped: a frame found in one is
 * counted, unless a worker counted it already. Returns how many frames were dropped.
 */
export function releaseSlots(ring: RingSlots, from: number, count: number): number {
  const { words, frameCount } = ring;
  const slotWords = ring.frameSize >>> 2;
  let dropped = 0;
  let slot = from;
  for (let i = 0; i < count; i++) {
    const at = slot * slotWords;
    // Compare-and-swap so that a frame finished between the look and the release is counted.
    for (;;) {
      const status = Atomics.load(words, at);
      if (Atomics.compareExchange(words, at, status, TP_STATUS_KERNEL) !== status) continue;
      if (uncounted(status)) dropped++;
      break;
    }
    slot = slot + 1 === frameCount ? 0 : slot + 1;
  }
  return dropped;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Drops everything in a ring whose write position is unknown, and opens it again (see the top
 * of this file): freeze, wait `settleMs` for frames in flight, drop what waits, release every
 * slot. Returns the frames dropped (worker_restart). Afterwards the ring is empty and the
 * kernel writes on from its head; findRunStart finds that run once frames arrive.
 */
export function takeOver(ring: RingSlots, settleMs = SETTLE_MS): number {
  freeze(ring);
  if (settleMs > 0) Atomics.wait(sleeper, 0, 0, settleMs);
  const dropped = dropWaiting(ring);
  return dropped + releaseSlots(ring, 0, ring.frameCount);
}

/** The first slot (from slot 0) whose frame is ready, or -1. */
export function firstWaiting(ring: RingSlots): number {
  const { words, frameCount } = ring;
  const slotWords = ring.frameSize >>> 2;
  for (let slot = 0; slot < frameCount; slot++) {
    if ((Atomics.load(words, slot * slotWords) & TP_STATUS_USER) !== 0) return slot;
  }
  return -1;
}

/**
 * Where the run of frames the kernel is writing starts, given one of its frames (`waiting`),
 * in a ring holding no other frames (after takeOver). Walks back from `waiting`: a ready slot
 * belongs to the run; a free slot is held as it is passed; `fence` held slots in a row are the
 * free gap before the run (fewer are frames in flight inside the run, K2, and are given back).
 * The `fence` slots before the returned start stay held: the caller releases them
 * (releaseSlots) when its cursor comes round to them.
 *
 * Returns -1 when no such gap exists: the kernel filled the ring before it was looked at, and
 * its oldest frame cannot be told; the caller takes the ring over again (takeOver also gives
 * back what this held).
 */
export function findRunStart(ring: RingSlots, waiting: number, fence: number): number {
  const { words, frameCount } = ring;
  const slotWords = ring.frameSize >>> 2;
  let start = waiting;
  let held = 0;
  for (let i = 1; i < frameCount; i++) {
    const slot = waiting >= i ? waiting - i : waiting - i + frameCount;
    const seen = Atomics.compareExchange(words, slot * slotWords, TP_STATUS_KERNEL, TP_STATUS_HELD);
    if ((seen & TP_STATUS_USER) === 0) {
      // Free (now held), or held already.
      if (++held === fence) return start;
      continue;
    }
    // A frame: the run reaches back here. The slots held since it are in flight inside the run:
    // give them back, so that a frame finished there is read in its turn.
    let back = slot;
    for (let j = 0; j < held; j++) {
      back = back + 1 === frameCount ? 0 : back + 1;
      Atomics.compareExchange(words, back * slotWords, TP_STATUS_HELD, TP_STATUS_KERNEL);
    }
    held = 0;
    start = slot;
  }
  return -1;
}

/**
 * Where the data path reads a ring: the cursor, whether it is known yet (after a takeover), and
 * the fence held before it. One per ring; the data path asks it once per batch.
 */
export class ReadPosition {
  /** The next slot to read; meaningless while `unknown`. */
  cursor = 0;
  /** Set after a takeover until the kernel's first frames showed where it writes. */
  unknown = false;
  /** Held slots from fenceStart on, released when the cursor reaches fenceStart (0: none). */
  fenceCount = 0;
  private fenceStart = 0;
  /** Since the fence was put up (made at the first takeover that needs one). */
  private stopwatch: Stopwatch | undefined;
  private readonly ring: RingSlots;
  /** Where frames dropped here are counted (worker_restart, in the worker's outcome counters). */
  private readonly outcomes: Float64Array;
  private readonly restartCode: number;
  private readonly settleMs: number;
  private readonly fenceMs: number;

  /**
   * For `ring` as this process found it: set up by itself (`inherited` false: the kernel
   * starts at slot 0) or left by a dead worker (taken over, its frames counted at
   * `outcomes[restartCode]`). `settleMs`, the takeover's wait, and `fenceMs`, how long the
   * fence stands at most, are SETTLE_MS but for tests whose fake kernel finishes frames itself.
   */
  constructor(
    ring: RingSlots,
    inherited: boolean,
    outcomes: Float64Array,
    restartCode: number,
    settleMs = SETTLE_MS,
    fenceMs = SETTLE_MS,
  ) {
    this.ring = ring;
    this.outcomes = outcomes;
    this.restartCode = restartCode;
    this.settleMs = settleMs;
    this.fenceMs = fenceMs;
    if (!inherited || neverWritten(ring)) return;
    this.outcomes[restartCode]! += takeOver(ring, settleMs);
    this.unknown = true;
  }

  /**
   * While unknown: puts the cursor where the kernel's first frames start, behind a fence.
   * False while no frame waits; a ring that filled up before it was looked at is taken over
   * again (its frames dropped).
   */
  find(): boolean {
    const ring = this.ring;
    const waiting = firstWaiting(ring);
    if (waiting < 0) return false;
    const fence = fenceSize(ring.frameCount);
    const start = findRunStart(ring, waiting, fence);
    if (start < 0) {
      this.outcomes[this.restartCode]! += takeOver(ring, this.settleMs);
      return false;
    }
    this.cursor = start;
    this.fenceStart = start >= fence ? start - fence : start - fence + ring.frameCount;
    this.fenceCount = fence;
    this.unknown = false;
    this.stopwatch ??= new Stopwatch();
    this.stopwatch.start();
    return true;
  }

  /**
   * How many slots a batch from the cursor may take, at most `batchSize`: none past the fence.
   * The fence goes back once it has stood fenceMs (one clock read per batch while it stands).
   */
  limit(batchSize: number): number {
    if (this.fenceCount === 0) return batchSize;
    if (this.stopwatch!.elapsedMs() >= this.fenceMs) {
      this.releaseFence();
      return batchSize;
    }
    const cursor = this.cursor;
    const ahead =
      this.fenceStart >= cursor ? this.fenceStart - cursor : this.fenceStart + this.ring.frameCount - cursor;
    if (ahead === 0) {
      this.moveTo(cursor); // cannot happen (moveTo releases on arrival); never stall on it
      return batchSize;
    }
    return ahead < batchSize ? ahead : batchSize;
  }

  /**
   * The cursor moves to `slot` (the batch's slots were handed back). At the fence the kernel
   * waits (it cannot pass a held slot): the fence goes back now, as no wakeup would come (the
   * kernel reports a ring readable only for a ready slot). Frames found in it came late.
   */
  moveTo(slot: number): void {
    this.cursor = slot;
    if (this.fenceCount !== 0 && slot === this.fenceStart) this.releaseFence();
  }

  private releaseFence(): void {
    this.outcomes[this.restartCode]! += releaseSlots(this.ring, this.fenceStart, this.fenceCount);
    this.fenceCount = 0;
  }
}
