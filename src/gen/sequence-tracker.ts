// Per-stream accounting of probe sequence numbers: unique, duplicate, reordered and lost
// packets. Pure (no I/O) and allocation-free per packet except when a new bitmap chunk is
// first touched, so it keeps up with recvmmsg at line rate.

/** What record() decided about one sequence number. */
export const SeqVerdict = Object.freeze({
  /** First time seen, and higher than every sequence seen before. */
  IN_ORDER: 0,
  /** First time seen, but lower than the highest seen so far. */
  REORDERED: 1,
  /** Seen before. */
  DUPLICATE: 2,
  /** Below the retained window: counted as unique and reordered, duplicate status unknown. */
  OUT_OF_WINDOW: 3,
} as const);

export type SeqVerdictCode = (typeof SeqVerdict)[keyof typeof SeqVerdict];

/** Bits per bitmap chunk: 65536 sequence numbers in 8 KiB. */
const CHUNK_BITS = 65536;
const CHUNK_WORDS = CHUNK_BITS / 32;

/**
 * Default window: 2048 chunks = 2^27 ≈ 1.3·10^8 sequence numbers, at most 16 MiB per stream.
 * Chunks are allocated only where sequences land, so a stream that starts late or jumps costs
 * memory only for the ranges it actually uses.
 */
export const DEFAULT_MAX_CHUNKS = 2048;

/**
 * Which sequence numbers of one stream have been seen, as a bitset split into chunks kept in a
 * Map by chunk index. Memory is bounded: once the chunks span more than `maxChunks`, those
 * furthest below the highest sequence are dropped (a sliding window).
 */
export class SequenceTracker {
  /** Good probes recorded, including duplicates. */
  received = 0;
  /** Distinct sequence numbers. */
  unique = 0;
  duplicates = 0;
  reordered = 0;
  /** Sequences that fell below the retained window (cannot tell duplicate from late). */
  outOfWindow = 0;
  /** Highest sequence seen, -1 before the first. */
  highest = -1;

  private readonly maxChunks: number;
  private readonly chunks = new Map<number, Uint32Array>();
  private highestChunk = -1;
  /** Lowest chunk index in `chunks`; lets eviction skip the scan when nothing is below the floor. */
  private lowestChunk = Number.POSITIVE_INFINITY;
  // One-entry cache: consecutive sequences almost always share a chunk.
  private lastChunkIndex = -1;
  private lastChunk: Uint32Array | undefined;

  constructor(maxChunks = DEFAULT_MAX_CHUNKS) {
    if (!Number.isInteger(maxChunks) || maxChunks < 1)
      throw new RangeError(`maxChunks must be ≥ 1, got ${maxChunks}`);
    this.maxChunks = maxChunks;
  }

  /** Records one good probe's sequence number (a non-negative safe integer). */
  record(seq: number): SeqVerdictCode {
    this.received++;
    const chunkIndex = Math.floor(seq / CHUNK_BITS);
    if (chunkIndex <= this.highestChunk - this.maxChunks) {
      this.unique++;
      this.reordered++;
      this.outOfWindow++;
      return SeqVerdict.OUT_OF_WINDOW;
    }
    const chunk = this.chunkFor(chunkIndex);
    const bit = seq - chunkIndex * CHUNK_BITS;
    const word = bit >>> 5;
    const mask = 1 << (bit & 31);
    if ((chunk[word]! & mask) !== 0) {
      this.duplicates++;
      return SeqVerdict.DUPLICATE;
    }
    chunk[word] = chunk[word]! | mask;
    this.unique++;
    if (seq > this.highest) {
      this.highest = seq;
      if (chunkIndex > this.highestChunk) this.advanceWindow(chunkIndex);
      return SeqVerdict.IN_ORDER;
    }
    this.reordered++;
    return SeqVerdict.REORDERED;
  }

  /**
   * Sequence numbers from 0 to the highest seen that never arrived. Sequences start at 0, so a
   * receiver that started after the sender counts the packets it missed as lost.
   */
  get lost(): number {
    return this.highest + 1 - this.unique;
  }

  /** Bitmap chunks currently held (for tests and memory reporting). */
  get chunkCount(): number {
    return this.chunks.size;
  }

  private chunkFor(index: number): Uint32Array {
    if (index === this.lastChunkIndex) return this.lastChunk!;
    let chunk = this.chunks.get(index);
    if (chunk === undefined) {
      chunk = new Uint32Array(CHUNK_WORDS);
      this.chunks.set(index, chunk);
      if (index < this.lowestChunk) this.lowestChunk = index;
    }
    this.lastChunkIndex = index;
    this.lastChunk = chunk;
    return chunk;
  }

  private advanceWindow(chunkIndex: number): void {
    this.highestChunk = chunkIndex;
    const floor = chunkIndex - this.maxChunks;
    if (this.lowestChunk > floor) return;
    let lowest = Number.POSITIVE_INFINITY;
    for (const index of this.chunks.keys()) {
      if (index <= floor) this.chunks.delete(index);
      else if (index < lowest) lowest = index;
    }
    this.lowestChunk = lowest;
    if (this.lastChunkIndex <= floor) {
      this.lastChunkIndex = -1;
      this.lastChunk = undefined;
    }
  }
}

/** Everything mcrgen recv knows about one stream id. */
export class StreamStats {
  readonly streamId: number;
  readonly sequence: SequenceTracker;
  /** Payload bytes of good probes. */
  bytes = 0;
  /** Damaged datagrams whose header still named this stream, by probe status name. */
  readonly corrupted = new Map<string, number>();
  latencyCount = 0;
  latencyMinUs = Number.POSITIVE_INFINITY;
  latencyMaxUs = Number.NEGATIVE_INFINITY;
  latencySumUs = 0;

  constructor(streamId: number, maxChunks = DEFAULT_MAX_CHUNKS) {
    this.streamId = streamId;
    this.sequence = new SequenceTracker(maxChunks);
  }

  /** Records a good probe; `latencyUs` is receive time minus the probe's send time. */
  recordGood(seq: number, bytes: number, latencyUs: number): SeqVerdictCode {
    this.bytes += bytes;
    this.latencyCount++;
    this.latencySumUs += latencyUs;
    if (latencyUs < this.latencyMinUs) this.latencyMinUs = latencyUs;
    if (latencyUs > this.latencyMaxUs) this.latencyMaxUs = latencyUs;
    return this.sequence.record(seq);
  }

  recordCorrupted(statusName: string): void {
    this.corrupted.set(statusName, (this.corrupted.get(statusName) ?? 0) + 1);
  }

  get corruptedTotal(): number {
    let total = 0;
    for (const n of this.corrupted.values()) total += n;
    return total;
  }
}

/** Streams by id, created on first sight, in order of first sight. */
export class StreamTable {
  private readonly streams = new Map<number, StreamStats>();
  private readonly maxChunks: number;
  private last: StreamStats | undefined;

  constructor(maxChunks = DEFAULT_MAX_CHUNKS) {
    this.maxChunks = maxChunks;
  }

  get(streamId: number): StreamStats {
    if (this.last !== undefined && this.last.streamId === streamId) return this.last;
    let stream = this.streams.get(streamId);
    if (stream === undefined) {
      stream = new StreamStats(streamId, this.maxChunks);
      this.streams.set(streamId, stream);
    }
    this.last = stream;
    return stream;
  }

  /** The stream if it has been seen, without creating it. */
  find(streamId: number): StreamStats | undefined {
    return this.streams.get(streamId);
  }

  get size(): number {
    return this.streams.size;
  }

  all(): StreamStats[] {
    return [...this.streams.values()];
  }
}
