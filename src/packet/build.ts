// Writing Ethernet / 802.1Q / IPv4 / UDP headers into caller-provided memory.
//
// The write* functions allocate nothing so the raw egress path can fill per-output header
// templates with them; they throw RangeError on arguments that cannot be encoded, because that
// is a programming or configuration error, not a packet-rate event. buildUdpFrame allocates and
// exists for tests and tooling.

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_QINQ = 0x88a8;
export const ETHERTYPE_IPV6 = 0x86dd;

export const IP_PROTO_TCP = 6;
export const IP_PROTO_UDP = 17;

/** Values for Ipv4HeaderFields.flags (3-bit field: reserved, DF, MF). */
export const IPV4_FLAG_DF = 0x2;
export const IPV4_FLAG_MF = 0x1;

export const ETHERNET_HEADER_SIZE = 14;
export const VLAN_TAG_SIZE = 4;
export const IPV4_MIN_HEADER_SIZE = 20;
export const UDP_HEADER_SIZE = 8;
/** Minimum Ethernet frame without FCS; shorter frames are padded on the wire. */
export const ETHERNET_MIN_FRAME = 60;

function checkRange(bytes: Uint8Array, offset: number, size: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + size > bytes.length) {
    throw new RangeError(`need ${size} bytes at offset ${offset}, array has ${bytes.length}`);
  }
}

function checkUint(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${name} must be an integer 0..${max}, got ${value}`);
  }
}

function writeU16(bytes: Uint8Array, i: number, v: number): void {
  bytes[i] = v >>> 8;
  bytes[i + 1] = v;
}

function writeU32(bytes: Uint8Array, i: number, v: number): void {
  bytes[i] = v >>> 24;
  bytes[i + 1] = v >>> 16;
  bytes[i + 2] = v >>> 8;
  bytes[i + 3] = v;
}

/**
 * The checksum to store in an IPv4 header of `headerLength` bytes at `offset`. The checksum
 * field itself (bytes 10-11) is skipped, so whatever it holds now does not matter.
 */
export function ipv4HeaderChecksum(bytes: Uint8Array, offset: number, headerLength: number): number {
  checkRange(bytes, offset, headerLength);
  if (headerLength < IPV4_MIN_HEADER_SIZE || headerLength % 2 !== 0) {
    throw new RangeError(`IPv4 header length must be even and >= 20, got ${headerLength}`);
  }
  let sum = 0;
  const end = offset + headerLength;
  // Bounds were checked above.
  for (let i = offset; i < end; i += 2) {
    if (i !== offset + 10) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * Writes destination MAC, source MAC and EtherType (14 bytes); returns the next offset.
 * For a tagged frame pass the first tag's TPID (0x8100/0x88a8) as `etherType`, then call
 * writeVlanTag once per tag.
 */
export function writeEthernetHeader(
  bytes: Uint8Array,
  offset: number,
  dstMac: Uint8Array,
  srcMac: Uint8Array,
  etherType: number,
): number {
  checkRange(bytes, offset, ETHERNET_HEADER_SIZE);
  if (dstMac.length !== 6 || srcMac.length !== 6) throw new RangeError('MAC addresses are 6 bytes');
  checkUint('etherType', etherType, 0xffff);
  bytes.set(dstMac, offset);
  bytes.set(srcMac, offset + 6);
  writeU16(bytes, offset + 12, etherType);
  return offset + ETHERNET_HEADER_SIZE;
}

/**
 * Writes the 4 bytes that follow a VLAN TPID: the TCI (priority, DEI, 12-bit VLAN id) and the
 * next EtherType (another TPID for an inner tag, else the payload type). Returns the next offset.
 */
export function writeVlanTag(
  bytes: Uint8Array,
  offset: number,
  vlanId: number,
  nextEtherType: number,
  priority = 0,
  dropEligible = false,
): number {
  checkRange(bytes, offset, VLAN_TAG_SIZE);
  checkUint('vlanId', vlanId, 0xfff);
  checkUint('priority', priority, 7);
  checkUint('nextEtherType', nextEtherType, 0xffff);
  writeU16(bytes, offset, (priority << 13) | (dropEligible ? 0x1000 : 0) | vlanId);
  writeU16(bytes, offset + 2, nextEtherType);
  return offset + VLAN_TAG_SIZE;
}

export interface Ipv4HeaderFields {
  /** Unsigned 32-bit addresses in network order (see ipv4-address.ts). */
  src: number;
  dst: number;
  protocol: number;
  ttl: number;
  /** IPv4 total length: header + options + payload. */
  totalLength: number;
  dscp?: number;
  ecn?: number;
  id?: number;
  /** 3 bits; see IPV4_FLAG_DF / IPV4_FLAG_MF. */
  flags?: number;
  /** In 8-byte units, as on the wire. */
  fragmentOffset?: number;
  /** Raw option bytes, length a multiple of 4, at most 40. */
  options?: Uint8Array;
}

/** Writes an IPv4 header with a correct checksum; returns the offset just after it. */
export function writeIpv4Header(bytes: Uint8Array, offset: number, fields: Ipv4HeaderFields): number {
  const options = fields.options;
  const optionsLength = options === undefined ? 0 : options.length;
  if (optionsLength % 4 !== 0 || optionsLength > 40) {
    throw new RangeError(`IPv4 options must be a multiple of 4 bytes, at most 40; got ${optionsLength}`);
  }
  const headerLength = IPV4_MIN_HEADER_SIZE + optionsLength;
  checkRange(bytes, offset, headerLength);
  const dscp = fields.dscp ?? 0;
  const ecn = fields.ecn ?? 0;
  const id = fields.id ?? 0;
  const flags = fields.flags ?? 0;
  const fragmentOffset = fields.fragmentOffset ?? 0;
  checkUint('src', fields.src, 0xffffffff);
  checkUint('dst', fields.dst, 0xffffffff);
  checkUint('protocol', fields.protocol, 0xff);
  checkUint('ttl', fields.ttl, 0xff);
  checkUint('totalLength', fields.totalLength, 0xffff);
  checkUint('dscp', dscp, 0x3f);
  checkUint('ecn', ecn, 0x3);
  checkUint('id', id, 0xffff);
  checkUint('flags', flags, 0x7);
  checkUint('fragmentOffset', fragmentOffset, 0x1fff);

  bytes[offset] = 0x40 | (headerLength >>> 2);
  bytes[offset + 1] = (dscp << 2) | ecn;
  writeU16(bytes, offset + 2, fields.totalLength);
  writeU16(bytes, offset + 4, id);
  writeU16(bytes, offset + 6, (flags << 13) | fragmentOffset);
  bytes[offset + 8] = fields.ttl;
  bytes[offset + 9] = fields.protocol;
  writeU32(bytes, offset + 12, fields.src);
  writeU32(bytes, offset + 16, fields.dst);
  if (options !== undefined) bytes.set(options, offset + IPV4_MIN_HEADER_SIZE);
  writeU16(bytes, offset + 10, ipv4HeaderChecksum(bytes, offset, headerLength));
  return offset + headerLength;
}

/**
 * Writes an 8-byte UDP header; returns the offset of the payload. A checksum of 0 means "none",
 * which IPv4 allows.
 */
export function writeUdpHeader(
  bytes: Uint8Array,
  offset: number,
  srcPort: number,
  dstPort: number,
  udpLength: number,
  checksum = 0,
): number {
  checkRange(bytes, offset, UDP_HEADER_SIZE);
  checkUint('srcPort', srcPort, 0xffff);
  checkUint('dstPort', dstPort, 0xffff);
  checkUint('udpLength', udpLength, 0xffff);
  checkUint('checksum', checksum, 0xffff);
  writeU16(bytes, offset, srcPort);
  writeU16(bytes, offset + 2, dstPort);
  writeU16(bytes, offset + 4, udpLength);
  writeU16(bytes, offset + 6, checksum);
  return offset + UDP_HEADER_SIZE;
}

/** Writes the Ethernet multicast MAC of an IPv4 group (01:00:5e + low 23 bits) at `offset`. */
export function writeMulticastMac(bytes: Uint8Array, offset: number, group: number): number {
  checkRange(bytes, offset, 6);
  bytes[offset] = 0x01;
  bytes[offset + 1] = 0x00;
  bytes[offset + 2] = 0x5e;
  bytes[offset + 3] = (group >>> 16) & 0x7f;
  bytes[offset + 4] = group >>> 8;
  bytes[offset + 5] = group;
  return offset + 6;
}

/** The Ethernet multicast MAC of an IPv4 group, as a new 6-byte array. */
export function multicastMac(group: number): Uint8Array {
  const mac = new Uint8Array(6);
  writeMulticastMac(mac, 0, group);
  return mac;
}

export interface VlanTagOptions {
  id: number;
  priority?: number;
  dropEligible?: boolean;
  /** 0x8100 (default) or 0x88a8 (service tag, usually the outer one). */
  tpid?: number;
}

export interface UdpFrameOptions {
  src: number;
  dst: number;
  srcPort: number;
  dstPort: number;
  /** Payload bytes, or a length to fill with zeros. */
  payload: Uint8Array | number;
  /** Defaults to multicastMac(dst) for a multicast dst, else ff:ff:ff:ff:ff:ff. */
  dstMac?: Uint8Array;
  /** Defaults to 02:00:00:00:00:01 (locally administered). */
  srcMac?: Uint8Array;
  /** Outermost first; at most what the caller wants to test (the parser accepts two). */
  vlanTags?: readonly VlanTagOptions[];
  ttl?: number;
  dscp?: number;
  ecn?: number;
  id?: number;
  flags?: number;
  fragmentOffset?: number;
  ipOptions?: Uint8Array;
  protocol?: number;
  udpChecksum?: number;
  /** Zero-pad the frame to at least this many bytes (e.g. ETHERNET_MIN_FRAME); no padding by default. */
  padTo?: number;
}

const DEFAULT_SRC_MAC = Uint8Array.of(0x02, 0, 0, 0, 0, 0x01);
const BROADCAST_MAC = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

/** Builds a complete Ethernet[/VLAN...]/IPv4/UDP frame in a new array. Not for the hot path. */
export function buildUdpFrame(opts: UdpFrameOptions): Uint8Array {
  const payloadLength = typeof opts.payload === 'number' ? opts.payload : opts.payload.length;
  const tags = opts.vlanTags ?? [];
  const ipHeaderLength = IPV4_MIN_HEADER_SIZE + (opts.ipOptions?.length ?? 0);
  const udpLength = UDP_HEADER_SIZE + payloadLength;
  const totalLength = ipHeaderLength + udpLength;
  const frameLength = ETHERNET_HEADER_SIZE + tags.length * VLAN_TAG_SIZE + totalLength;
  const bytes = new Uint8Array(Math.max(frameLength, opts.padTo ?? 0));

  const dstMac = opts.dstMac ?? (opts.dst >>> 28 === 0xe ? multicastMac(opts.dst) : BROADCAST_MAC);
  const firstType = tags.length > 0 ? (tags[0]!.tpid ?? ETHERTYPE_VLAN) : ETHERTYPE_IPV4;
  let p = writeEthernetHeader(bytes, 0, dstMac, opts.srcMac ?? DEFAULT_SRC_MAC, firstType);
  for (let i = 0; i < tags.length; i++) {
    const tag = tags[i]!;
    const inner = tags[i + 1];
    const next = inner === undefined ? ETHERTYPE_IPV4 : (inner.tpid ?? ETHERTYPE_VLAN);
    p = writeVlanTag(bytes, p, tag.id, next, tag.priority ?? 0, tag.dropEligible ?? false);
  }
  p = writeIpv4Header(bytes, p, {
    src: opts.src,
    dst: opts.dst,
    protocol: opts.protocol ?? IP_PROTO_UDP,
    ttl: opts.ttl ?? 64,
    totalLength,
    dscp: opts.dscp,
    ecn: opts.ecn,
    id: opts.id,
    flags: opts.flags,
    fragmentOffset: opts.fragmentOffset,
    options: opts.ipOptions,
  });
  p = writeUdpHeader(bytes, p, opts.srcPort, opts.dstPort, udpLength, opts.udpChecksum ?? 0);
  if (typeof opts.payload !== 'number') bytes.set(opts.payload, p);
  return bytes;
}
