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

/**
 * Writes a `size`-byte probe into the frame at `offset` (whose header writeFrameHeader wrote
 * with `base` as its result) and stores the UDP checksum. The checksum adds the payload's even
 * and odd bytes separately, with no carry handling per word; for 64-byte payloads it is about a
 * sixth of the cost of the probe itself (see docs/PERFORMANCE.md, the generator).
 */
export function writeProbeFrame(
  bytes: Uint8Array,
  offset: number,
  size: number,
  streamId: number,
  seq: number,
  timeUs: number,
  base: number,
): void {
  const payload = offset + FRAME_HEADER_BYTES;
  writeProbe(bytes, payload, size, streamId, seq, timeUs);
  let high = 0;
  let low = 0;
  const end = payload + size;
  let i = payload;
  for (; i + 1 < end; i += 2) {
    high += bytes[i]!;
    low += bytes[i + 1]!;
  }
  if (i < end) high += bytes[i]!; // an odd last byte is the high half of a word padded with zero
  // At most 32754 × 255 per half: the sum stays below 2^32, so >>> in fold is exact.
  let check = ~fold(base + high * 256 + low) & 0xffff;
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
