// rtnetlink message layouts and a pure parser for them (no FFI here, so it can be tested with
// crafted buffers). Netlink carries integers in host byte order; every field below is read as
// little-endian, which holds on the hosts the relay runs on (x86-64, arm64). The one exception is
// an IPv4 address in an attribute, which is in network order like everywhere else.

export const AF_NETLINK = 16;
export const NETLINK_ROUTE = 0;
export const RTMGRP_LINK = 0x1;
export const RTMGRP_IPV4_IFADDR = 0x10;

export const NLMSG_HDRLEN = 16;
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP = 0x300;

export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;

export const IFINFOMSG_SIZE = 16;
export const IFADDRMSG_SIZE = 8;
export const IFLA_ADDRESS = 1;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;

export const IFF_UP = 0x1;
export const IFF_RUNNING = 0x40;
export const IFF_LOWER_UP = 0x10000;

const AF_UNSPEC = 0;
const AF_INET = 2;
const ARPHRD_ETHER = 1;

/** A link appeared, changed or went away (RTM_NEWLINK / RTM_DELLINK). */
export interface LinkEvent {
  kind: 'link';
  ifindex: number;
  name: string;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** Operationally up (IFF_RUNNING): up with carrier and not dormant, so traffic can flow. */
  running: boolean;
  mtu: number;
  /** 'aa:bb:cc:dd:ee:ff' for Ethernet links, '' for links without an Ethernet address (lo, tunnels). */
  mac: string;
  deleted: boolean;
}

/** An IPv4 address was added to or removed from an interface (RTM_NEWADDR / RTM_DELADDR). */
export interface AddressEvent {
  kind: 'address';
  ifindex: number;
  /** Unsigned 32-bit, 10.0.0.1 === 0x0a000001. */
  address: number;
  prefixLength: number;
  deleted: boolean;
}

/** The link dump and the IPv4 address dump that followed it are both complete. */
export interface DumpDoneEvent {
  kind: 'dump-done';
}

/** Events may have been lost (the kernel could not queue them): re-dump to rebuild the view. */
export interface OverflowEvent {
  kind: 'overflow';
}

export type InterfaceEvent = LinkEvent | AddressEvent | DumpDoneEvent | OverflowEvent;

/**
 * A control message answering one of our requests, matched by its sequence number: the end of a
 * dump, an error (errno 0 is an acknowledgement), or a dump message flagged as inconsistent
 * because the table changed while it was being dumped.
 */
export interface NetlinkReply {
  kind: 'done' | 'error' | 'interrupted';
  seq: number;
  errno: number;
}

const utf8 = new TextDecoder('utf-8');

function align4(n: number): number {
  return (n + 3) & ~3;
}

/**
 * Parses every netlink message in one datagram, appending link and IPv4 address events to `out`
 * and, when `replies` is given, DONE / ERROR / interrupted-dump notices to `replies`. Unknown
 * message types and non-IPv4 addresses are skipped. A message whose length is impossible ends the
 * datagram (nothing after it can be trusted); a message whose body or attributes are malformed is
 * dropped alone. Never reads outside `bytes` and never throws on its contents.
 */
export function parseNetlinkDatagram(
  bytes: Uint8Array,
  out: InterfaceEvent[],
  replies?: NetlinkReply[],
): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.byteLength;
  let at = 0;
  while (end - at >= NLMSG_HDRLEN) {
    const length = view.getUint32(at, true);
    if (length < NLMSG_HDRLEN || length > end - at) return;
    const type = view.getUint16(at + 4, true);
    const flags = view.getUint16(at + 6, true);
    const seq = view.getUint32(at + 8, true);
    const body = at + NLMSG_HDRLEN;
    const bodyEnd = at + length;
    // Reported before the message itself: the kernel may flag the DONE that ends the dump.
    if (flags & NLM_F_DUMP_INTR && type !== NLMSG_ERROR)
      replies?.push({ kind: 'interrupted', seq, errno: 0 });
    switch (type) {
      case NLMSG_ERROR:
      case NLMSG_DONE: {
        // Both carry an int: a negative errno, or 0. DONE may omit it (old kernels).
        const code = bodyEnd - body >= 4 ? view.getInt32(body, true) : 0;
        replies?.push({ kind: type === NLMSG_DONE ? 'done' : 'error', seq, errno: code < 0 ? -code : 0 });
        break;
      }
      case RTM_NEWLINK:
      case RTM_DELLINK: {
        const event = parseLink(bytes, view, body, bodyEnd, type === RTM_DELLINK);
        if (event) out.push(event);
        break;
      }
      case RTM_NEWADDR:
      case RTM_DELADDR: {
        const event = parseAddress(view, body, bodyEnd, type === RTM_DELADDR);
        if (event) out.push(event);
        break;
      }
      default:
        break;
    }
    at += align4(length);
  }
}

/**
 * Walks the rtattrs in [from, to), calling `visit` with each attribute's payload range. Returns
 * false if an attribute's length is impossible (the message is then not to be trusted).
 */
function walkAttributes(
  view: DataView,
  from: number,
  to: number,
  visit: (type: number, start: number, end: number) => void,
): boolean {
  let at = from;
  while (to - at >= 4) {
    const length = view.getUint16(at, true);
    if (length < 4 || length > to - at) return false;
    // The top two bits are NLA_F_NESTED / NLA_F_NET_BYTEORDER, not part of the type.
    visit(view.getUint16(at + 2, true) & 0x3fff, at + 4, at + length);
    at += align4(length);
  }
  return true;
}

function parseLink(
  bytes: Uint8Array,
  view: DataView,
  body: number,
  bodyEnd: number,
  deleted: boolean,
): LinkEvent | undefined {
  if (bodyEnd - body < IFINFOMSG_SIZE) return undefined;
  // The bridge sends AF_BRIDGE link messages to the same group about its ports; an RTM_DELLINK
  // among them means a port left the bridge, not that the link is gone.
  if (view.getUint8(body) !== AF_UNSPEC) return undefined;
  const linkType = view.getUint16(body + 2, true);
  const ifindex = view.getInt32(body + 4, true);
  const flags = view.getUint32(body + 8, true);
  let name = '';
  let mtu = 0;
  let mac = '';
  const wellFormed = walkAttributes(view, body + IFINFOMSG_SIZE, bodyEnd, (type, start, end) => {
    if (type === IFLA_IFNAME) {
      let stop = start;
      while (stop < end && bytes[stop] !== 0) stop++;
      name = utf8.decode(bytes.subarray(start, stop));
    } else if (type === IFLA_MTU && end - start >= 4) {
      mtu = view.getUint32(start, true);
    } else if (type === IFLA_ADDRESS && linkType === ARPHRD_ETHER && end - start === 6) {
      mac = formatMac(bytes, start);
    }
  });
  if (!wellFormed) return undefined;
  return {
    kind: 'link',
    ifindex,
    name,
    up: (flags & IFF_UP) !== 0,
    running: (flags & IFF_RUNNING) !== 0,
    mtu,
    mac,
    deleted,
  };
}

function parseAddress(
  view: DataView,
  body: number,
  bodyEnd: number,
  deleted: boolean,
): AddressEvent | undefined {
  if (bodyEnd - body < IFADDRMSG_SIZE) return undefined;
  if (view.getUint8(body) !== AF_INET) return undefined;
  const prefixLength = view.getUint8(body + 1);
  const ifindex = view.getUint32(body + 4, true);
  let local: number | undefined;
  let address: number | undefined;
  const wellFormed = walkAttributes(view, body + IFADDRMSG_SIZE, bodyEnd, (type, start, end) => {
    if (end - start !== 4) return;
    // On point-to-point links IFA_ADDRESS is the peer; IFA_LOCAL is always our own address.
    if (type === IFA_LOCAL) local = view.getUint32(start, false);
    else if (type === IFA_ADDRESS) address = view.getUint32(start, false);
  });
  const own = local ?? address;
  if (!wellFormed || own === undefined) return undefined;
  return { kind: 'address', ifindex, address: own, prefixLength, deleted };
}

function formatMac(bytes: Uint8Array, start: number): string {
  const parts: string[] = [];
  for (let i = start; i < start + 6; i++) parts.push((bytes[i] ?? 0).toString(16).padStart(2, '0'));
  return parts.join(':');
}

/** An RTM_GETLINK dump request for every link. */
export function linkDumpRequest(seq: number): Uint8Array {
  return dumpRequest(RTM_GETLINK, seq, IFINFOMSG_SIZE, AF_UNSPEC);
}

/** An RTM_GETADDR dump request for every IPv4 address. */
export function addressDumpRequest(seq: number): Uint8Array {
  return dumpRequest(RTM_GETADDR, seq, IFADDRMSG_SIZE, AF_INET);
}

function dumpRequest(type: number, seq: number, bodySize: number, family: number): Uint8Array {
  const bytes = new Uint8Array(NLMSG_HDRLEN + bodySize);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, bytes.byteLength, true);
  view.setUint16(4, type, true);
  view.setUint16(6, NLM_F_REQUEST | NLM_F_DUMP, true);
  view.setUint32(8, seq >>> 0, true);
  view.setUint32(12, 0, true); // addressed to the kernel
  view.setUint8(NLMSG_HDRLEN, family); // first byte of ifinfomsg / ifaddrmsg
  return bytes;
}

/**
 * Runs a full dump as two kernel dumps in a row (a socket may have only one dump running): links,
 * then IPv4 addresses, then a `dump-done` event. Pure state: it says which request to send and
 * when; the socket owner sends it.
 */
export class DumpSequencer {
  private phase: 'idle' | 'links' | 'addresses' = 'idle';
  private seq = 0;
  private nextSeq: number;
  /** A dump was asked for while one ran: it must be repeated so the caller's view is not older than its request. */
  private repeat = false;
  private interrupted = false;

  constructor(firstSeq = 1) {
    this.nextSeq = firstSeq;
  }

  get running(): boolean {
    return this.phase !== 'idle';
  }

  /** The request to send now, or undefined when a dump is under way (it will run again when it ends). */
  start(): Uint8Array | undefined {
    if (this.phase !== 'idle') {
      this.repeat = true;
      return undefined;
    }
    return this.beginLinks();
  }

  /** Forgets the dump in flight, for when its request could not be sent. */
  abandon(): void {
    this.phase = 'idle';
    this.repeat = false;
    this.interrupted = false;
  }

  /** Takes one reply; pushes `dump-done` or `overflow` to `out`; returns the next request to send, if any. */
  handle(reply: NetlinkReply, out: InterfaceEvent[]): Uint8Array | undefined {
    if (this.phase === 'idle' || reply.seq !== this.seq) return undefined;
    if (reply.kind === 'interrupted') {
      this.interrupted = true;
      return undefined;
    }
    if (reply.kind === 'error' && reply.errno === 0) return undefined; // an acknowledgement
    if (reply.errno !== 0) {
      // The dump failed part-way: the view is incomplete, which is what `overflow` tells the caller.
      const again = this.repeat;
      this.abandon();
      if (again) return this.beginLinks();
      out.push({ kind: 'overflow' });
      return undefined;
    }
    if (this.phase === 'links') {
      this.phase = 'addresses';
      this.seq = this.takeSeq();
      return addressDumpRequest(this.seq);
    }
    if (this.repeat || this.interrupted) {
      // The kernel flags a dump interrupted only while the table changes, so this settles.
      return this.beginLinks();
    }
    this.phase = 'idle';
    out.push({ kind: 'dump-done' });
    return undefined;
  }

  private beginLinks(): Uint8Array {
    this.phase = 'links';
    this.repeat = false;
    this.interrupted = false;
    this.seq = this.takeSeq();
    return linkDumpRequest(this.seq);
  }

  private takeSeq(): number {
    const seq = this.nextSeq;
    // Notifications carry seq 0; never use it for a request.
    this.nextSeq = (this.nextSeq + 1) >>> 0 || 1;
    return seq;
  }
}
