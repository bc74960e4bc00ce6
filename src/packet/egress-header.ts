import {
  ETHERNET_HEADER_SIZE,
  ETHERTYPE_IPV4,
  IP_PROTO_UDP,
  IPV4_FLAG_DF,
  IPV4_MIN_HEADER_SIZE,
  UDP_HEADER_SIZE,
  writeEthernetHeader,
  writeIpv4Header,
  writeMulticastMac,
  writeUdpHeader,
} from './build.js';

/**
 * The header the raw egress path puts in front of each payload: a virtio_net_hdr (which asks the
 * device or kernel to compute the UDP checksum), then Ethernet, IPv4 and UDP. One template per
 * output; per packet the lengths, the IP id, the TTL, the TOS byte and the two checksums change.
 * The TTL and TOS a template is written with mean nothing: every copy gets its own (the input's
 * TTL less one, capped by the output; the input's or the output's DSCP with the input's ECN),
 * and egressSums leaves both bytes out of the fixed sum.
 */
export const VNET_HEADER_SIZE = 10;
export const EGRESS_HEADER_SIZE =
  VNET_HEADER_SIZE + ETHERNET_HEADER_SIZE + IPV4_MIN_HEADER_SIZE + UDP_HEADER_SIZE;
const IP = VNET_HEADER_SIZE + ETHERNET_HEADER_SIZE;
const UDP = IP + IPV4_MIN_HEADER_SIZE;
/** Bytes of IPv4 + UDP header around a payload: payloads above MTU − this need fragmenting. */
export const IPV4_UDP_OVERHEAD = IPV4_MIN_HEADER_SIZE + UDP_HEADER_SIZE;

const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;

export interface EgressHeaderFields {
  /** The output interface's Ethernet address. */
  sourceMac: Uint8Array;
  /** The output interface's IPv4 address. */
  sourceAddress: number;
  sourcePort: number;
  /** A multicast group: the destination MAC is derived from it. */
  group: number;
  port: number;
  /** Placeholders: patchEgressHeader writes each copy's TTL and TOS. */
  ttl: number;
  dscp: number;
}

/** Writes the template into `bytes` at `offset` (EGRESS_HEADER_SIZE bytes). */
export function writeEgressTemplate(bytes: Uint8Array, offset: number, f: EgressHeaderFields): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // struct virtio_net_hdr (host byte order): flags, gso_type, hdr_len, gso_size, csum_start, csum_offset.
  bytes[offset] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  bytes[offset + 1] = 0;
  view.setUint16(offset + 2, 0, true);
  view.setUint16(offset + 4, 0, true);
  view.setUint16(offset + 6, UDP - VNET_HEADER_SIZE, true); // checksum starts at the UDP header
  view.setUint16(offset + 8, 6, true); // and is stored 6 bytes into it
  const mac = new Uint8Array(6);
  writeMulticastMac(mac, 0, f.group);
  writeEthernetHeader(bytes, offset + VNET_HEADER_SIZE, mac, f.sourceMac, ETHERTYPE_IPV4);
  writeIpv4Header(bytes, offset + IP, {
    src: f.sourceAddress,
    dst: f.group,
    protocol: IP_PROTO_UDP,
    ttl: f.ttl,
    dscp: f.dscp,
    totalLength: IPV4_UDP_OVERHEAD,
    flags: IPV4_FLAG_DF,
  });
  writeUdpHeader(bytes, offset + UDP, f.sourcePort, f.port, UDP_HEADER_SIZE, 0);
}

/**
 * The ones'-complement sums of a template's fixed parts, computed once per output so the
 * per-packet checksums cost a few additions: the IPv4 header without total length, id,
 * checksum, TOS and TTL; and the UDP pseudo-header without its length.
 */
export interface EgressSums {
  ipFixed: number;
  pseudoFixed: number;
}

export function egressSums(bytes: Uint8Array, offset: number): EgressSums {
  let ip = 0;
  for (let i = 0; i < IPV4_MIN_HEADER_SIZE; i += 2) {
    if (i === 2 || i === 4 || i === 10) continue; // total length, id, checksum
    const word = (bytes[offset + IP + i]! << 8) | bytes[offset + IP + i + 1]!;
    if (i === 0)
      ip += word & 0xff00; // version and IHL; the TOS byte is per packet
    else if (i === 8)
      ip += word & 0x00ff; // protocol; the TTL byte is per packet
    else ip += word;
  }
  let pseudo = IP_PROTO_UDP;
  for (let i = 12; i < 20; i += 2) pseudo += (bytes[offset + IP + i]! << 8) | bytes[offset + IP + i + 1]!;
  return { ipFixed: ip, pseudoFixed: pseudo };
}

/**
 * Fills in one packet's variable fields in a header slot that holds the template: TOS, total
 * length, id, TTL, header checksum, UDP length and pseudo-header sum. About a dozen byte writes
 * and two folded sums: no allocation. `ttl` 1-255 and `tos` 0-255 (DSCP << 2 | ECN) go into the
 * checksum as the words they share with the template's fixed bytes. The UDP checksum field gets
 * the pseudo-header sum, as CHECKSUM_PARTIAL wants; the device (or kernel) completes it over
 * header and payload.
 */
export function patchEgressHeader(
  bytes: Uint8Array,
  offset: number,
  payloadLength: number,
  ipId: number,
  ttl: number,
  tos: number,
  sums: EgressSums,
): void {
  const udpLength = UDP_HEADER_SIZE + payloadLength;
  const totalLength = IPV4_MIN_HEADER_SIZE + udpLength;
  const ip = offset + IP;
  bytes[ip + 1] = tos;
  bytes[ip + 2] = totalLength >>> 8;
  bytes[ip + 3] = totalLength & 0xff;
  bytes[ip + 4] = ipId >>> 8;
  bytes[ip + 5] = ipId & 0xff;
  bytes[ip + 8] = ttl;
  let sum = sums.ipFixed + totalLength + ipId + (ttl << 8) + tos;
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  const check = ~sum & 0xffff;
  bytes[ip + 10] = check >>> 8;
  bytes[ip + 11] = check & 0xff;
  const udp = offset + UDP;
  bytes[udp + 4] = udpLength >>> 8;
  bytes[udp + 5] = udpLength & 0xff;
  let pseudo = sums.pseudoFixed + udpLength;
  pseudo = (pseudo & 0xffff) + (pseudo >>> 16);
  pseudo = (pseudo & 0xffff) + (pseudo >>> 16);
  bytes[udp + 6] = pseudo >>> 8;
  bytes[udp + 7] = pseudo & 0xff;
}
