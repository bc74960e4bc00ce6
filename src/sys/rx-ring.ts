import { EBUSY, PACKET_RX_RING, PACKET_VERSION, SOL_PACKET, TPACKET_V2 } from './constants.js';
import { SysError } from './errors.js';
import { mapShared, Region, unmap } from './libc.js';
import { setIntOption, setOption } from './socket.js';

// struct tpacket2_hdr, the per-frame header the kernel writes at the start of each ring slot.
export const TP_STATUS_KERNEL = 0;
export const TP_STATUS_USER = 1;
export const TP_STATUS_COPY = 2;
export const TP_STATUS_LOSING = 4;
/**
 * The kernel took the frame's outer 802.1Q/802.1ad tag off before any packet socket saw it (it
 * always does, in __netif_receive_skb_core, or the NIC did) and put it in tp_vlan_tci.
 */
export const TP_STATUS_VLAN_VALID = 0x10;
/** tp_vlan_tpid holds the stripped tag's TPID (0x8100 or 0x88a8). */
export const TP_STATUS_VLAN_TPID_VALID = 0x40;
/** Byte offsets in a slot. */
export const TP2_STATUS = 0;
export const TP2_LEN = 4;
export const TP2_SNAPLEN = 8;
export const TP2_MAC = 12;
export const TP2_NET = 14;
/** u32 each: when the kernel received the frame (seconds and nanoseconds since the epoch). */
export const TP2_SEC = 16;
export const TP2_NSEC = 20;
/** u16: the stripped tag's TCI (priority 3 bits, DEI 1, VLAN id 12), valid with TP_STATUS_VLAN_VALID. */
export const TP2_VLAN_TCI = 24;
/** u16: the stripped tag's TPID, valid with TP_STATUS_VLAN_TPID_VALID. */
export const TP2_VLAN_TPID = 26;
/**
 * u8: sll_pkttype of the struct sockaddr_ll the kernel writes after the header (at
 * TPACKET_ALIGN(32) = 32; the field is 10 bytes into it).
 */
export const TP2_SLL_PKTTYPE = 32 + 10;
/** sll_pkttype: addressed to another host at L2 (see InputPath on VLAN tags). */
export const PACKET_OTHERHOST = 3;
/** Header (32) aligned + sockaddr_ll (20): where the kernel may start packet data. */
export const TPACKET2_HDRLEN = 52;

export interface RingGeometry {
  /** Bytes per slot: a power of two large enough for header, padding and the largest frame. */
  frameSize: number;
  /** Bytes per block: a multiple of the page size and of frameSize. */
  blockSize: number;
  blockCount: number;
}

/**
 * Ring geometry for an interface MTU: the slot holds the tpacket header, the kernel's alignment
 * padding (the network header starts 16-aligned after at least 16 bytes of MAC room) and a frame
 * with two VLAN tags. `ringBytes` is the memory the ring may use.
 */
export function ringGeometryFor(mtu: number, ringBytes: number): RingGeometry {
  const needed = 80 + 22 + mtu;
  let frameSize = 2048;
  while (frameSize < needed) frameSize *= 2;
  const blockSize = Math.max(frameSize, 1 << 16);
  const blockCount = Math.max(2, Math.floor(ringBytes / blockSize));
  return { frameSize, blockSize, blockCount };
}

/**
 * A TPACKET_V2 receive ring mapped into this process. The kernel fills slots and flips their status
 * to USER; the reader processes them in place and hands each back by writing KERNEL. Status words
 * go through Atomics so the order of those accesses holds on any CPU.
 */
export class RxRing {
  readonly fd: number;
  readonly frameSize: number;
  readonly frameCount: number;
  /** The ring's memory, for iovecs that point into it (by byte offset). */
  readonly region: Region;
  readonly bytes: Uint8Array;
  /** The ring as 32-bit words: slot i's status is words[i * frameSize / 4]. */
  readonly words: Uint32Array;
  readonly halfWords: Uint16Array;
  private readonly pointer: unknown;
  private readonly size: number;
  private unmapped = false;

  /** The ring was set up by a previous owner of the socket (see attach). */
  readonly inherited: boolean;

  private constructor(
    fd: number,
    geometry: RingGeometry,
    pointer: unknown,
    address: number,
    buffer: ArrayBuffer,
    inherited: boolean,
  ) {
    this.fd = fd;
    this.inherited = inherited;
    this.frameSize = geometry.frameSize;
    this.frameCount = (geometry.blockSize / geometry.frameSize) * geometry.blockCount;
    this.size = geometry.blockSize * geometry.blockCount;
    this.pointer = pointer;
    this.region = new Region(address);
    this.bytes = new Uint8Array(buffer);
    this.words = new Uint32Array(buffer);
    this.halfWords = new Uint16Array(buffer);
  }

  /**
   * Maps the receive ring of an AF_PACKET socket, setting one up first if the socket has none
   * (setUpRxRing; mcrd sets up every ingress ring itself, before the socket joins its fanout
   * group, so its workers only map). `history` is what the socket's owner knows of the ring:
   * 'fresh', never read by anyone, so reading starts at slot 0, where the kernel started writing;
   * 'in-use', a worker that died read it, so `inherited` is set and the caller deals with the
   * frames left in it and with the kernel's unknown write position (src/worker/ring-takeover.ts).
   * Without it, a ring that was already there counts as inherited. A ring is never made anew
   * under a worker: that would move the socket to the end of its fanout group (see
   * openIngressGroup). Only when the caller says nothing and the geometry differs (tests that
   * resize a ring on purpose) is it torn down and set up again.
   */
  static attach(fd: number, geometry: RingGeometry, history?: RingHistory): RxRing {
    const size = geometry.blockSize * geometry.blockCount;
    let existed = false;
    try {
      setUpRxRing(fd, geometry);
    } catch (err) {
      if (!(err instanceof SysError) || err.errno !== EBUSY) throw err;
      existed = true;
    }
    let mapped = mapShared(fd, size);
    if (typeof mapped === 'number' && existed && history === undefined) {
      setOption(fd, SOL_PACKET, PACKET_RX_RING, ringRequest(0, 0, 0, 0), 'PACKET_RX_RING teardown');
      setUpRxRing(fd, geometry);
      existed = false;
      mapped = mapShared(fd, size);
    }
    if (typeof mapped === 'number') throw new SysError(`mmap(rx ring ${size} bytes)`, mapped);
    const inherited = history === undefined ? existed : history === 'in-use';
    return new RxRing(fd, geometry, mapped.pointer, mapped.address, mapped.buffer, inherited);
  }

  /** Unmaps the ring. The socket itself belongs to whoever handed it over. */
  detach(): void {
    if (this.unmapped) return;
    this.unmapped = true;
    unmap(this.pointer, this.size);
  }
}

/** What the owner of a socket knows of its ring when it hands it to a worker (RxRing.attach). */
export type RingHistory = 'fresh' | 'in-use';

/**
 * Sets up a TPACKET_V2 receive ring on an AF_PACKET socket that has none. Throws EBUSY (a
 * SysError) when it has one. On a socket in a fanout group this unhooks the socket and hooks it
 * again at the end of the group.
 */
export function setUpRxRing(fd: number, geometry: RingGeometry): void {
  const frameCount = (geometry.blockSize / geometry.frameSize) * geometry.blockCount;
  const request = ringRequest(geometry.blockSize, geometry.blockCount, geometry.frameSize, frameCount);
  setIntOption(fd, SOL_PACKET, PACKET_VERSION, TPACKET_V2, 'PACKET_VERSION TPACKET_V2');
  setOption(fd, SOL_PACKET, PACKET_RX_RING, request, 'PACKET_RX_RING');
}

/** struct tpacket_req, for PACKET_RX_RING and PACKET_TX_RING alike. */
export function ringRequest(
  blockSize: number,
  blockCount: number,
  frameSize: number,
  frameCount: number,
): Uint8Array {
  const req = new Uint32Array([blockSize, blockCount, frameSize, frameCount]);
  return new Uint8Array(req.buffer);
}
