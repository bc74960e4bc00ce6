// mcrgen recv: joins a group (or listens on a unicast port), reads with recvmmsg into native
// buffers whenever libuv reports the socket readable, checks every datagram as a probe and
// accounts it per stream. No allocation per packet. With --streams N > 1 it joins N
// consecutive groups, on as many sockets as the per-socket membership limit requires.

import { ipv4RangeToString, ipv4ToString } from '../packet/ipv4-address.js';
import { ProbeInfo, ProbeStatus, probeStatusName, readProbe } from '../packet/probe.js';
import { EAGAIN, EINTR, MSG_DONTWAIT, MSG_TRUNC } from '../sys/constants.js';
import { SysError } from '../sys/errors.js';
import { allocateNative, watchReadable, type NativeMemory, type ReadableWatch } from '../sys/libc.js';
import { MessageBatch } from '../sys/message-batch.js';
import {
  bindIpv4,
  closeFd,
  joinGroup,
  maxMembershipsPerSocket,
  openUdpSocket,
  setMulticastAll,
  setNonBlocking,
  setReuseAddress,
} from '../sys/socket.js';
import { udpSocketDrops } from '../sys/udp-drops.js';
import { wallClockUs } from './clock.js';
import { RTP_HEADER_BYTES, type RecvOptions } from './options.js';
import { summarizeReceive, type RecvReport, type RecvStop } from './report.js';
import { StreamTable } from './sequence-tracker.js';
import { bindToDeviceIfPermitted, enlargeBuffer, naming } from './socket-setup.js';

/** Messages per recvmmsg call. */
export const RECEIVE_BATCH = 64;
/** recvmmsg calls per readiness callback before yielding to timers and signals. */
const MAX_BATCHES_PER_WAKE = 32;
const RECEIVE_BUFFER_BYTES = 16 * 1024 * 1024;
/** Status name for a datagram longer than its receive buffer. */
export const TRUNCATED = 'truncated';
/** Status name, with --rtp, for a datagram that does not start with an RTP version 2 header. */
export const NOT_RTP = 'not_rtp';

export interface ListeningInfo {
  /** The group, the range of groups ("239.1.1.1-239.1.1.5"), or 0.0.0.0 for unicast. */
  address: string;
  port: number;
  interfaceName: string;
  receiveBufferBytes: number;
  boundToDevice: boolean;
}

export class Receiver {
  private readonly options: RecvOptions;
  private readonly streams = new StreamTable();
  private readonly info = new ProbeInfo();
  /** Damaged datagrams by status name, whether or not a stream could be named. */
  private readonly corrupted = new Map<string, number>();

  /** One socket, or with --streams several that share the port (each joins its own groups). */
  private fds: number[] = [];
  private memory: NativeMemory | undefined;
  private batch: MessageBatch | undefined;
  private watches: ReadableWatch[] = [];
  private timers: NodeJS.Timeout[] = [];
  private boundToDevice = false;
  private receiveBufferBytes = 0;

  private startMs = 0;
  private datagrams = 0;
  private bytes = 0;
  private good = 0;
  private firstGoodMs = -1;
  private lastGoodMs = -1;

  private done = false;
  private resolve: ((report: RecvReport) => void) | undefined;
  private reject: ((err: unknown) => void) | undefined;

  constructor(options: RecvOptions) {
    this.options = options;
  }

  /**
   * Opens the socket and joins; calls `onListening` once packets can arrive (a script can start
   * its sender then), and resolves with the report when a stop condition is met.
   */
  run(onListening?: (info: ListeningInfo) => void): Promise<RecvReport> {
    this.open();
    return new Promise<RecvReport>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      const { stop, timeoutSeconds } = this.options;
      this.startMs = performance.now();
      if (stop.kind === 'duration')
        this.timers.push(setTimeout(() => this.finish('duration'), stop.seconds * 1000));
      if (timeoutSeconds !== undefined)
        this.timers.push(setTimeout(() => this.finish('timeout'), timeoutSeconds * 1000));
      for (const fd of this.fds) this.watches.push(watchReadable(fd, () => this.onReadable(fd)));
      const o = this.options;
      onListening?.({
        address: o.multicast ? ipv4RangeToString(o.group, o.streams) : ipv4ToString(0),
        port: this.options.port,
        interfaceName: this.options.interfaceName,
        receiveBufferBytes: this.receiveBufferBytes,
        boundToDevice: this.boundToDevice,
      });
    });
  }

  /** Ends the run now (signal handlers call this); the report follows. */
  stop(): void {
    if (this.resolve !== undefined) this.finish('signal');
  }

  private open(): void {
    const o = this.options;
    try {
      if (o.streams === 1) {
        // Bound to the group itself, the socket gets only that group's datagrams on this port,
        // not other groups that some other socket on the host joined.
        this.fds.push(this.openSocket(o.multicast ? o.group : 0, o.multicast ? [o.group] : []));
      } else {
        // Several groups cannot share one bound address: bind the wildcard and take only the
        // groups joined on the socket (IP_MULTICAST_ALL off), spread over sockets of at most
        // igmp_max_memberships groups each.
        const perSocket = maxMembershipsPerSocket();
        for (let first = 0; first < o.streams; first += perSocket) {
          const count = Math.min(perSocket, o.streams - first);
          this.fds.push(
            this.openSocket(
              0,
              Array.from({ length: count }, (_, k) => o.group + first + k),
            ),
          );
        }
      }
      this.memory = allocateNative(RECEIVE_BATCH * o.maxSize);
      this.batch = new MessageBatch(RECEIVE_BATCH);
      for (let i = 0; i < RECEIVE_BATCH; i++)
        this.batch.setBuffer(i, this.memory.region, i * o.maxSize, o.maxSize);
    } catch (err) {
      for (const fd of this.fds) closeFd(fd);
      this.fds = [];
      this.batch?.free();
      this.memory?.free();
      throw err;
    }
  }

  /** A non-blocking socket bound to `address`:--port that has joined `groups` on the interface. */
  private openSocket(address: number, groups: readonly number[]): number {
    const o = this.options;
    const fd = openUdpSocket('mcrgen recv');
    try {
      // Lets several receivers (or a relay under test) share the group and port on one host.
      setReuseAddress(fd);
      this.boundToDevice = bindToDeviceIfPermitted(fd, o.interfaceName);
      this.receiveBufferBytes = enlargeBuffer(fd, 'receive', RECEIVE_BUFFER_BYTES);
      if (address === 0 && groups.length > 0) setMulticastAll(fd, false);
      naming(`bind(udp ${ipv4ToString(address)}:${o.port})`, () => bindIpv4(fd, address, o.port));
      for (const group of groups) {
        naming(`join ${ipv4ToString(group)} on ${o.interfaceName} (IP_ADD_MEMBERSHIP)`, () =>
          joinGroup(fd, group, o.ifindex),
        );
      }
      setNonBlocking(fd);
    } catch (err) {
      closeFd(fd);
      throw err;
    }
    return fd;
  }

  /** Drains one socket; every socket shares the one batch (callbacks never overlap). */
  private onReadable(fd: number): void {
    if (this.done) return;
    const batch = this.batch!;
    const slot = this.options.maxSize;
    for (let b = 0; b < MAX_BATCHES_PER_WAKE; b++) {
      // MSG_TRUNC makes UDP report each datagram's real length, so one longer than its buffer
      // shows as messageLength > buffer size instead of passing silently as a shorter one.
      const n = batch.receive(fd, MSG_DONTWAIT | MSG_TRUNC);
      if (n < 0) {
        if (-n === EAGAIN || -n === EINTR) return;
        return this.fail(new SysError('recvmmsg(udp)', -n));
      }
      const nowUs = wallClockUs();
      const nowMs = performance.now();
      for (let i = 0; i < n; i++) {
        if (this.handle(i * slot, batch.messageLength(i), nowUs, nowMs)) return this.finish('count');
      }
      if (n < RECEIVE_BATCH) return;
    }
  }

  /** Accounts one datagram; true once the --count of good probes is reached. */
  private handle(offset: number, length: number, nowUs: number, nowMs: number): boolean {
    const bytes = this.memory!.bytes;
    const info = this.info;
    this.datagrams++;
    this.bytes += length;
    // With --rtp the probe follows the RTP header.
    const skip = this.options.rtp ? RTP_HEADER_BYTES : 0;
    if (length > this.options.maxSize) {
      // The header may still be intact: if it is, charge the stream it names.
      const status = readProbe(bytes, offset + skip, this.options.maxSize - skip, info);
      this.countCorrupted(TRUNCATED, status === ProbeStatus.BAD_LENGTH);
      return false;
    }
    if (skip > 0 && (length < skip || (bytes[offset]! & 0xc0) !== 0x80)) {
      this.countCorrupted(NOT_RTP, false);
      return false;
    }
    const status = readProbe(bytes, offset + skip, length - skip, info);
    if (status !== ProbeStatus.OK) {
      this.countCorrupted(
        probeStatusName(status),
        status === ProbeStatus.BAD_LENGTH || status === ProbeStatus.BAD_CHECKSUM,
      );
      return false;
    }
    this.streams.get(info.streamId).recordGood(info.seq, length, nowUs - info.timeUs);
    this.good++;
    if (this.firstGoodMs < 0) this.firstGoodMs = nowMs;
    this.lastGoodMs = nowMs;
    const { stop } = this.options;
    return stop.kind === 'count' && this.good >= stop.count;
  }

  /**
   * Counts a damaged datagram in the totals, and against its stream when the header was read
   * and names a stream already seen in good packets: a damaged header's stream id is not to be
   * trusted, and hostile traffic must not grow the stream table.
   */
  private countCorrupted(name: string, headerRead: boolean): void {
    this.corrupted.set(name, (this.corrupted.get(name) ?? 0) + 1);
    if (headerRead) this.streams.find(this.info.streamId)?.recordCorrupted(name);
  }

  private finish(stoppedBy: RecvStop): void {
    if (this.done) return;
    const elapsedSeconds = (performance.now() - this.startMs) / 1000;
    const kernelDrops = this.kernelDrops();
    this.close();
    const o = this.options;
    this.resolve!(
      summarizeReceive({
        interfaceName: o.interfaceName,
        group: o.group,
        groups: o.streams,
        port: o.port,
        stoppedBy,
        elapsedSeconds,
        countTarget: o.stop.kind === 'count' ? o.stop.count : undefined,
        datagrams: this.datagrams,
        bytes: this.bytes,
        goodSpanSeconds: this.good > 1 ? (this.lastGoodMs - this.firstGoodMs) / 1000 : 0,
        corrupted: this.corrupted,
        streams: this.streams.all(),
        kernelDrops,
        receiveBufferBytes: this.receiveBufferBytes,
        boundToDevice: this.boundToDevice,
        expect: o.expect,
      }),
    );
  }

  /** Drops summed over the sockets; undefined if any socket's count cannot be read. */
  private kernelDrops(): number | undefined {
    let total = 0;
    for (const fd of this.fds) {
      const drops = udpSocketDrops(fd);
      if (drops === undefined) return undefined;
      total += drops;
    }
    return total;
  }

  private fail(err: unknown): void {
    this.close();
    this.reject!(err);
  }

  private close(): void {
    this.done = true;
    for (const watch of this.watches) watch.stop();
    this.watches = [];
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    for (const fd of this.fds) closeFd(fd);
    this.fds = [];
    this.batch?.free();
    this.memory?.free();
  }
}
