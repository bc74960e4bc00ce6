// mcrgen send --threads N: N senders share one run, each in a worker thread with its own event
// loop, socket and stream ids, so together they can fill more than one JavaScript thread can.
// Every sender opens its socket first; only when all are ready are they told to go, so they send
// over the same interval and their rates add up. The main thread sums their reports.
//
// Threads rather than processes: two of either offered the same within noise on this 2-vCPU VM
// (--raw over both CPUs: threads 1.30 M pps, processes 1.27 M), and threads leave nothing
// behind when mcrgen is killed (docs/PERFORMANCE.md, the generator).

import { randomInt } from 'node:crypto';
import { Worker } from 'node:worker_threads';

import { OptionError, type SendOptions } from './options.js';
import { RawSender } from './raw-sender.js';
import { Sender, type SendReport, type SendStop } from './sender.js';
import { SysError } from '../sys/errors.js';

/** One sender, whichever path it takes. */
export interface ProbeSender {
  /** Opens the socket; throws OptionError or SysError. */
  prepare(): void;
  run(): Promise<SendReport>;
  stop(): void;
}

export function createSender(options: SendOptions): ProbeSender {
  return options.raw === undefined ? new Sender(options) : new RawSender(options);
}

/** What a sender thread is told, and what it answers (sender-thread.ts). */
export type ToSender = { type: 'prepare'; options: SendOptions } | { type: 'go' } | { type: 'stop' };
export type FromSender =
  { type: 'ready' } | { type: 'report'; report: SendReport } | { type: 'error'; error: SenderFailure };
export type SenderFailure =
  | { kind: 'sys'; call: string; errno: number }
  | { kind: 'option'; field: string; detail: string }
  | { kind: 'other'; message: string };

export function describeFailure(err: unknown): SenderFailure {
  if (err instanceof SysError) return { kind: 'sys', call: err.call, errno: err.errno };
  if (err instanceof OptionError) return { kind: 'option', field: err.field, detail: err.detail };
  return { kind: 'other', message: err instanceof Error ? err.message : String(err) };
}

function rebuildFailure(f: SenderFailure, sender: number): Error {
  if (f.kind === 'sys') return new SysError(f.call, f.errno);
  if (f.kind === 'option') return new OptionError(f.field, f.detail);
  return new Error(`sender ${sender}: ${f.message}`);
}

/**
 * Sender j's options: stream ids from base + j × streams, its share of --rate, and of --count
 * (the first senders take one more when it does not divide). Pure.
 */
export function splitSendOptions(options: SendOptions, baseStreamId: number): SendOptions[] {
  const n = options.senders;
  const { stop } = options;
  return Array.from({ length: n }, (_, j) => ({
    ...options,
    streamId: (baseStreamId + j * options.streams) % 0x1_0000_0000,
    rate: options.rate / n,
    stop:
      stop.kind === 'count'
        ? { kind: 'count', count: Math.floor(stop.count / n) + (j < stop.count % n ? 1 : 0) }
        : stop,
    senders: 1,
  }));
}

/** One report for the whole run: counts summed, time the longest sender's. Pure. */
export function combineSendReports(
  options: SendOptions,
  baseStreamId: number,
  reports: SendReport[],
): SendReport {
  const first = reports[0]!;
  const sum = (f: (r: SendReport) => number): number => reports.reduce((n, r) => n + f(r), 0);
  const packets = sum((r) => r.packets);
  const bytes = sum((r) => r.bytes);
  const elapsedSeconds = Math.max(...reports.map((r) => r.elapsedSeconds));
  const sendErrors: Record<string, number> = {};
  for (const r of reports)
    for (const [name, count] of Object.entries(r.sendErrors))
      sendErrors[name] = (sendErrors[name] ?? 0) + count;
  const stoppedBy: SendStop = reports.some((r) => r.stoppedBy === 'signal') ? 'signal' : first.stoppedBy;
  return {
    ...first,
    streamId: baseStreamId,
    targetRate: options.rate === 0 ? 'max' : options.rate,
    stoppedBy,
    packets,
    refused: sum((r) => r.refused),
    bytes,
    elapsedSeconds,
    pps: elapsedSeconds > 0 ? packets / elapsedSeconds : 0,
    payloadMbps: elapsedSeconds > 0 ? (bytes * 8) / elapsedSeconds / 1e6 : 0,
    retries: sum((r) => r.retries),
    partialSends: sum((r) => r.partialSends),
    sendErrors,
    boundToDevice: reports.every((r) => r.boundToDevice),
    senders: reports.length,
    perSender: reports,
  };
}

const THREAD_MODULE = new URL('./sender-thread.js', import.meta.url);

export class SenderGroup {
  private readonly options: SendOptions;
  private readonly baseStreamId: number;
  private workers: Worker[] = [];
  private stopRequested = false;

  constructor(options: SendOptions) {
    this.options = options;
    this.baseStreamId = options.streamId ?? randomInt(0, 0x1_0000_0000);
  }

  /** Starts every sender, waits until all are ready, lets them go, and sums their reports. */
  async run(): Promise<SendReport> {
    const parts = splitSendOptions(this.options, this.baseStreamId);
    const ready: Promise<void>[] = [];
    const reports: Promise<SendReport>[] = [];
    for (const [j, options] of parts.entries()) {
      const worker = new Worker(THREAD_MODULE);
      this.workers.push(worker);
      let onReady: () => void = () => undefined;
      let onReport: (r: SendReport) => void = () => undefined;
      let onFailure: (err: Error) => void = () => undefined;
      ready.push(new Promise<void>((resolve) => (onReady = resolve)));
      const report = new Promise<SendReport>((resolve, reject) => {
        onReport = resolve;
        onFailure = reject;
      });
      // Whichever of ready and report a failure comes before, it surfaces once, from the report.
      report.catch(() => onReady());
      reports.push(report);
      worker.on('message', (m: FromSender) => {
        if (m.type === 'ready') onReady();
        else if (m.type === 'report') onReport(m.report);
        else onFailure(rebuildFailure(m.error, j));
      });
      worker.on('error', (err) => onFailure(err));
      // A thread's messages arrive before its exit event: after a report this changes nothing.
      worker.on('exit', (code) =>
        onFailure(new Error(`sender ${j} ended (status ${code}) before its report`)),
      );
      post(worker, { type: 'prepare', options });
    }
    await Promise.all(ready);
    for (const worker of this.workers) post(worker, this.stopRequested ? { type: 'stop' } : { type: 'go' });
    try {
      return combineSendReports(this.options, this.baseStreamId, await Promise.all(reports));
    } catch (err) {
      this.stop();
      await Promise.allSettled(reports);
      throw err;
    }
  }

  /** Asks every sender to end its run and report (signal handlers call this). */
  stop(): void {
    this.stopRequested = true;
    for (const worker of this.workers) post(worker, { type: 'stop' });
  }
}

function post(worker: Worker, message: ToSender): void {
  worker.postMessage(message);
}
