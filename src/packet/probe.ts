// Payload format of mcrgen probes. Each UDP payload carries a stream id, a sequence number and
// a send time so a receiver can count lost, duplicated and reordered packets and measure
// latency, plus a checksum over the whole payload so corruption anywhere is detected.
//
// Layout, big-endian, 32-byte header:
//   @0  u32 magic 0x4d435231 ("MCR1")
//   @4  u32 stream id
//   @8  u32 sequence, high 32 bits    @12 u32 sequence, low 32 bits
//   @16 u32 send time in microseconds since the Unix epoch, high 32 bits
//   @20 u32 send time, low 32 bits
//   @24 u16 total payload length      @26 u16 reserved (0)
//   @28 u32 checksum: FNV-1a over bytes [0, 28) then [32, length)
//   @32 filler: a deterministic function of (sequence, index), so a payload spliced from
//       another packet or left over in a reused buffer does not pass as this one
//
// 64-bit values are carried as JS numbers (exact up to 2^53) rather than bigint, because
// bigint arithmetic allocates and mcrgen writes and reads these at line rate.

export const PROBE_MAGIC = 0x4d435231;
export const PROBE_HEADER_SIZE = 32;
export const PROBE_MIN_SIZE = PROBE_HEADER_SIZE;
/** The length field is 16 bits. */
export const PROBE_MAX_SIZE = 0xffff;

const CHECKSUM_OFFSET = 28;
const TWO_POW_32 = 0x1_0000_0000;

export const ProbeStatus = Object.freeze({
  OK: 0,
  /** Fewer than PROBE_HEADER_SIZE bytes. */
  TOO_SHORT: 1,
  /** Not an mcrgen probe. */
  BAD_MAGIC: 2,
  /** Length field disagrees with the received payload size. */
  BAD_LENGTH: 3,
  /** Payload corrupted. */
  BAD_CHECKSUM: 4,
} as const);

export type ProbeStatusCode = (typeof ProbeStatus)[keyof typeof ProbeStatus];

const PROBE_STATUS_NAMES: readonly string[] = ['ok', 'too_short', 'bad_magic', 'bad_length', 'bad_checksum'];

export function probeStatusName(code: number): string {
  return PROBE_STATUS_NAMES[code] ?? 'unknown';
}

/** Filled in place by readProbe; reuse one instance per receiver. */
export class ProbeInfo {
  streamId = 0;
  /** Exact below 2^53. */
  seq = 0;
  timeUs = 0;
  /** Length field of the probe (equals the payload size when OK). */
  length = 0;
}

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * 32-bit FNV-1a over bytes[offset, offset+length), continuing from `hash` so several ranges can
 * be chained. Each step is a bijection of the running hash, so any single changed byte always
 * changes the result. Caller guarantees the range is inside the array.
 */
export function fnv1a32(bytes: Uint8Array, offset: number, length: number, hash = FNV_OFFSET_BASIS): number {
  let h = hash;
  const end = offset + length;
  for (let i = offset; i < end; i++) h = Math.imul(h ^ bytes[i]!, FNV_PRIME);
  return h >>> 0;
}

function probeChecksum(bytes: Uint8Array, offset: number, size: number): number {
  const h = fnv1a32(bytes, offset, CHECKSUM_OFFSET);
  return fnv1a32(bytes, offset + PROBE_HEADER_SIZE, size - PROBE_HEADER_SIZE, h);
}

function writeU32(bytes: Uint8Array, i: number, v: number): void {
  bytes[i] = v >>> 24;
  bytes[i + 1] = v >>> 16;
  bytes[i + 2] = v >>> 8;
  bytes[i + 3] = v;
}

function readU32(bytes: Uint8Array, i: number): number {
  return ((bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!) >>> 0;
}

/**
 * Fills bytes [offset+32, offset+size) from an xorshift32 stream seeded by the sequence number.
 * Byte index i of the filler is therefore fixed by (seq, i); a receiver could regenerate it.
 */
function writeFiller(bytes: Uint8Array, offset: number, size: number, seqHi: number, seqLo: number): void {
  // Mixing hi into the seed keeps seq and seq + 2^32 apart.
  let x = seqLo ^ Math.imul(seqHi, 0x9e3779b1) ^ 0x6d637231;
  if (x === 0) x = 1; // xorshift's all-zero state is a fixed point
  const end = offset + size;
  let i = offset + PROBE_HEADER_SIZE;
  for (; i + 4 <= end; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    writeU32(bytes, i, x);
  }
  if (i < end) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    for (let shift = 24; i < end; i++, shift -= 8) bytes[i] = x >>> shift;
  }
}

/**
 * Writes a `size`-byte probe at `offset`. `seq` and `timeUs` are non-negative integers below
 * 2^53. Allocates nothing; throws RangeError only on arguments that cannot be encoded.
 */
export function writeProbe(
  bytes: Uint8Array,
  offset: number,
  size: number,
  streamId: number,
  seq: number,
  timeUs: number,
): void {
  if (!Number.isInteger(size) || size < PROBE_MIN_SIZE || size > PROBE_MAX_SIZE) {
    throw new RangeError(`probe size must be ${PROBE_MIN_SIZE}..${PROBE_MAX_SIZE}, got ${size}`);
  }
  if (!Number.isInteger(offset) || offset < 0 || offset + size > bytes.length) {
    throw new RangeError(`probe of ${size} bytes at ${offset} does not fit in ${bytes.length} bytes`);
  }
  if (!Number.isInteger(streamId) || streamId < 0 || streamId > 0xffffffff) {
    throw new RangeError(`stream id must be a u32, got ${streamId}`);
  }
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`sequence must be a safe u64, got ${seq}`);
  if (!Number.isSafeInteger(timeUs) || timeUs < 0)
    throw new RangeError(`time must be a safe u64, got ${timeUs}`);

  const seqHi = Math.floor(seq / TWO_POW_32);
  const seqLo = seq >>> 0; // ToUint32 is seq mod 2^32, exact for safe integers
  writeU32(bytes, offset, PROBE_MAGIC);
  writeU32(bytes, offset + 4, streamId);
  writeU32(bytes, offset + 8, seqHi);
  writeU32(bytes, offset + 12, seqLo);
  writeU32(bytes, offset + 16, Math.floor(timeUs / TWO_POW_32));
  writeU32(bytes, offset + 20, timeUs >>> 0);
  writeU32(bytes, offset + 24, size * 0x10000); // length, then reserved = 0
  writeFiller(bytes, offset, size, seqHi, seqLo);
  writeU32(bytes, offset + CHECKSUM_OFFSET, probeChecksum(bytes, offset, size));
}

/**
 * Checks the probe in bytes[offset, offset+size) and fills `out`. Never throws; bytes beyond
 * the array are treated as missing. `out` is filled (from the header as received) for every
 * status except TOO_SHORT and BAD_MAGIC; trust it only when OK.
 */
export function readProbe(bytes: Uint8Array, offset: number, size: number, out: ProbeInfo): ProbeStatusCode {
  if (!Number.isInteger(offset) || !Number.isInteger(size) || offset < 0 || size < 0)
    return ProbeStatus.TOO_SHORT;
  let n = size;
  if (offset + n > bytes.length) n = Math.max(0, bytes.length - offset);
  if (n < PROBE_HEADER_SIZE) return ProbeStatus.TOO_SHORT;
  if (readU32(bytes, offset) !== PROBE_MAGIC) return ProbeStatus.BAD_MAGIC;

  out.streamId = readU32(bytes, offset + 4);
  out.seq = readU32(bytes, offset + 8) * TWO_POW_32 + readU32(bytes, offset + 12);
  out.timeUs = readU32(bytes, offset + 16) * TWO_POW_32 + readU32(bytes, offset + 20);
  const length = (bytes[offset + 24]! << 8) | bytes[offset + 25]!;
  out.length = length;
  if (length !== n) return ProbeStatus.BAD_LENGTH;
  if (readU32(bytes, offset + CHECKSUM_OFFSET) !== probeChecksum(bytes, offset, n))
    return ProbeStatus.BAD_CHECKSUM;
  return ProbeStatus.OK;
}
