// Frames for the XDP program tests, and the reference a raw-path output would send for them.
import {
  EGRESS_HEADER_SIZE,
  egressSums,
  patchEgressHeader,
  VNET_HEADER_SIZE,
  writeEgressTemplate,
} from '../../src/packet/egress-header.js';
import { buildUdpFrame, type UdpFrameOptions } from '../../src/packet/build.js';
import type { OutputHeader } from '../../src/xdp/output-header.js';

/** The ones'-complement sum of big-endian words of bytes[from, to), odd tail padded. */
function sum16(bytes: Uint8Array, from: number, to: number, start = 0): number {
  let sum = start;
  for (let i = from; i < to; i += 2) sum += (bytes[i]! << 8) | (i + 1 < to ? bytes[i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The full UDP checksum of the datagram whose IPv4 header starts at `ip` (as a NIC computes it). */
export function udpChecksum(frame: Uint8Array, ip: number): number {
  const ihl = (frame[ip]! & 0x0f) * 4;
  const udp = ip + ihl;
  const udpLength = (frame[udp + 4]! << 8) | frame[udp + 5]!;
  let pseudo = sum16(frame, ip + 12, ip + 20) + 17 + udpLength;
  const copy = frame.slice(udp, udp + udpLength);
  copy[6] = 0;
  copy[7] = 0;
  pseudo = sum16(copy, 0, copy.length, pseudo);
  const check = ~pseudo & 0xffff;
  return check === 0 ? 0xffff : check;
}

/** True when the IPv4 header at `ip` sums to 0xffff with its checksum. */
export function ipHeaderValid(frame: Uint8Array, ip: number): boolean {
  return sum16(frame, ip, ip + (frame[ip]! & 0x0f) * 4) === 0xffff;
}

/** A UDP frame with a correct UDP checksum (what a sender without offload puts on the wire). */
export function checksummedFrame(options: UdpFrameOptions): Uint8Array {
  const frame = buildUdpFrame(options);
  const ip = 14 + 4 * (options.vlanTags?.length ?? 0);
  const check = udpChecksum(frame, ip);
  const udp = ip + (frame[ip]! & 0x0f) * 4;
  frame[udp + 6] = check >>> 8;
  frame[udp + 7] = check & 0xff;
  return frame;
}

/**
 * What the raw path sends for `input` on `output`: its egress template, patched for this copy
 * (payload length, the input's IP id, TTL, TOS), with the UDP checksum the device completes.
 */
export function rawPathFrame(
  input: Uint8Array,
  ip: number,
  output: OutputHeader,
  ttl: number,
  tos: number,
): Uint8Array {
  const header = new Uint8Array(EGRESS_HEADER_SIZE);
  writeEgressTemplate(header, 0, { ...output, dscp: 0 });
  const ihl = (input[ip]! & 0x0f) * 4;
  const udp = ip + ihl;
  const payloadLength = ((input[udp + 4]! << 8) | input[udp + 5]!) - 8;
  const id = (input[ip + 4]! << 8) | input[ip + 5]!;
  patchEgressHeader(header, 0, payloadLength, id, ttl, tos, egressSums(header, 0));
  const frame = new Uint8Array(EGRESS_HEADER_SIZE - VNET_HEADER_SIZE + payloadLength);
  frame.set(header.subarray(VNET_HEADER_SIZE), 0);
  frame.set(input.subarray(udp + 8, udp + 8 + payloadLength), 42);
  const check = udpChecksum(frame, 14);
  frame[40] = check >>> 8;
  frame[41] = check & 0xff;
  return frame;
}
