import { test } from 'node:test';
import assert from 'node:assert/strict';

import { TP_STATUS_KERNEL, TP_STATUS_USER } from '../../src/sys/rx-ring.js';
import {
  dropWaiting,
  fenceSize,
  findRunStart,
  freeze,
  neverWritten,
  ReadPosition,
  releaseSlots,
  type RingSlots,
  TP_STATUS_COUNTED,
  TP_STATUS_HELD,
} from '../../src/worker/ring-takeover.js';

// The takeover of a dead worker's ring, without root: the ring is plain memory and a fake kernel
// writes it the way tpacket_rcv does (ring-takeover.ts, K1-K3): only into the slot at its head,
// only when that slot's status is 0, moving head on; claiming and finishing a frame are separate
// steps, so frames from two CPUs can become ready out of order. Frames carry the kernel's claim
// order as a sequence number; a reader must output an increasing run of them, each at most once,
// none written before the takeover, and count everything it drops.

const SLOT_BYTES = 64;
const SEQ_WORD = 4;
const RESTART = 0;

class FakeRing implements RingSlots {
  readonly words: Uint32Array;
  readonly frameSize = SLOT_BYTES;
  readonly frameCount: number;
  constructor(frameCount: number) {
    this.frameCount = frameCount;
    this.words = new Uint32Array((frameCount * SLOT_BYTES) / 4);
  }
  status(slot: number): number {
    return Atomics.load(this.words, slot * (SLOT_BYTES / 4));
  }
  seq(slot: number): number {
    return this.words[slot * (SLOT_BYTES / 4) + SEQ_WORD]!;
  }
}

class FakeKernel {
  head = 0;
  nextSeq = 1;
  drops = 0;
  /** Claimed slots not yet finished, with their sequence numbers. */
  readonly inFlight = new Map<number, number>();
  constructor(readonly ring: FakeRing) {}

  /** Takes the slot at head for the next frame (K1); its slot, or -1 if dropped. */
  claim(): number {
    const slot = this.head;
    if (this.ring.status(slot) !== TP_STATUS_KERNEL || this.inFlight.has(slot)) {
      this.drops++;
      return -1;
    }
    this.inFlight.set(slot, this.nextSeq++);
    this.head = (slot + 1) % this.ring.frameCount;
    return slot;
  }

  /** Writes the claimed frame and sets TP_STATUS_USER last (K2), over whatever status is there (K3). */
  finish(slot: number): void {
    const seq = this.inFlight.get(slot);
    assert.ok(seq !== undefined, `slot ${slot} is not in flight`);
    this.inFlight.delete(slot);
    const at = slot * (SLOT_BYTES / 4);
    this.ring.words[at + 1] = 100; // tp_len
    this.ring.words[at + SEQ_WORD] = seq;
    Atomics.store(this.ring.words, at, TP_STATUS_USER);
  }

  write(count = 1): void {
    for (let i = 0; i < count; i++) {
      const slot = this.claim();
      if (slot >= 0) this.finish(slot);
    }
  }
}

/** A worker's data path over a FakeRing: ReadPosition plus the batch loop of InputPath.drain. */
class Reader {
  readonly out: number[] = [];
  readonly outcomes = new Float64Array(1);
  readonly position: ReadPosition;
  constructor(
    readonly ring: FakeRing,
    inherited: boolean,
    readonly batch = 8,
    fenceMs = Infinity,
  ) {
    // No settle: the fake kernel's frames in flight are finished (or not) by each test. The
    // fence stands until the cursor comes round (`fenceMs`), unless a test says otherwise.
    this.position = new ReadPosition(ring, inherited, this.outcomes, RESTART, 0, fenceMs);
  }
  get dropped(): number {
    return this.outcomes[RESTART]!;
  }

  /** Takes one batch (up to the fence) and, unless `die` says otherwise, hands it back. */
  batchOnce(die = false): number {
    const { ring, position } = this;
    if (position.unknown && !position.find()) return 0;
    const limit = position.limit(this.batch);
    const first = position.cursor;
    let slot = first;
    let taken = 0;
    while (taken < limit && (ring.status(slot) & TP_STATUS_USER) !== 0) {
      this.out.push(ring.seq(slot));
      taken++;
      slot = (slot + 1) % ring.frameCount;
    }
    if (taken === 0 || die) return taken; // died between send and release: slots stay ready
    for (let i = 0, s = first; i < taken; i++, s = (s + 1) % ring.frameCount)
      Atomics.store(ring.words, s * (SLOT_BYTES / 4), TP_STATUS_KERNEL);
    position.moveTo(slot);
    return taken;
  }

  drain(): void {
    while (this.batchOnce() > 0);
  }
}

/** The kernel writes `count` frames while the reader keeps up (8 at a time): nothing is dropped. */
function stream(kernel: FakeKernel, reader: Reader, count: number): void {
  for (let n = 0; n < count; n += 8) {
    kernel.write(Math.min(8, count - n));
    reader.drain();
  }
}

function assertIncreasing(out: number[], what: string): void {
  for (let i = 1; i < out.length; i++)
    assert.ok(out[i]! > out[i - 1]!, `${what}: ${out[i - 1]} then ${out[i]} at ${i}`);
}

/** A reader that has read (and released) `frames` frames: the kernel's head is at frames mod N. */
function usedRing(frameCount: number, frames: number): { ring: FakeRing; kernel: FakeKernel; old: Reader } {
  const ring = new FakeRing(frameCount);
  const kernel = new FakeKernel(ring);
  const old = new Reader(ring, false);
  for (let n = 0; n < frames; n += 4) {
    kernel.write(Math.min(4, frames - n));
    old.drain();
  }
  return { ring, kernel, old };
}

test('a ring the kernel never wrote to starts at slot 0; one it wrote to is taken over', () => {
  const ring = new FakeRing(64);
  assert.equal(neverWritten(ring), true);
  const fresh = new Reader(ring, true);
  assert.equal(fresh.position.unknown, false);
  assert.equal(fresh.position.cursor, 0);
  const kernel = new FakeKernel(ring);
  kernel.write(3);
  fresh.drain();
  assert.deepEqual(fresh.out, [1, 2, 3]);
  assert.equal(neverWritten(ring), false, 'released slots keep their length');
  const next = new Reader(ring, true);
  assert.equal(next.position.unknown, true);
  assert.equal(next.dropped, 0, 'nothing was waiting');
});

test('freeze: the kernel writes nothing more; frames in flight still land; dropWaiting takes them all', () => {
  const { ring, kernel } = usedRing(64, 70);
  kernel.write(5); // waiting, unread: the dead worker's
  const inFlight = kernel.claim();
  freeze(ring);
  kernel.write(3);
  assert.equal(kernel.drops, 3, 'the slot at head is held');
  kernel.finish(inFlight);
  assert.equal(ring.status(inFlight), TP_STATUS_USER, 'a frame in flight overwrites the hold (K3)');
  assert.equal(dropWaiting(ring), 6);
  for (let s = 0; s < ring.frameCount; s++) assert.equal(ring.status(s), TP_STATUS_HELD);
  assert.equal(releaseSlots(ring, 10, ring.frameCount), 0);
  for (let s = 0; s < ring.frameCount; s++) assert.equal(ring.status(s), TP_STATUS_KERNEL);
});

test('frames the dead worker counted before it was killed are dropped without being counted again', () => {
  const { ring, kernel } = usedRing(64, 70);
  const first = kernel.head;
  kernel.write(6);
  // It counted the first four of its batch (two forwarded, two dropped), and died before it
  // handed them back; the last two it had not counted.
  for (let i = 0; i < 4; i++) {
    const at = ((first + i) % ring.frameCount) * (SLOT_BYTES / 4);
    ring.words[at] = ring.words[at]! | TP_STATUS_COUNTED;
  }
  const reader = new Reader(ring, true);
  assert.equal(reader.dropped, 2, 'only the frames no one counted are worker_restart');
  for (let s = 0; s < ring.frameCount; s++) assert.equal(ring.status(s), TP_STATUS_KERNEL);
  // A fence slot found holding a counted frame is not counted either.
  const at = 5 * (SLOT_BYTES / 4);
  Atomics.store(ring.words, at, TP_STATUS_USER | TP_STATUS_COUNTED);
  assert.equal(releaseSlots(ring, 5, 1), 0);
  Atomics.store(ring.words, at, TP_STATUS_USER);
  assert.equal(releaseSlots(ring, 5, 1), 1);
});

// The defect: the kernel's head near the end of a full ring. The old logic freed the ring in slot
// order, saw a frame at slot 0 (written after the kernel wrapped) and read on from there, a lap
// behind the frames at the ring's end, and stayed out of step.
for (const headFromEnd of [1, 3, 8]) {
  test(`a full ring with the kernel's head ${headFromEnd} before its end: dropped, then read in the kernel's order`, () => {
    const N = 64;
    const { ring, kernel, old } = usedRing(N, 10 * N - headFromEnd);
    kernel.write(N + 5); // the dead worker stopped reading: full, 5 dropped
    assert.equal(kernel.drops, 5);
    old.batchOnce(true); // and died between send and release of one batch
    const before = kernel.nextSeq;
    const reader = new Reader(ring, true);
    assert.equal(reader.dropped, N, 'every frame left in the ring, the sent batch included');
    kernel.write(headFromEnd + 10); // wraps past slot 0 before the reader looks
    reader.drain();
    assert.deepEqual(
      reader.out,
      Array.from({ length: headFromEnd + 10 }, (_, i) => before + i),
    );
    const dropsBefore = kernel.drops;
    stream(kernel, reader, 5 * (N - 1));
    assertIncreasing(reader.out, 'later laps');
    // Held for the whole lap, the fence stops the kernel until the reader reaches it: what
    // arrived meanwhile the kernel dropped (and counted).
    const lost = kernel.drops - dropsBefore;
    assert.equal(reader.out.length + lost, headFromEnd + 10 + 5 * (N - 1), 'nothing else lost');
    assert.equal(reader.dropped, N, 'the fence held nothing late');
  });
}

test('idle restart: the first frame after a takeover is read first, wherever the head is', () => {
  for (let head = 0; head < 32; head += 5) {
    const { ring, kernel } = usedRing(32, 32 * 3 + head);
    const before = kernel.nextSeq;
    const reader = new Reader(ring, true);
    assert.equal(reader.dropped, 0);
    kernel.write(1);
    reader.drain();
    assert.deepEqual(reader.out, [before], `head ${head}`);
    kernel.write(100);
    reader.drain(); // the ring filled: the rest was dropped by the kernel, in order
    assertIncreasing(reader.out, `head ${head}`);
  }
});

test("two CPUs: the run's first frame still in flight when the start is chosen is dropped, not read a lap late", () => {
  const N = 64;
  const { ring, kernel } = usedRing(N, 3 * N - 2);
  const reader = new Reader(ring, true);
  const slow = kernel.claim(); // CPU A claims the head slot and is still copying
  kernel.write(4); // CPU B's frames after it are ready
  reader.drain();
  assert.deepEqual(reader.out.length, 4, 'read from the first ready frame');
  const late = kernel.inFlight.get(slow)!;
  kernel.finish(slow); // A finishes: behind the cursor, inside the fence
  const dropsBefore = kernel.drops;
  stream(kernel, reader, 3 * (N - 2));
  assert.ok(!reader.out.includes(late), 'the late frame is never read');
  assertIncreasing(reader.out, 'after the late frame');
  assert.equal(reader.dropped, 1, 'it is counted when the fence goes back');
  assert.equal(reader.out.length + kernel.drops - dropsBefore, 4 + 3 * (N - 2));
});

test('the fence goes back after fenceMs: a reader that keeps up then loses nothing at the end of the lap', () => {
  const N = 64;
  const { ring, kernel } = usedRing(N, 3 * N - 2);
  const reader = new Reader(ring, true, 8, 5);
  const slow = kernel.claim();
  kernel.write(4);
  reader.drain();
  kernel.finish(slow); // late, but before the fence's time is up
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  stream(kernel, reader, 3 * N);
  assert.equal(kernel.drops, 0);
  assert.equal(reader.out.length, 4 + 3 * N);
  assertIncreasing(reader.out, 'after the fence');
  assert.equal(reader.dropped, 1, 'the late frame found in the fence');
});

test('two CPUs: a frame in flight inside the run is waited for, then read in its turn', () => {
  const N = 64;
  const { ring, kernel } = usedRing(N, 2 * N + 7);
  const reader = new Reader(ring, true);
  kernel.write(2);
  const slow = kernel.claim();
  kernel.write(3);
  reader.drain();
  assert.equal(reader.out.length, 2, 'stops at the frame in flight');
  kernel.finish(slow);
  reader.drain();
  assert.equal(reader.out.length, 6);
  assertIncreasing(reader.out, 'with the late one in its place');
  assert.equal(reader.dropped, 0);
});

test('a ring the kernel filled again before the first look is taken over again, then read in order', () => {
  const N = 32;
  const { ring, kernel } = usedRing(N, 5 * N - 9);
  const reader = new Reader(ring, true);
  kernel.write(N + 3);
  reader.drain();
  assert.deepEqual(reader.out, [], 'a full ring has no first frame to tell');
  assert.equal(reader.dropped, N);
  const next = kernel.nextSeq;
  kernel.write(5);
  reader.drain();
  assert.deepEqual(reader.out, [next, next + 1, next + 2, next + 3, next + 4]);
});

test('findRunStart: walks back over frames and short holes to the gap, holds the fence, gives back the holes', () => {
  const N = 64;
  const ring = new FakeRing(N);
  const kernel = new FakeKernel(ring);
  kernel.head = 40;
  const claimed = Array.from({ length: 10 }, () => kernel.claim()); // slots 40..49
  for (const slot of claimed) if (slot !== 43 && slot !== 44 && slot !== 40) kernel.finish(slot);
  const fence = 8;
  const start = findRunStart(ring, 47, fence);
  assert.equal(start, 41, 'slot 40 (in flight) is not told from the gap: it falls in the fence');
  for (let s = 33; s < 41; s++) assert.equal(ring.status(s), TP_STATUS_HELD, `slot ${s} held`);
  assert.equal(ring.status(43), TP_STATUS_KERNEL, 'holes inside the run are given back');
  assert.equal(ring.status(44), TP_STATUS_KERNEL);
  assert.equal(ring.status(32), TP_STATUS_KERNEL, 'nothing before the fence is held');
  kernel.finish(40);
  assert.equal(releaseSlots(ring, 33, fence), 1, 'the late frame in the fence is counted');
});

test('fenceSize: a floor of 16 (more than the CPUs that can have a frame in flight), at most a quarter of the ring', () => {
  assert.ok(fenceSize(2048) >= 16);
  assert.equal(fenceSize(32), 8);
});

// Random interleavings: a kernel with two CPUs (each with at most one frame in flight, finished
// in any order), readers taking batches at random, and workers dying at random, also between
// send and release. Whatever happens, the frames output over all workers are increasing (so
// none twice, none out of order, none from before a takeover), and every frame the kernel wrote
// is output, dropped and counted, or still waiting at the end.
test('random interleavings of two CPUs, reads and restarts: increasing output, every frame accounted for', () => {
  let seed = 12345;
  const random = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  for (let run = 0; run < 200; run++) {
    const N = [16, 32, 64][run % 3]!;
    const ring = new FakeRing(N);
    const kernel = new FakeKernel(ring);
    const cpu: number[] = [-1, -1];
    let reader = new Reader(ring, false, 1 + Math.floor(random() * 8));
    const out: number[] = [];
    let dropped = 0;
    let sentByDead = 0;
    let restarts = 0;
    for (let step = 0; step < 3000; step++) {
      const r = random();
      if (r < 0.5) {
        const c = random() < 0.5 ? 0 : 1;
        if (cpu[c]! < 0) cpu[c] = kernel.claim();
        else {
          kernel.finish(cpu[c]!);
          cpu[c] = -1;
        }
      } else if (r < 0.97) {
        reader.batchOnce();
      } else {
        // The worker dies, mid-batch half the time; frames in flight finish while the new one
        // waits out SETTLE_MS (the kernel's copy is never that slow).
        if (random() < 0.5) sentByDead += reader.batchOnce(true);
        out.push(...reader.out);
        dropped += reader.dropped;
        for (const c of [0, 1]) {
          if (cpu[c]! < 0) continue;
          kernel.finish(cpu[c]!);
          cpu[c] = -1;
        }
        reader = new Reader(ring, true, 1 + Math.floor(random() * 8));
        restarts++;
      }
    }
    out.push(...reader.out);
    dropped += reader.dropped;
    assertIncreasing(out, `run ${run}`);
    let waiting = 0;
    for (let s = 0; s < N; s++) if ((ring.status(s) & TP_STATUS_USER) !== 0) waiting++;
    const inFlight = kernel.inFlight.size;
    const written = kernel.nextSeq - 1;
    assert.ok(restarts > 0);
    // A dead worker's batch was output by it (sent) and dropped by its successor: both count it.
    assert.equal(out.length + dropped - sentByDead + waiting + inFlight, written, `run ${run}: accounting`);
  }
});
