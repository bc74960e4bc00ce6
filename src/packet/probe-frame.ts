// Complete Ethernet/IPv4/UDP frames around mcrgen probes, for `mcrgen send --raw`, which hands
// whole frames to an AF_PACKET socket: nothing in the kernel fills in an address or a checksum.
//
//   @0  Ethernet: destination MAC, source MAC, EtherType 0x0800 (no VLAN tag)
//   @14 IPv4: 20 bytes, no options; DF set and id 0, as Linux sends unconnected UDP (RFC 6864:
//       the id of an atomic datagram means nothing), so the header and its checksum are the
//       same for every packet to one destination
//   @34 UDP: ports, length, checksum over pseudo-header, header and payload
//   @42 the probe (src/packet/probe.ts)
//
// A sender writes a destination's header once per slot (writeFrameHeader); per packet only the
// probe and the UDP checksum change (writeProbeFrame). Both allocate nothing.

import {
  ETHERNET_HEADER_SIZE,
  ETHERTYPE_IPV4,
  IP_PROTO_UDP,
  IPV4_FLAG_DF,
  IPV4_MIN_HEADER_SIZE,
  UDP_HEADER_SIZE,
  writeEthernetHeader,
  writeIpv4Header,
  writeUdpHeader,
} from './build.js';
import { writeProbe } from './probe.js';

export const FRAME_IP_OFFSET = ETHERNET_HEADER_SIZE;
export const FRAME_UDP_OFFSET = FRAME_IP_OFFSET + IPV4_MIN_HEADER_SIZE;
/** Where the UDP payload (the probe) starts: 42. */
export const FRAME_HEADER_BYTES = FRAME_UDP_OFFSET + UDP_HEADER_SIZE;
const UDP_CHECKSUM_OFFSET = FRAME_UDP_OFFSET + 6;
/** IPv4 and UDP headers around a payload: a payload fits one frame if it is at most MTU − this. */
export const IPV4_UDP_HEADERS = IPV4_MIN_HEADER_SIZE + UDP_HEADER_SIZE;

export interface FrameHeaderFields {
  destinationMac: Uint8Array;
  sourceMac: Uint8Array;
  /** Unsigned 32-bit IPv4 addresses (see ipv4-address.ts). */
  source: number;
  destination: number;
  sourcePort: number;
  port: number;
  ttl: number;
  /** UDP payload bytes every frame with this header carries. */
  payloadLength: number;
}

/**
 * Writes the 42 header bytes of a frame at `offset` (UDP checksum 0 until a payload is there)
 * and returns its checksum base: the folded sum of the UDP pseudo-header and the UDP header
 * (checksum field excluded), which writeProbeFrame adds the payload to. Throws RangeError on
 * values that cannot be encoded.
 */
export function writeFrameHeader(bytes: Uint8Array, offset: number, f: FrameHeaderFields): number {
  const udpLength = UDP_HEADER_SIZE + f.payloadLength;
  writeEthernetHeader(bytes, offset, f.destinationMac, f.sourceMac, ETHERTYPE_IPV4);
  writeIpv4Header(bytes, offset + FRAME_IP_OFFSET, {
    src: f.source,
    dst: f.destination,
    protocol: IP_PROTO_UDP,
    ttl: f.ttl,
    totalLength: IPV4_MIN_HEADER_SIZE + udpLength,
    flags: IPV4_FLAG_DF,
  });
  writeUdpHeader(bytes, offset + FRAME_UDP_OFFSET, f.sourcePort, f.port, udpLength, 0);
  return udpChecksumBase(f.source, f.destination, f.sourcePort, f.port, udpLength);
}

/** The pseudo-header (addresses, protocol, UDP length) and UDP header words, folded to 16 bits. */
export function udpChecksumBase(
  source: number,
  destination: number,
  sourcePort: number,
  port: number,
  udpLength: number,
): number {
  const sum =
    (source >>> 16) +
    (source & 0xffff) +
    (destination >>> 16) +
    (destination & 0xffff) +
    IP_PROTO_UDP +
    udpLength + // pseudo-header
    sourcePort +
    port +
    udpLength; // header
  return fold(sum);
}

/** Whether 16-bit words are stored low byte first here (then a word sum comes out byte-swapped). */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * A 16-bit view of `bytes` (the same memory from the same start), which writeProbeFrame sums the
 * payload through: for 64 bytes 26 ns against 71 ns a byte at a time. `bytes` must start at an
 * even byte of its buffer.
 */
export function frameWords(bytes: Uint8Array): Uint16Array {
  if (bytes.byteOffset % 2 !== 0) throw new RangeError('frame memory must start at an even byte');
  return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 1);
}

/**
 * Writes a `size`-byte probe into the frame at `offset` (even; its header written by
 * writeFrameHeader, which returned `base`) and stores the UDP checksum. `words` is
 * frameWords(bytes). The checksum sums native-order words, four per step, and swaps the folded
 * sum's bytes where words are little-endian (RFC 1071: the sum commutes with byte order): it adds
 * 20-30 ns to the probe's 140-150 ns for a 64-byte payload (docs/PERFORMANCE.md, the generator).
 */
export function writeProbeFrame(
  bytes: Uint8Array,
  words: Uint16Array,
  offset: number,
  size: number,
  streamId: number,
  seq: number,
  timeUs: number,
  base: number,
): void {
  if ((offset & 1) !== 0) throw new RangeError(`frames start at even offsets, got ${offset}`);
  const payload = offset + FRAME_HEADER_BYTES;
  writeProbe(bytes, payload, size, streamId, seq, timeUs);
  // At most 32753 words of 0xffff: the sum stays below 2^32, so >>> in fold is exact.
  const end = (payload + size) >>> 1; // words wholly inside the payload
  let w = payload >>> 1;
  let sum = 0;
  for (; w + 3 < end; w += 4) sum += words[w]! + words[w + 1]! + words[w + 2]! + words[w + 3]!;
  for (; w < end; w++) sum += words[w]!;
  let payloadSum = fold(sum);
  if (LITTLE_ENDIAN) payloadSum = ((payloadSum & 0xff) << 8) | (payloadSum >>> 8);
  // An odd last byte is the high half of a word padded with zero.
  if ((size & 1) !== 0) payloadSum += bytes[payload + size - 1]! << 8;
  let check = ~fold(base + payloadSum) & 0xffff;
  if (check === 0) check = 0xffff; // 0 would mean "no checksum" (RFC 768)
  bytes[offset + UDP_CHECKSUM_OFFSET] = check >>> 8;
  bytes[offset + UDP_CHECKSUM_OFFSET + 1] = check & 0xff;
}

/** Ones'-complement fold of a non-negative sum below 2^32 to 16 bits. */
function fold(sum: number): number {
  let s = (sum & 0xffff) + (sum >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return s;
}
