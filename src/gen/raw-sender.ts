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
import { ipv4RangeToString, ipv4ToString } from '../packet/ipv4-address.js';
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
import { Pacer, packetsInDuration } from './pacer.js';
import type { RawSendReport, SendReport, SendStop } from './sender.js';
import { enlargeBuffer } from './socket-setup.js';

/** Frames per sendmmsg call. */
const SEND_BATCH = 64;
/** Longest stretch the send loop runs before letting the event loop in (signals, timers). */
const SLICE_MS = 5;
/**
 * Pause before retrying a frame the kernel refused (full device queue or send buffer). A veth
 * peer's NAPI ring of 256 frames drains in a few hundred microseconds at 1 M pps, so a 1-ms timer
 * would idle the link; usleep keeps the loop in its slice.
 */
const RETRY_PAUSE_US = 50;
/** Waits shorter than this are not worth a timer (which cannot fire sooner than 1 ms anyway). */
const MIN_TIMER_MS = 0.05;
const SEND_BUFFER_BYTES = 4 * 1024 * 1024;
/** The kernel's default ephemeral port range (net.ipv4.ip_local_port_range). */
const EPHEMERAL_PORTS = [32768, 61000] as const;

export class RawSender {
  private readonly options: SendOptions;
  private readonly path: RawPathOptions;
  private readonly streamId: number;
  private readonly pacer: Pacer;
  /** Frames the run hands to the kernel at most, accepted or refused (Infinity: only time ends it). */
  private readonly limit: number;
  /** Set when a duration ends an unpaced run; paced runs end by their frame count. */
  private readonly timeLimitMs: number | undefined;

  private fd = -1;
  private frames: NativeMemory | undefined;
  /** The frames as 16-bit words, for the UDP checksum. */
  private words: Uint16Array | undefined;
  private batch: MessageBatch | undefined;
  private header: RawSendReport | undefined;
  private sendBufferBytes = 0;
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

  private startMs = 0;
  /** Index of the next packet to write, over all streams (packet p: stream p mod N, sequence ⌊p/N⌋). */
  private nextSeq = 0;
  private sent = 0;
  private refused = 0;
  /** Index in the current batch of the first frame neither accepted nor given up. */
  private pendingFrom = 0;
  private retries = 0;
  private partialSends = 0;
  private readonly sendErrors: Record<string, number> = {};

  private timeout: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private stopRequested = false;
  private done = false;
  private resolve: ((report: SendReport) => void) | undefined;
  private reject: ((err: unknown) => void) | undefined;

  constructor(options: SendOptions) {
    if (options.raw === undefined) throw new Error('RawSender needs --raw options');
    this.options = options;
    this.path = options.raw;
    this.streamId = options.streamId ?? randomInt(0, 0x1_0000_0000);
    const { stop, rate } = options;
    if (stop.kind === 'count') {
      this.limit = stop.count;
      this.timeLimitMs = undefined;
    } else if (rate > 0) {
      this.limit = packetsInDuration(rate, stop.seconds);
      this.timeLimitMs = undefined;
    } else {
      this.limit = Number.POSITIVE_INFINITY;
      this.timeLimitMs = stop.seconds * 1000;
    }
    this.pacer = new Pacer(rate, this.limit);
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

  /** Sends until done (preparing first if that was not done). Rejects with SysError on failure. */
  run(): Promise<SendReport> {
    if (this.batch === undefined) this.prepare();
    return new Promise<SendReport>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      this.startMs = performance.now();
      this.tick();
    });
  }

  /** Ends the run at the next opportunity (signal handlers call this); the report follows. */
  stop(): void {
    if (this.done || this.stopRequested) return;
    this.stopRequested = true;
    if (this.resolve !== undefined) {
      this.cancelTimer();
      this.tick();
    }
  }

  private readonly tick = (): void => {
    this.timeout = undefined;
    this.immediate = undefined;
    if (this.done) return;
    const batch = this.batch!;
    const sliceEnd = performance.now() + SLICE_MS;
    for (;;) {
      if (this.stopRequested) return this.finish('signal');
      const elapsed = performance.now() - this.startMs;
      if (this.timeLimitMs !== undefined && elapsed >= this.timeLimitMs) return this.finish('duration');
      if (this.pendingFrom >= batch.count) {
        if (this.sent + this.refused >= this.limit) {
          // As in sender.ts: N packets at R pps take N/R seconds, so the rate reads as R.
          const wait = this.pacer.msUntil(this.limit, elapsed);
          if (wait > 0) return this.schedule(wait);
          return this.finish(this.options.stop.kind);
        }
        const due = this.pacer.dueBy(elapsed) - this.nextSeq;
        if (due <= 0) return this.schedule(this.pacer.msUntil(this.nextSeq, elapsed));
        this.fill(Math.min(due, SEND_BATCH));
      }
      const result = batch.send(this.fd, this.pendingFrom, MSG_DONTWAIT);
      if (result > 0) {
        this.sent += result;
        this.pendingFrom += result;
        // The kernel stopped inside the batch; the next call says why (or sends the rest).
        if (this.pendingFrom < batch.count) this.partialSends++;
      } else {
        // ENOBUFS: the device's queue is full (on veth, the peer's ring); EAGAIN: the socket's
        // send buffer is, with frames the peer has not freed yet. Neither says "never".
        const errno = result === 0 ? EAGAIN : -result;
        if (errno === ENOBUFS && this.path.dropWhenFull) {
          this.refused++;
          this.pendingFrom++;
        } else if (errno === ENOBUFS || errno === EAGAIN) {
          const name = errnoName(errno);
          this.sendErrors[name] = (this.sendErrors[name] ?? 0) + 1;
          this.retries++;
          sleepMicroseconds(RETRY_PAUSE_US);
        } else {
          return this.fail(new SysError('sendmmsg(AF_PACKET)', errno));
        }
      }
      if (performance.now() >= sliceEnd) return this.schedule(0);
    }
  };

  /**
   * Writes the next `n` packets into their slots and the batch; one timestamp per batch. About
   * 170 ns of JavaScript per 64-byte frame (the probe's FNV-1a checksum, one multiply per byte in
   * a chain, is 85 of them); at 1.1 M pps that is a fifth of the core, the kernel's sendmmsg path
   * the rest (bench/generator-rate.ts prints both).
   */
  private fill(n: number): void {
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
    this.pendingFrom = 0;
  }

  private schedule(ms: number): void {
    if (ms < MIN_TIMER_MS) this.immediate = setImmediate(this.tick);
    else this.timeout = setTimeout(this.tick, ms);
  }

  private cancelTimer(): void {
    if (this.timeout !== undefined) clearTimeout(this.timeout);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timeout = undefined;
    this.immediate = undefined;
  }

  private finish(stoppedBy: SendStop): void {
    const elapsedSeconds = (performance.now() - this.startMs) / 1000;
    this.close();
    const o = this.options;
    const bytes = this.sent * o.size;
    this.resolve!({
      mode: 'send',
      path: 'raw',
      interface: o.interfaceName,
      destination: ipv4ToString(o.group),
      streams: o.streams,
      destinationRange: ipv4RangeToString(o.group, o.streams),
      port: o.port,
      streamId: this.streamId,
      size: o.size,
      targetRate: o.rate === 0 ? 'max' : o.rate,
      stoppedBy,
      packets: this.sent,
      refused: this.refused,
      bytes,
      elapsedSeconds,
      pps: elapsedSeconds > 0 ? this.sent / elapsedSeconds : 0,
      payloadMbps: elapsedSeconds > 0 ? (bytes * 8) / elapsedSeconds / 1e6 : 0,
      retries: this.retries,
      partialSends: this.partialSends,
      sendErrors: { ...this.sendErrors },
      // A packet socket is bound to its interface: nothing can route it elsewhere.
      boundToDevice: true,
      sendBufferBytes: this.sendBufferBytes,
      rtp: null,
      raw: this.header!,
      senders: 1,
      perSender: null,
    });
  }

  private fail(err: unknown): void {
    this.close();
    this.reject!(err);
  }

  private close(): void {
    this.done = true;
    this.cancelTimer();
    closeFd(this.fd);
    this.fd = -1;
    this.batch?.free();
    this.frames?.free();
  }
}
