// mcrgen send: paced probe packets on a connected UDP socket, in sendmmsg batches built in
// native memory. With --streams N > 1 the socket is unconnected and every message names its
// own destination (N consecutive addresses, round-robin), so one process offers N streams.
// The send loop (pacing, slices, the end of a run, the report) is paced-send.ts.

import { randomInt } from 'node:crypto';

import { ipv4ToString } from '../packet/ipv4-address.js';
import { writeProbe } from '../packet/probe.js';
import { IPPROTO_IP, IP_TTL, MSG_DONTWAIT } from '../sys/constants.js';
import { SysError, errnoName } from '../sys/errors.js';
import { allocateNative, type NativeMemory } from '../sys/libc.js';
import { DestinationTable, MessageBatch } from '../sys/message-batch.js';
import {
  bindIpv4,
  closeFd,
  connectIpv4,
  openUdpSocket,
  setIntOption,
  setMulticastInterface,
  setMulticastLoop,
  setMulticastTtl,
} from '../sys/socket.js';
import { wallClockUs } from './clock.js';
import { RTP_HEADER_BYTES, type SendOptions } from './options.js';
import { PacedSend, SEND_BATCH, SEND_FAILED, SEND_GO_ON, type SendReportDetails } from './paced-send.js';
import { RtpSequencePlan, writeRtpHeader, type RtpInjected } from './rtp-plan.js';
import { bindToDeviceIfPermitted, enlargeBuffer, naming } from './socket-setup.js';

/** Wait before retrying after the kernel refused part of a batch (full buffer or queue). */
const RETRY_PAUSE_MS = 1;
const SEND_BUFFER_BYTES = 4 * 1024 * 1024;
/** RTP payload type of --rtp packets: a dynamic one (96-127), as the payload is mcrgen's own. */
export const RTP_PAYLOAD_TYPE = 96;
/** The RTP clock: 90 kHz, as video and MPEG-TS over RTP use. */
const RTP_CLOCK_HZ = 90_000;

/**
 * Errors that mean "not now" rather than "never": a full socket buffer (EAGAIN), a full device
 * queue (ENOBUFS), or an ICMP port-unreachable from an earlier unicast send reported on this
 * call (ECONNREFUSED, which the kernel raises instead of sending). The batch is retried.
 */
const TRANSIENT_ERRORS = new Set(['EAGAIN', 'ENOBUFS', 'ECONNREFUSED']);

export type SendStop = 'count' | 'duration' | 'signal';

export interface SendReport {
  mode: 'send';
  /** How packets left: a UDP socket, or whole frames on an AF_PACKET socket (--raw). */
  path: 'socket' | 'raw';
  interface: string;
  /** The (first) destination address. */
  destination: string;
  /** Consecutive destinations, one stream each (--streams). */
  streams: number;
  /** All destinations: "239.1.1.1-239.1.1.100", or the one address. */
  destinationRange: string;
  port: number;
  /**
   * Stream id of the first destination; destination k carries streamId + k (mod 2^32). With
   * several senders, sender j's destination k carries streamId + j × streams + k.
   */
  streamId: number;
  size: number;
  /** Requested packets per second, or "max". */
  targetRate: number | 'max';
  stoppedBy: SendStop;
  /** Packets the kernel accepted: the frames or datagrams each send call reported as taken. */
  packets: number;
  /**
   * Frames the kernel refused because the device's queue was full and that were given up
   * (--raw --drop-when-full): never sent, so the receiver counts them lost. What was offered to
   * the link is packets + refused. 0 on the socket path, where the kernel drops such packets
   * without telling the sender.
   */
  refused: number;
  /** UDP payload bytes. */
  bytes: number;
  elapsedSeconds: number;
  pps: number;
  /** UDP payload megabits per second (headers not included). */
  payloadMbps: number;
  /** Calls that had to be repeated because the kernel took only part of a batch or none of it. */
  retries: number;
  /** Batches the kernel accepted only partly. */
  partialSends: number;
  /** Transient send errors by errno name (EAGAIN, ENOBUFS, ECONNREFUSED). */
  sendErrors: Record<string, number>;
  boundToDevice: boolean;
  sendBufferBytes: number;
  /** With --rtp: the stream's SSRC, first and last sequence numbers, and what the sequence injected. */
  rtp: SendRtpReport | null;
  /** With --raw: the headers the frames carried and how they were handed to the device. */
  raw: RawSendReport | null;
  /** Senders that shared the run (--threads). */
  senders: number;
  /** Each sender's own report when there were several; the fields above are their sums. */
  perSender: SendReport[] | null;
}

export interface RawSendReport {
  sourceMac: string;
  /** Of the first destination. */
  destinationMac: string;
  sourceAddress: string;
  sourcePort: number;
  ttl: number;
  /** PACKET_QDISC_BYPASS: frames went straight to the driver. */
  qdiscBypass: boolean;
  dropWhenFull: boolean;
}

export interface SendRtpReport {
  ssrc: number;
  payloadType: number;
  firstSequence: number;
  /** The number of the last datagram sent (16 bits), or null when none was. */
  lastSequence: number | null;
  /** What a receiver counting the sequence finds, for exactly the datagrams the kernel took. */
  injected: RtpInjected;
}

export class Sender extends PacedSend {
  private memory: NativeMemory | undefined;
  /** --streams > 1: one sockaddr_in per stream; undefined for a connected socket. */
  private destinations: DestinationTable | undefined;
  private boundToDevice = false;
  /** --rtp: the sequence numbers to write, the timestamp's start and step per number. */
  private readonly rtpPlan: RtpSequencePlan | undefined;
  private readonly rtpTimestampBase: number;
  private readonly rtpTimestampStep: number;

  constructor(options: SendOptions) {
    super(options);
    const { rate } = options;
    this.rtpPlan = options.rtp === undefined ? undefined : new RtpSequencePlan(options.rtp, this.limit);
    this.rtpTimestampBase = randomInt(0, 0x1_0000_0000);
    // The media time one packet stands for at the paced rate (a sender at "max" steps by 1).
    this.rtpTimestampStep = rate > 0 ? Math.max(1, Math.round(RTP_CLOCK_HZ / rate)) : 1;
  }

  /** Opens and configures the socket (run does it when not done before). Throws SysError. */
  prepare(): void {
    const o = this.options;
    const fd = openUdpSocket('mcrgen send');
    try {
      this.boundToDevice = bindToDeviceIfPermitted(fd, o.interfaceName);
      // Harmless for a unicast destination; for a group they pick the interface, keep the
      // packets within --ttl hops, and stop local listeners on this host getting a copy.
      setMulticastInterface(fd, o.ifindex);
      setMulticastTtl(fd, o.ttl);
      setMulticastLoop(fd, false);
      if (!o.multicast && o.ttl > 0) setIntOption(fd, IPPROTO_IP, IP_TTL, o.ttl, `IP_TTL ${o.ttl}`);
      this.sendBufferBytes = enlargeBuffer(fd, 'send', SEND_BUFFER_BYTES);
      const sourcePort = o.sourcePort;
      if (sourcePort !== undefined) {
        naming(`bind(udp 0.0.0.0:${sourcePort})`, () => bindIpv4(fd, 0, sourcePort));
      }
      if (o.streams === 1) {
        naming(`connect(udp ${ipv4ToString(o.group)}:${o.port})`, () => connectIpv4(fd, o.group, o.port));
      } else {
        // Unconnected: each message carries its destination (validated to stay in range).
        const addresses = Array.from({ length: o.streams }, (_, k) => o.group + k);
        this.destinations = new DestinationTable(addresses, o.port);
      }
      const slots = Math.min(SEND_BATCH, this.limit);
      this.memory = allocateNative(Math.max(1, slots) * o.size);
      this.batch = new MessageBatch(SEND_BATCH);
    } catch (err) {
      closeFd(fd);
      this.memory?.free();
      this.destinations?.free();
      throw err;
    }
    this.fd = fd;
  }

  /** One sendmmsg; a refusal or a partial batch is retried after RETRY_PAUSE_MS. */
  protected sendPending(batch: MessageBatch): number {
    const result = batch.send(this.fd, this.pendingFrom, MSG_DONTWAIT);
    if (result < 0) {
      const name = errnoName(-result);
      if (!TRANSIENT_ERRORS.has(name)) {
        this.fail(new SysError('sendmmsg(udp)', -result));
        return SEND_FAILED;
      }
      this.countError(name);
      return RETRY_PAUSE_MS;
    }
    this.sent += result;
    this.pendingFrom += result;
    if (this.pendingFrom < batch.count) {
      this.partialSends++;
      this.retries++;
      return RETRY_PAUSE_MS;
    }
    return SEND_GO_ON;
  }

  protected offered(): number {
    return this.sent;
  }

  /** Writes the next `n` probes into batch slots 0..n-1; one timestamp per batch (one syscall). */
  protected fill(n: number): void {
    const { size, streams } = this.options;
    const memory = this.memory!;
    const batch = this.batch!;
    const destinations = this.destinations;
    const timeUs = wallClockUs();
    batch.count = 0;
    const plan = this.rtpPlan;
    if (plan !== undefined) {
      // RTP header, then the probe: each datagram is its own probe (its own probe sequence
      // number, duplicates and late packets included), so recv --rtp --expect checks delivery.
      for (let i = 0; i < n; i++) {
        const at = i * size;
        const number = plan.next();
        const timestamp = (this.rtpTimestampBase + number * this.rtpTimestampStep) % 0x1_0000_0000;
        writeRtpHeader(memory.bytes, at, RTP_PAYLOAD_TYPE, number & 0xffff, timestamp, this.streamId);
        writeProbe(
          memory.bytes,
          at + RTP_HEADER_BYTES,
          size - RTP_HEADER_BYTES,
          this.streamId,
          this.nextSeq + i,
          timeUs,
        );
        batch.add(memory.region, at, size);
      }
    } else if (destinations === undefined) {
      for (let i = 0; i < n; i++) {
        writeProbe(memory.bytes, i * size, size, this.streamId, this.nextSeq + i, timeUs);
        batch.add(memory.region, i * size, size);
      }
    } else {
      // Round-robin: packet p goes to stream p mod N as that stream's packet floor(p / N).
      let k = this.nextSeq % streams;
      let seq = (this.nextSeq - k) / streams;
      for (let i = 0; i < n; i++) {
        const streamId = (this.streamId + k) % 0x1_0000_0000;
        writeProbe(memory.bytes, i * size, size, streamId, seq, timeUs);
        batch.addTo(memory.region, i * size, size, destinations, k);
        if (++k === streams) {
          k = 0;
          seq++;
        }
      }
    }
    this.nextSeq += n;
  }

  protected details(): SendReportDetails {
    return {
      path: 'socket',
      refused: 0,
      boundToDevice: this.boundToDevice,
      rtp: this.rtpReport(),
      raw: null,
    };
  }

  /**
   * The plan worked out again for exactly the datagrams the kernel took: some written into the
   * last batch may never have left (a signal, the end of a duration).
   */
  private rtpReport(): SendRtpReport | null {
    const options = this.options.rtp;
    if (options === undefined) return null;
    const replay = new RtpSequencePlan(options, this.limit);
    let last: number | null = null;
    for (let i = 0; i < this.sent; i++) last = replay.next() & 0xffff;
    return {
      ssrc: this.streamId,
      payloadType: RTP_PAYLOAD_TYPE,
      firstSequence: options.firstSequence,
      lastSequence: last,
      injected: replay.injected(),
    };
  }

  protected release(): void {
    this.memory?.free();
    this.destinations?.free();
  }
}
