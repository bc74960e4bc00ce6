// mcrgen send --raw: the same paced probes as the UDP sender (sender.ts), written into complete
// Ethernet/IPv4/UDP frames and handed to an AF_PACKET socket bound to the interface, 64 frames
// per sendmmsg. The kernel does no routing, neighbour lookup or UDP socket work per packet, and
// with PACKET_QDISC_BYPASS (the default) no qdisc either: it copies each frame into an skb and
// gives it to the driver. Each destination's header is written once into the slots that carry it;
// per packet only the probe and the UDP checksum are written.
//
// Counting: `packets` is what the kernel accepted. A full device queue (on veth, the peer's
// receive ring) refuses a frame with ENOBUFS; the frame is retried after a short pause, or with
// --drop-when-full counted in `refused` and given up, so the offered rate holds and the receiver
// sees the gap, as on a wire into a full NIC ring.

import { randomInt } from 'node:crypto';

import { multicastMac } from '../packet/build.js';
import { ipv4ToString } from '../packet/ipv4-address.js';
import { macToString, parseMac } from '../packet/mac-address.js';
import {
  FRAME_HEADER_BYTES,
  frameWords,
  IPV4_UDP_HEADERS,
  writeFrameHeader,
  writeProbeFrame,
} from '../packet/probe-frame.js';
import { EAGAIN, ENOBUFS, MSG_DONTWAIT } from '../sys/constants.js';
import { SysError, errnoName } from '../sys/errors.js';
import { interfaceInfo } from '../sys/interfaces.js';
import { allocateNative, type NativeMemory } from '../sys/libc.js';
import { MessageBatch } from '../sys/message-batch.js';
import { openFrameSender } from '../sys/packet-socket.js';
import { sleepMicroseconds } from '../sys/short-sleep.js';
import { closeFd } from '../sys/socket.js';
import { wallClockUs } from './clock.js';
import { OptionError, type RawPathOptions, type SendOptions } from './options.js';
import { PacedSend, SEND_BATCH, SEND_FAILED, SEND_GO_ON, type SendReportDetails } from './paced-send.js';
import type { RawSendReport } from './sender.js';
import { enlargeBuffer } from './socket-setup.js';

/**
 * Pause before retrying a frame the kernel refused (full device queue or send buffer). A veth
 * peer's NAPI ring of 256 frames drains in a few hundred microseconds at 1 M pps, so a 1-ms timer
 * would idle the link; usleep keeps the loop in its slice.
 */
const RETRY_PAUSE_US = 50;
const SEND_BUFFER_BYTES = 4 * 1024 * 1024;
/** The kernel's default ephemeral port range (net.ipv4.ip_local_port_range). */
const EPHEMERAL_PORTS = [32768, 61000] as const;

export class RawSender extends PacedSend {
  private readonly path: RawPathOptions;
  private frames: NativeMemory | undefined;
  /** The frames as 16-bit words, for the UDP checksum. */
  private words: Uint16Array | undefined;
  private header: RawSendReport | undefined;
  /**
   * Slot j always carries stream j mod N, so its header never changes: the slot count is a
   * multiple of the stream count and at least one batch. Packet p goes to slot p mod slotCount.
   */
  private slotCount = 0;
  private slotBytes = 0;
  private frameBytes = 0;
  /** Per stream: its stream id and its UDP checksum base (see writeFrameHeader). */
  private streamIds: number[] = [];
  private checksumBases: number[] = [];
  /** Frames refused by a full device queue and given up (--drop-when-full). */
  private refused = 0;

  constructor(options: SendOptions) {
    if (options.raw === undefined) throw new Error('RawSender needs --raw options');
    super(options);
    this.path = options.raw;
  }

  /** Opens the socket and writes every slot's header. Throws OptionError or SysError. */
  prepare(): void {
    const o = this.options;
    const link = interfaceInfo(o.interfaceName);
    if (link === undefined) throw new OptionError('--interface', `${o.interfaceName} no longer exists`);
    if (link.mac.length !== 6) {
      throw new OptionError('--raw', `${o.interfaceName} is not an Ethernet link; leave out --raw on it`);
    }
    if (link.ipv4 === undefined) {
      throw new OptionError(
        '--raw',
        `${o.interfaceName} has no IPv4 address to send from; add one (ip addr add …) or leave out --raw`,
      );
    }
    if (o.size > link.mtu - IPV4_UDP_HEADERS) {
      throw new OptionError(
        '--size',
        `${o.size} bytes do not fit one frame on ${o.interfaceName} (MTU ${link.mtu}: at most ${link.mtu - IPV4_UDP_HEADERS} with --raw, which does not fragment); leave out --raw for larger payloads`,
      );
    }
    const sourcePort = o.sourcePort ?? randomInt(EPHEMERAL_PORTS[0], EPHEMERAL_PORTS[1]);
    const fixedMac = this.path.destinationMac === undefined ? undefined : parseMac(this.path.destinationMac);
    const streams = o.streams;
    this.slotCount = streams * Math.ceil(SEND_BATCH / streams);
    this.frameBytes = FRAME_HEADER_BYTES + o.size;
    this.slotBytes = Math.ceil(this.frameBytes / 8) * 8;
    this.streamIds = Array.from({ length: streams }, (_, k) => (this.streamId + k) % 0x1_0000_0000);
    const fd = openFrameSender(o.ifindex, o.interfaceName, this.path.qdiscBypass);
    try {
      this.sendBufferBytes = enlargeBuffer(fd, 'send', SEND_BUFFER_BYTES);
      this.frames = allocateNative(this.slotCount * this.slotBytes);
      this.words = frameWords(this.frames.bytes);
      const macs = Array.from({ length: streams }, (_, k) => fixedMac ?? multicastMac(o.group + k));
      for (let slot = 0; slot < this.slotCount; slot++) {
        const k = slot % streams;
        this.checksumBases[k] = writeFrameHeader(this.frames.bytes, slot * this.slotBytes, {
          destinationMac: macs[k]!,
          sourceMac: link.mac,
          source: link.ipv4,
          destination: o.group + k,
          sourcePort,
          port: o.port,
          ttl: o.ttl,
          payloadLength: o.size,
        });
      }
      this.batch = new MessageBatch(SEND_BATCH);
      this.header = {
        sourceMac: macToString(link.mac),
        destinationMac: macToString(macs[0]!),
        sourceAddress: ipv4ToString(link.ipv4),
        sourcePort,
        ttl: o.ttl,
        qdiscBypass: this.path.qdiscBypass,
        dropWhenFull: this.path.dropWhenFull,
      };
    } catch (err) {
      closeFd(fd);
      this.frames?.free();
      throw err;
    }
    this.fd = fd;
  }

  /** One sendmmsg; a frame the device refuses is retried after a short pause, or given up. */
  protected sendPending(batch: MessageBatch): number {
    const result = batch.send(this.fd, this.pendingFrom, MSG_DONTWAIT);
    if (result > 0) {
      this.sent += result;
      this.pendingFrom += result;
      // The kernel stopped inside the batch; the next call says why (or sends the rest).
      if (this.pendingFrom < batch.count) this.partialSends++;
      return SEND_GO_ON;
    }
    // ENOBUFS: the device's queue is full (on veth, the peer's ring); EAGAIN: the socket's
    // send buffer is, with frames the peer has not freed yet. Neither says "never".
    const errno = result === 0 ? EAGAIN : -result;
    if (errno === ENOBUFS && this.path.dropWhenFull) {
      this.refused++;
      this.pendingFrom++;
    } else if (errno === ENOBUFS || errno === EAGAIN) {
      this.countError(errnoName(errno));
      sleepMicroseconds(RETRY_PAUSE_US);
    } else {
      this.fail(new SysError('sendmmsg(AF_PACKET)', errno));
      return SEND_FAILED;
    }
    return SEND_GO_ON;
  }

  protected offered(): number {
    return this.sent + this.refused;
  }

  /**
   * Writes the next `n` packets into their slots and the batch; one timestamp per batch. About
   * 170 ns of JavaScript per 64-byte frame (the probe's FNV-1a checksum, one multiply per byte in
   * a chain, is 85 of them); at 1.1 M pps that is a fifth of the core, the kernel's sendmmsg path
   * the rest (bench/generator-rate.ts prints both).
   */
  protected fill(n: number): void {
    const { size, streams } = this.options;
    const frames = this.frames!;
    const bytes = frames.bytes;
    const words = this.words!;
    const batch = this.batch!;
    const timeUs = wallClockUs();
    batch.count = 0;
    let slot = this.nextSeq % this.slotCount;
    let k = this.nextSeq % streams;
    let seq = (this.nextSeq - k) / streams;
    for (let i = 0; i < n; i++) {
      const at = slot * this.slotBytes;
      writeProbeFrame(bytes, words, at, size, this.streamIds[k]!, seq, timeUs, this.checksumBases[k]!);
      batch.add(frames.region, at, this.frameBytes);
      if (++slot === this.slotCount) slot = 0;
      if (++k === streams) {
        k = 0;
        seq++;
      }
    }
    this.nextSeq += n;
  }

  protected details(): SendReportDetails {
    return {
      path: 'raw',
      refused: this.refused,
      // A packet socket is bound to its interface: nothing can route it elsewhere.
      boundToDevice: true,
      rtp: null,
      raw: this.header!,
    };
  }

  protected release(): void {
    this.frames?.free();
  }
}
