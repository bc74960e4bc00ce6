import {
  EGRESS_HEADER_SIZE,
  egressSums,
  IPV4_UDP_OVERHEAD,
  patchEgressHeader,
  type EgressSums,
} from '../packet/egress-header.js';
import type { OutputCounters } from '../protocol/control-api.js';
import { outputCountersAt } from '../protocol/counter-cells.js';
import {
  ERRNO_PAIRS,
  OUTPUT_BYTES,
  OUTPUT_CELLS,
  OUTPUT_ERRNOS,
  OUTPUT_OTHER_ERRORS,
  OUTPUT_PACKETS,
  OUTPUT_RAW,
} from '../protocol/counter-layout.js';
import type { RawEgressSpec, WorkerOutput } from '../protocol/worker-messages.js';
import { EINTR, IPPROTO_IP, IP_MULTICAST_TTL, IP_TOS, IP_TTL, MSG_DONTWAIT } from '../sys/constants.js';
import { errnoName } from '../sys/errors.js';
import { allocateNative, type NativeMemory, type Region } from '../sys/libc.js';
import { MessageBatch } from '../sys/message-batch.js';
import { closeFd, closeFdInBackground, trySetIntOption } from '../sys/socket.js';
import type { WorkerCounterSet } from './worker-counters.js';

/** After the socket path adjusted its socket, batches before it may again (see SocketPath). */
const ADAPT_PAUSE_BATCHES = 8;

/** Header slots are 64 bytes apart (the header is 52): one cache line each. */
const HEADER_STRIDE = 64;

function rawTemplate(spec: RawEgressSpec): Uint8Array {
  const template = Uint8Array.from(Buffer.from(spec.template, 'hex'));
  if (template.length !== EGRESS_HEADER_SIZE)
    throw new RangeError(`raw egress template of ${template.length} bytes, not ${EGRESS_HEADER_SIZE}`);
  return template;
}

/** The raw (AF_PACKET) path of an output: a header slot per batch entry, filled from a template. */
class RawPath {
  fd: number;
  readonly batch: MessageBatch;
  /** For each message of the batch, which frame of the input's batch it copies, and its payload length. */
  readonly frames: Int32Array;
  readonly lengths: Int32Array;
  private readonly headers: NativeMemory;
  sums: EgressSums;
  /** Larger payloads would exceed the link MTU: they take the socket path, which fragments. */
  maxPayload: number;
  private nextId = 0;

  constructor(fd: number, template: Uint8Array, mtu: number, capacity: number) {
    this.fd = fd;
    this.batch = new MessageBatch(capacity, 2);
    this.frames = new Int32Array(capacity);
    this.lengths = new Int32Array(capacity);
    this.headers = allocateNative(capacity * HEADER_STRIDE);
    this.sums = { ipFixed: 0, pseudoFixed: 0 };
    this.maxPayload = 0;
    this.setTemplate(template, mtu);
  }

  /** Copies the template into every slot; per packet only the variable fields are written. */
  setTemplate(template: Uint8Array, mtu: number): void {
    for (let slot = 0; slot < this.batch.capacity; slot++)
      this.headers.bytes.set(template, slot * HEADER_STRIDE);
    this.sums = egressSums(template, 0);
    this.maxPayload = mtu - IPV4_UDP_OVERHEAD;
  }

  /**
   * ~30 ns of JS per packet: patch TOS, lengths, id, TTL and checksums; point the second iovec
   * at the payload. TTL and TOS per packet cost the kernel nothing: they are header bytes.
   */
  queue(
    ring: Region,
    payloadOffset: number,
    payloadLength: number,
    ttl: number,
    tos: number,
    frame: number,
  ): void {
    this.frames[this.batch.count] = frame;
    this.lengths[this.batch.count] = payloadLength;
    const offset = this.batch.count * HEADER_STRIDE;
    patchEgressHeader(this.headers.bytes, offset, payloadLength, this.nextId, ttl, tos, this.sums);
    this.nextId = (this.nextId + 1) & 0xffff;
    this.batch.addWithHeader(
      this.headers.region,
      offset,
      EGRESS_HEADER_SIZE,
      ring,
      payloadOffset,
      payloadLength,
    );
  }

  close(): void {
    // An AF_PACKET socket's last close waits for the kernel (~7 ms): off the data path.
    closeFdInBackground(this.fd);
    this.batch.free();
    this.headers.free();
  }
}

/**
 * The socket path of an output: a connected UDP socket. Each copy's TTL and TOS must reach the
 * wire, and a control message (IP_TTL, IP_TOS) per packet would carry them, but it costs.
 * bench/egress-cmsg.ts, veth link, 64-byte payloads, batches of 64, medians of 11 rounds, per
 * packet sent:
 *   multicast: none 2523 ns; one option +115 ns (+4.5 %); both +229 ns (+9.1 %)
 *   unicast:   none 1982 ns; one option +303 ns (+15 %);  both +451 ns (+23 %)
 * (the kernel parses each message's options; on a unicast socket any option also makes
 * udp_sendmsg skip the connected socket's cached route, and two options no longer fit the
 * kernel's on-stack control buffer, so it allocates one per message). A setsockopt costs about
 * 2-2.5 µs (a TOS change also drops the cached route): once per change, it is paid back within
 * a batch.
 * So the socket carries the values most copies need, and only a copy that differs carries a
 * control message. After each send, when at least 3/4 of the batch needed options (the flow's
 * TTL or DSCP moved), the socket is set to the last such copy's values: up to three setsockopt
 * calls, no allocation. Then it waits ADAPT_PAUSE_BATCHES batches before it may move again, so
 * several interleaved flows that never agree cost at most one adjustment per pause (two flows
 * half and half settle at once: the socket matches one of them).
 */
class SocketPath {
  fd = -1;
  readonly batch: MessageBatch;
  /** For each message of the batch, which frame of the input's batch it copies, and its payload length. */
  readonly frames: Int32Array;
  readonly lengths: Int32Array;
  /** What the socket applies to a copy without options; -1: unknown (every copy says its own). */
  private ttl = -1;
  private tos = -1;
  /** Messages of this batch that carry options, and the values of the last of them. */
  private withOptions = 0;
  private optionTtl = 0;
  private optionTos = 0;
  /** Batches to go before the socket may be adjusted again. */
  private pause = 0;

  constructor(capacity: number) {
    this.batch = new MessageBatch(capacity, 1, true);
    this.frames = new Int32Array(capacity);
    this.lengths = new Int32Array(capacity);
  }

  /** Takes a socket and sets its TTL and TOS to what most copies will carry. */
  attach(fd: number, ttl: number, tos: number): void {
    this.fd = fd;
    this.ttl = -1;
    this.tos = -1;
    this.pause = 0;
    this.setDefaults(ttl, tos);
  }

  /** A few word writes; a control message only where the copy differs from the socket. */
  queue(
    ring: Region,
    payloadOffset: number,
    payloadLength: number,
    ttl: number,
    tos: number,
    frame: number,
  ): void {
    this.frames[this.batch.count] = frame;
    this.lengths[this.batch.count] = payloadLength;
    const ttlOption = ttl === this.ttl ? 0 : ttl;
    const tosOption = tos === this.tos ? -1 : tos;
    if (ttlOption !== 0 || tosOption >= 0) {
      this.withOptions++;
      this.optionTtl = ttl;
      this.optionTos = tos;
    }
    this.batch.addWithIpOptions(ring, payloadOffset, payloadLength, ttlOption, tosOption);
  }

  /** After a send: follow a flow whose values moved (see the class comment). */
  adapt(): void {
    if (this.pause > 0) this.pause--;
    else if (this.withOptions > 0 && this.withOptions * 4 >= this.batch.count * 3) {
      this.setDefaults(this.optionTtl, this.optionTos);
      this.pause = ADAPT_PAUSE_BATCHES;
    }
    this.withOptions = 0;
  }

  /**
   * IP_MULTICAST_TTL applies to multicast destinations and IP_TTL to the rest; the output does
   * not say which it is, so both are set. A refused setsockopt leaves the value unknown: copies
   * then carry it as a control message, which is always right.
   */
  private setDefaults(ttl: number, tos: number): void {
    if (ttl !== this.ttl) {
      const refused =
        trySetIntOption(this.fd, IPPROTO_IP, IP_MULTICAST_TTL, ttl) ||
        trySetIntOption(this.fd, IPPROTO_IP, IP_TTL, ttl);
      this.ttl = refused ? -1 : ttl;
    }
    if (tos !== this.tos) this.tos = trySetIntOption(this.fd, IPPROTO_IP, IP_TOS, tos) ? -1 : tos;
  }

  detach(): void {
    closeFd(this.fd);
    this.fd = -1;
  }

  free(): void {
    this.batch.free();
  }
}

/**
 * One output of one rule, for the whole life of the rule: its counters, and its sockets while
 * it has them (attached). The socket path is a connected UDP socket (bound to its device,
 * multicast interface and loop set by the supervisor); the raw path, when the output has one,
 * an AF_PACKET socket on the output link. Both send iovecs that point into the receive ring.
 */
export class OutputPath {
  readonly label: string;
  /** ttlFixed: the TTL of every copy; otherwise the most a copy gets (input TTL − 1 below it). */
  readonly ttl: number;
  readonly ttlFixed: boolean;
  /** The output's DSCP shifted into the TOS byte, or -1 to keep the input's. */
  readonly dscpBits: number;
  /**
   * Its counters (counter-layout.ts OUTPUT_*): the cells of its slot in the region the supervisor
   * reads, or private memory in tests.
   */
  readonly counters: Float64Array;
  /**
   * The copies the kernel refused in the last flush: the frame each copied (its index in the
   * input's batch) and the errno, for traces. Written only when a copy is refused (rare), reset
   * once per flush.
   */
  readonly refusedFrames: Int32Array;
  readonly refusedErrnos: Int32Array;
  refusedCount = 0;
  private readonly socket: SocketPath;
  private raw: RawPath | undefined;
  private readonly batchSize: number;
  private readonly workerCounters: WorkerCounterSet;

  constructor(
    output: WorkerOutput,
    batchSize: number,
    workerCounters: WorkerCounterSet,
    counters: Float64Array = new Float64Array(OUTPUT_CELLS),
  ) {
    this.label = output.label;
    this.counters = counters;
    this.ttl = output.ttl;
    this.ttlFixed = output.ttlFixed;
    this.dscpBits = output.dscp === null ? -1 : output.dscp << 2;
    this.batchSize = batchSize;
    this.socket = new SocketPath(batchSize);
    this.workerCounters = workerCounters;
    this.refusedFrames = new Int32Array(batchSize);
    this.refusedErrnos = new Int32Array(batchSize);
  }

  get attached(): boolean {
    return this.socket.fd >= 0;
  }

  /**
   * Gives the output sockets, or replaces the ones it has (a new source address, a new MTU):
   * counters carry on. Only between batches (nothing queued).
   */
  attach(socketFd: number, raw: { fd: number; spec: RawEgressSpec } | undefined): void {
    // What can be refused is checked first: a refused attach leaves the output as it was.
    const template = raw ? rawTemplate(raw.spec) : undefined;
    if (this.attached) this.socket.detach();
    // The first copies' values are not known yet; the output's own are the likeliest.
    this.socket.attach(socketFd, this.ttl, this.dscpBits < 0 ? 0 : this.dscpBits);
    if (raw && template && this.raw) {
      closeFdInBackground(this.raw.fd);
      this.raw.fd = raw.fd;
      this.raw.setTemplate(template, raw.spec.mtu);
    } else {
      this.raw?.close();
      this.raw = raw && template ? new RawPath(raw.fd, template, raw.spec.mtu, this.batchSize) : undefined;
    }
  }

  /** Closes the output's sockets; it keeps its counters and gets no copies until attached again. */
  detach(): void {
    if (!this.attached) return;
    this.socket.detach();
    this.raw?.close();
    this.raw = undefined;
  }

  /** Copies waiting to be sent in this batch. */
  get queued(): number {
    return this.socket.batch.count + (this.raw?.batch.count ?? 0);
  }

  /**
   * Queues one copy of a payload that lives in the receive ring, at `payloadOffset`, with its
   * TTL (1-255) and TOS byte. Only on an attached output.
   */
  queue(
    ring: Region,
    payloadOffset: number,
    payloadLength: number,
    ttl: number,
    tos: number,
    frame: number,
  ): void {
    const raw = this.raw;
    if (raw !== undefined && payloadLength <= raw.maxPayload)
      raw.queue(ring, payloadOffset, payloadLength, ttl, tos, frame);
    else this.socket.queue(ring, payloadOffset, payloadLength, ttl, tos, frame);
  }

  /** The path queue() gives a copy of this payload length (the same test), for traces. */
  pathFor(payloadLength: number): 'raw' | 'socket' {
    const raw = this.raw;
    return raw !== undefined && payloadLength <= raw.maxPayload ? 'raw' : 'socket';
  }

  /**
   * Sends what is queued: one sendmmsg per path (about 1.4 µs of kernel time per raw copy, 2.4 µs
   * per UDP copy). Never blocks: a copy the kernel refuses (full buffer, link down) is counted
   * under its errno, taken off its frame's copiesLeft, and the rest are still tried. Returns how
   * many copies were refused.
   */
  flush(copiesLeft: Int32Array): number {
    let refused = 0;
    this.refusedCount = 0;
    const raw = this.raw;
    if (raw !== undefined && raw.batch.count > 0) {
      const sent = this.send(raw.fd, raw.batch, raw.frames, raw.lengths, copiesLeft);
      this.counters[OUTPUT_RAW]! += sent;
      refused += raw.batch.count - sent;
      raw.batch.count = 0;
    }
    const socket = this.socket;
    if (socket.batch.count > 0) {
      refused +=
        socket.batch.count - this.send(socket.fd, socket.batch, socket.frames, socket.lengths, copiesLeft);
      socket.adapt();
      socket.batch.count = 0;
    }
    return refused;
  }

  /**
   * Sends a batch; a refused copy is counted under its errno and taken off its frame's count of
   * copies (copiesLeft, by the frame's index in the input's batch). Returns how many were sent.
   */
  private send(
    fd: number,
    batch: MessageBatch,
    frames: Int32Array,
    lengths: Int32Array,
    copiesLeft: Int32Array,
  ): number {
    let from = 0;
    let sent = 0;
    let bytes = 0;
    while (from < batch.count) {
      const n = batch.send(fd, from, MSG_DONTWAIT);
      if (n > 0) {
        sent += n;
        for (const end = from + n; from < end; from++) bytes += lengths[from]!;
        continue;
      }
      const errno = -n;
      if (errno === EINTR) continue;
      this.countRefused(errno);
      this.workerCounters.egressErrors++;
      if (this.refusedCount < this.refusedFrames.length) {
        this.refusedFrames[this.refusedCount] = frames[from]!;
        this.refusedErrnos[this.refusedCount++] = errno;
      }
      copiesLeft[frames[from]!]!--;
      from++;
    }
    this.counters[OUTPUT_PACKETS]! += sent;
    this.counters[OUTPUT_BYTES]! += bytes;
    return sent;
  }

  /** Counts a refused copy under its errno: the first ERRNO_PAIRS errnos each, the rest together. */
  private countRefused(errno: number): void {
    const cells = this.counters;
    for (let pair = 0; pair < ERRNO_PAIRS; pair++) {
      const at = OUTPUT_ERRNOS + 2 * pair;
      if (cells[at] === 0) cells[at] = errno;
      if (cells[at] === errno) {
        cells[at + 1]!++;
        return;
      }
    }
    cells[OUTPUT_OTHER_ERRORS]!++;
  }

  /** What the output has counted (the supervisor's decoding of the same cells). */
  snapshot(): OutputCounters {
    return outputCountersAt(this.counters, 0, errnoName);
  }

  /**
   * Closes the sockets and frees the native memory. `keepSockets`: frees only the memory (a
   * rule.add that failed half-way: the caller closes every descriptor of the message itself).
   */
  close(keepSockets = false): void {
    if (keepSockets) {
      this.socket.fd = -1;
      if (this.raw) this.raw.fd = -1;
    }
    this.detach();
    this.socket.free();
    this.raw?.close();
  }
}
