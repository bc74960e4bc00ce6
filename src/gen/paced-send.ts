// The send loop both mcrgen senders share: pacing, the end of a run (count, duration, signal),
// short slices inside the Node event loop so SIGINT/SIGTERM and timers are handled promptly even
// at full speed, and the report. How a batch is written and handed to the kernel is the
// subclass's: a UDP socket (sender.ts) or whole frames on a packet socket (raw-sender.ts).

import { randomInt } from 'node:crypto';

import { ipv4RangeToString, ipv4ToString } from '../packet/ipv4-address.js';
import type { MessageBatch } from '../sys/message-batch.js';
import { closeFd } from '../sys/socket.js';
import type { SendOptions } from './options.js';
import { Pacer, packetsInDuration } from './pacer.js';
import type { SendReport, SendStop } from './sender.js';

/** Messages per sendmmsg call. */
export const SEND_BATCH = 64;
/** Longest stretch the send loop runs before letting the event loop in (signals, timers). */
const SLICE_MS = 5;
/** Waits shorter than this are not worth a timer (which cannot fire sooner than 1 ms anyway). */
const MIN_TIMER_MS = 0.05;

/** What a subclass says of a send attempt: go on, wait this many ms first, or the run failed. */
export const SEND_GO_ON = 0;
export const SEND_FAILED = -1;

/** The report fields only the subclass knows. */
export type SendReportDetails = Pick<SendReport, 'path' | 'refused' | 'boundToDevice' | 'rtp' | 'raw'>;

export abstract class PacedSend {
  protected readonly options: SendOptions;
  protected readonly streamId: number;
  private readonly pacer: Pacer;
  /** Packets the run offers at most (Infinity when only time ends it). */
  protected readonly limit: number;
  /** Set when a duration ends an unpaced run; paced runs end by their packet count. */
  private readonly timeLimitMs: number | undefined;

  protected fd = -1;
  protected batch: MessageBatch | undefined;
  protected sendBufferBytes = 0;

  private startMs = 0;
  /**
   * Index of the next packet to write, over all streams; all below it are in the current batch
   * or already sent. Packet i goes to stream i mod N with sequence number floor(i / N).
   */
  protected nextSeq = 0;
  /** Packets the kernel accepted. */
  protected sent = 0;
  /** Index in the current batch of the first message neither accepted nor given up. */
  protected pendingFrom = 0;
  protected retries = 0;
  protected partialSends = 0;
  protected readonly sendErrors: Record<string, number> = {};

  private timeout: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private stopRequested = false;
  private done = false;
  private resolve: ((report: SendReport) => void) | undefined;
  private reject: ((err: unknown) => void) | undefined;

  constructor(options: SendOptions) {
    this.options = options;
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

  /** Opens and configures the socket (run does it when not done before). Throws on failure. */
  abstract prepare(): void;
  /** Writes the next `n` packets into the batch (its count set to n); one timestamp per batch. */
  protected abstract fill(n: number): void;
  /** Hands the batch from pendingFrom on to the kernel: SEND_GO_ON, ms to wait, or SEND_FAILED (after fail()). */
  protected abstract sendPending(batch: MessageBatch): number;
  /** Packets offered so far: accepted, and those given up. */
  protected abstract offered(): number;
  protected abstract details(): SendReportDetails;
  /** Frees what prepare() made, besides the socket and the batch. */
  protected abstract release(): void;

  /** Opens and configures the socket, then sends until done. Rejects with SysError on failure. */
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
        if (this.offered() >= this.limit) {
          // A paced run lasts until the slot after its last packet, so N packets at R pps
          // take N/R seconds and the achieved rate reads as R.
          const wait = this.pacer.msUntil(this.limit, elapsed);
          if (wait > 0) return this.schedule(wait);
          return this.finish(this.options.stop.kind);
        }
        const due = this.pacer.dueBy(elapsed) - this.nextSeq;
        if (due <= 0) return this.schedule(this.pacer.msUntil(this.nextSeq, elapsed));
        this.fill(Math.min(due, SEND_BATCH));
        this.pendingFrom = 0;
      }
      const next = this.sendPending(batch);
      if (next === SEND_FAILED) return;
      if (next > 0) return this.schedule(next);
      if (performance.now() >= sliceEnd) return this.schedule(0);
    }
  };

  /** Counts a transient send error by its errno name. */
  protected countError(name: string): void {
    this.sendErrors[name] = (this.sendErrors[name] ?? 0) + 1;
    this.retries++;
  }

  protected fail(err: unknown): void {
    this.close();
    this.reject!(err);
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
      bytes,
      elapsedSeconds,
      pps: elapsedSeconds > 0 ? this.sent / elapsedSeconds : 0,
      payloadMbps: elapsedSeconds > 0 ? (bytes * 8) / elapsedSeconds / 1e6 : 0,
      retries: this.retries,
      partialSends: this.partialSends,
      sendErrors: { ...this.sendErrors },
      sendBufferBytes: this.sendBufferBytes,
      ...this.details(),
      senders: 1,
      perSender: null,
    });
  }

  private close(): void {
    this.done = true;
    this.cancelTimer();
    if (this.fd >= 0) closeFd(this.fd);
    this.fd = -1;
    this.batch?.free();
    this.release();
  }
}
