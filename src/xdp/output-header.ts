import { ETHERTYPE_IPV4, writeMulticastMac } from '../packet/build.js';

/**
 * What one output writes into each copy, computed once per output and kept in the outputs map
 * (OutputValue) for the egress program, which only moves these bytes. Pure.
 */

/** OutputValue: the header bytes, the UDP checksum addend, the counter slot, TTL and DSCP. */
export const OUTPUT_VALUE_SIZE = 40;
export const OUTPUT_VALUE_ETHERNET = 0; // 14 bytes
export const OUTPUT_VALUE_ADDRESSES = 16; // 8 bytes
export const OUTPUT_VALUE_PORTS = 24; // 4 bytes
export const OUTPUT_VALUE_UDP_ADDED_SUM = 28; // u32
export const OUTPUT_VALUE_COUNTER_SLOT = 32; // u32
export const OUTPUT_VALUE_TTL = 36; // u8
export const OUTPUT_VALUE_TTL_FIXED = 37; // u8: 1 fixed, 0 a cap
export const OUTPUT_VALUE_DSCP_BITS = 38; // u8: DSCP << 2
export const OUTPUT_VALUE_KEEP_DSCP = 39; // u8: 1 keeps the input's

/** An output as the XDP path needs it: the rule's output plus what its link is. */
export interface OutputHeader {
  /** Destination group and UDP port of the copies. */
  group: number;
  port: number;
  /** The source port the raw path writes (its output socket's local port). */
  sourcePort: number;
  /** The output link's IPv4 address and Ethernet address. */
  sourceAddress: number;
  sourceMac: Uint8Array;
  /** The cap on input TTL − 1, or (ttlFixed) the TTL of every copy; 1-255. */
  ttl: number;
  ttlFixed: boolean;
  /** The DSCP of the copies, or undefined to keep the input's; ECN is always kept. */
  dscp: number | undefined;
}

export interface EgressConstants {
  /** Destination MAC (01:00:5e + the group's low 23 bits), source MAC, EtherType IPv4. */
  ethernet: Uint8Array;
  /** Source address and group, as they sit at bytes 12-19 of the IPv4 header. */
  addresses: Uint8Array;
  /** Source and destination port, as they sit at bytes 0-3 of the UDP header. */
  ports: Uint8Array;
  /**
   * The ones'-complement sum of the new addresses and ports as the program reads packet words
   * (little-endian): what the UDP checksum gains when they replace the input's (RFC 1624).
   */
  udpAddedSum: number;
  ttl: number;
  ttlFixed: boolean;
  /** DSCP << 2, or -1 to keep the input's TOS byte. */
  dscpBits: number;
}

function checkUint(what: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${what} must be an integer ${min}..${max}, got ${value}`);
  }
}

export function egressConstants(output: OutputHeader): EgressConstants {
  checkUint('group', output.group, 0, 0xffffffff);
  checkUint('sourceAddress', output.sourceAddress, 0, 0xffffffff);
  checkUint('port', output.port, 0, 0xffff);
  checkUint('sourcePort', output.sourcePort, 0, 0xffff);
  checkUint('ttl', output.ttl, 1, 255);
  if (output.dscp !== undefined) checkUint('dscp', output.dscp, 0, 63);
  if (output.sourceMac.length !== 6) throw new RangeError('a MAC address is 6 bytes');
  const ethernet = new Uint8Array(14);
  writeMulticastMac(ethernet, 0, output.group);
  ethernet.set(output.sourceMac, 6);
  ethernet[12] = ETHERTYPE_IPV4 >>> 8;
  ethernet[13] = ETHERTYPE_IPV4 & 0xff;
  const addresses = new Uint8Array(8);
  const view = new DataView(addresses.buffer);
  view.setUint32(0, output.sourceAddress, false);
  view.setUint32(4, output.group, false);
  const ports = new Uint8Array(4);
  new DataView(ports.buffer).setUint16(0, output.sourcePort, false);
  new DataView(ports.buffer).setUint16(2, output.port, false);
  return {
    ethernet,
    addresses,
    ports,
    udpAddedSum: foldLe16(addresses) + foldLe16(ports),
    ttl: output.ttl,
    ttlFixed: output.ttlFixed,
    dscpBits: output.dscp === undefined ? -1 : output.dscp << 2,
  };
}

/** An output's entry in the outputs map; `counterSlot` is its row of output_counts. */
export function encodeOutputValue(c: EgressConstants, counterSlot: number): Uint8Array {
  checkUint('counterSlot', counterSlot, 0, 0xffffffff);
  const bytes = new Uint8Array(OUTPUT_VALUE_SIZE);
  const view = new DataView(bytes.buffer);
  bytes.set(c.ethernet, OUTPUT_VALUE_ETHERNET);
  bytes.set(c.addresses, OUTPUT_VALUE_ADDRESSES);
  bytes.set(c.ports, OUTPUT_VALUE_PORTS);
  view.setUint32(OUTPUT_VALUE_UDP_ADDED_SUM, c.udpAddedSum, true);
  view.setUint32(OUTPUT_VALUE_COUNTER_SLOT, counterSlot, true);
  bytes[OUTPUT_VALUE_TTL] = c.ttl;
  bytes[OUTPUT_VALUE_TTL_FIXED] = c.ttlFixed ? 1 : 0;
  bytes[OUTPUT_VALUE_DSCP_BITS] = c.dscpBits < 0 ? 0 : c.dscpBits;
  bytes[OUTPUT_VALUE_KEEP_DSCP] = c.dscpBits < 0 ? 1 : 0;
  return bytes;
}

/** The sum of `bytes` as little-endian 16-bit words (not folded; small inputs only). */
export function foldLe16(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += bytes[i]! | (bytes[i + 1]! << 8);
  return sum;
}

/** A 16-bit value in network order as a little-endian 16-bit load reads it. */
export function loadedBe16(value: number): number {
  return ((value & 0xff) << 8) | (value >>> 8);
}
