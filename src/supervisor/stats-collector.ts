import type { RuleCounters, WorkerCounters } from '../protocol/control-api.js';

/** The counters at one moment: every worker's (with its process's CPU time) and every rule's. */
export interface CounterSample {
  /** When, in ms on a monotonic clock. */
  at: number;
  workers: { counters: WorkerCounters; cpuSeconds: number | null }[];
  rules: Map<string, RuleCounters>;
}

/** Rates need an older sample at least this far back to be meaningful. */
const MIN_RATE_INTERVAL_MS = 200;
/** Samples kept: a few seconds' worth at one a second. */
const SAMPLES_KEPT = 4;

/**
 * Keeps recent counter samples (the supervisor takes one every second) so counters shown at any
 * moment come with rates: the difference to the newest sample at least MIN_RATE_INTERVAL_MS
 * older, per second. A stream that stops shows rate 0 once the baseline is newer than its last
 * packet: within about one sample interval.
 */
export class StatsCollector {
  private samples: CounterSample[] = [];

  record(sample: CounterSample): void {
    this.samples.push(sample);
    if (this.samples.length > SAMPLES_KEPT) this.samples.shift();
  }

  /** The newest sample taken at least MIN_RATE_INTERVAL_MS before `at`. */
  baseline(at: number): CounterSample | undefined {
    for (let i = this.samples.length - 1; i >= 0; i--) {
      if (at - this.samples[i]!.at >= MIN_RATE_INTERVAL_MS) return this.samples[i];
    }
    return undefined;
  }

  latest(): CounterSample | undefined {
    return this.samples[this.samples.length - 1];
  }
}

/** Per-second rate between two counter values; 0 without a baseline or across a reset. */
export function rate(now: number, before: number | undefined, seconds: number): number {
  if (before === undefined || seconds <= 0 || now < before) return 0;
  return (now - before) / seconds;
}

export function ruleRates(now: RuleCounters, before: RuleCounters | undefined, seconds: number) {
  return {
    packetsIn: rate(now.packetsIn, before?.packetsIn, seconds),
    bytesIn: rate(now.bytesIn, before?.bytesIn, seconds),
    outputs: now.outputs.map((o, i) => rate(o.packets, before?.outputs[i]?.packets, seconds)),
    outputBytes: now.outputs.map((o, i) => rate(o.bytes, before?.outputs[i]?.bytes, seconds)),
  };
}

export function workerRates(
  now: CounterSample['workers'][number],
  before: CounterSample['workers'][number] | undefined,
  seconds: number,
) {
  return {
    framesSeen: rate(now.counters.framesSeen, before?.counters.framesSeen, seconds),
    forwarded: rate(now.counters.forwarded, before?.counters.forwarded, seconds),
    // A new process starts its CPU time from 0: rate() gives 0 across it.
    cpu: now.cpuSeconds === null ? 0 : rate(now.cpuSeconds, before?.cpuSeconds ?? undefined, seconds),
  };
}
