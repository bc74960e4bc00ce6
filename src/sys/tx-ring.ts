import { PACKET_LOSS, PACKET_TX_RING, PACKET_VERSION, SOL_PACKET, TPACKET_V2 } from './constants.js';
import { SysError } from './errors.js';
import { lastErrno, libc, mapShared, Region, unmap } from './libc.js';
import { ringRequest, TP2_LEN, TP2_STATUS, TPACKET2_HDRLEN } from './rx-ring.js';
import { setIntOption, setOption } from './socket.js';

// A TPACKET_V2 transmit ring (PACKET_TX_RING): frames are written into mapped slots and one
// send() asks the kernel to transmit every slot marked SEND_REQUEST, in ring order. The kernel
// still builds an skb per frame (attaching the slot's page rather than copying it) and marks the
// slot AVAILABLE again only when that skb is freed, which on veth is after the peer has received
// it. Measured against sendmmsg for mcrgen's raw sender in bench/generator-rate.ts.

export const TX_STATUS_AVAILABLE = 0;
export const TX_STATUS_SEND_REQUEST = 1;
export const TX_STATUS_SENDING = 2;
export const TX_STATUS_WRONG_FORMAT = 4;
/**
 * Where a frame starts in a slot without PACKET_TX_HAS_OFF: after the aligned tpacket2_hdr, i.e.
 * TPACKET2_HDRLEN less the sockaddr_ll the receive side would put there.
 */
export const TX_FRAME_OFFSET = TPACKET2_HDRLEN - 20;
const BLOCK_BYTES = 1 << 16;

export class TxRing {
  readonly fd: number;
  readonly frameSize: number;
  readonly frameCount: number;
  readonly region: Region;
  readonly bytes: Uint8Array;
  private readonly words: Uint32Array;
  private readonly pointer: unknown;
  private readonly size: number;
  private unmapped = false;

  private constructor(
    fd: number,
    frameSize: number,
    frameCount: number,
    pointer: unknown,
    address: number,
    buffer: ArrayBuffer,
  ) {
    this.fd = fd;
    this.frameSize = frameSize;
    this.frameCount = frameCount;
    this.size = frameSize * frameCount;
    this.pointer = pointer;
    this.region = new Region(address);
    this.bytes = new Uint8Array(buffer);
    this.words = new Uint32Array(buffer);
  }

  /**
   * Sets up a ring of at least `frames` slots that each hold a frame of `maxFrame` bytes on a
   * bound AF_PACKET socket, and maps it. Malformed frames are skipped rather than stopping the
   * ring (PACKET_LOSS).
   */
  static attach(fd: number, maxFrame: number, frames: number): TxRing {
    let frameSize = 256;
    while (frameSize < TX_FRAME_OFFSET + maxFrame) frameSize *= 2;
    const perBlock = Math.max(1, BLOCK_BYTES / frameSize);
    const blockSize = Math.max(BLOCK_BYTES, frameSize);
    const blocks = Math.max(1, Math.ceil(frames / perBlock));
    const frameCount = blocks * perBlock;
    setIntOption(fd, SOL_PACKET, PACKET_VERSION, TPACKET_V2, 'PACKET_VERSION TPACKET_V2');
    setIntOption(fd, SOL_PACKET, PACKET_LOSS, 1, 'PACKET_LOSS');
    setOption(
      fd,
      SOL_PACKET,
      PACKET_TX_RING,
      ringRequest(blockSize, blocks, frameSize, frameCount),
      'PACKET_TX_RING',
    );
    const mapped = mapShared(fd, blockSize * blocks);
    if (typeof mapped === 'number') throw new SysError(`mmap(tx ring ${blockSize * blocks} bytes)`, mapped);
    return new TxRing(fd, frameSize, frameCount, mapped.pointer, mapped.address, mapped.buffer);
  }

  /** Byte offset in `bytes` (and `region`) where slot i's frame goes. */
  frameOffset(slot: number): number {
    return slot * this.frameSize + TX_FRAME_OFFSET;
  }

  /** True when the kernel is done with slot i (sent and freed, or skipped as malformed). */
  isFree(slot: number): boolean {
    const status = Atomics.load(this.words, (slot * this.frameSize + TP2_STATUS) / 4);
    return status === TX_STATUS_AVAILABLE || status === TX_STATUS_WRONG_FORMAT;
  }

  /** Hands slot i, holding a frame of `length` bytes, to the next flush. */
  submit(slot: number, length: number): void {
    const base = (slot * this.frameSize) / 4;
    this.words[base + TP2_LEN / 4] = length;
    Atomics.store(this.words, base + TP2_STATUS / 4, TX_STATUS_SEND_REQUEST);
  }

  /**
   * Asks the kernel to send every submitted slot (one send(), no data of its own). Returns the
   * bytes it sent, or -errno.
   */
  flush(flags: number): number {
    const n = libc.send(this.fd, null, 0, flags) as number;
    return n < 0 ? -lastErrno() : n;
  }

  /** Unmaps the ring; the socket belongs to the caller. */
  detach(): void {
    if (this.unmapped) return;
    this.unmapped = true;
    unmap(this.pointer, this.size);
  }
}
